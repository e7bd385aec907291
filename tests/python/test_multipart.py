"""Multipart uploads through boto3 and the aws CLI, with S3's rules."""

import hashlib
import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import data_files_settled as data_files

MIB = 1024 * 1024


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response


def upload_parts(s3, bucket, key, sizes):
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="video/mp4", Metadata={"m": "v"})
    upload_id = upload["UploadId"]
    parts, bodies = [], []
    for number, size in enumerate(sizes, start=1):
        body = os.urandom(size)
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
        bodies.append(body)
    return upload_id, parts, bodies


def test_complete_and_read_back(daemon, s3, bucket):
    upload_id, parts, bodies = upload_parts(s3, bucket, "mp", [5 * MIB, 5 * MIB, MIB + 7])
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in listed["Parts"]] == [5 * MIB, 5 * MIB, MIB + 7]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp", upload_id)]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": parts})
    expected = hashlib.md5(b"".join(hashlib.md5(b).digest() for b in bodies)).hexdigest() + "-3"
    assert done["ETag"] == f'"{expected}"'
    whole = b"".join(bodies)
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == whole
    assert got["ContentType"] == "video/mp4" and got["Metadata"] == {"m": "v"}
    assert got["ETag"] == f'"{expected}"'
    head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert head["PartsCount"] == 3 and head["ContentLength"] == 5 * MIB
    second = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert second["Body"].read() == bodies[1]
    assert second["ContentRange"] == f"bytes {5 * MIB}-{10 * MIB - 1}/{len(whole)}"
    across = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={5 * MIB - 10}-{10 * MIB + 10}")["Body"].read()
    assert across == whole[5 * MIB - 10:10 * MIB + 11]
    assert error_of(s3.get_object, Bucket=bucket, Key="mp", PartNumber=4)["ResponseMetadata"]["HTTPStatusCode"] == 416
    # Completing again answers the same object; the upload is gone from listings.
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert again["ETag"] == done["ETag"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # Overwriting the object frees its part files.
    before = data_files(daemon)
    s3.put_object(Bucket=bucket, Key="mp", Body=b"small now")
    assert data_files(daemon) == before - 3 + 1
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"small now"


def test_completion_rules(s3, bucket):
    upload_id, parts, _ = upload_parts(s3, bucket, "rules", [MIB, MIB])
    err = error_of(s3.complete_multipart_upload, Bucket=bucket, Key="rules", UploadId=upload_id,
                   MultipartUpload={"Parts": parts})
    assert err["Error"]["Code"] == "EntityTooSmall"
    err = error_of(s3.complete_multipart_upload, Bucket=bucket, Key="rules", UploadId=upload_id,
                   MultipartUpload={"Parts": list(reversed(parts))})
    assert err["Error"]["Code"] == "InvalidPartOrder"
    bad = [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]
    err = error_of(s3.complete_multipart_upload, Bucket=bucket, Key="rules", UploadId=upload_id,
                   MultipartUpload={"Parts": bad})
    assert err["Error"]["Code"] == "InvalidPart"
    err = error_of(s3.complete_multipart_upload, Bucket=bucket, Key="rules", UploadId=upload_id,
                   MultipartUpload={"Parts": [{"PartNumber": 9, "ETag": parts[0]["ETag"]}]})
    assert err["Error"]["Code"] == "InvalidPart"
    # A single small part is a valid object; re-uploading a part number replaces it.
    replacement = s3.upload_part(Bucket=bucket, Key="rules", UploadId=upload_id, PartNumber=1, Body=b"new")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="rules", UploadId=upload_id,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": replacement}]})
    assert s3.get_object(Bucket=bucket, Key="rules")["Body"].read() == b"new"


def test_abort_and_unknown_uploads(daemon, s3, bucket):
    before = data_files(daemon)
    upload_id, _, _ = upload_parts(s3, bucket, "ab", [MIB])
    err = error_of(s3.delete_bucket, Bucket=bucket)
    assert err["Error"]["Code"] == "BucketNotEmpty"
    assert s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=upload_id)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert data_files(daemon) == before
    for call in (
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=upload_id),
        lambda: s3.upload_part(Bucket=bucket, Key="ab", UploadId="nope", PartNumber=1, Body=b"x"),
        lambda: s3.list_parts(Bucket=bucket, Key="ab", UploadId="nope"),
        lambda: s3.complete_multipart_upload(Bucket=bucket, Key="ab", UploadId="nope",
                                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}),
    ):
        err = error_of(call)
        assert err["Error"]["Code"] == "NoSuchUpload"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="pn")["UploadId"]
    for number in (0, 10001):
        err = error_of(s3.upload_part, Bucket=bucket, Key="pn", UploadId=upload_id, PartNumber=number, Body=b"x")
        assert err["Error"]["Code"] == "InvalidArgument"
    s3.abort_multipart_upload(Bucket=bucket, Key="pn", UploadId=upload_id)


def test_list_parts_and_uploads_paging(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="pages")["UploadId"]
    for number in range(1, 6):
        s3.upload_part(Bucket=bucket, Key="pages", UploadId=upload_id, PartNumber=number, Body=b"p")
    first = s3.list_parts(Bucket=bucket, Key="pages", UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2] and first["IsTruncated"]
    rest = s3.list_parts(Bucket=bucket, Key="pages", UploadId=upload_id,
                         PartNumberMarker=first["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in rest["Parts"]] == [3, 4, 5] and not rest["IsTruncated"]
    others = [s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"] for k in ("dir/a", "dir/b", "z")]
    page = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir/"]
    assert [u["Key"] for u in page["Uploads"]] == ["pages", "z"]
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert page["IsTruncated"] and [u["Key"] for u in page["Uploads"]] == ["dir/a", "dir/b"]
    tail = s3.list_multipart_uploads(Bucket=bucket, KeyMarker=page["NextKeyMarker"])
    assert [u["Key"] for u in tail["Uploads"]] == ["pages", "z"]
    for key, uid in zip(("dir/a", "dir/b", "z", "pages"), others + [upload_id]):
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


def test_cli_multipart_copy(daemon, tmp_path):
    from test_cli import aws
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * MIB + 3))
    assert aws(daemon, "s3", "mb", "s3://cli-multipart").returncode == 0
    done = aws(daemon, "s3", "cp", str(source), "s3://cli-multipart/big.bin")
    assert done.returncode == 0, done.stderr
    back = tmp_path / "back.bin"
    assert aws(daemon, "s3", "cp", "s3://cli-multipart/big.bin", str(back)).returncode == 0
    assert back.read_bytes() == source.read_bytes()
    assert aws(daemon, "s3", "rm", "s3://cli-multipart/big.bin").returncode == 0
    assert aws(daemon, "s3", "rb", "s3://cli-multipart").returncode == 0


def test_abandoned_uploads_are_reaped_at_startup_and_while_serving(tmp_path):
    """Uploads past --multipart-ttl are aborted and their part files deleted: at
    startup (before the daemon listens) and by the periodic sweep; younger ones stay."""
    from conftest import Daemon

    d = Daemon(data_dir=str(tmp_path / "data")).start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="reap")
        s3.put_object(Bucket="reap", Key="plain", Body=b"an object, never reaped")
        old = s3.create_multipart_upload(Bucket="reap", Key="old")["UploadId"]
        s3.upload_part(Bucket="reap", Key="old", UploadId=old, PartNumber=1, Body=b"x" * 1000)
        s3.upload_part(Bucket="reap", Key="old", UploadId=old, PartNumber=2, Body=b"y" * 1000)
        assert data_files(d) == 3
    finally:
        d.stop()

    # The default TTL (7 days) keeps a young upload across a restart.
    d.start()
    try:
        assert [u["UploadId"] for u in d.client().list_multipart_uploads(Bucket="reap")["Uploads"]] == [old]
    finally:
        d.stop()

    # A 2 s TTL, and the daemon's clock 3 s ahead (the test clock, instead of a sleep):
    # the upload, now older than the TTL, is gone by the time the daemon listens.
    d.extra_args = ["--multipart-ttl", "2"]
    d.env = {"BLEEPSTORE_CLOCK_OFFSET_SECS": "3"}
    d.start()
    try:
        s3 = d.client()
        assert "Uploads" not in s3.list_multipart_uploads(Bucket="reap")
        assert ("recovery: 1 multipart uploads older than 2 s aborted (2 parts), 2 released data files removed"
                in open(d.log_path).read())
        assert data_files(d) == 1
        response = error_of(s3.upload_part, Bucket="reap", Key="old", UploadId=old, PartNumber=3, Body=b"z")
        assert response["Error"]["Code"] == "NoSuchUpload"

        # While serving, the sweep runs every second for a TTL this short.
        young = s3.create_multipart_upload(Bucket="reap", Key="young")["UploadId"]
        s3.upload_part(Bucket="reap", Key="young", UploadId=young, PartNumber=1, Body=b"q" * 500)
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="reap")["Uploads"]] == [young]
        deadline = time.time() + 10
        while "Uploads" in s3.list_multipart_uploads(Bucket="reap") and time.time() < deadline:
            time.sleep(0.2)
        assert "Uploads" not in s3.list_multipart_uploads(Bucket="reap")
        deadline = time.time() + 5
        while data_files(d) != 1 and time.time() < deadline:
            time.sleep(0.1)
        assert data_files(d) == 1
        assert s3.get_object(Bucket="reap", Key="plain")["Body"].read() == b"an object, never reaped"
        deadline = time.time() + 5
        while "older than 2 s aborted, 1 part files released" not in open(d.log_path).read():
            assert time.time() < deadline, "the periodic sweep logged nothing"
            time.sleep(0.1)
    finally:
        d.stop()
