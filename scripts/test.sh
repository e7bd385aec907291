#!/usr/bin/env bash
# Runs the whole test suite: Rust unit and integration tests (SigV4 vectors,
# raw-socket HTTP cases), a short run of each fuzz target, then the boto3 / aws
# CLI suite, the crash test, the fault simulation and the browser check against the
# release binary. Installs what the tests need on a bare machine.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
# The browser check of /docs: Debian's Chromium, driven by Playwright (pinned in
# tests/browser/package-lock.json; it never downloads a browser of its own).
missing=""
command -v chromium >/dev/null || missing="$missing chromium"
command -v npm >/dev/null || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
npm ci --prefix tests/browser --no-audit --no-fund --silent
# The upstream servers the gateway backends are tested against (moto, s3s-fs,
# Azurite, fake-gcs-server), for scripts/with_upstream.py and tests/python/upstreams.py.
./scripts/install_upstreams.sh

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
# The fault-injection build for the fault simulation (tests/python/test_faults.py),
# copied aside; cargo caches both builds, and the plain one last leaves
# target/release/bleepstore without a trace of fault code.
cargo build --release --bins --features fault-injection
cp target/release/bleepstore target/release/bleepstore-faults.new
mv target/release/bleepstore-faults.new target/release/bleepstore-faults
cargo build --release --bins
export BLEEPSTORE_BIN="$PWD/target/release/bleepstore"
export BLEEPSTORE_FAULT_BIN="$PWD/target/release/bleepstore-faults"
# The storage conformance suite runs on the gateways too: aws onto s3s-fs, azure
# onto Azurite, gcp onto fake-gcs-server.
./scripts/with_upstream.py s3s-fs,azurite,fake-gcs -- cargo test --release
# Every fuzz target in fuzz/ for a few seconds from its committed corpus.
./scripts/fuzz_smoke.sh
python3 -m pytest -q tests/python "$@"
# The SDK suite again, on the memory backend (what tests/python/conftest.py's
# BLEEPSTORE_TEST_BACKEND selects); the tests of files on disk stay local-only.
BLEEPSTORE_TEST_BACKEND=memory python3 -m pytest -q "$@" \
    tests/python/test_{objects,multipart,copy,list,checksums,delete_objects,acl,auth,buckets}.py \
    tests/python/test_{cli,rclone,s5cmd,races,sigv2,users,versioning,object_lock}.py
# And on the sqlite backend, with the kill -9 test: its bytes share the group commits.
BLEEPSTORE_TEST_BACKEND=sqlite python3 -m pytest -q "$@" \
    tests/python/test_{objects,multipart,copy,list,checksums,delete_objects,acl,auth,buckets}.py \
    tests/python/test_{cli,rclone,s5cmd,races,sigv2,users,versioning,object_lock}.py \
    tests/python/test_crash.py::test_kill9_loses_nothing_acknowledged
# And through the aws gateway onto s3s-fs (strict about signatures, payload hashes
# and Content-MD5), then onto moto with IAM users (SigV4 checked) for the object
# and multipart tests.
BLEEPSTORE_TEST_BACKEND=aws ./scripts/with_upstream.py s3s-fs -- python3 -m pytest -q "$@" \
    tests/python/test_{objects,multipart,copy,list,checksums,delete_objects,acl,auth,buckets}.py \
    tests/python/test_{cli,rclone,s5cmd,races,sigv2,users,versioning,object_lock}.py
BLEEPSTORE_TEST_BACKEND=aws ./scripts/with_upstream.py moto -- python3 -m pytest -q "$@" \
    tests/python/test_{objects,multipart,copy}.py
# And through the azure gateway onto Azurite (SharedKey and Content-MD5 checked),
# and the gcp gateway onto fake-gcs-server (the JSON API, anonymous).
BLEEPSTORE_TEST_BACKEND=azure ./scripts/with_upstream.py azurite -- python3 -m pytest -q "$@" \
    tests/python/test_{objects,multipart,copy,list,checksums,delete_objects,acl,auth,buckets}.py \
    tests/python/test_{cli,rclone,s5cmd,races,sigv2,users,versioning,object_lock}.py
BLEEPSTORE_TEST_BACKEND=gcp ./scripts/with_upstream.py fake-gcs -- python3 -m pytest -q "$@" \
    tests/python/test_{objects,multipart,copy,list,checksums,delete_objects,acl,auth,buckets}.py \
    tests/python/test_{cli,rclone,s5cmd,races,sigv2,users,versioning,object_lock}.py
