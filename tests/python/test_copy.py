"""CopyObject: metadata directives, conditions, self-copy, multipart sources."""

import datetime
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response


def test_copy_with_copy_and_replace(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src key+%", Body=b"copy me", ContentType="text/plain",
                         Metadata={"a": "1"})["ETag"]
    result = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src key+%"})
    assert result["CopyObjectResult"]["ETag"] == etag
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"copy me"
    assert got["ContentType"] == "text/plain" and got["Metadata"] == {"a": "1"}
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src key+%", MetadataDirective="REPLACE",
                   ContentType="application/json", Metadata={"b": "2"})
    got = s3.get_object(Bucket=bucket, Key="dst2")
    assert got["ContentType"] == "application/json" and got["Metadata"] == {"b": "2"}
    # The copies are independent of the source.
    s3.delete_object(Bucket=bucket, Key="src key+%")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"copy me"


def test_copy_across_buckets_and_errors(s3, bucket):
    other = bucket + "-o"
    s3.create_bucket(Bucket=other)
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
        s3.copy_object(Bucket=other, Key="k", CopySource={"Bucket": bucket, "Key": "k"})
        assert s3.get_object(Bucket=other, Key="k")["Body"].read() == b"x"
        assert error_of(s3.copy_object, Bucket=other, Key="k2",
                        CopySource={"Bucket": bucket, "Key": "missing"})["Error"]["Code"] == "NoSuchKey"
        assert error_of(s3.copy_object, Bucket=other, Key="k2",
                        CopySource={"Bucket": "no-such-bucket-zz", "Key": "k"})["Error"]["Code"] == "NoSuchBucket"
        s3.delete_object(Bucket=other, Key="k")
    finally:
        s3.delete_bucket(Bucket=other)


def test_copy_onto_itself_needs_replace(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"x", Metadata={"v": "1"})
    err = error_of(s3.copy_object, Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert err["Error"]["Code"] == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"v": "2"})
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Metadata"] == {"v": "2"} and got["Body"].read() == b"x"


def test_copy_source_conditions(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"x")["ETag"]
    src = {"Bucket": bucket, "Key": "c"}
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    s3.copy_object(Bucket=bucket, Key="d", CopySource=src, CopySourceIfMatch=etag)
    for kwargs in ({"CopySourceIfMatch": '"nope"'}, {"CopySourceIfNoneMatch": etag},
                   {"CopySourceIfModifiedSince": future}, {"CopySourceIfUnmodifiedSince": past}):
        err = error_of(s3.copy_object, Bucket=bucket, Key="d", CopySource=src, **kwargs)
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 412, kwargs


def test_copy_multipart_source(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    bodies = [os.urandom(5 * MIB), os.urandom(100)]
    parts = []
    for number, body in enumerate(bodies, start=1):
        etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": parts})
    s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    got = s3.get_object(Bucket=bucket, Key="mp-copy")
    assert got["Body"].read() == b"".join(bodies)
    assert got["ETag"] == done["ETag"]
    s3.delete_object(Bucket=bucket, Key="mp")
    assert s3.get_object(Bucket=bucket, Key="mp-copy", PartNumber=2)["Body"].read() == bodies[1]


def test_upload_part_copy_with_ranges(s3, bucket):
    source = os.urandom(6 * MIB + 123)
    s3.put_object(Bucket=bucket, Key="big-src", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "big-src"},
                                CopySourceRange=f"bytes=0-{5 * MIB - 1}")
    assert first["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(source[:5 * MIB]).hexdigest()
    second = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=2,
                                 CopySource={"Bucket": bucket, "Key": "big-src"},
                                 CopySourceRange=f"bytes={5 * MIB}-{len(source) - 1}")
    with pytest.raises(ClientError) as info:
        s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=3,
                            CopySource={"Bucket": bucket, "Key": "big-src"},
                            CopySourceRange=f"bytes=0-{len(source)}")
    assert info.value.response["Error"]["Code"] == "InvalidArgument"
    parts = [{"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
             {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}]
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == source
    # A part copied out of a multipart object, straddling its two parts.
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="slice")["UploadId"]
    piece = s3.upload_part_copy(Bucket=bucket, Key="slice", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "assembled"},
                                CopySourceRange=f"bytes={5 * MIB - 5}-{5 * MIB + 4}")
    s3.complete_multipart_upload(Bucket=bucket, Key="slice", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": piece["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="slice")["Body"].read() == source[5 * MIB - 5:5 * MIB + 5]
