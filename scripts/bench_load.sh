#!/usr/bin/env bash
# Starts a release daemon on a temp data dir and runs the SigV4 load generator
# for 4 KiB and 64 MiB PUT and GET at 1 and 64 connections. Loopback only.
# Usage: scripts/bench_load.sh [seconds-per-run]
# Environment: BENCH_SIZES (default "4096 67108864"), BENCH_LOG_LEVEL (default warn:
# info adds the access log), BENCH_LOG_FORMAT (text or json), BENCH_LOG (where stderr goes).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
port=${BENCH_PORT:-19000}
cargo build --release --bins --benches >/dev/null 2>&1
data=$(mktemp -d)
./target/release/bleepstore --host 127.0.0.1 --port "$port" --data-dir "$data" --log-level "${BENCH_LOG_LEVEL:-warn}" ${BENCH_LOG_FORMAT:+--log-format $BENCH_LOG_FORMAT} 2>"${BENCH_LOG:-/dev/null}" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
run() { cargo bench --bench load -- --endpoint 127.0.0.1:$port --pid $pid --seconds "$seconds" "$@" 2>/dev/null | grep '^op='; }
for size in ${BENCH_SIZES:-4096 67108864}; do
  for conns in 1 64; do
    keys=64; [ "$size" -gt 1000000 ] && keys=$(( conns < 8 ? conns : 8 ))
    run --op put --size $size --conns $conns --keys $keys --bucket "b$size"
    run --op get --size $size --conns $conns --keys $keys --bucket "b$size"
  done
done
