"""Read-after-write on every core. Each core keeps the rows and small objects it
read (meta::row_cache, storage::byte_cache), so every way of changing a key or a
bucket must be seen at once by every core, including one that has just served the
old state from its cache. Keep-alive connections are spread until both cores of the
daemon answer (the `x-amz-id-2` header names the core)."""

import hashlib
import http.client
import os

import pytest
from conftest import make_client


def core_of(response):
    return response["ResponseMetadata"]["HTTPHeaders"]["x-amz-id-2"]


@pytest.fixture
def clients(daemon, bucket):
    """Clients of one keep-alive connection each, covering both cores."""
    found, by_core = [], {}
    for _ in range(64):
        client = make_client(daemon.endpoint, max_pool_connections=1)
        core = core_of(client.head_bucket(Bucket=bucket))
        by_core.setdefault(core, 0)
        if by_core[core] < 3:
            by_core[core] += 1
            found.append(client)
        if len(by_core) == 2 and min(by_core.values()) == 3:
            return found
    pytest.fail(f"connections reached only {sorted(by_core)}")


class Anonymous:
    """Unsigned keep-alive connections, covering both cores."""

    def __init__(self, port, path):
        self.conns, cores = [], set()
        for _ in range(64):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("HEAD", path)
            response = conn.getresponse()
            response.read()
            core = response.getheader("x-amz-id-2")
            if core not in cores or len(self.conns) < 4:
                cores.add(core)
                self.conns.append(conn)
            else:
                conn.close()
            if len(cores) == 2 and len(self.conns) >= 4:
                return
        pytest.fail("anonymous connections reached only one core")

    def statuses(self, method, path):
        seen = set()
        for conn in self.conns:
            conn.request(method, path)
            response = conn.getresponse()
            response.read()
            seen.add(response.status)
        return seen

    def close(self):
        for conn in self.conns:
            conn.close()


def etag_of(body):
    return '"' + hashlib.md5(body).hexdigest() + '"'


def assert_every_core_reads(clients, bucket, key, body):
    for client in clients:
        got = client.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
        assert got["ETag"] == etag_of(body)
        assert client.head_object(Bucket=bucket, Key=key)["ETag"] == etag_of(body)


def assert_every_core_misses(clients, bucket, key):
    for client in clients:
        with pytest.raises(client.exceptions.ClientError) as missing:
            client.head_object(Bucket=bucket, Key=key)
        assert missing.value.response["Error"]["Code"] == "404"
        with pytest.raises(client.exceptions.NoSuchKey):
            client.get_object(Bucket=bucket, Key=key)


def test_overwrites_are_read_at_once_on_every_core(clients, bucket):
    assert_every_core_misses(clients, bucket, "k")
    for i in range(24):
        body = os.urandom(64 + i * 97)
        clients[i % len(clients)].put_object(Bucket=bucket, Key="k", Body=body)
        assert_every_core_reads(clients, bucket, "k", body)


def test_deletes_are_seen_at_once_on_every_core(clients, bucket):
    for i in range(6):
        body = os.urandom(100 + i)
        writer = clients[i % len(clients)]
        writer.put_object(Bucket=bucket, Key="d", Body=body)
        assert_every_core_reads(clients, bucket, "d", body)
        if i % 2:
            writer.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d"}]})
        else:
            writer.delete_object(Bucket=bucket, Key="d")
        assert_every_core_misses(clients, bucket, "d")


def test_copies_and_completed_uploads_are_read_at_once_on_every_core(clients, bucket):
    source = os.urandom(3000)
    clients[0].put_object(Bucket=bucket, Key="src", Body=source)
    clients[0].put_object(Bucket=bucket, Key="t", Body=b"old")
    assert_every_core_reads(clients, bucket, "t", b"old")
    clients[1].copy_object(Bucket=bucket, Key="t", CopySource={"Bucket": bucket, "Key": "src"})
    assert_every_core_reads(clients, bucket, "t", source)
    upload = clients[2].create_multipart_upload(Bucket=bucket, Key="t")["UploadId"]
    part = os.urandom(1000)
    etag = clients[2].upload_part(Bucket=bucket, Key="t", UploadId=upload, PartNumber=1, Body=part)["ETag"]
    clients[2].complete_multipart_upload(Bucket=bucket, Key="t", UploadId=upload,
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    for client in clients:
        got = client.get_object(Bucket=bucket, Key="t")
        assert got["Body"].read() == part
        assert got["ETag"].endswith('-1"')


def test_acl_changes_hold_at_once_on_every_core(daemon, clients, bucket):
    clients[0].put_object(Bucket=bucket, Key="acl", Body=b"secret")
    anonymous = Anonymous(daemon.port, f"/{bucket}/acl")
    try:
        for i in range(4):
            clients[i % len(clients)].put_object_acl(Bucket=bucket, Key="acl", ACL="public-read")
            assert anonymous.statuses("GET", f"/{bucket}/acl") == {200}
            clients[(i + 1) % len(clients)].put_object_acl(Bucket=bucket, Key="acl", ACL="private")
            assert anonymous.statuses("GET", f"/{bucket}/acl") == {403}
            # The bucket row: listing follows the bucket's ACL.
            clients[i % len(clients)].put_bucket_acl(Bucket=bucket, ACL="public-read")
            assert anonymous.statuses("GET", f"/{bucket}") == {200}
            clients[(i + 1) % len(clients)].put_bucket_acl(Bucket=bucket, ACL="private")
            assert anonymous.statuses("GET", f"/{bucket}") == {403}
    finally:
        anonymous.close()


def test_a_bucket_deleted_and_made_again_is_seen_at_once_on_every_core(daemon, clients):
    name = "raw-" + os.urandom(6).hex()
    clients[0].create_bucket(Bucket=name)
    assert_every_core_misses(clients, name, "x")
    clients[1].delete_bucket(Bucket=name)
    for client in clients:
        with pytest.raises(client.exceptions.NoSuchBucket):
            client.get_object(Bucket=name, Key="x")
    other = make_client(daemon.endpoint)
    other.create_bucket(Bucket=name)
    other.put_object(Bucket=name, Key="x", Body=b"again")
    assert_every_core_reads(clients, name, "x", b"again")
    other.delete_object(Bucket=name, Key="x")
    other.delete_bucket(Bucket=name)
