#!/usr/bin/env bash
# Issue 12's targets, each measured as a ratio against its ceiling taken in the same run
# on the same machine (absolute figures vary 2-3x between days here; ratios less so).
# Builds release, starts one daemon on a temp data dir (loopback only) and, row by row:
#   get4k   wrk -t2 -c64 over 200 presigned GET URLs of 4 KiB objects, against nginx
#           (started here with its own config on loopback) serving the same 200 files
#           to the same wrk command; plus daemon CPU us per request (/proc/PID/stat)
#   put4k   wrk over 200 presigned PUT URLs (UNSIGNED-PAYLOAD, 4 KiB bodies, durable),
#           against one thread's rate of 4 KiB file create+write+fdatasync in the same
#           file system; plus daemon CPU us per request
#   put1g   one stream PUTting a 1 GiB object, UNSIGNED-PAYLOAD, against one core's MD5
#           rate (the md-5 crate the daemon uses, 1 GiB in memory); the signed-payload
#           rate is reported too, and the disk's rate for the same durable write (dd,
#           direct + fdatasync), the ceiling when the disk is the slower
#   putmany 8 connections PUTting 64 MiB objects: daemon CPU-s per GiB against the CPU
#           cost of its hashes alone (MD5 + SHA-256 for signed payloads, MD5 unsigned)
#   get1g   one stream GETting the 1 GiB object (read into the page cache first by one
#           untimed GET), against a plain file-to-socket copy of the same file to the
#           same client (the faster of read + write with a 1 MiB buffer and sendfile)
#   idle    10,000 keep-alive connections, each after one GET, held open: daemon VmRSS
#           (and VmRSS once they closed, for information)
# and the daemon's peak RSS (VmHWM) through the throughput rows. Prints each row's
# absolute figures as it goes and one table (figure, ceiling, ratio, target, verdict).
#
# Usage: scripts/bench_ceiling.sh
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]          seconds per measured run
#   BENCH_ROWS [get4k put4k put1g putmany get1g idle]   which rows, in this order
#   BENCH_WRK_THREADS [2], BENCH_WRK_CONNS [64]         the wrk command of get4k/put4k
#   BENCH_BIG_SIZE [1GiB]       object of put1g/get1g (bytes or KiB/MiB/GiB)
#   BENCH_MANY_CONNS [8], BENCH_MANY_SIZE [64MiB]       putmany's load
#   BENCH_IDLE_CONNS [10000]    connections of the idle row
#   BENCH_BACKEND [local]       local, sqlite or memory (memory is not durable: put4k
#                               then compares a RAM store with fsyncs)
#   BENCH_DIR [$TMPDIR or /tmp] where the data dir goes (the disk under test)
#   BENCH_COPY_MODE [best]      get1g's ceiling: rw (read + write, 1 MiB buffer), sendfile,
#                               or best (both measured, the faster one is the ceiling)
#   BENCH_THREADS               the daemon's --threads (default: one per core)
#   BENCH_DAEMON                the daemon binary to measure (default: the one built here),
#                               e.g. an earlier build kept aside, for before/after figures
#   BENCH_KEEP=1                keep the work dir (logs, configs) and print its path
# Needs wrk and nginx (Debian wrk and nginx-light); installs them with apt-get if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${BENCH_SECONDS:-10}
rows=${BENCH_ROWS:-get4k put4k put1g putmany get1g idle}
wrk_threads=${BENCH_WRK_THREADS:-2}
wrk_conns=${BENCH_WRK_CONNS:-64}
many_conns=${BENCH_MANY_CONNS:-8}
idle_conns=${BENCH_IDLE_CONNS:-10000}
copy_mode=${BENCH_COPY_MODE:-best}
backend=${BENCH_BACKEND:-local}

to_bytes() {
  local v=$1
  case "$v" in
    *GiB) echo $(( ${v%GiB} * 1024 * 1024 * 1024 )) ;;
    *MiB) echo $(( ${v%MiB} * 1024 * 1024 )) ;;
    *KiB) echo $(( ${v%KiB} * 1024 )) ;;
    *[!0-9]*) echo "not a size: $v" >&2; exit 2 ;;
    *) echo "$v" ;;
  esac
}
big=$(to_bytes "${BENCH_BIG_SIZE:-1GiB}")
many_size=$(to_bytes "${BENCH_MANY_SIZE:-64MiB}")
has_row() { [[ " $rows " == *" $1 "* ]]; }
for row in $rows; do
  case $row in get4k|put4k|put1g|putmany|get1g|idle) ;; *) echo "BENCH_ROWS: unknown row $row" >&2; exit 2 ;; esac
done

# --- tools -------------------------------------------------------------------------
if ! command -v wrk >/dev/null || { ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; }; then
  echo "# installing wrk and nginx-light (apt-get)" >&2
  sudo_=(); [ "$(id -u)" -ne 0 ] && sudo_=(sudo)
  "${sudo_[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq wrk nginx-light >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

echo "# building (cargo build --release --bins --benches)" >&2
build_log=$(mktemp "${TMPDIR:-/tmp}/bench_ceiling_build.XXXXXX")
if ! cargo build --release --bins --benches >"$build_log" 2>&1 ||
   ! cargo bench --no-run --bench ceiling --bench load >>"$build_log" 2>&1; then
  tail -30 "$build_log" >&2; exit 1
fi
executable() { sed -n "s|.*Executable benches/$1.rs (\(.*\))|\1|p" "$build_log" | tail -1; }
ceiling=$(executable ceiling) load=$(executable load)
rm -f "$build_log"
[ -x "$ceiling" ] && [ -x "$load" ] || { echo "bench binaries not found" >&2; exit 1; }
daemon=${BENCH_DAEMON:-./target/release/bleepstore}

# --- processes ---------------------------------------------------------------------
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-ceiling.XXXXXX")
chmod 755 "$work" # nginx's workers (nobody) read the files under it
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "# work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $(( idle_conns + 1000 )) ] || ! has_row idle ||
  echo "# warning: ulimit -n is $(ulimit -n), below $idle_conns connections" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
ticks() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat") )); done; echo $t; }
uticks() { awk '{print $14}' "/proc/$1/stat"; } # user time alone (the rest is the kernel's)
hz=$(getconf CLK_TCK)
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
field() { tr ' ' '\n' <<<"$2" | awk -v k="$1=" 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }'; } # field NAME LINE

backend_args=()
case $backend in
  local) ;;
  sqlite) printf 'storage:\n  backend: sqlite\n' >"$work/backend.yaml"; backend_args=(--config "$work/backend.yaml") ;;
  memory) printf 'storage:\n  backend: memory\n  memory:\n    max_size_bytes: 16GiB\n' >"$work/backend.yaml"; backend_args=(--config "$work/backend.yaml") ;;
  *) echo "BENCH_BACKEND: expected local, sqlite or memory" >&2; exit 2 ;;
esac
port=$(free_port)
"$daemon" --host 127.0.0.1 --port "$port" --data-dir "$work/data" "${backend_args[@]}" \
  ${BENCH_THREADS:+--threads $BENCH_THREADS} --max-connections $(( idle_conns + 1000 )) \
  --log-level warn 2>"$work/daemon.log" &
pid=$!; pids+=("$pid"); wait_port "$port"
alive() { kill -0 "$pid" 2>/dev/null || { echo "the daemon died; its log:" >&2; tail -20 "$work/daemon.log" >&2; exit 1; }; }
endpoint=127.0.0.1:$port
echo "# daemon pid $pid on $endpoint ($backend backend), $seconds s per run, $(nproc) CPUs, $(date -u +%FT%TZ)"

table=()
# row NAME FIGURE CEILING RATIO TARGET(e.g. ">=0.5", "<=12", "info")
row() {
  local verdict=- op=${5:0:2} limit=${5:2}
  case $op in
    '>=') verdict=$(awk "BEGIN { print ($4 >= $limit) ? \"PASS\" : \"FAIL\" }") ;;
    '<=') verdict=$(awk "BEGIN { print ($4 <= $limit) ? \"PASS\" : \"FAIL\" }") ;;
  esac
  table+=("$1|$2|$3|$4|$5|$verdict")
}

# 200 objects of 4 KiB, the same bytes under www/ for nginx, presigned GET and PUT paths.
"$ceiling" seed --endpoint "$endpoint" --bucket small --count 200 --size 4096 --www "$work/www" \
  --get-paths "$work/get.paths" --put-paths "$work/put.paths" >/dev/null
cat >"$work/paths.lua" <<'EOF'
-- Cycles through the paths in $BENCH_PATHS (one path?query a line); with $BENCH_BODY
-- bytes, sends them with $BENCH_METHOD. Each thread starts at its own offset.
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local method = os.getenv("BENCH_METHOD") or "GET"
local size = tonumber(os.getenv("BENCH_BODY") or "0")
local body = nil
if size > 0 then body = string.rep("b", size) end
local i = 0
local counter = 0
setup = function(thread) counter = counter + 1; thread:set("offset", counter * 37) end
init = function(args) i = (offset or 0) % #paths end
request = function()
  i = i % #paths + 1
  return wrk.format(method, paths[i], nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
EOF
# wrk_run PORT PATHS METHOD BODY -> "WRK ..." line
wrk_run() {
  BENCH_PATHS=$2 BENCH_METHOD=$3 BENCH_BODY=$4 wrk -t"$wrk_threads" -c"$wrk_conns" -d"${seconds}s" \
    -s "$work/paths.lua" "http://127.0.0.1:$1" | grep '^WRK'
}

# --- GET 4 KiB: daemon vs nginx ----------------------------------------------------
if has_row get4k; then
  nport=$(free_port)
  mkdir -p "$work/nginx/tmp"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes ${BENCH_NGINX_WORKERS:-auto};
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65s;
  keepalive_requests 10000000;
  types { }
  default_type application/octet-stream;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$nport;
    root $work/www;
  }
}
EOF
  "$nginx_bin" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
  npid=$!; pids+=("$npid"); wait_port "$nport"; sleep 0.5 # its workers forked
  nginx_pids=("$npid" $(pgrep -P "$npid"))
  t0=$(ticks "${nginx_pids[@]}"); out=$(wrk_run "$nport" "$work/get.paths" GET 0); t1=$(ticks "${nginx_pids[@]}")
  n_req=$(field requests "$out") n_us=$(field duration_us "$out")
  nginx_rate=$(calc "$n_req / ($n_us / 1e6)" 0) nginx_cpu=$(calc "($t1 - $t0) * 1e6 / $hz / $n_req" 1)
  echo "get4k nginx:  $nginx_rate req/s, ${nginx_cpu} us CPU/req (nginx processes); $out"
  kill "$npid"; wait "$npid" 2>/dev/null || true
  t0=$(ticks "$pid") u0=$(uticks "$pid"); out=$(wrk_run "$port" "$work/get.paths" GET 0)
  t1=$(ticks "$pid") u1=$(uticks "$pid"); alive
  d_req=$(field requests "$out") d_us=$(field duration_us "$out")
  d_rate=$(calc "$d_req / ($d_us / 1e6)" 0) d_cpu=$(calc "($t1 - $t0) * 1e6 / $hz / $d_req" 1)
  d_user=$(calc "($u1 - $u0) * 1e6 / $hz / $d_req" 1)
  echo "get4k daemon: $d_rate req/s, ${d_cpu} us CPU/req (user ${d_user}); $out"
  [ "$(field non2xx "$out")" = 0 ] || echo "get4k: WARNING: $(field non2xx "$out") answers were not 2xx"
  row "GET 4KiB req/s (vs nginx)" "$d_rate" "$nginx_rate" "$(calc "$d_rate / $nginx_rate")" ">=0.5"
  row "GET 4KiB daemon CPU us/req" "$d_cpu" "nginx $nginx_cpu" "$d_cpu" "<=12"
fi

# --- PUT 4 KiB durable: daemon vs one thread's create+write+fdatasync --------------
if has_row put4k; then
  out=$("$ceiling" fsync --dir "$work/data" --size 4096 --seconds "$seconds")
  fsync_rate=$(calc "$(field files/s "$out")" 0)
  echo "put4k fsync:  $fsync_rate files/s on one thread; $out"
  t0=$(ticks "$pid") u0=$(uticks "$pid"); out=$(wrk_run "$port" "$work/put.paths" PUT 4096)
  t1=$(ticks "$pid") u1=$(uticks "$pid"); alive
  d_req=$(field requests "$out") d_us=$(field duration_us "$out")
  d_rate=$(calc "$d_req / ($d_us / 1e6)" 0) d_cpu=$(calc "($t1 - $t0) * 1e6 / $hz / $d_req" 1)
  d_user=$(calc "($u1 - $u0) * 1e6 / $hz / $d_req" 1)
  echo "put4k daemon: $d_rate req/s, ${d_cpu} us CPU/req (user ${d_user}); $out"
  [ "$(field non2xx "$out")" = 0 ] || echo "put4k: WARNING: $(field non2xx "$out") answers were not 2xx"
  row "PUT 4KiB req/s (vs 1-thread fsync)" "$d_rate" "$fsync_rate" "$(calc "$d_rate / $fsync_rate")" ">=3"
  row "PUT 4KiB daemon CPU us/req" "$d_cpu" "-" "$d_cpu" "<=80"
fi

# --- hash ceilings -----------------------------------------------------------------
if has_row put1g || has_row putmany; then
  out=$("$ceiling" hash --bytes "$big")
  md5_line=$(grep '^hash=md5' <<<"$out") sha_line=$(grep '^hash=sha256' <<<"$out")
  md5_rate=$(field MiB/s "$md5_line") sha_rate=$(field MiB/s "$sha_line")
  md5_cost=$(field cpu_s_per_gib "$md5_line") sha_cost=$(field cpu_s_per_gib "$sha_line")
  echo "hash one core: MD5 $md5_rate MiB/s ($md5_cost CPU-s/GiB), SHA-256 $sha_rate MiB/s ($sha_cost CPU-s/GiB)"
fi
# load_run ARGS... -> the load generator's line
load_run() { "$load" --endpoint "$endpoint" --pid "$pid" --seconds "$seconds" "$@" | grep '^op='; }
mib_s() { calc "$(field bytes "$1") / 1048576 / $(field secs "$1")" 1; }

# --- single-stream PUT of 1 GiB ----------------------------------------------------
big_seeded=
if has_row put1g; then
  for payload in unsigned signed; do
    out=$(load_run --op put --size "$big" --conns 1 --keys 1 --bucket big --payload $payload); alive
    rate=$(mib_s "$out")
    echo "put1g $payload: $rate MiB/s; $out"
    [ "$(field errors "$out")" = 0 ] || echo "put1g: WARNING: $(field errors "$out") errors"
    if [ $payload = unsigned ]; then
      rate_unsigned=$rate
      row "PUT 1 stream unsigned MiB/s (vs MD5)" "$rate" "$md5_rate" "$(calc "$rate / $md5_rate")" ">=0.85"
    else
      row "PUT 1 stream signed MiB/s (vs MD5)" "$rate" "$md5_rate" "$(calc "$rate / $md5_rate")" "info"
    fi
  done
  # The disk's own rate for the same durable write (direct, then fdatasync), on the data
  # dir's file system: when it is below the MD5 rate, it is the real ceiling of put1g.
  disk_out=$(dd if=/dev/zero of="$work/data/disk.probe" bs=1M count=$(( big / 1048576 )) \
    oflag=direct conv=fdatasync 2>&1 | tail -1); rm -f "$work/data/disk.probe"
  disk_rate=$(echo "$disk_out" | awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "s,") secs = $i } END { if (secs > 0) printf "%.1f", '"$big"' / 1048576 / secs }')
  echo "disk: direct write + fdatasync of the same size: ${disk_rate:-?} MiB/s ($disk_out)"
  [ -n "$disk_rate" ] && row "PUT 1 stream unsigned MiB/s (vs disk)" "$rate_unsigned" "$disk_rate" \
    "$(calc "$rate_unsigned / $disk_rate")" "info"
  big_seeded=1
fi

# --- many concurrent large PUTs: CPU per GiB vs the hashes' ------------------------
if has_row putmany; then
  for payload in signed unsigned; do
    out=$(load_run --op put --size "$many_size" --conns "$many_conns" --keys "$many_conns" \
      --bucket many --payload $payload); alive
    gib=$(calc "$(field bytes "$out") / 1073741824" 3)
    cost=$(calc "$(field daemon_cpu_s "$out") / $gib" 3)
    if [ $payload = signed ]; then hashes=$(calc "$md5_cost + $sha_cost" 3); else hashes=$md5_cost; fi
    echo "putmany $payload: $(mib_s "$out") MiB/s, $cost daemon CPU-s/GiB (hashes alone $hashes); $out"
    [ "$(field errors "$out")" = 0 ] || echo "putmany: WARNING: $(field errors "$out") errors"
    row "PUT ${many_conns}x$((many_size >> 20))MiB $payload CPU-s/GiB (vs hashes)" "$cost" "$hashes" \
      "$(calc "$cost / $hashes")" "<=1.2"
  done
fi

# --- large GET: daemon vs a plain file-to-socket copy ------------------------------
if has_row get1g; then
  seed_args=(--no-seed); [ -n "$big_seeded" ] || seed_args=()
  # The object was written around the page cache (O_DIRECT), so its first GET reads the
  # disk: one untimed GET reads it in, and the daemon's run and the file copy's that
  # follows both read cached pages.
  load_run --op get --size "$big" --conns 1 --keys 1 --bucket big "${seed_args[@]}" --seconds 1 >/dev/null
  alive
  out=$(load_run --op get --size "$big" --conns 1 --keys 1 --bucket big --no-seed); alive
  d_rate=$(mib_s "$out")
  echo "get1g daemon: $d_rate MiB/s; $out"
  [ "$(field errors "$out")" = 0 ] || echo "get1g: WARNING: $(field errors "$out") errors"
  file=$(find "$work/data" -type f -size "${big}c" 2>/dev/null | head -1)
  if [ -z "$file" ]; then # not the local backend: a file of the same size on the same disk
    file=$work/big.file; head -c "$big" /dev/urandom >"$file"; cat "$file" >/dev/null
  fi
  c_rate=0
  case $copy_mode in best) modes="rw sendfile" ;; rw|sendfile) modes=$copy_mode ;;
    *) echo "BENCH_COPY_MODE: expected best, rw or sendfile" >&2; exit 2 ;; esac
  for mode in $modes; do
    fport=$(free_port) mode_args=(); [ "$mode" = sendfile ] && mode_args=(--sendfile)
    "$ceiling" serve-file --file "$file" --port "$fport" "${mode_args[@]}" >/dev/null &
    fpid=$!; pids+=("$fpid"); wait_port "$fport"
    out=$("$load" --endpoint "127.0.0.1:$fport" --seconds "$seconds" --op get --size "$big" --conns 1 \
      --keys 1 --bucket big --no-seed | grep '^op=')
    kill "$fpid"; wait "$fpid" 2>/dev/null || true
    rate=$(mib_s "$out")
    echo "get1g file-to-socket ($mode): $rate MiB/s; $out"
    c_rate=$(awk "BEGIN { print ($rate > $c_rate) ? $rate : $c_rate }")
  done
  row "GET 1 stream MiB/s (vs file copy)" "$d_rate" "$c_rate" "$(calc "$d_rate / $c_rate")" ">=0.8"
fi

hwm=$(( $(status_kib "$pid" VmHWM) / 1024 ))
echo "peak RSS (VmHWM) through the rows above: $hwm MiB"
row "Peak RSS MiB (VmHWM)" "$hwm" "-" "$hwm" "<=64"

# --- 10,000 idle keep-alive connections --------------------------------------------
if has_row idle; then
  before=$(( $(status_kib "$pid" VmRSS) / 1024 ))
  "$ceiling" idle --endpoint "$endpoint" --paths "$work/get.paths" --conns "$idle_conns" --hold 3600 \
    >"$work/idle.out" 2>"$work/idle.err" &
  ipid=$!; pids+=("$ipid")
  for _ in $(seq 1200); do grep -q '^idle ready' "$work/idle.out" && break; kill -0 $ipid 2>/dev/null || break; sleep 0.1; done
  grep -q '^idle ready' "$work/idle.out" || { echo "idle client did not get ready:" >&2; cat "$work/idle.err" >&2; exit 1; }
  sleep 1; alive
  held=$(( $(status_kib "$pid" VmRSS) / 1024 ))
  echo "idle: $(cat "$work/idle.out"); daemon VmRSS $before MiB before, $held MiB with them open"
  head -3 "$work/idle.err"
  kill "$ipid"; wait "$ipid" 2>/dev/null || true
  sleep 2
  after=$(( $(status_kib "$pid" VmRSS) / 1024 ))
  echo "idle: daemon VmRSS $after MiB 2 s after they closed"
  row "RSS MiB, $(field conns "$(cat "$work/idle.out")") idle conns" "$held" "after close $after" "$held" "<=64"
  row "Peak RSS MiB incl. idle (VmHWM)" "$(( $(status_kib "$pid" VmHWM) / 1024 ))" "-" \
    "$(( $(status_kib "$pid" VmHWM) / 1024 ))" "info"
fi

echo
printf '%-44s %12s %16s %8s %8s %s\n' "row" "figure" "ceiling" "ratio" "target" "verdict"
for line in "${table[@]}"; do
  IFS='|' read -r name figure ceil ratio target verdict <<<"$line"
  printf '%-44s %12s %16s %8s %8s %s\n' "$name" "$figure" "$ceil" "$ratio" "$target" "$verdict"
done
