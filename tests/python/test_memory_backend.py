"""The memory backend (storage.backend: memory): its byte budget, no persistence,
and snapshots: what a clean stop keeps, what kill -9 loses, and that the metadata
never lists an object whose bytes are gone. (The SDK suite also runs on it:
scripts/test.sh sets BLEEPSTORE_TEST_BACKEND=memory for a second pass.)"""

import os

import pytest
from botocore.exceptions import ClientError

from conftest import Daemon, metric, wait_for


def memory_daemon(tmp_path, **memory):
    config = tmp_path / "memory.yaml"
    lines = ["storage:", "  backend: memory", "  memory:"]
    lines += [f"    {key}: {value}" for key, value in memory.items()]
    config.write_text("\n".join(lines) + "\n")
    return Daemon(data_dir=str(tmp_path / "data"), extra_args=["--config", str(config)])


def keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_the_byte_budget_is_enforced_and_freed(tmp_path):
    d = memory_daemon(tmp_path, max_size_bytes="1MiB").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="budget")
        s3.put_object(Bucket="budget", Key="first", Body=os.urandom(600 * 1024))
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket="budget", Key="second", Body=os.urandom(600 * 1024))
        assert info.value.response["Error"]["Code"] == "InsufficientStorage"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 507
        assert keys(s3, "budget") == ["first"]
        assert metric(d, "bleepstore_memory_max_bytes") == 1024 * 1024
        assert metric(d, "bleepstore_memory_bytes") == 600 * 1024
        s3.delete_object(Bucket="budget", Key="first")
        wait_for(lambda: metric(d, "bleepstore_memory_bytes") == 0, "the deleted object's bytes to be freed")
        s3.put_object(Bucket="budget", Key="second", Body=os.urandom(600 * 1024))
        assert metric(d, "bleepstore_memory_objects") == 1
    finally:
        d.stop()


def test_without_persistence_a_restart_starts_empty(tmp_path):
    d = memory_daemon(tmp_path, persistence="none").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="volatile")
        s3.put_object(Bucket="volatile", Key="gone", Body=b"only in memory")
    finally:
        d.stop()
    d.start()
    try:
        s3 = d.client()
        assert keys(s3, "volatile") == []
        with pytest.raises(ClientError) as info:
            s3.get_object(Bucket="volatile", Key="gone")
        assert info.value.response["Error"]["Code"] == "NoSuchKey"
        assert "1 objects and 0 upload parts whose bytes the memory backend no longer holds were forgotten" \
            in open(d.log_path).read()
    finally:
        d.stop()


def test_a_snapshot_keeps_what_a_clean_stop_saw_and_kill9_loses_only_later_bytes(tmp_path):
    d = memory_daemon(tmp_path, persistence="snapshot", snapshot_interval_seconds=3600).start()
    kept = {f"kept-{i}": os.urandom(i * 70_001) for i in range(4)}
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="snapshots")
        for key, body in kept.items():
            s3.put_object(Bucket="snapshots", Key=key, Body=body)
        upload = s3.create_multipart_upload(Bucket="snapshots", Key="multi")["UploadId"]
        parts = []
        for number in (1, 2):
            body = bytes([number]) * (5 * 1024 * 1024)
            etag = s3.upload_part(Bucket="snapshots", Key="multi", UploadId=upload, PartNumber=number, Body=body)["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket="snapshots", Key="multi", UploadId=upload, MultipartUpload={"Parts": parts})
    finally:
        d.stop()  # the snapshot at shutdown
    assert os.path.getsize(os.path.join(d.data_dir, "memory.snapshot")) > 10 * 1024 * 1024
    d.start()
    try:
        s3 = d.client()
        for key, body in kept.items():
            assert s3.get_object(Bucket="snapshots", Key=key)["Body"].read() == body
        assert len(s3.get_object(Bucket="snapshots", Key="multi")["Body"].read()) == 10 * 1024 * 1024
        s3.put_object(Bucket="snapshots", Key="after-the-snapshot", Body=b"lost by a crash")
        s3.delete_object(Bucket="snapshots", Key="kept-0")
        d.kill9()
    finally:
        d.stop()
    d.start()
    try:
        s3 = d.client()
        # The metadata is durable: the delete stands, and the write whose bytes the
        # crash lost is forgotten rather than listed.
        survivors = [key for key in kept if key != "kept-0"]
        assert sorted(keys(s3, "snapshots")) == sorted([*survivors, "multi"])
        for key in survivors:
            assert s3.get_object(Bucket="snapshots", Key=key)["Body"].read() == kept[key]
        # The deleted object's bytes, back from the snapshot, are an orphan the sweep
        # removes: three objects and two parts remain.
        wait_for(lambda: metric(d, "bleepstore_memory_objects") == 5, "the orphan sweep")
        assert "1 objects and 0 upload parts whose bytes the memory backend no longer holds" \
            in open(d.log_path).read()
    finally:
        d.stop()


def test_a_damaged_snapshot_stops_startup(tmp_path):
    d = memory_daemon(tmp_path, persistence="snapshot").start()
    try:
        d.client().create_bucket(Bucket="damaged")
        d.client().put_object(Bucket="damaged", Key="k", Body=b"x" * 1000)
    finally:
        d.stop()
    path = os.path.join(d.data_dir, "memory.snapshot")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(data)
    with pytest.raises(RuntimeError) as info:
        d.start()
    assert "the snapshot is damaged" in str(info.value)


def test_a_database_is_never_served_against_another_backend(tmp_path):
    local = Daemon(data_dir=str(tmp_path / "data")).start()
    try:
        local.client().create_bucket(Bucket="mine")
        local.client().put_object(Bucket="mine", Key="k", Body=b"on disk")
    finally:
        local.stop()
    # On the memory backend this database's rows would all be "missing" and forgotten.
    memory = memory_daemon(tmp_path, persistence="none")
    with pytest.raises(RuntimeError) as info:
        memory.start()
    assert "describes objects in the local storage backend, and this configuration uses memory" \
        in str(info.value)
    local.start()
    try:
        assert local.client().get_object(Bucket="mine", Key="k")["Body"].read() == b"on disk"
    finally:
        local.stop()
    # And the other way round: a database made on the memory backend stays with it.
    (tmp_path / "fresh").mkdir()
    fresh = memory_daemon(tmp_path / "fresh", persistence="none").start()
    fresh.stop()
    with pytest.raises(RuntimeError) as info:
        Daemon(data_dir=fresh.data_dir).start()
    assert "describes objects in the memory storage backend" in str(info.value)
