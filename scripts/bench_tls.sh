#!/usr/bin/env bash
# HTTPS against plain HTTP in one run (this host's speed varies from day to day, so
# only figures from the same run compare): the load generator's PUT and GET of
# 4 KiB and 64 MiB objects at 1 and 64 connections, first over HTTP, then HTTPS.
# Usage: scripts/bench_tls.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# plain HTTP"
./scripts/bench_load.sh "$@"
echo "# HTTPS (rustls, ring; TLS 1.3 with the load generator's defaults)"
BENCH_TLS=1 ./scripts/bench_load.sh "$@"
