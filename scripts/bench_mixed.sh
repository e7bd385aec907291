#!/usr/bin/env bash
# A mixed workload in the spirit of MinIO warp's `mixed`: starts a release daemon on a
# temp data dir (loopback only), PUTs a working set of objects, then runs benches/mixed.rs
# (45% GET, 15% PUT, 10% DELETE, 30% HEAD, SigV4-signed, DELETEd keys PUT again) for a
# fixed time and prints, per operation and in total, ops/s, MB/s and latency
# p50/p90/p99/max, with the daemon's CPU per operation and peak RSS.
# Usage: scripts/bench_mixed.sh [extra flags for benches/mixed.rs, e.g. --mix get:90,put:10]
# Environment (defaults in brackets): BENCH_SECONDS [30], BENCH_CONNS [16],
#   BENCH_OBJECTS [10000], BENCH_SIZES [4KiB:70,64KiB:25,1MiB:5] (size:weight,...),
#   BENCH_PAYLOAD [unsigned] (or signed), BENCH_BACKEND [local] (or sqlite, memory),
#   BENCH_DAEMON [target/release/bleepstore] (another build, for before/after figures),
#   BENCH_THREADS (the daemon's --threads), BENCH_DIR [$TMPDIR or /tmp] (the data dir's disk).
set -euo pipefail
cd "$(dirname "$0")/.."
log=${TMPDIR:-/tmp}/bench_mixed_build.log
if ! cargo build --release --bins >"$log" 2>&1 || ! cargo bench --no-run --bench mixed >>"$log" 2>&1; then
  tail -30 "$log" >&2; exit 1
fi
mixed=$(sed -n 's|.*Executable benches/mixed.rs (\(.*\))|\1|p' "$log" | tail -1)
daemon=${BENCH_DAEMON:-./target/release/bleepstore}
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-mixed.XXXXXX")
pid=
trap '[ -n "$pid" ] && { kill $pid 2>/dev/null; wait $pid 2>/dev/null; }; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
backend=()
case "${BENCH_BACKEND:-local}" in
  local) ;;
  sqlite) printf 'storage:\n  backend: sqlite\n' >"$work/backend.yaml"; backend=(--config "$work/backend.yaml") ;;
  memory) printf 'storage:\n  backend: memory\n  memory:\n    max_size_bytes: 16GiB\n' >"$work/backend.yaml"; backend=(--config "$work/backend.yaml") ;;
  *) echo "BENCH_BACKEND: expected local, sqlite or memory" >&2; exit 2 ;;
esac
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$daemon" --host 127.0.0.1 --port "$port" --data-dir "$work/data" "${backend[@]}" \
  ${BENCH_THREADS:+--threads $BENCH_THREADS} --log-level warn 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
echo "# $daemon (pid $pid, ${BENCH_BACKEND:-local} backend) on 127.0.0.1:$port, $(nproc) CPUs, $(date -u +%FT%TZ)"
"$mixed" --endpoint "127.0.0.1:$port" --pid "$pid" --seconds "${BENCH_SECONDS:-30}" \
  --conns "${BENCH_CONNS:-16}" --objects "${BENCH_OBJECTS:-10000}" \
  --sizes "${BENCH_SIZES:-4KiB:70,64KiB:25,1MiB:5}" --payload "${BENCH_PAYLOAD:-unsigned}" "$@"
kill -0 "$pid" 2>/dev/null || { echo "the daemon died; its log:" >&2; tail -20 "$work/daemon.log" >&2; exit 1; }
