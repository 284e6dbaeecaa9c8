#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests, the integration tests (which include the
# official Python SDK compatibility test) and the packaging test (static binary, .deb/.rpm,
# systemd unit; needs root). Installs the SDK into .venv-sdk on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv-sdk/bin/python ] || ! .venv-sdk/bin/python -c 'import outpost_sdk, standardwebhooks' 2>/dev/null; then
  echo "== installing the Python SDK for the compatibility test into .venv-sdk"
  "$python" -m venv .venv-sdk
  .venv-sdk/bin/pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets
echo "== packaging test"
if [ "$(id -u)" -eq 0 ]; then
  tests/packaging.sh
else
  echo "skipped: the packaging test installs packages into scratch roots and needs root"
fi
