#!/usr/bin/env python3
"""Startup time with a large database.

    scripts/bench_startup.py --objects 1000000 [--files 20000]

Creates a data dir (the daemon makes the schema), fills the objects table with
--objects rows through SQLite directly (far faster than PUTs, and startup only
sees rows), writes --files real data files for the background orphan sweep to
walk, then starts the daemon several times and reports the time from exec to its
"listening" line, to the first answered request, the time of one /metrics
scrape, and the background sweep's own figure.
"""

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, data_dir, log_path):
    port = free_port()
    offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    log = open(log_path, "ab")
    began = time.perf_counter()
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "--data-dir", data_dir],
                            stdout=log, stderr=log)
    listening = None
    while listening is None:
        with open(log_path, "rb") as f:
            f.seek(offset)
            if b"listening on" in f.read():
                listening = time.perf_counter() - began
        if proc.poll() is not None:
            sys.exit(f"daemon exited: see {log_path}")
        time.sleep(0.001)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).read()
            break
        except OSError:
            time.sleep(0.001)
    answered = time.perf_counter() - began
    scraped = time.perf_counter()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
    scrape = time.perf_counter() - scraped
    return proc, listening, answered, offset, scrape


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "bleepstore"))
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="bleepstore-startup-")
    log_path = data_dir + ".log"
    proc, *_ = start(args.binary, data_dir, log_path)
    proc.send_signal(signal.SIGTERM)
    proc.wait()

    db = sqlite3.connect(os.path.join(data_dir, "metadata.db"))
    now = int(time.time() * 1000)
    db.execute("INSERT INTO buckets (name, owner_id, region, acl, created_ms) VALUES "
               "('big', 'owner', 'us-east-1', '{}', ?)", (now,))
    began = time.perf_counter()
    batch = []
    for n in range(args.objects):
        data_id = f"{n:032x}"
        batch.append(("big", f"dir{n % 1000:03}/object-{n:09}", 4096, "0" * 32, "application/octet-stream",
                      "[]", "STANDARD", "{}", now, data_id, "owner"))
        if len(batch) == 50_000:
            db.executemany("INSERT INTO objects (bucket, key, size, etag, content_type, user_meta, storage_class, "
                           "acl, last_modified_ms, data_id, owner_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
            batch.clear()
    if batch:
        db.executemany("INSERT INTO objects (bucket, key, size, etag, content_type, user_meta, storage_class, "
                       "acl, last_modified_ms, data_id, owner_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
    db.commit()
    db.close()
    for n in range(args.files):
        data_id = f"{n:032x}"
        with open(os.path.join(data_dir, "objects", data_id[:2], data_id), "wb") as f:
            f.write(b"x" * 64)
    size = os.path.getsize(os.path.join(data_dir, "metadata.db"))
    print(f"{args.objects} object rows ({size / 2**20:.0f} MiB database) and {args.files} data files "
          f"made in {time.perf_counter() - began:.1f} s")

    for run in range(1, args.runs + 1):
        proc, listening, answered, offset, scrape = start(args.binary, data_dir, log_path)
        deadline = time.time() + 120
        sweep = "sweep not finished"
        while time.time() < deadline:
            with open(log_path, "rb") as f:
                f.seek(offset)
                lines = [l for l in f.read().decode().splitlines() if "orphan sweep" in l]
            if lines:
                sweep = lines[-1].split("recovery: ", 1)[-1]
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        print(f"run {run}: listening after {listening * 1000:.1f} ms, first answer after {answered * 1000:.1f} ms, "
              f"/metrics in {scrape * 1000:.1f} ms; {sweep}")


if __name__ == "__main__":
    main()
