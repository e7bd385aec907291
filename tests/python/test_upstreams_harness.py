"""Checks the harness of real upstream servers in upstreams.py: each server starts
on loopback, refuses wrong credentials, stores and returns an object, behaves
across a restart as its class says, and stops on SIGTERM. A server that is not
installed fails its tests, unless BLEEPSTORE_UPSTREAMS_OPTIONAL=1 turns that
into a skip (scripts/install_upstreams.sh installs them all)."""

import base64
import hashlib
import json
import os
import socket
import time

import pytest
from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, ReadTimeoutError

import upstreams
from upstreams import Azurite, FakeGcs, MotoServer, S3sFs

OPTIONAL = os.environ.get("BLEEPSTORE_UPSTREAMS_OPTIONAL") == "1"
# Generous for a loaded two-core CI machine; the report prints the real times.
STARTUP_LIMIT = 10


@pytest.fixture
def launch(request):
    """Starts servers for one test and closes them after it; their directories
    and logs stay behind when the test failed."""
    started = []
    failed_before = request.session.testsfailed

    def start(cls, before_start=None, **kw):
        server = cls(**kw)
        started.append(server)
        if before_start:
            before_start(server)
        try:
            return server.start()
        except upstreams.NotInstalled as e:
            if OPTIONAL:
                pytest.skip(f"{cls.__name__}: {e}")
            raise

    yield start
    failed = request.session.testsfailed > failed_before
    for server in started:
        server.keep = server.keep or failed
        server.close()


def refused(port):
    """Whether a TCP connect to the loopback port is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def status_of(error):
    return error.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_moto_enforces_sigv4_with_the_iam_key(launch):
    moto = launch(MotoServer)
    assert moto.access_key and moto.secret_key
    moto.create_bucket("gateway")
    s3 = moto.client()
    s3.put_object(Bucket="gateway", Key="obj/1", Body=b"moto bytes")
    assert s3.get_object(Bucket="gateway", Key="obj/1")["Body"].read() == b"moto bytes"
    with pytest.raises(ClientError) as wrong_secret:
        moto.client(secret_key="not-the-secret").get_object(Bucket="gateway", Key="obj/1")
    assert wrong_secret.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as unknown_key:
        moto.client(access_key="AKIAUNKNOWNKEY000000").list_buckets()
    assert status_of(unknown_key) == 403


def test_moto_restart_gives_back_the_key_and_buckets_but_no_objects(launch):
    moto = launch(MotoServer)
    moto.create_bucket("gateway")
    moto.client().put_object(Bucket="gateway", Key="lost", Body=b"x")
    key = (moto.access_key, moto.secret_key)
    moto.restart()
    assert (moto.access_key, moto.secret_key) == key
    s3 = moto.client()
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["gateway"]
    assert s3.list_objects_v2(Bucket="gateway").get("KeyCount") == 0
    with pytest.raises(ClientError):
        moto.client(secret_key="not-the-secret").list_buckets()


def test_s3s_fs_checks_sigv4_and_keeps_buckets_as_directories(launch):
    fs = launch(S3sFs)
    fs.create_bucket("gateway")
    s3 = fs.client()
    s3.put_object(Bucket="gateway", Key="dir/obj", Body=b"s3s bytes")
    assert s3.get_object(Bucket="gateway", Key="dir/obj")["Body"].read() == b"s3s bytes"
    with open(os.path.join(fs.data_dir, "gateway", "dir", "obj"), "rb") as f:
        assert f.read() == b"s3s bytes"
    with pytest.raises(ClientError) as wrong_secret:
        fs.client(secret_key="not-the-secret").get_object(Bucket="gateway", Key="dir/obj")
    assert wrong_secret.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert status_of(wrong_secret) == 403


def test_s3s_fs_outage_hang_and_restart_keep_the_data(launch):
    fs = launch(S3sFs)
    fs.create_bucket("gateway")
    fs.client().put_object(Bucket="gateway", Key="kept", Body=b"still here")
    with fs.down():
        assert refused(fs.port)
        with pytest.raises(BotoConnectionError):
            fs.client().head_object(Bucket="gateway", Key="kept")
    assert fs.client().get_object(Bucket="gateway", Key="kept")["Body"].read() == b"still here"
    with fs.paused():
        with pytest.raises(ReadTimeoutError):
            fs.client(connect_timeout=1, read_timeout=0.5).head_object(Bucket="gateway", Key="kept")
    fs.restart()
    assert fs.client().get_object(Bucket="gateway", Key="kept")["Body"].read() == b"still here"


def test_azurite_checks_shared_key_and_stores_blobs(launch):
    azure = launch(Azurite)
    azure.create_container("gateway")
    put = azure.put_blob("gateway", "dir/blob é", b"azure bytes")
    assert put.status == 201, put.body
    got = azure.get_blob("gateway", "dir/blob é")
    assert (got.status, got.body) == (200, b"azure bytes")
    assert got.headers["content-md5"] == base64.b64encode(hashlib.md5(b"azure bytes").digest()).decode()
    wrong = azure.get_blob("gateway", "dir/blob é", key=base64.b64encode(b"wrong key" * 8).decode())
    assert wrong.status == 403 and b"AuthorizationFailure" in wrong.body
    assert azure.put_blob("gateway", "other", b"x", key=base64.b64encode(b"k").decode()).status == 403
    assert f"AccountName={Azurite.ACCOUNT};" in azure.connection_string
    assert f"BlobEndpoint=http://127.0.0.1:{azure.port}/{Azurite.ACCOUNT};" in azure.connection_string


def test_azurite_restart_in_memory_and_on_disk(launch):
    memory = launch(Azurite)
    memory.create_container("gateway")
    assert memory.put_blob("gateway", "gone", b"x").status == 201
    memory.restart()
    assert memory.request("GET", "gateway", [("restype", "container")]).status == 200
    assert memory.get_blob("gateway", "gone").status == 404
    disk = launch(Azurite, in_memory=False)
    disk.create_container("gateway")
    assert disk.put_blob("gateway", "kept", b"on disk").status == 201
    disk.restart()
    assert disk.get_blob("gateway", "kept").body == b"on disk"


def test_fake_gcs_stores_objects_through_the_json_api(launch):
    # Before start, a bucket is a directory of the seed data that the server loads.
    gcs = launch(FakeGcs, before_start=lambda server: server.create_bucket("seeded"))
    gcs.create_bucket("gateway")
    listed = json.loads(gcs.json_request("GET", "/storage/v1/b").body)
    assert sorted(b["name"] for b in listed["items"]) == ["gateway", "seeded"]
    meta = gcs.upload("gateway", "dir/obj é", b"gcs bytes")
    assert meta["size"] == "9" and meta["name"] == "dir/obj é"
    got = gcs.download("gateway", "dir/obj é")
    assert (got.status, got.body) == (200, b"gcs bytes")
    assert gcs.download("gateway", "missing").status == 404
    gcs.restart()  # memory backend: the buckets come back, empty
    assert gcs.download("gateway", "dir/obj é").status == 404
    assert gcs.upload("gateway", "again", b"1")["name"] == "again"


def test_fake_gcs_filesystem_backend_keeps_objects(launch):
    gcs = launch(FakeGcs, backend="filesystem")
    gcs.create_bucket("gateway")
    gcs.upload("gateway", "kept", b"on disk")
    gcs.restart()
    assert gcs.download("gateway", "kept").body == b"on disk"


@pytest.mark.parametrize("cls", [MotoServer, S3sFs, Azurite, FakeGcs], ids=lambda c: c.name)
def test_each_server_starts_quickly_and_stops_on_sigterm(launch, cls):
    began = time.monotonic()
    server = launch(cls)
    print(f"{cls.name}: answered after {server.startup_seconds:.2f}s, ready after {time.monotonic() - began:.2f}s")
    assert server.startup_seconds < STARTUP_LIMIT
    server.stop()
    assert not server.killed, server.log_text()
    assert refused(server.port)
    assert server.stop() == server.proc.returncode  # a second stop does nothing
    server.start()
    assert server.answers()


def test_a_missing_program_is_reported_as_not_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(upstreams, "NODE_MODULES", str(tmp_path))
    server = Azurite()
    try:
        with pytest.raises(upstreams.NotInstalled, match="install_upstreams"):
            server.start()
        assert server.proc is None
    finally:
        server.close()
