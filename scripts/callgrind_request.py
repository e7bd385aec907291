#!/usr/bin/env python3
"""Instructions the daemon spends per request, counted by callgrind: repeatable for
the same binary and inputs however busy the machine is, so small changes can be
compared where wall-clock timings drown in noise.

The daemon runs under `valgrind --tool=callgrind` on one serving thread; the script
sends N signed requests of one kind over one keep-alive connection, stops the daemon,
and reads the instruction total. Two runs (N and 2N requests) cancel out startup and
shutdown: the figure is (total(2N) - total(N)) / N, over every thread (the metadata
and logging threads included).

    scripts/callgrind_request.py [--bin target/release/bleepstore] [--op get|presigned-get|put|put-unsigned|head] [-n 500] [--versioned]

`presigned-get` sends what the wrk rows of scripts/bench_ceiling.sh send: GETs
authenticated by a presigned URL's query instead of an Authorization header;
`put-unsigned` sends PUTs with `UNSIGNED-PAYLOAD`, as the put4k row does (valgrind
hides the CPU's SHA instructions, so a signed payload's SHA-256 is counted in its
software form, far above what it costs outside valgrind).
"""

import argparse
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import sigv4  # noqa: E402

ACCESS, SECRET = "bleepstore", "bleepstore-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signed(port, method, path, body=b"", unsigned=False):
    payload_hash = "UNSIGNED-PAYLOAD" if unsigned else hashlib.sha256(body).hexdigest()
    headers, _ = sigv4.sign_headers(method, path, [], {"host": f"127.0.0.1:{port}"},
                                    payload_hash, ACCESS, SECRET, sigv4.amz_now())
    if body:
        headers["content-length"] = str(len(body))
    return headers


VERSIONING = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"


def run(binary, op, count, size, keep=None, versioned=False):
    data_dir = tempfile.mkdtemp(prefix="bleepstore-callgrind-")
    out = os.path.join(data_dir, "callgrind.out")
    port = free_port()
    log = open(os.path.join(data_dir, "log"), "wb")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
                             "--host", "127.0.0.1", "--port", str(port), "--data-dir", os.path.join(data_dir, "d"),
                             "--threads", "1", "--log-level", "warn", "--io-driver", "epoll"], stdout=log, stderr=log)
    try:
        deadline = time.time() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/readyz")
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("daemon did not start under valgrind")
                time.sleep(0.2)
        body = bytes(i % 251 for i in range(size))
        setup = [("PUT", "/cgbench", [], b"")]
        if versioned:
            setup.append(("PUT", "/cgbench", [("versioning", "")], VERSIONING))
        setup.append(("PUT", "/cgbench/obj", [], body))
        for method, path, query, payload in setup:
            payload_hash = hashlib.sha256(payload).hexdigest()
            headers, _ = sigv4.sign_headers(method, path, query, {"host": f"127.0.0.1:{port}"},
                                            payload_hash, ACCESS, SECRET, sigv4.amz_now())
            target = path + ("?" + sigv4.raw_query(query) if query else "")
            conn.request(method, target, body=payload or None, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (method, path, response.status)
        for i in range(count):
            if op in ("put", "put-unsigned"):
                method, path, payload = "PUT", f"/cgbench/obj{i % 50}", body
            elif op == "presigned-get":
                query = sigv4.presign("GET", "/cgbench/obj", [], {"host": f"127.0.0.1:{port}"}, ACCESS, SECRET,
                                      sigv4.amz_now())
                conn.request("GET", f"/cgbench/obj?{query}")
                response = conn.getresponse()
                response.read()
                assert response.status == 200, (op, response.status)
                continue
            else:
                method, path, payload = op.upper(), "/cgbench/obj", b""
            headers = signed(port, method, path, payload, unsigned=op == "put-unsigned")
            conn.request(method, path, body=payload or None, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (op, response.status)
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        log.close()
    total = 0
    for name in os.listdir(data_dir):
        if name.startswith("callgrind.out"):
            for line in open(os.path.join(data_dir, name)):
                if line.startswith("summary:"):
                    total += int(line.split()[1])
            if keep:
                shutil.copy(os.path.join(data_dir, name), keep)
    shutil.rmtree(data_dir, ignore_errors=True)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join("target", "release", "bleepstore"))
    parser.add_argument("--op", choices=["get", "presigned-get", "head", "put", "put-unsigned"], default="get")
    parser.add_argument("-n", type=int, default=500, help="requests in the shorter run")
    parser.add_argument("--size", type=int, default=4096, help="object size in bytes")
    parser.add_argument("--keep", metavar="FILE", help="also keep the longer run's callgrind output here")
    parser.add_argument("--versioned", action="store_true",
                        help="enable versioning on the bucket first (each PUT then makes a version)")
    args = parser.parse_args()
    short = run(args.bin, args.op, args.n, args.size, versioned=args.versioned)
    long = run(args.bin, args.op, 2 * args.n, args.size, args.keep, versioned=args.versioned)
    kind = " versioned" if args.versioned else ""
    print(f"{args.op}{kind} {args.size} B: {(long - short) / args.n:,.0f} instructions per request "
          f"({args.bin}; totals {short:,} and {long:,})")


if __name__ == "__main__":
    main()
