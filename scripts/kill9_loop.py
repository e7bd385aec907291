#!/usr/bin/env python3
"""Crash loop: run writers against the daemon, kill -9 it at a random moment,
restart it, and check that every write it acknowledged is still there, byte for
byte, and that recovery left no temp files. Repeats for --cycles cycles.

    scripts/kill9_loop.py --cycles 20 --writers 8

Each writer PUTs objects of random size (0 B to 256 KiB, and now and then a
two-part multipart upload of 5 MiB + tail, or an object of 8-10 MiB, which the
local backend writes around the page cache) under unique keys and records a key
only once the daemon answered 200. After the kill, the daemon restarts on the
same data dir and every recorded key is read back and compared by MD5. After each
restart's orphan sweep, every data file must be one a metadata row names (or one
released and waiting for removal). Exits 1 if anything acknowledged is lost or differs, or
any temp file or orphan survives.
"""

import argparse
import hashlib
import http.client
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config

ACCESS_KEY, SECRET_KEY = "bleepstore", "bleepstore-secret"
BUCKET = "crash"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(port, timeout=5):
    cfg = Config(signature_version="s3v4", retries={"max_attempts": 1}, connect_timeout=timeout,
                 read_timeout=timeout, s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1", config=cfg)


class Daemon:
    def __init__(self, binary, data_dir, port, log_path):
        self.binary, self.data_dir, self.port, self.log_path = binary, data_dir, port, log_path
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", self.data_dir],
            stdout=log, stderr=log)
        log.close()
        # Restart time is until /readyz answers 200: recovery done, listeners open. Only
        # the new process can answer (the killed one was reaped before this start).
        started = time.time()
        while time.time() - started < 30:
            if self.proc.poll() is not None:
                sys.exit(f"daemon exited with {self.proc.returncode}; see {self.log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return time.time() - started
                conn.close()
            except OSError:
                pass
            time.sleep(0.002)
        sys.exit("daemon did not become ready")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def writer(s3, stop, acked, lock, seed, counts):
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        key = f"w{seed}/{n}"
        try:
            draw = rng.random()
            if draw < 0.02:
                # Large enough to be written around the page cache (O_DIRECT), with an
                # unaligned end written through it.
                body = os.urandom(8 * 1024 * 1024 + rng.randint(1, 2 * 1024 * 1024))
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            elif draw < 0.05:
                body = os.urandom(5 * 1024 * 1024) + os.urandom(rng.randint(0, 100_000))
                upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                first = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1,
                                       Body=body[:5 * 1024 * 1024])["ETag"]
                second = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=2,
                                        Body=body[5 * 1024 * 1024:])["ETag"]
                s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={
                    "Parts": [{"PartNumber": 1, "ETag": first}, {"PartNumber": 2, "ETag": second}]})
            else:
                body = os.urandom(rng.choice([0, 1, rng.randint(2, 4096), rng.randint(4097, 256 * 1024)]))
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        except Exception:
            # Refused or cut off by the kill: not acknowledged, so nothing is owed.
            with lock:
                counts["failed"] += 1
            continue
        with lock:
            acked[key] = hashlib.md5(body).hexdigest()


def tmp_leftovers(data_dir):
    return sum(len(files) for _, _, files in os.walk(os.path.join(data_dir, "tmp")))


def wait_for_sweep(daemon, offset):
    """Waits for this start's orphan-sweep log line (the log grows past `offset`)."""
    deadline = time.time() + 60
    while True:
        with open(daemon.log_path, "rb") as log:
            log.seek(offset)
            if b"orphan sweep examined" in log.read():
                return
        if time.time() > deadline:
            sys.exit("the orphan sweep did not finish")
        time.sleep(0.02)


def orphans(data_dir):
    """Stored objects (files, and small objects in the database) that no row names and
    no reclaim entry holds. Counted after the sweep of a restart right after a kill,
    with no writer running: any is an orphan the recovery missed."""
    db = sqlite3.connect(f"file:{os.path.join(data_dir, 'metadata.db')}?mode=ro", uri=True)
    tables = ["objects", "object_parts", "multipart_parts"]
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'reclaim'").fetchone():
        tables.append("reclaim")
    referenced = {row[0] for row in db.execute(" UNION ".join(f"SELECT data_id FROM {t}" for t in tables))}
    # Small objects live in the database as chunk rows: sealed or not, each is stored data.
    inline = set()
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'blob_chunks'").fetchone():
        inline = {row[0] for row in db.execute("SELECT data_id FROM blob_chunks")}
    db.close()
    files = {f for _, _, names in os.walk(os.path.join(data_dir, "objects")) for f in names}
    return len((files | inline) - referenced)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release",
                                                         "bleepstore"))
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--data-dir")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--min-run", type=float, default=0.5, help="shortest time under load before the kill (s)")
    parser.add_argument("--max-run", type=float, default=3.0, help="longest time under load before the kill (s)")
    args = parser.parse_args()

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bleepstore-kill9-")
    log_path = data_dir.rstrip("/") + ".log"
    daemon = Daemon(os.path.abspath(args.binary), data_dir, args.port or free_port(), log_path)
    daemon.start()
    client(daemon.port).create_bucket(Bucket=BUCKET)
    acked, lock = {}, threading.Lock()
    counts = {"failed": 0}
    # Clients are made here, one per writer: boto3's default session is not safe to use
    # from several threads at once while it creates clients.
    writers_s3 = [client(daemon.port) for _ in range(args.writers)]
    lost = corrupted = leftovers = orphan_count = 0
    restarts = []
    for cycle in range(1, args.cycles + 1):
        stop = threading.Event()
        before = len(acked)
        threads = [threading.Thread(target=writer, args=(writers_s3[w], stop, acked, lock, cycle * 1000 + w, counts))
                   for w in range(args.writers)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(args.min_run, args.max_run))
        daemon.kill9()
        stop.set()
        for t in threads:
            t.join()
        offset = os.path.getsize(log_path)
        restarts.append(daemon.start())
        leftovers += tmp_leftovers(data_dir)
        wait_for_sweep(daemon, offset)
        cycle_orphans = orphans(data_dir)
        orphan_count += cycle_orphans
        s3 = client(daemon.port, timeout=30)
        cycle_lost = cycle_bad = 0
        with lock:
            expected = dict(acked)
        for key, md5 in expected.items():
            try:
                got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            except Exception:
                cycle_lost += 1
                continue
            if hashlib.md5(got).hexdigest() != md5:
                cycle_bad += 1
        lost += cycle_lost
        corrupted += cycle_bad
        print(f"cycle {cycle:3}: +{len(acked) - before} acknowledged ({len(acked)} in all), "
              f"lost {cycle_lost}, corrupted {cycle_bad}, tmp leftovers {tmp_leftovers(data_dir)}, "
              f"orphans {cycle_orphans}, "
              f"restart {restarts[-1] * 1000:.0f} ms", flush=True)
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.wait(timeout=40)
    print(f"cycles={args.cycles} acknowledged={len(acked)} unacknowledged_attempts={counts['failed']} "
          f"lost={lost} corrupted={corrupted} tmp_leftovers={leftovers} orphans={orphan_count} "
          f"restart_ms_max={max(restarts) * 1000:.0f}")
    if not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(1 if lost or corrupted or leftovers or orphan_count else 0)


if __name__ == "__main__":
    main()
