"""The aws gateway backend against real S3 servers on loopback (tests/python/upstreams.py):
s3s-fs, which checks SigV4, payload hashes and Content-MD5, and moto with IAM users, so
that a wrong signature is refused. What the SDK suite cannot show: the upstream names,
an upstream that goes away in the middle of a PUT or between requests, kill -9 of the
daemon in the middle of an upload, the orphan sweep, and startup's checks. (The SDK suite
itself runs on this backend too: scripts/test.sh sets BLEEPSTORE_TEST_BACKEND=aws.)"""

import hashlib
import os
import re
import socket
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import (ACCESS_KEY, HASTY_UPSTREAM, SECRET_KEY, Daemon,
                      assert_a_hung_upstream_fails_fast, wait_for)
from upstreams import MotoServer, S3sFs

DATA_ID = re.compile(r"^[0-9a-f]{32}$")


def aws_daemon(tmp_path, upstream, bucket, prefix="gw/", upstream_section="", **extra):
    settings = {"bucket": bucket, "prefix": prefix, "endpoint_url": upstream.endpoint,
                "access_key_id": upstream.access_key, "secret_access_key": upstream.secret_key,
                "orphan_grace_seconds": 0, **extra}
    config = tmp_path / "aws.yaml"
    config.write_text("storage:\n  backend: aws\n  aws:\n"
                      + "".join(f"    {k}: {v}\n" for k, v in settings.items()) + upstream_section)
    return Daemon(data_dir=str(tmp_path / "data"), extra_args=["--config", str(config)])


def upstream_names(upstream, bucket, prefix=""):
    names = []
    for page in upstream.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names += [o["Key"] for o in page.get("Contents", [])]
    return names


def start_put(daemon, key, size, first_bytes):
    """A PUT of `size` bytes on a raw socket that sends only `first_bytes` of them."""
    headers, _ = sigv4.sign_headers(
        "PUT", key, [], {"host": f"127.0.0.1:{daemon.port}", "content-length": str(size)},
        "UNSIGNED-PAYLOAD", ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    sock = socket.create_connection(("127.0.0.1", daemon.port))
    head = f"PUT {key} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode() + first_bytes)
    return sock


def status_of(sock):
    sock.settimeout(60)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def s3s(tmp_path):
    with S3sFs() as upstream:
        upstream.create_bucket("gateway")
        yield upstream


def test_objects_go_upstream_under_data_ids_and_come_back(tmp_path, s3s):
    d = aws_daemon(tmp_path, s3s, "gateway").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="photos")
        bodies = {"a/b c+d%é.jpg": os.urandom(5000), "big": os.urandom(9 * 1024 * 1024 + 3)}
        for key, body in bodies.items():
            s3.put_object(Bucket="photos", Key=key, Body=body)
        names = upstream_names(s3s, "gateway")
        assert len(names) == 2 and all(n.startswith("gw/") and DATA_ID.match(n[3:]) for n in names), names
        for key, body in bodies.items():
            got = s3.get_object(Bucket="photos", Key=key)
            assert got["Body"].read() == body
            # The ETag is the daemon's MD5, not whatever the upstream says.
            assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        ranged = s3.get_object(Bucket="photos", Key="big", Range="bytes=4194300-4194400")["Body"].read()
        assert ranged == bodies["big"][4194300:4194401]
        s3.delete_object(Bucket="photos", Key="big")
        wait_for(lambda: len(upstream_names(s3s, "gateway")) == 1, "the deleted object to leave the upstream")
    finally:
        d.stop()


def test_an_upstream_outage_fails_writes_cleanly_and_the_daemon_recovers(tmp_path, s3s):
    d = aws_daemon(tmp_path, s3s, "gateway").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="outage")
        s3.put_object(Bucket="outage", Key="before", Body=b"x" * 1000)
        # A 20 MiB PUT streaming upstream when the upstream goes away.
        sock = start_put(d, "/outage/torn", 20 * 1024 * 1024, b"y" * (4 * 1024 * 1024))
        with s3s.down():
            try:
                sock.sendall(b"y" * (16 * 1024 * 1024))
            except OSError:
                pass  # the daemon may answer and close first
            assert status_of(sock) == 500
            sock.close()
            # While it is down, writes and reads fail with a 500 and are never acknowledged.
            with pytest.raises(ClientError) as info:
                s3.put_object(Bucket="outage", Key="during", Body=b"z" * 100)
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            with pytest.raises(ClientError) as info:
                s3.get_object(Bucket="outage", Key="before")
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            with pytest.raises(urllib.error.HTTPError) as probe:
                urllib.request.urlopen(d.endpoint + "/health")
            assert probe.value.code == 503
        # Back up: the pooled connections are stale, and the next requests still succeed.
        assert s3.get_object(Bucket="outage", Key="before")["Body"].read() == b"x" * 1000
        s3.put_object(Bucket="outage", Key="after", Body=b"w" * 100)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="outage")["Contents"]]
        assert keys == ["after", "before"]
    finally:
        d.stop()


def test_kill9_mid_upload_loses_nothing_acknowledged_and_the_sweep_takes_orphans(tmp_path, s3s):
    d = aws_daemon(tmp_path, s3s, "gateway").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="crash")
        kept = {f"k{i}": os.urandom(i * 700_001) for i in range(1, 5)}
        for key, body in kept.items():
            s3.put_object(Bucket="crash", Key=key, Body=body)
        before = set(upstream_names(s3s, "gateway"))
        sock = start_put(d, "/crash/torn", 30 * 1024 * 1024, b"t" * (3 * 1024 * 1024))
        d.kill9()
        sock.close()
        # What a crash between the upstream PUT and the row's commit leaves: an object
        # under the prefix that no row names. And a name that is not a data id, which
        # is not the daemon's to remove.
        orphan = "gw/" + "ab" * 16
        s3s.client().put_object(Bucket="gateway", Key=orphan, Body=b"orphan")
        s3s.client().put_object(Bucket="gateway", Key="gw/README", Body=b"not ours")
        d.start()
        wait_for(lambda: "removed 1 orphans" in open(d.log_path).read(), "the orphan sweep")
        assert set(upstream_names(s3s, "gateway")) == before | {"gw/README"}
        s3 = d.client()
        for key, body in kept.items():
            assert s3.get_object(Bucket="crash", Key=key)["Body"].read() == body, key
        with pytest.raises(ClientError):
            s3.head_object(Bucket="crash", Key="torn")
    finally:
        d.stop()


def test_startup_checks_the_bucket_and_the_database_keeps_its_upstream(tmp_path, s3s):
    missing = aws_daemon(tmp_path, s3s, "no-such-bucket")
    with pytest.raises(RuntimeError) as info:
        missing.start()
    assert 'bucket "no-such-bucket" does not exist' in str(info.value)
    denied = aws_daemon(tmp_path, s3s, "gateway", secret_access_key="wrong")
    with pytest.raises(RuntimeError) as info:
        denied.start()
    assert "denied" in str(info.value)
    unreachable = aws_daemon(tmp_path, s3s, "gateway", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(RuntimeError) as info:
        unreachable.start()
    assert "storage.backend aws" in str(info.value) and "127.0.0.1:9" in str(info.value)
    first = aws_daemon(tmp_path, s3s, "gateway", prefix="one/").start()
    first.stop()
    other = aws_daemon(tmp_path, s3s, "gateway", prefix="two/")
    with pytest.raises(RuntimeError) as info:
        other.start()
    assert "describes objects in the aws" in str(info.value) and "one/" in str(info.value)


def test_moto_with_iam_checks_the_gateways_signatures(tmp_path):
    with MotoServer() as moto:
        moto.create_bucket("gateway")
        with pytest.raises(ClientError):
            moto.client(secret_key="not-the-secret").list_objects_v2(Bucket="gateway")
        d = aws_daemon(tmp_path, moto, "gateway").start()
        try:
            s3 = d.client()
            s3.create_bucket(Bucket="signed")
            upload = s3.create_multipart_upload(Bucket="signed", Key="mp")["UploadId"]
            parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
            etags = [s3.upload_part(Bucket="signed", Key="mp", UploadId=upload, PartNumber=n + 1, Body=p)["ETag"]
                     for n, p in enumerate(parts)]
            s3.complete_multipart_upload(
                Bucket="signed", Key="mp", UploadId=upload,
                MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
            s3.copy_object(Bucket="signed", Key="copy", CopySource={"Bucket": "signed", "Key": "mp"})
            assert s3.get_object(Bucket="signed", Key="copy")["Body"].read() == b"".join(parts)
            # Each part and each copied part is its own upstream object.
            assert len(upstream_names(moto, "gateway")) == 4
        finally:
            d.stop()


def test_a_hung_upstream_hits_the_timeouts(tmp_path, s3s):
    d = aws_daemon(tmp_path, s3s, "gateway", upstream_section=HASTY_UPSTREAM).start()
    try:
        assert_a_hung_upstream_fails_fast(d, s3s, "hung")
    finally:
        d.stop()
