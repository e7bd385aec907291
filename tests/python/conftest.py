"""Starts the real daemon for the suite: a release binary on a free loopback
port with a fresh data directory, driven by boto3 and raw HTTP."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ElementTree
from email.utils import formatdate

import boto3
import pytest
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BLEEPSTORE_BIN", os.path.join(ROOT, "target", "release", "bleepstore"))
# The storage backend every daemon of the suite runs on (scripts/test.sh runs the
# SDK tests once more with BLEEPSTORE_TEST_BACKEND=memory, then =sqlite).
BACKEND = os.environ.get("BLEEPSTORE_TEST_BACKEND", "local")
ACCESS_KEY = "bleepstore"
SECRET_KEY = "bleepstore-secret"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One daemon process on its own port and data dir; restartable."""

    def __init__(self, data_dir=None, extra_args=(), threads=2, binary=None):
        self.binary = binary or BIN
        self.port = free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="bleepstore-test-")
        self.extra_args = list(extra_args)
        self.threads = threads
        self.env = {}
        self.proc = None
        self.log_path = os.path.join(self.data_dir + ".log")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        # Wait for this process's own "listening" line: a connect alone could reach the
        # lingering listener of a process killed a moment ago.
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        args = [self.binary, "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", self.data_dir,
                "--threads", str(self.threads), "--domain", "localhost", "--log-level", "info",
                *self.backend_args(), *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env={**os.environ, **self.env})
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}: {open(self.log_path).read()}")
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                if b"listening on" in log.read():
                    return self
            time.sleep(0.05)
        raise RuntimeError("daemon did not start listening")

    def backend_args(self):
        if BACKEND == "local":
            return []
        config = self.data_dir + ".yaml"
        with open(config, "w") as f:
            if BACKEND == "memory":
                # With a snapshot, so that a clean restart keeps its objects.
                f.write("storage:\n  backend: memory\n  memory:\n    max_size_bytes: 8GiB\n"
                        "    persistence: snapshot\n")
            elif BACKEND == "sqlite":
                f.write("storage:\n  backend: sqlite\n")
            elif BACKEND == "aws":
                endpoint, bucket, access, secret = s3_upstream()
                f.write("storage:\n  backend: aws\n  aws:\n"
                        f"    bucket: {bucket}\n    prefix: {self.upstream_prefix}\n"
                        f"    endpoint_url: {endpoint}\n    access_key_id: {access}\n"
                        f"    secret_access_key: {secret}\n    orphan_grace_seconds: 0\n")
            elif BACKEND == "azure":
                connection, container = azure_upstream()
                f.write("storage:\n  backend: azure\n  azure:\n"
                        f"    container: {container}\n    prefix: {self.upstream_prefix}\n"
                        f"    connection_string: \"{connection}\"\n    orphan_grace_seconds: 0\n")
            elif BACKEND == "gcp":
                endpoint, bucket = gcs_upstream()
                f.write("storage:\n  backend: gcp\n  gcp:\n"
                        f"    bucket: {bucket}\n    prefix: {self.upstream_prefix}\n"
                        f"    endpoint_url: {endpoint}\n    orphan_grace_seconds: 0\n")
            else:
                raise ValueError(f"BLEEPSTORE_TEST_BACKEND={BACKEND!r}: expected local, memory, sqlite, aws, azure or gcp")
        return ["--config", config]

    @property
    def upstream_prefix(self):
        """Where this daemon's objects go in a shared upstream bucket: its own prefix, so
        that tests never see each other's objects (and the same one across restarts)."""
        return f"daemons/{os.path.basename(self.data_dir.rstrip('/'))}/"

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        if getattr(self, "log", None):
            self.log.close()

    def client(self, **config):
        return make_client(self.endpoint, **config)


def metric(daemon, name):
    """The value of an unlabelled series in the daemon's /metrics."""
    text = urllib.request.urlopen(daemon.endpoint + "/metrics").read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def wait_for(condition, what, seconds=15):
    """Polls an observable condition of the daemon until it holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def data_files_settled(daemon):
    """The data files under objects/, once every file released so far is removed: the
    reclaim table's count, committed before each release was answered, reaches 0."""
    wait_for(lambda: metric(daemon, "bleepstore_reclaim_waiting_files") == 0, "released files to be removed")
    if BACKEND == "memory":
        return int(metric(daemon, "bleepstore_memory_objects"))
    if BACKEND == "sqlite":
        return sealed_blobs(daemon)
    if BACKEND == "aws":
        return len(upstream_keys(daemon.upstream_prefix))
    if BACKEND == "azure":
        return len(azure_blob_names(daemon.upstream_prefix))
    if BACKEND == "gcp":
        return len(gcs_upstream_names(daemon.upstream_prefix))
    # The local backend keeps small objects in the database and the rest in files.
    files = sum(len(files) for _, _, files in os.walk(os.path.join(daemon.data_dir, "objects")))
    return files + sealed_blobs(daemon)


def sealed_blobs(daemon):
    """Objects the sqlite backend holds in the daemon's database, read beside it."""
    db = sqlite3.connect(f"file:{os.path.join(daemon.data_dir, 'metadata.db')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
    finally:
        db.close()


def s3_upstream():
    """The S3 server the aws backend's daemons keep their bytes in, as scripts/test.sh
    names it: (endpoint, bucket, access key, secret key)."""
    value = os.environ.get("BLEEPSTORE_TEST_S3_UPSTREAM")
    if not value:
        raise RuntimeError("BLEEPSTORE_TEST_BACKEND=aws needs BLEEPSTORE_TEST_S3_UPSTREAM")
    endpoint, bucket, access, secret = value.split()
    return endpoint, bucket, access, secret


def upstream_keys(prefix):
    """Every object name under `prefix` in the aws backend's upstream bucket."""
    endpoint, bucket, access, secret = s3_upstream()
    upstream = make_client(endpoint, access_key=access, secret_key=secret)
    keys = []
    for page in upstream.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


# The well-known account of the Azure storage emulators (Azurite), from their docs.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azure_upstream():
    """The Azure Blob container the azure backend's daemons keep their bytes in, as
    BLEEPSTORE_TEST_AZURE_UPSTREAM names it ("connection-string-or-endpoint container";
    an endpoint alone, such as Azurite's http://127.0.0.1:10000/devstoreaccount1, stands
    for the emulator's account): (connection string, container)."""
    value = os.environ.get("BLEEPSTORE_TEST_AZURE_UPSTREAM")
    if not value:
        raise RuntimeError("BLEEPSTORE_TEST_BACKEND=azure needs BLEEPSTORE_TEST_AZURE_UPSTREAM")
    target, container = value.split()
    if "=" not in target:
        target = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                  f"AccountKey={AZURITE_KEY};BlobEndpoint={target.rstrip('/')}")
    return target, container


def azure_blob_names(prefix):
    """Every blob name under `prefix` in the azure backend's upstream container, listed
    with a Shared Key signed List Blobs."""
    connection, container = azure_upstream()
    settings = dict(part.split("=", 1) for part in connection.split(";") if part)
    account, key = settings["AccountName"], base64.b64decode(settings["AccountKey"])
    endpoint = urllib.parse.urlsplit(settings.get("BlobEndpoint")
                                     or f"https://{account}.blob.core.windows.net")
    path = f"{endpoint.path.rstrip('/')}/{container}"
    names, marker = [], ""
    while True:
        query = {"comp": "list", "restype": "container", "prefix": prefix}
        if marker:
            query["marker"] = marker
        date = formatdate(usegmt=True)
        canonical = "".join(f"\n{k}:{v}" for k, v in sorted(query.items()))
        to_sign = ("GET\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:2021-08-06\n"
                   f"/{account}{path}{canonical}")
        signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
        connection_class = (http.client.HTTPSConnection if endpoint.scheme == "https"
                            else http.client.HTTPConnection)
        upstream = connection_class(endpoint.hostname, endpoint.port)
        upstream.request("GET", path + "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote),
                         headers={"x-ms-date": date, "x-ms-version": "2021-08-06",
                                  "Authorization": f"SharedKey {account}:{signature}"})
        answer = upstream.getresponse()
        body = answer.read().decode()
        upstream.close()
        if answer.status != 200:
            raise RuntimeError(f"List Blobs answered {answer.status}: {body[:300]}")
        root = ElementTree.fromstring(body)
        names += [blob.findtext("Name") for blob in root.iter("Blob")]
        marker = root.findtext("NextMarker") or ""
        if not marker:
            return names


def gcs_upstream():
    """The GCS server (fake-gcs-server) the gcp backend's daemons keep their bytes in,
    as BLEEPSTORE_TEST_GCS_UPSTREAM names it: (endpoint, bucket). It takes anonymous
    requests, so the daemons get no credentials file."""
    value = os.environ.get("BLEEPSTORE_TEST_GCS_UPSTREAM")
    if not value:
        raise RuntimeError("BLEEPSTORE_TEST_BACKEND=gcp needs BLEEPSTORE_TEST_GCS_UPSTREAM")
    endpoint, bucket = value.split()
    return endpoint, bucket


def gcs_upstream_names(prefix):
    """Every object name under `prefix` in the gcp backend's upstream bucket, through
    the JSON API's listing, page by page."""
    endpoint, bucket = gcs_upstream()
    names, token = [], None
    while True:
        query = {"prefix": prefix}
        if token:
            query["pageToken"] = token
        url = (f"{endpoint.rstrip('/')}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?"
               + urllib.parse.urlencode(query))
        page = json.loads(urllib.request.urlopen(url).read())
        names += [item["name"] for item in page.get("items", [])]
        token = page.get("nextPageToken")
        if not token:
            return names


# A gateway's client that gives up on a silent upstream after a second, at once.
HASTY_UPSTREAM = ("  upstream:\n    first_byte_timeout_seconds: 1\n    stall_timeout_seconds: 1\n"
                  "    max_attempts: 1\n")


def assert_a_hung_upstream_fails_fast(daemon, upstream, bucket):
    """With the upstream frozen (SIGSTOP: connections accepted, never answered), a GET
    and a PUT through the gateway get a 500 once its timeout runs out, rather than
    hanging (the client here waits 30 s for an answer), and /health says 503; once it
    resumes, both work again."""
    from botocore.exceptions import ClientError
    s3 = daemon.client(read_timeout=30)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="before", Body=b"b" * 3000)
    with upstream.paused():
        for call in (lambda: s3.get_object(Bucket=bucket, Key="before")["Body"].read(),
                     lambda: s3.put_object(Bucket=bucket, Key="during", Body=b"d" * 100)):
            try:
                call()
                raise AssertionError("a request to a hung upstream succeeded")
            except ClientError as error:
                assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500, error.response
        try:
            urllib.request.urlopen(daemon.endpoint + "/health", timeout=30)
            raise AssertionError("/health was 200 with the upstream hung")
        except urllib.error.HTTPError as error:
            assert error.code == 503
    assert s3.get_object(Bucket=bucket, Key="before")["Body"].read() == b"b" * 3000
    s3.put_object(Bucket=bucket, Key="after", Body=b"a")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["after", "before"]


def make_client(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, **config):
    config.setdefault("signature_version", "s3v4")
    cfg = Config(retries={"max_attempts": 0}, **config)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name=REGION, config=cfg)


@pytest.fixture(scope="session")
def daemon():
    d = Daemon().start()
    yield d
    d.stop()
    shutil.rmtree(d.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def s3(daemon):
    return daemon.client()


@pytest.fixture
def bucket(s3):
    name = "t-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name)
    yield name
    # Empty and remove, so later tests see a clean store.
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)
