#!/usr/bin/env bash
# Builds a fully static x86_64 Linux `outpost` binary: glibc linked statically
# (`-C target-feature=+crt-static`), rustls + ring for TLS (no OpenSSL), no shared libraries,
# no ELF interpreter. Runs on any x86_64 Linux kernel >= 3.2 whatever its distribution or libc.
#
#   scripts/build-static.sh     # -> target/static/outpost
#
# target/static/outpost is the distributable (what packaging/build.sh puts in the packages): the
# cargo artifact target/x86_64-unknown-linux-gnu/release/outpost with its DWARF debug info
# removed (objcopy --strip-debug; the symbol table stays, so panic backtraces still name
# functions). The cargo artifact keeps the line tables and the same build id, for addr2line.
#
# Needs: the Rust toolchain (x86_64-unknown-linux-gnu, the host target), a C compiler (ring
# builds C and assembly) and glibc's static archives (libc6-dev / glibc-static). The explicit
# --target matters: with it, RUSTFLAGS apply to the target only, so build scripts and proc
# macros stay dynamic (they cannot be built with crt-static) and the host's target/release is
# left alone. The target directory is shared with ordinary builds (CARGO_TARGET_DIR honoured).
#
# Name resolution: the binary resolves destination host names with glibc's getaddrinfo (hyper's
# GaiResolver). glibc >= 2.34 carries the `files` and `dns` NSS modules inside libc itself, so
# the static binary reads /etc/hosts and /etc/resolv.conf as usual; NSS modules loaded from
# shared libraries (nss-myhostname, nss-resolve, nss-mdns, LDAP, ...) are not available to it.
# The linker's "Using 'getaddrinfo' in statically linked applications requires at runtime the
# shared libraries from the glibc version used for linking" warning refers to those modules
# and is expected.
#
# Checks the result (no PT_INTERP program header, no DT_NEEDED entry) and prints its path and
# size. Exits non-zero if the binary is not static.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
if [ "$(uname -m)" != x86_64 ]; then
  echo "build-static: this script builds on x86_64 Linux only (uname -m: $(uname -m))" >&2
  exit 1
fi

# Exactly these flags: a RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS left in the environment would change
# the build (and invalidate the cache) without anyone noticing.
unset CARGO_ENCODED_RUSTFLAGS
export RUSTFLAGS='-C target-feature=+crt-static'

cargo build --release --locked --target "$target" --bin outpost

target_dir=${CARGO_TARGET_DIR:-target}
bin="$target_dir/$target/release/outpost"
[ -x "$bin" ] || { echo "build-static: $bin was not produced" >&2; exit 1; }

# Static means: no program interpreter and no shared-library dependencies.
if readelf --program-headers --wide "$bin" | grep -q 'INTERP'; then
  echo "build-static: $bin has an ELF interpreter (PT_INTERP): not static" >&2
  exit 1
fi
if readelf --dynamic --wide "$bin" | grep -q '(NEEDED)'; then
  echo "build-static: $bin needs shared libraries:" >&2
  readelf --dynamic --wide "$bin" | grep '(NEEDED)' >&2
  exit 1
fi

out="$target_dir/static/outpost"
mkdir -p "$(dirname "$out")"
objcopy --strip-debug "$bin" "$out.tmp"
mv -f "$out.tmp" "$out"
"$out" --version >/dev/null || { echo "build-static: $out --version failed" >&2; exit 1; }

size=$(stat -c %s "$out")
echo "static binary: $out"
echo "size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') MiB)"
