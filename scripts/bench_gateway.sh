#!/usr/bin/env bash
# The aws gateway's overhead, measured in one run: the SigV4 load generator PUTs and
# GETs 64 MiB objects through a release daemon on the aws backend onto s3s-fs, then
# with the same commands straight to s3s-fs; also 4 KiB objects on the local, memory
# and sqlite backends. Loopback only; s3s-fs from scripts/install_upstreams.sh.
# Usage: scripts/bench_gateway.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
cargo build --release --bins --benches >/dev/null 2>&1
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }
load() { # endpoint pid access secret op size conns bucket
  cargo bench --bench load -- --endpoint "127.0.0.1:$1" --pid "$2" --access-key "$3" --secret-key "$4" \
    --op "$5" --size "$6" --conns "$7" --keys "$7" --bucket "$8" --seconds "$seconds" 2>/dev/null | grep '^op='
}

ak=bench-upstream sk=bench-upstream-secret
up_port=$(free_port)
mkdir -p "$work/s3s/gateway"
~/.cargo/bin/s3s-fs --host 127.0.0.1 --port "$up_port" --access-key $ak --secret-key $sk "$work/s3s" >/dev/null 2>&1 &
up_pid=$!; pids+=($up_pid); wait_port "$up_port"

gw_port=$(free_port)
printf 'storage:\n  backend: aws\n  aws:\n    bucket: gateway\n    prefix: bench/\n    endpoint_url: http://127.0.0.1:%s\n    access_key_id: %s\n    secret_access_key: %s\n' \
  "$up_port" $ak $sk > "$work/aws.yaml"
./target/release/bleepstore --host 127.0.0.1 --port "$gw_port" --data-dir "$work/gw" --config "$work/aws.yaml" --log-level warn 2>/dev/null &
gw_pid=$!; pids+=($gw_pid); wait_port "$gw_port"

size=$((64 * 1024 * 1024))
for conns in 1 4; do
  echo "# 64 MiB, $conns connections: through the aws gateway, then straight to s3s-fs"
  for op in put get; do
    echo "gateway $(load "$gw_port" "$gw_pid" bleepstore bleepstore-secret $op $size $conns "big$conns")"
    echo "s3s-fs  $(load "$up_port" "$up_pid" $ak $sk $op $size $conns "direct$conns")"
  done
done

echo "# 4 KiB, 64 connections, on local, memory and sqlite"
for backend in local memory sqlite; do
  port=$(free_port)
  case $backend in
    local) extra=() ;;
    memory) printf 'storage:\n  backend: memory\n  memory:\n    max_size_bytes: 4GiB\n' > "$work/memory.yaml"; extra=(--config "$work/memory.yaml") ;;
    sqlite) printf 'storage:\n  backend: sqlite\n' > "$work/sqlite.yaml"; extra=(--config "$work/sqlite.yaml") ;;
  esac
  ./target/release/bleepstore --host 127.0.0.1 --port "$port" --data-dir "$work/$backend" "${extra[@]}" --log-level warn 2>/dev/null &
  pid=$!; pids+=($pid); wait_port "$port"
  for op in put get; do
    echo "$backend $(cargo bench --bench load -- --endpoint 127.0.0.1:$port --pid $pid --op $op --size 4096 --conns 64 --keys 64 --bucket small --seconds "$seconds" 2>/dev/null | grep '^op=')"
  done
  kill $pid; wait $pid 2>/dev/null || true
done
