#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests, the integration tests (which include the
# official Python and TypeScript SDK tests) and the packaging test (static binary, .deb/.rpm,
# systemd unit; needs root).
#
# On a fresh machine: run as root on Debian or Ubuntu, it first installs the operating-system
# packages the tests need with apt-get. Otherwise a test whose tools are missing is skipped with
# one line saying what to install. The SDKs go into .venv-sdk (Python, with the Prometheus
# parser and Schemathesis, from tests/sdk/requirements.txt; installed again when a module it
# names is missing) and tests/sdk-ts/node_modules (TypeScript, from tests/sdk-ts/package-lock.json)
# on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- operating-system packages (root on Debian or Ubuntu only)
# python3-venv: the Python SDK test; nodejs, npm: the TypeScript SDK test; rpm, cpio, file,
# binutils, systemd, systemd-container: the packaging test.
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  missing=()
  for p in python3 python3-venv rpm cpio file binutils systemd systemd-container; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # By command: a node from another source may bring its own npm.
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

# ---- the SDKs
python=${PYTHON:-python3}
if [ ! -x .venv-sdk/bin/python ] || ! .venv-sdk/bin/python -c 'import outpost_sdk, standardwebhooks, prometheus_client, schemathesis' 2>/dev/null; then
  echo "== installing the Python SDK, the Prometheus parser and Schemathesis into .venv-sdk"
  if ! "$python" -m venv .venv-sdk; then
    echo "error: the Python SDK test needs $python with venv (Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  fi
  .venv-sdk/bin/pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
fi
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -f tests/sdk-ts/node_modules/.package-lock.json ] \
    || [ tests/sdk-ts/package-lock.json -nt tests/sdk-ts/node_modules/.package-lock.json ]; then
    echo "== installing the TypeScript SDK into tests/sdk-ts/node_modules"
    (cd tests/sdk-ts && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error >/dev/null)
  fi
else
  echo "skipped: the TypeScript SDK test needs node and npm (Debian/Ubuntu: apt-get install nodejs npm)"
  export OUTPOST_SKIP_SDK_TS=1
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets
echo "== packaging test"
packaging_tools="rpmbuild rpm rpm2cpio cpio file readelf objcopy systemd-analyze systemd-nspawn python3"
absent=
for tool in $packaging_tools; do
  command -v "$tool" >/dev/null 2>&1 || absent="$absent $tool"
done
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: the packaging test installs packages into scratch roots and needs root (sudo ./scripts/test.sh)"
elif [ -n "$absent" ]; then
  echo "skipped: the packaging test needs$absent (Debian/Ubuntu: apt-get install rpm cpio file binutils systemd systemd-container python3)"
else
  tests/packaging.sh
fi
