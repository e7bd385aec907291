"""Operating the daemon: health, readiness, metrics, the API description, config
file, JSON logs, size and connection limits, disk full, the SIGTERM drain and the
background orphan sweep, each against the running release binary."""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import BIN, ROOT, Daemon, free_port, make_client, wait_for


def get(endpoint, path):
    try:
        with urllib.request.urlopen(endpoint + path, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def metric(text, name, **labels):
    """The value of one series in a Prometheus text page (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
    for line in text.splitlines():
        found = re.match(pattern, line)
        if found:
            return float(found.group(1))
    return 0.0


def raw_request(port, data, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock)


def read_response(sock):
    """One HTTP response (head and Content-Length body) from a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    want = int(length.group(1)) if length else 0
    while len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def files_under(path):
    return sum(len(files) for _, _, files in os.walk(path))


def test_health_endpoints(daemon):
    status, headers, body = get(daemon.endpoint, "/health")
    assert status == 200 and headers["Content-Type"] == "application/json"
    health = json.loads(body)
    assert health["status"] == "ok"
    for check in ("metadata", "storage"):
        assert health["checks"][check]["status"] == "ok"
        assert 0 <= health["checks"][check]["latency_ms"] < 5000
    assert get(daemon.endpoint, "/healthz")[0] == 200
    assert get(daemon.endpoint, "/readyz")[0] == 200
    # A signed request to the same path is S3: a bucket named "health".
    s3 = daemon.client()
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket="health")
    assert info.value.response["Error"]["Code"] == "NoSuchBucket"


def test_metrics_move_with_operations(daemon, s3, bucket):
    before = get(daemon.endpoint, "/metrics")[2].decode()
    assert "# TYPE bleepstore_http_requests_total counter" in before
    puts = metric(before, "bleepstore_s3_operations_total", operation="PutObject", outcome="success")
    misses = metric(before, "bleepstore_s3_operations_total", operation="GetObject", outcome="client_error")
    received = metric(before, "bleepstore_bytes_received_total")
    heads = metric(before, "bleepstore_http_requests_total", method="HEAD", path="/{bucket}/{key}", status="200")
    s3.put_object(Bucket=bucket, Key="m", Body=b"x" * 1000)
    s3.head_object(Bucket=bucket, Key="m")
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="absent")
    for _ in range(3):
        get(daemon.endpoint, "/health")
    status, headers, body = get(daemon.endpoint, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = body.decode()
    assert metric(after, "bleepstore_s3_operations_total", operation="PutObject", outcome="success") == puts + 1
    assert metric(after, "bleepstore_s3_operations_total", operation="GetObject",
                  outcome="client_error") == misses + 1
    assert metric(after, "bleepstore_bytes_received_total") >= received + 1000
    assert metric(after, "bleepstore_http_requests_total", method="PUT", path="/{bucket}/{key}", status="200") >= 1
    # A successful HEAD counts under its real status (it used to be recorded as 0).
    assert metric(after, "bleepstore_http_requests_total", method="HEAD", path="/{bucket}/{key}",
                  status="200") == heads + 1
    assert 'status="0"' not in after
    assert metric(after, "bleepstore_objects") >= 1 and metric(after, "bleepstore_buckets") >= 1
    assert metric(after, "process_resident_memory_bytes") > 1_000_000
    assert metric(after, "process_open_fds") > 3
    assert metric(after, "process_cpu_seconds_total") > 0
    count = metric(after, "bleepstore_http_request_duration_seconds_count", method="PUT", path="/{bucket}/{key}")
    inf = metric(after, "bleepstore_http_request_duration_seconds_bucket", method="PUT",
                 path="/{bucket}/{key}", le="+Inf")
    assert count == inf >= 1
    # Scrapes and probes count themselves nowhere; keys never become labels.
    assert 'path="/metrics"' not in after and 'path="/health"' not in after
    assert '"m"' not in after and "absent" not in after


def test_health_names_a_failing_check_without_its_error_text():
    d = Daemon().start()
    try:
        # The storage check creates a file in this run's temp dir: put a file in its place.
        (session,) = os.listdir(os.path.join(d.data_dir, "tmp"))
        temp_dir = os.path.join(d.data_dir, "tmp", session)
        os.rename(temp_dir, temp_dir + ".away")
        open(temp_dir, "w").close()
        status, _, body = get(d.endpoint, "/health")
        assert status == 503, body
        health = json.loads(body)
        assert health["status"] == "error" and health["checks"]["metadata"]["status"] == "ok"
        storage = health["checks"]["storage"]
        assert storage["status"] == "error" and storage["error"] == "check failed; the server log has the cause"
        assert d.data_dir.encode() not in body and b"directory" not in body
        # The cause, with its path, is for the operator's log (written by the log thread).
        wait_for(lambda: b"health check storage failed: Not a directory" in open(d.log_path, "rb").read(),
                 "the cause in the log")
        os.remove(temp_dir)
        os.rename(temp_dir + ".away", temp_dir)
        assert get(d.endpoint, "/health")[0] == 200
    finally:
        d.stop()


def test_openapi_describes_every_operation(daemon):
    status, headers, body = get(daemon.endpoint, "/openapi.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    document = json.loads(body)
    from openapi_spec_validator import validate
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "BleepStore S3-Compatible API"
    assert document["info"]["license"]["name"] == "MIT"
    assert "sigv4" in document["components"]["securitySchemes"]
    assert {t["name"] for t in document["tags"]} >= {"Bucket", "Object", "MultipartUpload"}
    assert document["servers"][0]["url"] == daemon.endpoint
    described = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    # Every operation the router serves, from its own table.
    routes = json.loads(subprocess.check_output([BIN, "routes"]))
    names = {r["operation"] for r in routes if r["implemented"]}
    assert len(names) >= 27
    assert names <= described, names - described
    assert {"Health", "Healthz", "Readyz", "Metrics"} <= described
    page = get(daemon.endpoint, "/docs")
    assert page[0] == 200 and b"/docs/swagger-ui-bundle.js" in page[2] and b"/docs/init.js" in page[2]


def start_plain(args, data_dir, env=None):
    """Starts the binary with exactly `args`; returns (process, log path)."""
    log_path = os.path.join(data_dir, "daemon.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen([BIN, *args], stdout=log, stderr=log, env=env or os.environ.copy())
    return proc, log_path


def wait_for_line(proc, log_path, needle, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = open(log_path, errors="replace").read()
        if needle in text:
            return text
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}: {text}")
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never logged: {open(log_path).read()}")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_config_file_run(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    meta_db = tmp_path / "meta" / "store.db"
    config = tmp_path / "bleepstore.yaml"
    config.write_text(f"""
server:
  host: 127.0.0.1
  port: {port}
  region: eu-north-1
  shutdown_timeout: 5s
  max_object_size: 2KiB
auth:
  access_key: filekey
  secret_key: filesecret
metadata:
  engine: sqlite
  sqlite:
    path: {meta_db}
storage:
  backend: local
  local:
    root_dir: {data}
logging:
  level: info
  format: json
colour: blue
""")
    proc, log_path = start_plain(["--config", str(config)], str(tmp_path))
    try:
        text = wait_for_line(proc, log_path, "listening on")
        assert "unknown key `colour` ignored" in text
        assert meta_db.exists(), "metadata.sqlite.path is used"
        assert (data / "objects").is_dir(), "storage.local.root_dir is used"
        s3 = make_client(f"http://127.0.0.1:{port}", access_key="filekey", secret_key="filesecret")
        s3.create_bucket(Bucket="cfg", CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
        assert s3.get_bucket_location(Bucket="cfg")["LocationConstraint"] == "eu-north-1"
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket="cfg", Key="big", Body=b"x" * 4096)
        assert info.value.response["Error"]["Code"] == "EntityTooLarge"
        wrong = make_client(f"http://127.0.0.1:{port}")
        with pytest.raises(ClientError):
            wrong.list_buckets()
    finally:
        assert stop(proc) == 0
    # Flags win over the file, the environment over the file.
    other_port = free_port()
    env = dict(os.environ, BLEEPSTORE_REGION="ap-south-1")
    proc, log_path = start_plain(["--config", str(config), "--port", str(other_port)], str(tmp_path), env)
    try:
        wait_for_line(proc, log_path, f"127.0.0.1:{other_port}")
        s3 = make_client(f"http://127.0.0.1:{other_port}", access_key="filekey", secret_key="filesecret")
        s3.create_bucket(Bucket="cfg2", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
        assert s3.get_bucket_location(Bucket="cfg2")["LocationConstraint"] == "ap-south-1"
    finally:
        assert stop(proc) == 0
    # An invalid value stops startup with an error naming the key.
    config.write_text("server:\n  port: ninety\n")
    done = subprocess.run([BIN, "--config", str(config)], capture_output=True, timeout=20)
    assert done.returncode == 2 and b"server.port" in done.stderr


def test_example_config_is_valid(tmp_path):
    """The commented example in the repository starts the daemon as it stands."""
    example = open(os.path.join(ROOT, "scripts", "bleepstore.example.yaml")).read()
    port = free_port()
    example = example.replace("port: 9000", f"port: {port}").replace("/var/lib/bleepstore", str(tmp_path))
    config = tmp_path / "example.yaml"
    config.write_text(example)
    proc, log_path = start_plain(["--config", str(config), "--host", "127.0.0.1"], str(tmp_path))
    try:
        text = wait_for_line(proc, log_path, "listening on")
        assert "unknown key" not in text
    finally:
        assert stop(proc) == 0


def test_json_log_lines(tmp_path):
    d = Daemon(data_dir=str(tmp_path / "data"), extra_args=["--log-format", "json"]).start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="logs")
        s3.put_object(Bucket="logs", Key="secret/key/name", Body=b"hello")
        s3.get_object(Bucket="logs", Key="secret/key/name")["Body"].read()
        get(d.endpoint, "/metrics")
        get(d.endpoint, "/health")
        get(d.endpoint, "/readyz")
    finally:
        d.stop()
    lines = [line for line in open(d.log_path).read().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"timestamp", "level", "target", "message"} <= set(record)
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["timestamp"])
    access = [r for r in records if r["target"] == "access"]
    ops = [r["operation"] for r in access]
    assert ops == ["CreateBucket", "PutObject", "GetObject"], ops
    put = access[1]
    assert put["method"] == "PUT" and put["path"] == "/{bucket}/{key}" and put["status"] == 200
    assert put["bytes_in"] == 5 and put["bytes_out"] > 0 and put["duration_ms"] >= 0
    assert re.match(r"^[0-9A-F]{16}$", put["request_id"])
    assert "secret/key/name" not in json.dumps(access)
    # Durations are whole microseconds: at most three decimals, no float noise.
    assert all(re.search(r'"duration_ms":\d+(\.\d{1,3})?[,}]', line) for line in lines if '"access"' in line)
    assert any("SIGTERM received" in r["message"] for r in records)


def test_max_object_size_refused_before_the_body(tmp_path):
    d = Daemon(data_dir=str(tmp_path / "data"), extra_args=["--max-object-size", "1000"]).start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="lim")
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket="lim", Key="big", Body=b"x" * 1001)
        assert info.value.response["Error"]["Code"] == "EntityTooLarge"
        upload = s3.create_multipart_upload(Bucket="lim", Key="mp")
        with pytest.raises(ClientError) as info:
            s3.upload_part(Bucket="lim", Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"y" * 2000)
        assert info.value.response["Error"]["Code"] == "EntityTooLarge"
        # Raw: with Expect: 100-continue the refusal comes instead of the 100, before any byte
        # of the body is sent; the request is anonymous-but-refused-for-size only after auth,
        # so use a presigned URL.
        url = s3.generate_presigned_url("put_object", Params={"Bucket": "lim", "Key": "raw"})
        path = url.split(f":{d.port}", 1)[1]
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as sock:
            sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{d.port}\r\nContent-Length: 5000\r\n"
                         "Expect: 100-continue\r\n\r\n".encode())
            answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 400") and b"EntityTooLarge" in answer
        assert b"100 Continue" not in answer
        assert s3.list_objects_v2(Bucket="lim").get("KeyCount") == 0
        assert files_under(os.path.join(d.data_dir, "objects")) == 0
        assert files_under(os.path.join(d.data_dir, "tmp")) == 0
    finally:
        d.stop()


def test_connection_cap(tmp_path):
    d = Daemon(data_dir=str(tmp_path / "data"), extra_args=["--max-connections", "2"], threads=1).start()
    try:
        # Idle keep-alive connections make room for a newcomer: the oldest is closed.
        idle = []
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            idle.append(sock)
        assert raw_request(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
        assert idle[0].recv(1) == b"", "the longest-idle connection was closed"
        for sock in idle:
            sock.close()
        # Connections in the middle of a request are not idle: a newcomer is refused.
        held = []
        deadline = time.time() + 10
        while len(held) < 2:
            sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            held.append(sock)
        while True:
            refused = raw_request(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if refused.startswith(b"HTTP/1.1 503"):
                break
            assert time.time() < deadline, "never refused"
        assert b"<Code>SlowDown</Code>" in refused
        for sock in held:
            sock.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if raw_request(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("connections were not released")
    finally:
        d.stop()


def test_disk_full_is_insufficient_storage(tmp_path):
    mount_point = tempfile.mkdtemp(prefix="bleepstore-tmpfs-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mount_point], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        d = Daemon(data_dir=os.path.join(mount_point, "data")).start()
        try:
            s3 = d.client()
            s3.create_bucket(Bucket="full")
            s3.put_object(Bucket="full", Key="small", Body=b"fits")
            with pytest.raises(ClientError) as info:
                s3.put_object(Bucket="full", Key="huge", Body=os.urandom(8 * 1024 * 1024))
            assert info.value.response["Error"]["Code"] == "InsufficientStorage"
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 507
            assert files_under(os.path.join(d.data_dir, "tmp")) == 0, "the temp file is removed"
            # A plain Content-Length of 8 MiB or more is written around the page cache in
            # staged writes (storage/local.rs): the disk fills in the middle of a stage's.
            url = s3.generate_presigned_url("put_object", Params={"Bucket": "full", "Key": "direct"})
            request = urllib.request.Request(url, data=os.urandom(8 * 1024 * 1024 + 4097), method="PUT")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 507
            assert b"<Code>InsufficientStorage</Code>" in refused.value.read()
            assert files_under(os.path.join(d.data_dir, "tmp")) == 0, "the staged temp file is removed"
            # The daemon keeps serving, and the space of the failed write is free again.
            assert s3.get_object(Bucket="full", Key="small")["Body"].read() == b"fits"
            s3.put_object(Bucket="full", Key="after", Body=b"x" * 100_000)
            assert json.loads(get(d.endpoint, "/health")[2])["status"] == "ok"
        finally:
            d.stop()
    finally:
        subprocess.run(["umount", mount_point], capture_output=True)
        os.rmdir(mount_point)


def test_sigterm_drains_an_upload_in_flight(tmp_path):
    d = Daemon(data_dir=str(tmp_path / "data")).start()
    s3 = d.client()
    s3.create_bucket(Bucket="drain")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "drain", "Key": "inflight"})
    path = url.split(f":{d.port}", 1)[1]
    body = os.urandom(2 * 1024 * 1024)
    watcher = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    watcher.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(watcher).startswith(b"HTTP/1.1 200")
    upload = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    upload.sendall(f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{d.port}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    upload.sendall(body[:1024 * 1024])
    # The upload is in flight (the scrape that tells us is the other one).
    deadline = time.time() + 10
    while metric(get(d.endpoint, "/metrics")[2].decode(), "bleepstore_requests_in_flight") < 2:
        assert time.time() < deadline, "the upload never started"
    d.proc.send_signal(signal.SIGTERM)
    wait_for_line(d.proc, d.log_path, "SIGTERM received")
    # Draining: not ready, and no new connections are accepted.
    watcher.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(watcher).startswith(b"HTTP/1.1 503")
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", d.port), timeout=1).close()
            time.sleep(0.05)
        except OSError:
            break
    else:
        raise AssertionError("the listener still accepts while draining")
    assert d.proc.poll() is None, "the process waits for the upload"
    upload.sendall(body[1024 * 1024:])
    answer = read_response(upload)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert d.proc.wait(timeout=10) == 0
    d.start()
    try:
        got = d.client().get_object(Bucket="drain", Key="inflight")["Body"].read()
        assert got == body
    finally:
        d.stop()


def test_orphans_are_swept_in_the_background(tmp_path):
    d = Daemon(data_dir=str(tmp_path / "data")).start()
    s3 = d.client()
    s3.create_bucket(Bucket="sweep")
    s3.put_object(Bucket="sweep", Key="kept", Body=b"kept")
    d.stop()
    orphan = os.path.join(d.data_dir, "objects", "ab", "ab" + "0" * 30)
    with open(orphan, "wb") as f:
        f.write(b"published, never committed")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    d.start()
    try:
        text = wait_for_line(d.proc, d.log_path, "orphan sweep examined 2 data files, removed 1")
        assert "multipart uploads older than 604800 s aborted" in text
        assert not os.path.exists(orphan)
        assert d.client().get_object(Bucket="sweep", Key="kept")["Body"].read() == b"kept"
    finally:
        d.stop()


def test_a_stalled_stderr_does_not_stall_requests(tmp_path):
    """stderr is a pipe nobody reads: once its 64 KiB buffer is full, a logger that
    wrote from the runtime threads would block every request (a read timeout here).
    Ours queues the lines for its writer thread (and would drop and count them
    beyond 65536)."""
    port = free_port()
    proc = subprocess.Popen([BIN, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "d"),
                             "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if get(endpoint, "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        s3 = make_client(endpoint, read_timeout=5)
        s3.create_bucket(Bucket="quiet")
        # About 1500 access lines of 200+ bytes: several times the pipe's buffer.
        for n in range(1500):
            s3.head_bucket(Bucket="quiet")
        page = get(endpoint, "/metrics")[2].decode()
        assert metric(page, "bleepstore_s3_operations_total", operation="HeadBucket", outcome="success") == 1500
        assert "bleepstore_log_lines_dropped_total" in page
    finally:
        proc.kill()
        proc.wait()


def test_epoll_driver_serves_the_same(tmp_path):
    """The fallback for kernels without io_uring, forced: PUT (streamed and
    aws-chunked), ranged GET, multipart, copy, delete, health and the drain."""
    d = Daemon(data_dir=str(tmp_path / "data"), extra_args=["--io-driver", "epoll"]).start()
    try:
        assert "using the epoll driver" in open(d.log_path).read()
        s3 = d.client()
        s3.create_bucket(Bucket="epoll")
        body = os.urandom(3 * 1024 * 1024 + 5)
        s3.put_object(Bucket="epoll", Key="big", Body=body, ChecksumAlgorithm="CRC32C")
        assert s3.get_object(Bucket="epoll", Key="big")["Body"].read() == body
        assert s3.get_object(Bucket="epoll", Key="big", Range="bytes=100-199")["Body"].read() == body[100:200]
        upload = s3.create_multipart_upload(Bucket="epoll", Key="mp")["UploadId"]
        parts = []
        first = os.urandom(5 * 1024 * 1024)
        for number, piece in enumerate([first, b"tail"], start=1):
            etag = s3.upload_part(Bucket="epoll", Key="mp", UploadId=upload, PartNumber=number, Body=piece)["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket="epoll", Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
        assert s3.get_object(Bucket="epoll", Key="mp")["Body"].read() == first + b"tail"
        s3.copy_object(Bucket="epoll", Key="copy", CopySource={"Bucket": "epoll", "Key": "big"})
        assert s3.get_object(Bucket="epoll", Key="copy")["Body"].read() == body
        s3.delete_object(Bucket="epoll", Key="copy")
        assert json.loads(get(d.endpoint, "/health")[2])["status"] == "ok"
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(timeout=20) == 0
    finally:
        d.stop()

