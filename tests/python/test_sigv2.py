"""Signature Version 2, as the clients that still use it send it: boto3 with
signature_version "s3", the aws CLI v1's `s3 presign`, and an independent signer for
the virtual-hosted and forged forms. Every x-amz-* header is part of what SigV2
signs, so one added afterwards breaks the signature."""

import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, SECRET_KEY, make_client


def v2_client(daemon, **extra):
    return make_client(daemon.endpoint, signature_version="s3", s3={"addressing_style": "path"}, **extra)


def host(daemon):
    return f"127.0.0.1:{daemon.port}"


def test_boto3_signs_every_kind_of_request_with_sigv2(daemon, bucket):
    s3 = v2_client(daemon)
    s3.put_object(Bucket=bucket, Key="a b/c+d", Body=b"hello v2", ContentType="text/plain",
                  Metadata={"m": "1"}, ACL="public-read")
    got = s3.get_object(Bucket=bucket, Key="a b/c+d", ResponseContentType="x/y")
    assert got["Body"].read() == b"hello v2" and got["ContentType"] == "x/y"
    assert got["Metadata"] == {"m": "1"}
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="a")["Contents"]] == ["a b/c+d"]
    grants = s3.get_object_acl(Bucket=bucket, Key="a b/c+d")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"x" * 100)
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "mp"})
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "mp"}, {"Key": "copied"}]})
    assert len(deleted["Deleted"]) == 2
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a b/c+d"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url
    assert urllib.request.urlopen(url).read() == b"hello v2"


def test_the_aws_cli_presigns_with_sigv2(daemon, s3, bucket):
    s3.put_object(Bucket=bucket, Key="cli", Body=b"from the cli")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1"}
    url = subprocess.run(["aws", "--endpoint-url", daemon.endpoint, "s3", "presign", f"s3://{bucket}/cli"],
                         capture_output=True, env=env, check=True).stdout.decode().strip()
    assert "AWSAccessKeyId=" in url, url
    assert urllib.request.urlopen(url).read() == b"from the cli"


def test_virtual_hosted_sigv2_signs_the_host_bucket(daemon, s3, bucket):
    s3.put_object(Bucket=bucket, Key="vh", Body=b"virtual")
    virtual_host = f"{bucket}.localhost:{daemon.port}"
    headers = sigv4.sign_v2("GET", "/vh", [], {"host": virtual_host}, ACCESS_KEY, SECRET_KEY, host_bucket=bucket)
    status, _, body = sigv4.request(daemon.port, "GET", "/vh", headers)
    assert status == 200 and body == b"virtual"
    # The same signature without the bucket in the resource is another request's.
    wrong = sigv4.sign_v2("GET", "/vh", [], {"host": virtual_host}, ACCESS_KEY, SECRET_KEY)
    status, _, body = sigv4.request(daemon.port, "GET", "/vh", wrong)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body


def test_forged_sigv2_requests_are_refused(daemon, s3, bucket):
    path = f"/{bucket}/forged"
    body = b"should never land"

    def put(headers, query=""):
        return sigv4.request(daemon.port, "PUT", path, headers, body, query=query)

    genuine = sigv4.sign_v2("PUT", path, [], {"host": host(daemon)}, ACCESS_KEY, SECRET_KEY)
    made_up = dict(genuine, authorization=f"AWS {ACCESS_KEY}:" + "A" * 27 + "=")
    wrong_secret = sigv4.sign_v2("PUT", path, [], {"host": host(daemon)}, ACCESS_KEY, "not-the-secret")
    unknown = sigv4.sign_v2("PUT", path, [], {"host": host(daemon)}, "nobody", SECRET_KEY)
    # Added after signing: SigV2 signs every x-amz-* header, so this breaks it.
    added_acl = dict(genuine, **{"x-amz-acl": "public-read"})
    skewed = sigv4.sign_v2("PUT", path, [], {"host": host(daemon)}, ACCESS_KEY, SECRET_KEY,
                           date=sigv4.http_date(-3600))
    for name, headers, code in [("made-up", made_up, b"SignatureDoesNotMatch"),
                                ("wrong secret", wrong_secret, b"SignatureDoesNotMatch"),
                                ("unknown key", unknown, b"InvalidAccessKeyId"),
                                ("added x-amz-acl", added_acl, b"SignatureDoesNotMatch"),
                                ("an hour old", skewed, b"RequestTimeTooSkewed")]:
        status, _, answer = put(headers)
        assert status == 403 and b"<Code>" + code + b"</Code>" in answer, (name, answer[:300])
    expired = sigv4.presign_v2("PUT", path, [], {"host": host(daemon)}, ACCESS_KEY, SECRET_KEY,
                               int(time.time()) - 10)
    status, _, answer = put({"host": host(daemon)}, expired)
    assert status == 403 and b"Request has expired" in answer
    valid = sigv4.presign_v2("PUT", path, [], {"host": host(daemon)}, ACCESS_KEY, SECRET_KEY,
                             int(time.time()) + 300)
    status, _, answer = put({"host": host(daemon), "x-amz-acl": "public-read"}, valid)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in answer
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="forged")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # And the genuine ones are served.
    assert put(genuine)[0] == 200
    assert put({"host": host(daemon)}, valid)[0] == 200


def test_both_signature_versions_at_once_are_refused(daemon, bucket):
    path = f"/{bucket}/both"
    headers = sigv4.sign_v2("GET", path, [], {"host": host(daemon)}, ACCESS_KEY, SECRET_KEY)
    query = sigv4.presign("GET", path, [], {"host": host(daemon)}, ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "GET", path, headers, query=query)
    assert status == 400 and b"Only one auth mechanism allowed" in body


def test_sigv2_holds_the_body_to_a_declared_sha256_and_refuses_aws_chunked(daemon, s3, bucket):
    import hashlib
    path = f"/{bucket}/hashed"
    body = b"held to its hash"

    def put(content_sha256):
        headers = sigv4.sign_v2("PUT", path, [], {"host": host(daemon), "x-amz-content-sha256": content_sha256},
                                ACCESS_KEY, SECRET_KEY)
        return sigv4.request(daemon.port, "PUT", path, headers, body)

    status, _, answer = put(hashlib.sha256(b"other bytes").hexdigest())
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in answer, answer[:300]
    status, _, answer = put("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    assert status == 400 and b"<Code>InvalidRequest</Code>" in answer, answer[:300]
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="hashed")
    assert put(hashlib.sha256(body).hexdigest())[0] == 200
    assert s3.get_object(Bucket=bucket, Key="hashed")["Body"].read() == body
