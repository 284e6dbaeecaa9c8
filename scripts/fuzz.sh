#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/fuzz_targets/) with libFuzzer, one at a time, each in one
# process, growing their corpora in fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    default: 60 seconds, every target
#   scripts/fuzz.sh --list                   the target names
#   scripts/fuzz.sh --cmin [TARGET...]       minimize the corpora (cargo fuzz cmin)
#
# Installs cargo-fuzz from crates.io when it is missing. libFuzzer needs a C++ compiler. The
# nightly-only flags cargo-fuzz passes are accepted on stable through RUSTC_BOOTSTRAP=1. A
# crash stops the run and leaves its input in fuzz/artifacts/<target>/; the last libFuzzer
# line of each run (executions, `cov:` and `ft:` coverage, corpus size) is printed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

build=(-O --sanitizer none)
mode=run
if [ "${1:-}" = "--list" ]; then
  cargo fuzz list
  exit 0
elif [ "${1:-}" = "--cmin" ]; then
  mode=cmin
  shift
fi
seconds=60
if [ "$mode" = run ] && [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  if [ "$mode" = cmin ]; then
    echo "== cmin $target ($(ls "corpus/$target" | wc -l) files before)"
    cargo fuzz cmin "${build[@]}" "$target" "corpus/$target" -- -rss_limit_mb=2048 2>&1 | tail -n 2
    echo "   $(ls "corpus/$target" | wc -l) files, $(du -sb "corpus/$target" | cut -f1) bytes"
    continue
  fi
  echo "== $target for ${seconds}s"
  log=$(mktemp)
  if ! cargo fuzz run "${build[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    rm -f "$log"
    exit 1
  fi
  grep -E '^#[0-9]+' "$log" | tail -n 1
  grep -E '^stat::number_of_executed_units' "$log" || true
  rm -f "$log"
done
