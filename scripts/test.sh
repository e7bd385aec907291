#!/usr/bin/env bash
# Runs the whole test suite: Rust unit and integration tests (SigV4 vectors,
# raw-socket HTTP cases), then the boto3 / aws CLI suite and the crash test
# against the release binary. Installs what the tests need on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo build --release --bins
export BLEEPSTORE_BIN="$PWD/target/release/bleepstore"
cargo test --release
python3 -m pytest -q tests/python "$@"
