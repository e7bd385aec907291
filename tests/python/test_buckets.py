"""Bucket operations through boto3, checked against S3's answers."""

import uuid

import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, SECRET_KEY


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response


def test_create_list_head_location_delete(s3):
    name = "b-" + uuid.uuid4().hex[:12]
    response = s3.create_bucket(Bucket=name)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["Location"] == f"/{name}"
    listing = s3.list_buckets()
    assert name in [b["Name"] for b in listing["Buckets"]]
    assert listing["Owner"]["ID"] and listing["Owner"]["DisplayName"] == ACCESS_KEY
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    # Re-creating your own bucket in us-east-1 answers 200.
    assert s3.create_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    err = error_of(s3.head_bucket, Bucket=name)
    assert err["Error"]["Code"] == "404"
    err = error_of(s3.delete_bucket, Bucket=name)
    assert err["Error"]["Code"] == "NoSuchBucket"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_location_constraint_must_match_region(s3):
    name = "b-" + uuid.uuid4().hex[:12]
    err = error_of(s3.create_bucket, Bucket=name,
                   CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("name", ["ab", "Upper", "foo..bar", "foo-.bar", "foo.-bar", "-abc",
                                  "abc-", "192.168.1.1", "xn--abc", "a_b", "a" * 64])
def test_invalid_bucket_names(daemon, name):
    headers, _ = sigv4.sign_headers("PUT", f"/{name}", [], {"host": f"127.0.0.1:{daemon.port}"},
                                    sigv4.EMPTY_SHA256, ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "PUT", f"/{name}", headers)
    assert status == 400
    assert b"<Code>InvalidBucketName</Code>" in body


def test_delete_non_empty_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    err = error_of(s3.delete_bucket, Bucket=bucket)
    assert err["Error"]["Code"] == "BucketNotEmpty"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_error_document_shape(daemon, s3):
    name = "missing-" + uuid.uuid4().hex[:8]
    err = error_of(s3.list_objects_v2, Bucket=name)
    headers = err["ResponseMetadata"]["HTTPHeaders"]
    assert err["Error"]["Code"] == "NoSuchBucket"
    assert err["Error"]["BucketName"] == name
    assert err["ResponseMetadata"]["RequestId"] == headers["x-amz-request-id"]
    for header in ("x-amz-request-id", "x-amz-id-2", "date", "server"):
        assert header in headers


@pytest.mark.parametrize("query", ["tagging", "lifecycle", "policy", "replication", "website"])
def test_unimplemented_bucket_subresources_answer_501(daemon, bucket, query):
    name = query.rstrip("=")
    headers, _ = sigv4.sign_headers("GET", f"/{bucket}", [(name, "")], {"host": f"127.0.0.1:{daemon.port}"},
                                    sigv4.EMPTY_SHA256, ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "GET", f"/{bucket}", headers, query=f"{name}=")
    assert status == 501
    assert b"<Code>NotImplemented</Code>" in body
