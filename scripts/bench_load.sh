#!/usr/bin/env bash
# Starts a release daemon on a temp data dir and runs the SigV4 load generator
# for 4 KiB and 64 MiB PUT and GET at 1 and 64 connections. Loopback only.
# Usage: scripts/bench_load.sh [seconds-per-run]
# Environment: BENCH_SIZES (default "4096 67108864"), BENCH_LOG_LEVEL (default warn:
# info adds the access log), BENCH_LOG_FORMAT (text or json), BENCH_LOG (where stderr goes),
# BENCH_BACKEND=memory or sqlite (the memory backend, or bytes in the database, instead of files), BENCH_TLS=1 (serve and load over HTTPS with a throwaway CA; scripts/bench_tls.sh
# runs both in one go).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
port=${BENCH_PORT:-19000}
cargo build --release --bins --benches >/dev/null 2>&1
data=$(mktemp -d)
tls_serve=() tls_load=() backend=()
case "${BENCH_BACKEND:-local}" in
  memory) printf 'storage:\n  backend: memory\n  memory:\n    max_size_bytes: 16GiB\n' > "$data/backend.yaml" ;;
  sqlite) printf 'storage:\n  backend: sqlite\n' > "$data/backend.yaml" ;;
  local) ;;
  *) echo "BENCH_BACKEND: expected local, memory or sqlite" >&2; exit 2 ;;
esac
[ -f "$data/backend.yaml" ] && backend=(--config "$data/backend.yaml")
if [ -n "${BENCH_TLS:-}" ]; then
  pki="$data/pki" && mkdir -p "$pki"
  ossl() { openssl "$@" >/dev/null 2>&1; }
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" -out "$pki/ca.pem" \
    -days 1 -subj "/CN=bench CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/leaf.key" -out "$pki/leaf.csr" -subj "/CN=127.0.0.1"
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$pki/leaf.ext"
  ossl x509 -req -in "$pki/leaf.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -out "$pki/leaf.pem" \
    -days 1 -extfile "$pki/leaf.ext"
  tls_serve=(--tls-cert "$pki/leaf.pem" --tls-key "$pki/leaf.key")
  tls_load=(--tls-ca "$pki/ca.pem")
fi
./target/release/bleepstore --host 127.0.0.1 --port "$port" --data-dir "$data" "${backend[@]}" "${tls_serve[@]}" --log-level "${BENCH_LOG_LEVEL:-warn}" ${BENCH_LOG_FORMAT:+--log-format $BENCH_LOG_FORMAT} 2>"${BENCH_LOG:-/dev/null}" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
run() { cargo bench --bench load -- --endpoint 127.0.0.1:$port --pid $pid --seconds "$seconds" "${tls_load[@]}" "$@" 2>/dev/null | grep '^op='; }
for size in ${BENCH_SIZES:-4096 67108864}; do
  for conns in 1 64; do
    keys=64; [ "$size" -gt 1000000 ] && keys=$(( conns < 8 ? conns : 8 ))
    run --op put --size $size --conns $conns --keys $keys --bucket "b$size"
    run --op get --size $size --conns $conns --keys $keys --bucket "b$size"
  done
done
