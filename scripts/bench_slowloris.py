#!/usr/bin/env python3
"""A normal client's latency with and without a slow-loris crowd: N connections
that each trickle a request head one byte a second (reconnecting whenever the
daemon cuts one off), while one client GETs a 4 KiB object in a loop. Prints the
normal client's p50 and p99 in both phases of one run, and how many trickling
connections the daemon cut. Loopback only.

    scripts/bench_slowloris.py [--connections 500] [--seconds 20]
"""

import argparse
import hashlib
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import sigv4  # noqa: E402

ACCESS, SECRET = "bleepstore", "bleepstore-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signed(port, method, path, body=b""):
    headers, _ = sigv4.sign_headers(method, path, [], {"host": f"127.0.0.1:{port}"},
                                    hashlib.sha256(body).hexdigest(), ACCESS, SECRET, sigv4.amz_now())
    return headers


def latencies(port, seconds):
    """GETs of one object, one after another on a keep-alive connection, for `seconds`."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        began = time.perf_counter()
        conn.request("GET", "/slowloris/obj", headers=signed(port, "GET", "/slowloris/obj"))
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        out.append(time.perf_counter() - began)
    return sorted(out)


def crowd(port, count, stop, counts):
    """Keeps `count` connections trickling a head, one byte per connection per second."""
    selector = selectors.DefaultSelector()

    def connect():
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_READ)
        return sock

    socks = [connect() for _ in range(count)]
    pending = b"GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: " + b"a" * 100000
    offsets = {id(s): 0 for s in socks}
    while not stop.is_set():
        began = time.monotonic()
        for i, sock in enumerate(socks):
            try:
                sock.send(pending[offsets[id(sock)]:offsets[id(sock)] + 1])
                offsets[id(sock)] += 1
            except (BlockingIOError, OSError):
                pass
        # Answers (RequestTimeout) and closes: count them and reconnect.
        for key, _ in selector.select(timeout=0):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data or b"RequestTimeout" in data:
                counts["cut"] += 1
                selector.unregister(sock)
                sock.close()
                index = socks.index(sock)
                socks[index] = connect()
                offsets[id(socks[index])] = 0
        time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    for sock in socks:
        sock.close()


def percentile(values, p):
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join("target", "release", "bleepstore"))
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bleepstore-slowloris-")
    port = free_port()
    proc = subprocess.Popen([args.bin, "--host", "127.0.0.1", "--port", str(port), "--data-dir", data_dir,
                             "--log-level", "warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import http.client
        deadline = time.time() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        for method, path, body in (("PUT", "/slowloris", b""), ("PUT", "/slowloris/obj", os.urandom(4096))):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(method, path, body=body or None, headers=signed(port, method, path, body))
            assert conn.getresponse().status == 200
        quiet = latencies(port, args.seconds)
        stop, counts = threading.Event(), {"cut": 0}
        trickler = threading.Thread(target=crowd, args=(port, args.connections, stop, counts))
        trickler.start()
        time.sleep(2)  # let the crowd connect before measuring under it
        loaded = latencies(port, args.seconds)
        stop.set()
        trickler.join()
        print(f"normal client alone:        {len(quiet)} GETs, p50 {percentile(quiet, 0.5):.2f} ms, "
              f"p99 {percentile(quiet, 0.99):.2f} ms")
        print(f"with {args.connections} trickling:  {len(loaded)} GETs, p50 {percentile(loaded, 0.5):.2f} ms, "
              f"p99 {percentile(loaded, 0.99):.2f} ms; {counts['cut']} trickling connections cut")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
