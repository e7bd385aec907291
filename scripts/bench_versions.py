#!/usr/bin/env python3
"""ListObjectVersions over many versions: time per page of a full paged walk.

Starts the daemon on a fresh data dir, enables versioning on a bucket, writes
KEYS x VERSIONS small versions (with a delete marker on every tenth key) through
concurrent keep-alive connections, then walks ListObjectVersions to the end with
max-keys=1000 and prints the write rate and the walk's page times (p50, p99, max),
checking that the walk saw every version exactly once.

    scripts/bench_versions.py [--bin target/release/bleepstore] [--keys 1000] [--versions 100]
"""

import argparse
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import sigv4  # noqa: E402

ACCESS, SECRET = "bleepstore", "bleepstore-secret"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(conn, port, method, path, query=(), body=b""):
    headers, _ = sigv4.sign_headers(method, path, list(query), {"host": f"127.0.0.1:{port}"},
                                    hashlib.sha256(body).hexdigest(), ACCESS, SECRET, sigv4.amz_now())
    target = path
    if query:
        target += "?" + sigv4.raw_query(list(query))
    conn.request(method, target, body=body or None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path} {query}: {response.status} {data[:200]!r}")
    return data


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join("target", "release", "bleepstore"))
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--writers", type=int, default=16)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bleepstore-versions-")
    port = free_port()
    log = open(os.path.join(data_dir, "log"), "wb")
    proc = subprocess.Popen([args.bin, "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                             os.path.join(data_dir, "d"), "--log-level", "warn"], stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("daemon did not start")
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        call(conn, port, "PUT", "/vbench")
        call(conn, port, "PUT", "/vbench", [("versioning", "")],
             b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>")
        jobs = [(f"k{k:06d}", v) for v in range(args.versions) for k in range(args.keys)]
        markers = {f"k{k:06d}" for k in range(0, args.keys, 10)}
        lock = threading.Lock()
        failures = []

        def writer():
            own = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while True:
                with lock:
                    if not jobs or failures:
                        return
                    key, v = jobs.pop()
                try:
                    if v == 0 and key in markers:
                        call(own, port, "DELETE", f"/vbench/{key}")
                    else:
                        call(own, port, "PUT", f"/vbench/{key}", body=b"v%d" % v)
                except Exception as error:  # noqa: BLE001 - reported below
                    failures.append(error)

        started = time.perf_counter()
        threads = [threading.Thread(target=writer) for _ in range(args.writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise failures[0]
        wrote = time.perf_counter() - started
        total = args.keys * args.versions
        print(f"wrote {total} versions and markers in {wrote:.1f} s ({total / wrote:,.0f}/s, "
              f"{args.writers} connections)")
        pages, seen = [], 0
        key_marker = version_marker = None
        while True:
            query = [("versions", ""), ("max-keys", "1000")]
            if key_marker:
                query.append(("key-marker", key_marker))
            if version_marker:
                query.append(("version-id-marker", version_marker))
            begun = time.perf_counter()
            body = call(conn, port, "GET", "/vbench", query)
            pages.append(time.perf_counter() - begun)
            root = ElementTree.fromstring(body)
            seen += len(root.findall(f"{NS}Version")) + len(root.findall(f"{NS}DeleteMarker"))
            if root.findtext(f"{NS}IsTruncated") != "true":
                break
            key_marker = root.findtext(f"{NS}NextKeyMarker")
            version_marker = root.findtext(f"{NS}NextVersionIdMarker")
        assert seen == total, f"the walk saw {seen} entries of {total}"
        pages.sort()
        ms = lambda q: 1000 * pages[min(len(pages) - 1, int(q * len(pages)))]  # noqa: E731
        print(f"walk: {len(pages)} pages of 1000 over {total} entries in {sum(pages):.2f} s; "
              f"per page p50 {ms(0.5):.1f} ms, p99 {ms(0.99):.1f} ms, max {1000 * pages[-1]:.1f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
