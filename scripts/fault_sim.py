#!/usr/bin/env python3
"""Seeded fault simulation: random S3 operations through a daemon built with the
`fault-injection` feature, which fails storage and metadata steps and crashes where
a plan drawn from the seed says (see src/fault.rs), then a check of everything after
every restart.

    scripts/fault_sim.py --build                       # the fault-enabled binary
    scripts/fault_sim.py --seeds 300 --ops 80          # the report run
    scripts/fault_sim.py --seed 17 --ops 80 -v         # one seed, every operation shown

For each seed: a fresh data dir and a sequence of daemon lives. A life starts the
daemon (`--threads 1`) with a fault plan (its own seed, a rate of failed steps, a
crash point), runs random operations one at a time (PUT new and overwrite with sizes
from 0 to past 1 MiB, some with If-None-Match: *, DELETE, DeleteObjects, GET whole
and ranged, HEAD, ListObjectsV2, CopyObject, multipart create / upload part / upload
part copy / complete / abort) and keeps a model of what must be stored:

- an answer of 2xx means the operation happened; its result is checked;
- an error answer means it did not: the model keeps the old state, and a HEAD
  right after checks that nothing of it became visible;
- no answer (the daemon crashed at the planned point) means it may or may not
  have happened: both states stay possible until the next check.

The life ends at its crash or after its operations (then SIGTERM). The daemon
restarts without faults, and once its orphan sweep is done the check runs: no
file in tmp/; every object reads back byte-identical with its ETag and the state
possible for it; the listing is the model's; multipart uploads and their parts are
the model's; the data files under objects/ (and the small objects kept in the
database) are exactly those the metadata names
(none missing, no orphan) and the reclaim table is empty. Anything else, an
unexpected error code, a hang, or a death that was not the planned crash, is a
violation. Prints one summary line (seeds x operations, lives, crashes, faults,
violations) and exits 1 on any violation.
"""

import argparse
import concurrent.futures
import hashlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAULT_BIN = os.path.join(ROOT, "target", "release", "bleepstore-faults")
ACCESS_KEY, SECRET_KEY = "bleepstore", "bleepstore-secret"
BUCKET = "sim"
MIB = 1024 * 1024
# 64 KiB is the small-response threshold and 1 MiB the upload chunk: sizes on both sides.
SIZES = [0, 1, 17, 4096, 65536, 65537, 200_000, MIB + 100_000]
PART_SIZES = [1, 1000, 70_000, MIB + 7]
KEYS = [f"k{i:02d}" for i in range(10)] + [f"dir/k{i:02d}" for i in range(6)]
RATES = [0.005, 0.02, 0.05, 0.1]
# The errors a failed step may be answered with: internal, busy, disk full.
FAULT_STATUSES = {500, 503, 507}


def build(root=ROOT):
    """Builds the fault-enabled binary as target/release/bleepstore-faults, then
    rebuilds the plain one so target/release/bleepstore stays fault-free (cargo keeps
    both in its cache, so switching back costs nothing)."""
    subprocess.run(["cargo", "build", "--release", "--bins", "--features", "fault-injection"], cwd=root, check=True)
    shutil.copy2(os.path.join(root, "target", "release", "bleepstore"), FAULT_BIN + ".new")
    os.replace(FAULT_BIN + ".new", FAULT_BIN)
    subprocess.run(["cargo", "build", "--release", "--bins"], cwd=root, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


class Obj:
    """An object's content as the model knows it."""

    def __init__(self, etag, data):
        self.etag, self.data = etag, data
        self.sha = hashlib.sha256(data).hexdigest()

    def __eq__(self, other):
        return isinstance(other, Obj) and (self.etag, self.sha) == (other.etag, other.sha)

    def __hash__(self):
        return hash((self.etag, self.sha))

    def __repr__(self):
        return f"Obj({self.etag}, {len(self.data)} B)"


class Upload:
    def __init__(self, key):
        self.key = key
        self.exists = [True]      # possible: True (open), False (completed or aborted)
        self.parts = {}           # part number -> possible [(etag, data) or None]


class Violation(Exception):
    pass


class Daemon:
    def __init__(self, binary, data_dir, log_path):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        self.port = free_port()
        self.proc = None
        self.offset = 0

    def start(self, plan=None):
        # A new client each time: a kept-alive connection to the last process can look
        # open for a moment after it ended (io_uring closes its sockets late).
        self.client = make_client(self.port)
        self.offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        env = {k: v for k, v in os.environ.items() if k != "BLEEPSTORE_FAULTS"}
        if plan:
            env["BLEEPSTORE_FAULTS"] = plan
        env.setdefault("RUST_LOG", "info,access=off")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", self.data_dir,
                 "--threads", "1", "--log-level", "info"], stdout=log, stderr=log, env=env)
        self.wait_log("listening on", 30)

    def log_text(self):
        with open(self.log_path, "rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace")

    def wait_log(self, text, seconds):
        deadline = time.time() + seconds
        while text not in self.log_text():
            if self.proc.poll() is not None:
                raise Violation(f"daemon exited with {self.proc.returncode} before `{text}`:\n{self.tail()}")
            if time.time() > deadline:
                raise Violation(f"no `{text}` within {seconds} s:\n{self.tail()}")
            time.sleep(0.005)

    def tail(self, lines=25):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def dead(self, wait=1.0):
        """Whether the process has ended (waiting a little: a crash resets the connection
        a moment before the process is reaped)."""
        try:
            self.proc.wait(timeout=wait)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Violation("SIGTERM did not end the daemon within 30 s")
        return self.proc.returncode

    def metric(self, name):
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise Violation(f"{name} not in /metrics")


SESSION = boto3.session.Session()


def make_client(port):
    cfg = Config(signature_version="s3v4", retries={"max_attempts": 0}, connect_timeout=5, read_timeout=20,
                 s3={"addressing_style": "path"})
    return SESSION.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1", config=cfg)


class Sim:
    """One seed's run."""

    def __init__(self, seed, ops, binary, root_dir, verbose=False):
        self.seed, self.ops, self.verbose = seed, ops, verbose
        self.rng = random.Random(seed)
        self.data_dir = os.path.join(root_dir, f"seed-{seed}")
        self.daemon = Daemon(binary, self.data_dir, self.data_dir + ".log")
        self.s3 = None
        self.objects = {}          # key -> possible [Obj or None]
        self.uploads = {}          # upload id -> Upload
        self.lost_creates = set()  # keys whose CreateMultipartUpload got no answer
        self.stats = {"ops": 0, "lives": 0, "crashes": 0, "faults": 0, "errors": 0, "lost": 0}
        self.codes = {}            # error answers during lives, by status and code
        self.checking = False
        self.trace = []

    # -- bookkeeping -------------------------------------------------------------------

    def say(self, text):
        self.trace.append(text)
        if self.verbose:
            print(f"[seed {self.seed}] {text}", flush=True)

    def fail(self, text):
        raise Violation(f"seed {self.seed}: {text}\n--- daemon log tail:\n{self.daemon.tail()}")

    def start(self, plan=None):
        self.daemon.start(plan)
        self.s3 = self.daemon.client

    def state(self, key):
        states = self.objects.get(key, [None])
        assert len(states) == 1, (key, states)
        return states[0]

    def call(self, what, fn):
        """Runs one request: ("ok", result), ("error", (status, code)) or ("lost", None)."""
        try:
            return "ok", fn()
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = e.response.get("Error", {}).get("Code", "?")
            if not self.checking:
                self.codes[f"{status} {code}"] = self.codes.get(f"{status} {code}", 0) + 1
            return "error", (status, code)
        except Exception as e:  # connection refused, reset, cut-off body, timeout
            if self.daemon.dead():
                return "lost", None
            if "timed out" in str(e).lower():
                self.fail(f"{what}: no answer within the timeout and the daemon is alive (a hang): {e!r}")
            return "cut", type(e).__name__

    def mutation(self, what, fn, allowed=()):
        """A request that changes state; an answer that is no answer is a violation
        unless the daemon died."""
        outcome, value = self.call(what, fn)
        if outcome == "cut":
            self.fail(f"{what}: connection closed without an answer, daemon alive: {value}")
        if outcome == "error":
            status, code = value
            if status not in FAULT_STATUSES and code not in allowed:
                self.fail(f"{what}: unexpected error {status} {code}")
            self.stats["errors"] += 1
        self.say(f"{what}: {outcome}{'' if outcome != 'error' else ' ' + str(value)}")
        return outcome, value

    def head_state(self, key):
        """What a HEAD says is stored at `key`: None, an (etag, size) or "unknown"."""
        outcome, value = self.call(f"HEAD {key}", lambda: self.s3.head_object(Bucket=BUCKET, Key=key))
        if outcome == "ok":
            return (value["ETag"].strip('"'), value["ContentLength"])
        if outcome == "error" and value[0] == 404:
            return None
        return "unknown"

    def check_unchanged(self, what, key):
        """After an error answer: the key still shows its old state."""
        seen = self.head_state(key)
        if seen == "unknown":
            return
        old = self.state(key)
        expected = None if old is None else (old.etag, len(old.data))
        if seen != expected:
            self.fail(f"{what} was answered with an error, yet {key} shows {seen} instead of {expected}")

    # -- operations ----------------------------------------------------------------------

    def body(self, sizes):
        return self.rng.randbytes(self.rng.choice(sizes))

    def op_put(self):
        key = self.rng.choice(KEYS)
        data = self.body(SIZES)
        new = Obj(md5_hex(data), data)
        # Now and then only if the key is free: the precondition is checked in the
        # metadata write, and a failed one must change nothing.
        exclusive = self.rng.random() < 0.15
        args = {"IfNoneMatch": "*"} if exclusive else {}
        outcome, value = self.mutation(
            f"PUT {key} ({len(data)} B{', If-None-Match' if exclusive else ''})",
            lambda: self.s3.put_object(Bucket=BUCKET, Key=key, Body=data, **args),
            allowed=("PreconditionFailed",) if exclusive else ())
        if outcome == "error" and value[1] == "PreconditionFailed" and self.state(key) is None:
            self.fail(f"PUT {key} If-None-Match: * failed although the key is free")
        if outcome == "ok" and exclusive and self.state(key) is not None:
            self.fail(f"PUT {key} If-None-Match: * replaced {self.state(key)}")
        self.settle(key, outcome, new, f"PUT {key}")
        if outcome == "ok" and value["ETag"].strip('"') != new.etag:
            self.fail(f"PUT {key} answered ETag {value['ETag']}, not {new.etag}")
        return outcome

    def settle(self, key, outcome, new, what):
        old = self.state(key)
        if outcome == "ok":
            self.objects[key] = [new]
        elif outcome == "error":
            self.check_unchanged(what, key)
        else:
            self.objects[key] = [old, new] if old != new else [old]

    def op_delete(self):
        key = self.rng.choice(KEYS)
        outcome, _ = self.mutation(f"DELETE {key}", lambda: self.s3.delete_object(Bucket=BUCKET, Key=key))
        self.settle(key, outcome, None, f"DELETE {key}")
        return outcome

    def op_delete_objects(self):
        keys = sorted(set(self.rng.sample(KEYS, self.rng.randint(1, 3))))
        request = {"Objects": [{"Key": k} for k in keys]}
        outcome, value = self.mutation(f"DeleteObjects {keys}",
                                       lambda: self.s3.delete_objects(Bucket=BUCKET, Delete=request))
        if outcome == "ok":
            deleted = {d["Key"] for d in value.get("Deleted", [])}
            for error in value.get("Errors", []):
                if error.get("Code") not in ("InternalError", "InsufficientStorage", "ServiceUnavailable"):
                    self.fail(f"DeleteObjects: unexpected per-key error {error}")
            for key in keys:
                self.settle(key, "ok" if key in deleted else "error", None, "DeleteObjects")
        else:
            for key in keys:
                self.settle(key, outcome, None, "DeleteObjects")
        return outcome

    def op_get(self):
        present = [k for k in KEYS if self.state(k) is not None]
        key = self.rng.choice(present or KEYS)
        old = self.state(key)

        span = None
        if old is not None and len(old.data) > 1 and self.rng.random() < 0.3:
            first = self.rng.randrange(len(old.data))
            span = (first, self.rng.randrange(first, len(old.data)))
        args = {"Range": f"bytes={span[0]}-{span[1]}"} if span else {}

        def get():
            response = self.s3.get_object(Bucket=BUCKET, Key=key, **args)
            return response["ETag"].strip('"'), response["Body"].read()
        outcome, value = self.call(f"GET {key}", get)
        self.say(f"GET {key}{' ' + str(span) if span else ''}: {outcome}{'' if outcome == 'ok' else ' ' + str(value)}")
        if outcome == "ok":
            etag, data = value
            expected = None if old is None else old.data[span[0]:span[1] + 1] if span else old.data
            if old is None or etag != old.etag or data != expected:
                self.fail(f"GET {key} {span} read {etag} ({len(data)} B), the model has {old}")
        elif outcome == "error" and value[0] == 404:
            if old is not None:
                self.fail(f"GET {key}: 404, the model has {old}")
        elif outcome == "error" and value[0] not in FAULT_STATUSES:
            self.fail(f"GET {key}: unexpected error {value}")
        return outcome

    def op_head(self):
        key = self.rng.choice(KEYS)
        seen = self.head_state(key)
        self.say(f"HEAD {key}: {seen}")
        old = self.state(key)
        if seen != "unknown" and seen != (None if old is None else (old.etag, len(old.data))):
            self.fail(f"HEAD {key} shows {seen}, the model has {old}")
        return "lost" if self.daemon.proc.poll() is not None else "ok"

    def op_list(self):
        outcome, value = self.call("LIST", lambda: self.list_objects(page=self.rng.choice([3, 7, 1000])))
        self.say(f"LIST: {outcome}")
        if outcome == "ok":
            expected = {k: (s[0].etag, len(s[0].data)) for k, s in self.objects.items() if s[0] is not None}
            if value != expected:
                self.fail(f"LIST shows {value}, the model has {expected}")
        elif outcome == "error" and value[0] not in FAULT_STATUSES:
            self.fail(f"LIST: unexpected error {value}")
        return outcome

    def list_objects(self, page=1000):
        seen, token = {}, None
        while True:
            args = {"Bucket": BUCKET, "MaxKeys": page}
            if token:
                args["ContinuationToken"] = token
            response = self.s3.list_objects_v2(**args)
            for item in response.get("Contents", []):
                seen[item["Key"]] = (item["ETag"].strip('"'), item["Size"])
            if not response.get("IsTruncated"):
                return seen
            token = response["NextContinuationToken"]

    def op_copy(self):
        present = [k for k in KEYS if self.state(k) is not None]
        if not present:
            return self.op_put()
        source = self.rng.choice(present)
        target = self.rng.choice([k for k in KEYS if k != source])
        src = self.state(source)
        outcome, value = self.mutation(
            f"COPY {source} -> {target}",
            lambda: self.s3.copy_object(Bucket=BUCKET, Key=target, CopySource={"Bucket": BUCKET, "Key": source}))
        self.settle(target, outcome, src, f"COPY to {target}")
        if outcome == "ok" and value["CopyObjectResult"]["ETag"].strip('"') != src.etag:
            self.fail(f"COPY answered ETag {value['CopyObjectResult']['ETag']}, the source has {src.etag}")
        return outcome

    def open_uploads(self):
        return [u for u, up in self.uploads.items() if up.exists == [True]]

    def op_mp_create(self):
        key = self.rng.choice(KEYS)
        outcome, value = self.mutation(f"CreateMultipartUpload {key}",
                                       lambda: self.s3.create_multipart_upload(Bucket=BUCKET, Key=key))
        if outcome == "ok":
            self.uploads[value["UploadId"]] = Upload(key)
        elif outcome == "lost":
            self.lost_creates.add(key)
        return outcome

    def op_mp_part(self):
        open_ids = self.open_uploads()
        if not open_ids:
            return self.op_mp_create()
        upload_id = self.rng.choice(open_ids)
        upload = self.uploads[upload_id]
        number = self.rng.randint(1, 3)
        data = self.rng.randbytes(5 * MIB if self.rng.random() < 0.08 else self.rng.choice(PART_SIZES))
        outcome, value = self.mutation(
            f"UploadPart {upload.key} #{number} ({len(data)} B)",
            lambda: self.s3.upload_part(Bucket=BUCKET, Key=upload.key, UploadId=upload_id, PartNumber=number,
                                        Body=data))
        new = (md5_hex(data), data)
        old = upload.parts.get(number, [None])[0]
        if outcome == "ok":
            if value["ETag"].strip('"') != new[0]:
                self.fail(f"UploadPart answered ETag {value['ETag']}, not {new[0]}")
            upload.parts[number] = [new]
        elif outcome == "lost":
            upload.parts[number] = [old, new]
        return outcome

    def op_mp_part_copy(self):
        open_ids = self.open_uploads()
        present = [k for k in KEYS if self.state(k) is not None]
        if not open_ids or not present:
            return self.op_mp_part()
        upload_id = self.rng.choice(open_ids)
        upload = self.uploads[upload_id]
        source = self.rng.choice(present)
        src = self.state(source).data
        number = self.rng.randint(1, 3)
        args = {}
        data = src
        if len(src) > 1 and self.rng.random() < 0.5:
            first = self.rng.randrange(len(src))
            last = self.rng.randrange(first, len(src))
            args["CopySourceRange"] = f"bytes={first}-{last}"
            data = src[first:last + 1]
        outcome, value = self.mutation(
            f"UploadPartCopy {upload.key} #{number} from {source} {args.get('CopySourceRange', '')}",
            lambda: self.s3.upload_part_copy(Bucket=BUCKET, Key=upload.key, UploadId=upload_id, PartNumber=number,
                                             CopySource={"Bucket": BUCKET, "Key": source}, **args))
        new = (md5_hex(data), data)
        old = upload.parts.get(number, [None])[0]
        if outcome == "ok":
            if value["CopyPartResult"]["ETag"].strip('"') != new[0]:
                self.fail(f"UploadPartCopy answered ETag {value['CopyPartResult']['ETag']}, not {new[0]}")
            upload.parts[number] = [new]
        elif outcome == "lost":
            upload.parts[number] = [old, new]
        return outcome

    def completion(self, upload):
        """The parts to complete with: every part of 5 MiB or more, then one smaller
        one after them (only the last part may be small)."""
        chosen = []
        for number in sorted(upload.parts):
            part = upload.parts[number][0]
            if part is None:
                continue
            chosen.append((number, part))
            if len(part[1]) < 5 * MIB:
                break
        return chosen

    def op_mp_complete(self):
        open_ids = self.open_uploads()
        if not open_ids:
            return self.op_mp_create()
        upload_id = self.rng.choice(open_ids)
        upload = self.uploads[upload_id]
        chosen = self.completion(upload)
        bad = not chosen or self.rng.random() < 0.1
        if bad:
            # A part the upload does not have: InvalidPart, and nothing changes.
            listed = [{"PartNumber": 9, "ETag": '"' + "0" * 32 + '"'}]
        else:
            listed = [{"PartNumber": n, "ETag": f'"{p[0]}"'} for n, p in chosen]
        outcome, value = self.mutation(
            f"CompleteMultipartUpload {upload.key} {[n for n, _ in chosen] if not bad else 'bad'}",
            lambda: self.s3.complete_multipart_upload(Bucket=BUCKET, Key=upload.key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": listed}),
            allowed=("InvalidPart",))
        if bad:
            if outcome == "ok":
                self.fail("a completion with a part that does not exist succeeded")
            if outcome == "lost":
                upload.exists = [True, False]
            return outcome
        data = b"".join(p[1] for _, p in chosen)
        etag = md5_hex(b"".join(bytes.fromhex(p[0]) for _, p in chosen)) + f"-{len(chosen)}"
        new = Obj(etag, data)
        if outcome == "ok":
            if value["ETag"].strip('"') != etag:
                self.fail(f"CompleteMultipartUpload answered ETag {value['ETag']}, not {etag}")
            upload.exists = [False]
        elif outcome == "lost":
            upload.exists = [True, False]
        self.settle(upload.key, outcome, new, f"CompleteMultipartUpload {upload.key}")
        return outcome

    def op_mp_abort(self):
        open_ids = self.open_uploads()
        if not open_ids:
            return self.op_mp_create()
        upload_id = self.rng.choice(open_ids)
        upload = self.uploads[upload_id]
        outcome, _ = self.mutation(
            f"AbortMultipartUpload {upload.key}",
            lambda: self.s3.abort_multipart_upload(Bucket=BUCKET, Key=upload.key, UploadId=upload_id))
        if outcome == "ok":
            upload.exists = [False]
        elif outcome == "lost":
            upload.exists = [True, False]
        return outcome

    OPS = [("op_put", 30), ("op_delete", 8), ("op_delete_objects", 4), ("op_get", 12), ("op_head", 4),
           ("op_list", 5), ("op_copy", 10), ("op_mp_create", 6), ("op_mp_part", 10), ("op_mp_part_copy", 3),
           ("op_mp_complete", 6),
           ("op_mp_abort", 3)]

    # -- lives and checks ----------------------------------------------------------------

    def run(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self.start()
        outcome, value = self.call("CreateBucket", lambda: self.s3.create_bucket(Bucket=BUCKET))
        if outcome != "ok":
            self.fail(f"CreateBucket: {outcome} {value}")
        self.daemon.stop()
        names, weights = zip(*self.OPS)
        while self.stats["ops"] < self.ops:
            self.stats["lives"] += 1
            life_ops = min(self.rng.randint(5, 40), self.ops - self.stats["ops"])
            plan = f"seed={self.rng.getrandbits(62)},rate={self.rng.choice(RATES)}"
            if self.rng.random() < 0.8:
                plan += f",crash_at={self.rng.randint(1, 8 * life_ops)}"
            if self.rng.random() < 0.2:
                plan += f",bg_crash_at={self.rng.randint(1, 6)}"
            self.say(f"life {self.stats['lives']}: {plan}, {life_ops} operations")
            self.start(plan)
            background_crash = "bg_crash_at" in plan
            self.lost_creates = set()
            ended = "done"
            for _ in range(life_ops):
                if self.daemon.proc.poll() is not None:
                    ended = "lost"
                    break
                op = self.rng.choices(names, weights)[0]
                self.stats["ops"] += 1
                if getattr(self, op)() == "lost":
                    ended = "lost"
                    break
                if background_crash:
                    self.settle_reclaimer()
            self.end_life(ended)
            self.check()

    def settle_reclaimer(self):
        """Waits for the reclaimer to finish what the last operation released (its
        count reaches 0, or stays put when a removal failed), so that a crash planned
        on its lane comes before the next operation, not at a moment set by timing."""
        last, same = None, 0
        deadline = time.time() + 5
        while same < 3 and time.time() < deadline:
            try:
                waiting = self.daemon.metric("bleepstore_reclaim_waiting_files")
            except OSError:
                return  # crashed on the reclaimer's lane: the next operation finds out
            if waiting == 0:
                return
            same = same + 1 if waiting == last else 0
            last = waiting
            time.sleep(0.003)

    def end_life(self, ended):
        if self.daemon.proc.poll() is None:
            code = self.daemon.stop()
        else:
            code = self.daemon.proc.wait()
        log = self.daemon.log_text()
        self.stats["faults"] += log.count("fault-injection: inject")
        if "panicked at" in log:
            self.fail("a panic")
        # Planned: a crash point, or the daemon's own abort after an injected commit
        # failure whose outcome it cannot know.
        if "fault-injection: crash at" in log or "outcome is unknown" in log:
            self.stats["crashes"] += 1
            self.stats["lost"] += ended == "lost"
        elif code != 0:
            self.fail(f"the daemon died (exit {code}) without a planned crash")

    def check(self):
        """A restart without faults, then every invariant."""
        self.start()
        self.checking = True
        try:
            self.daemon.wait_log("orphan sweep examined", 30)
            self.check_files()
            self.check_objects()
            self.check_uploads()
        finally:
            self.checking = False
            self.daemon.stop()

    def check_files(self):
        leftovers = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(self.data_dir, "tmp")) for f in files]
        if leftovers:
            self.fail(f"temp files survived recovery: {leftovers}")
        if self.daemon.metric("bleepstore_reclaim_waiting_files") != 0:
            self.fail("the reclaim table is not empty after recovery")
        db = sqlite3.connect(f"file:{os.path.join(self.data_dir, 'metadata.db')}?mode=ro", uri=True)
        try:
            referenced = {row[0] for row in db.execute(
                "SELECT data_id FROM objects WHERE data_id != '' UNION SELECT data_id FROM object_parts "
                "UNION SELECT data_id FROM multipart_parts")}
            waiting = db.execute("SELECT COUNT(*) FROM reclaim").fetchone()[0]
            # Small objects are kept in the database (sealed chunk rows), not in files.
            inline = {row[0] for row in db.execute("SELECT data_id FROM blobs")}
            unsealed = db.execute("SELECT COUNT(*) FROM blob_chunks WHERE data_id NOT IN "
                                  "(SELECT data_id FROM blobs)").fetchone()[0]
        finally:
            db.close()
        files = {f for _, _, names in os.walk(os.path.join(self.data_dir, "objects")) for f in names}
        files |= inline
        if unsealed:
            self.fail(f"{unsealed} chunk rows of interrupted uploads survived recovery")
        if waiting:
            self.fail(f"{waiting} reclaim rows after recovery")
        if files - referenced:
            self.fail(f"orphan data files survived recovery: {sorted(files - referenced)}")
        if referenced - files:
            self.fail(f"the metadata names missing data files: {sorted(referenced - files)}")

    def check_objects(self):
        for key in KEYS:
            possible = self.objects.get(key, [None])

            def get():
                response = self.s3.get_object(Bucket=BUCKET, Key=key)
                return response["ETag"].strip('"'), response["Body"].read()
            outcome, value = self.call(f"check GET {key}", get)
            if outcome == "ok":
                etag, data = value
                seen = Obj(etag, data)
                if etag != md5_hex(data) and "-" not in etag:
                    self.fail(f"{key}: ETag {etag} is not the MD5 of its {len(data)} bytes")
            elif outcome == "error" and value[0] == 404:
                seen = None
            else:
                self.fail(f"check GET {key}: {outcome} {value}")
            if seen not in possible:
                self.fail(f"{key} holds {seen}, possible: {possible}")
            self.objects[key] = [next(p for p in possible if p == seen)]
        listed = self.list_objects(page=5)
        expected = {k: (s[0].etag, len(s[0].data)) for k, s in self.objects.items() if s[0] is not None}
        if listed != expected:
            self.fail(f"the listing {listed} is not the model's {expected}")

    def check_uploads(self):
        present = {}
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
            for item in page.get("Uploads", []):
                present[item["UploadId"]] = item["Key"]
        for upload_id, key in present.items():
            if upload_id not in self.uploads:
                if key not in self.lost_creates:
                    self.fail(f"an upload nobody created: {upload_id} for {key}")
                # Created by the request that got no answer: not ours to keep.
                self.s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
        for upload_id, upload in list(self.uploads.items()):
            exists = upload_id in present
            if exists not in upload.exists:
                self.fail(f"upload {upload_id} ({upload.key}) exists={exists}, possible {upload.exists}")
            if not exists:
                del self.uploads[upload_id]
                continue
            upload.exists = [True]
            listed = {p["PartNumber"]: p["ETag"].strip('"')
                      for p in self.s3.list_parts(Bucket=BUCKET, Key=upload.key, UploadId=upload_id).get("Parts", [])}
            for number in set(listed) | set(upload.parts):
                possible = upload.parts.get(number, [None])
                match = [p for p in possible if (p[0] if p else None) == listed.get(number)]
                if not match:
                    self.fail(f"upload {upload.key} part {number} is {listed.get(number)}, possible {possible}")
                upload.parts[number] = [match[0]]
        self.lost_creates = set()


def run_seed(seed, ops, binary, root_dir, verbose=False, keep=False):
    sim = Sim(seed, ops, binary, root_dir, verbose)
    try:
        sim.run()
        return seed, sim.stats, sim.codes, None, sim.trace
    except Violation as v:
        return seed, sim.stats, sim.codes, str(v), sim.trace
    finally:
        if sim.daemon.proc and sim.daemon.proc.poll() is None:
            sim.daemon.proc.kill()
            sim.daemon.proc.wait()
        if not keep:
            shutil.rmtree(sim.data_dir, ignore_errors=True)
            try:
                os.remove(sim.daemon.log_path)
            except OSError:
                pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.environ.get("BLEEPSTORE_FAULT_BIN", FAULT_BIN))
    parser.add_argument("--build", action="store_true", help="build the fault-enabled binary first")
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (from --first-seed)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--seed", type=int, help="run this one seed")
    parser.add_argument("--ops", type=int, default=60, help="operations per seed")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once")
    parser.add_argument("--keep", action="store_true", help="keep data dirs and logs of failed seeds")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if args.build:
        build()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} missing: run with --build")
    seeds = [args.seed] if args.seed is not None else list(range(args.first_seed, args.first_seed + args.seeds))
    root_dir = tempfile.mkdtemp(prefix="bleepstore-faults-")
    started = time.time()
    totals = {"ops": 0, "lives": 0, "crashes": 0, "faults": 0, "errors": 0, "lost": 0}
    codes, failed = {}, []
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_seed, s, args.ops, args.binary, root_dir, args.verbose, args.keep) for s in seeds]
        for future in concurrent.futures.as_completed(futures):
            seed, stats, seed_codes, violation, _ = future.result()
            for name in totals:
                totals[name] += stats[name]
            for code, n in seed_codes.items():
                codes[code] = codes.get(code, 0) + n
            if violation:
                failed.append(seed)
                print(f"VIOLATION {violation}\n", flush=True)
    if not failed and not args.keep:
        shutil.rmtree(root_dir, ignore_errors=True)
    print(f"seeds={len(seeds)} ops_per_seed={args.ops} operations={totals['ops']} lives={totals['lives']} "
          f"crashes={totals['crashes']} unanswered={totals['lost']} faults_injected={totals['faults']} "
          f"error_answers={totals['errors']} violations={len(failed)} seconds={time.time() - started:.0f}")
    print("error answers by code: " + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())))
    if failed:
        print(f"failed seeds: {sorted(failed)}" + (f" (data under {root_dir})" if args.keep else ""))
        sys.exit(1)


if __name__ == "__main__":
    main()
