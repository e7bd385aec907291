"""SigV4 in every form a client sends, and every way it can be wrong."""

import base64
import hashlib
import os
import urllib.request

import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, SECRET_KEY, make_client


def host(daemon):
    return f"127.0.0.1:{daemon.port}"


def get_back(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def assert_absent(s3, bucket, key):
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key=key)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_anonymous_is_denied(daemon, bucket):
    status, _, body = sigv4.request(daemon.port, "GET", f"/{bucket}", {"host": host(daemon)})
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_unknown_key_and_wrong_secret(daemon, bucket):
    bad_key = make_client(daemon.endpoint, access_key="nobody")
    with pytest.raises(ClientError) as info:
        bad_key.list_objects_v2(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    bad_secret = make_client(daemon.endpoint, secret_key="wrong-secret")
    with pytest.raises(ClientError) as info:
        bad_secret.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_clock_skew(daemon, bucket):
    headers, _ = sigv4.sign_headers("GET", f"/{bucket}", [], {"host": host(daemon)}, sigv4.EMPTY_SHA256,
                                    ACCESS_KEY, SECRET_KEY, sigv4.amz_now(-3600))
    status, _, body = sigv4.request(daemon.port, "GET", f"/{bucket}", headers)
    assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body


def test_signed_payload_mismatch_stores_nothing(daemon, s3, bucket):
    headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/k", [], {"host": host(daemon)},
                                    hashlib.sha256(b"the real body").hexdigest(), ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "PUT", f"/{bucket}/k", headers, b"another body!")
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body
    assert_absent(s3, bucket, "k")


def test_unsigned_payload(daemon, s3, bucket):
    headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/u", [], {"host": host(daemon)}, "UNSIGNED-PAYLOAD",
                                    ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, _ = sigv4.request(daemon.port, "PUT", f"/{bucket}/u", headers, b"unsigned body")
    assert status == 200 and get_back(s3, bucket, "u") == b"unsigned body"


def test_no_content_sha256_header(daemon, s3, bucket):
    # Without x-amz-content-sha256 a bodiless request is signed as an empty payload and
    # verified from its head; a body would go unsigned, so it is refused as AWS does.
    s3.put_object(Bucket=bucket, Key="n", Body=b"kept")
    headers, _ = sigv4.sign_headers("GET", f"/{bucket}/n", [], {"host": host(daemon)}, sigv4.EMPTY_SHA256,
                                    ACCESS_KEY, SECRET_KEY, sigv4.amz_now(), sign_content_sha=False)
    status, _, body = sigv4.request(daemon.port, "GET", f"/{bucket}/n", headers)
    assert status == 200 and body == b"kept"
    data = b"the body the signature would not cover"
    headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/n2", [], {"host": host(daemon)},
                                    hashlib.sha256(data).hexdigest(), ACCESS_KEY, SECRET_KEY, sigv4.amz_now(),
                                    sign_content_sha=False)
    status, _, resp = sigv4.request(daemon.port, "PUT", f"/{bucket}/n2", headers, data)
    assert status == 400 and b"<Code>InvalidRequest</Code>" in resp
    assert b"Missing required header for this request: x-amz-content-sha256" in resp
    assert_absent(s3, bucket, "n2")


def test_made_up_signature_reads_and_deletes_nothing(daemon, s3, bucket):
    """The attack that opened issue 8, verbatim: a known access key, a signature of zeros."""
    s3.put_object(Bucket=bucket, Key="victim", Body=b"private bytes")
    amz = sigv4.amz_now()
    forged = {"host": host(daemon), "x-amz-date": amz,
              "authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{amz[:8]}/us-east-1/s3/aws4_request, "
                               f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"}
    for method in ("GET", "HEAD", "DELETE"):
        status, _, body = sigv4.request(daemon.port, method, f"/{bucket}/victim", forged)
        assert status == 403, (method, status)
        assert b"private bytes" not in body
    assert get_back(s3, bucket, "victim") == b"private bytes"


def streaming_put(daemon, bucket, key, data, mode, chunk_size=64 * 1024, tamper=None, trailer_value=None):
    amz = sigv4.amz_now()
    headers = {"host": host(daemon), "content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data))}
    trailer = None
    if "TRAILER" in mode:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
        trailer = ("x-amz-checksum-crc32", trailer_value or sigv4.crc32_b64(data))
    if mode == "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
        body = sigv4.unsigned_trailer_body(data, chunk_size, trailer)
        headers["content-length"] = str(len(body))
        headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/{key}", [], headers, mode, ACCESS_KEY, SECRET_KEY, amz)
    else:
        # The body length is part of the signed headers, so size it first with a dummy seed.
        probe = sigv4.signed_chunked_body(data, chunk_size, SECRET_KEY, amz, "0" * 64, trailer=trailer)
        headers["content-length"] = str(len(probe))
        headers, seed = sigv4.sign_headers("PUT", f"/{bucket}/{key}", [], headers, mode, ACCESS_KEY, SECRET_KEY, amz)
        body = sigv4.signed_chunked_body(data, chunk_size, SECRET_KEY, amz, seed, trailer=trailer, tamper_chunk=tamper)
    return sigv4.request(daemon.port, "PUT", f"/{bucket}/{key}", headers, body)


@pytest.mark.parametrize("mode", ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                                  "STREAMING-UNSIGNED-PAYLOAD-TRAILER"])
@pytest.mark.parametrize("size", [0, 1, 65536, 200_000])
def test_streaming_modes(daemon, s3, bucket, mode, size):
    data = bytes((i * 7) % 251 for i in range(size))
    status, headers, body = streaming_put(daemon, bucket, "s", data, mode, chunk_size=65536)
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="s")
    assert got["Body"].read() == data
    assert got.get("ContentEncoding") in (None, "")


def test_tampered_chunk_stores_nothing(daemon, s3, bucket):
    data = b"x" * 150_000
    status, _, body = streaming_put(daemon, bucket, "t", data, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", tamper=1)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert_absent(s3, bucket, "t")


@pytest.mark.parametrize("mode", ["STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"])
def test_wrong_trailer_checksum_stores_nothing(daemon, s3, bucket, mode):
    data = b"trailing checksum" * 1000
    status, _, body = streaming_put(daemon, bucket, "w", data, mode, trailer_value=sigv4.crc32_b64(b"other"))
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert_absent(s3, bucket, "w")


def signed_put(daemon, bucket, key, data, payload_hash=None, extra=None):
    """A PUT whose whole body is signed: x-amz-content-sha256 is `payload_hash` (the
    body's SHA-256 by default, or UNSIGNED-PAYLOAD)."""
    headers = {"host": host(daemon), "content-length": str(len(data)), **(extra or {})}
    payload_hash = payload_hash or hashlib.sha256(data).hexdigest()
    headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/{key}", [], headers, payload_hash,
                                    ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    return sigv4.request(daemon.port, "PUT", f"/{bucket}/{key}", headers, data)


MIB = 1024 * 1024
LARGE_SIZES = [MIB - 1, MIB, MIB + 1, 2 * MIB + MIB // 2 + 3]


@pytest.mark.parametrize("size", LARGE_SIZES)
def test_large_bodies_in_every_payload_mode(daemon, s3, bucket, size):
    """Bodies around and past one upload chunk (the size from which hashing leaves the
    serving core): every payload mode stores the bytes with the ETag of their MD5 and the
    checksum of the trailer, whatever the chunk boundaries."""
    data = bytes((i * 31 + i // 4099) % 256 for i in range(size))
    md5 = f'"{hashlib.md5(data).hexdigest()}"'
    modes = ["UNSIGNED-PAYLOAD", "SIGNED", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
             "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]
    for index, mode in enumerate(modes):
        key = f"large-{index}"
        if mode in ("UNSIGNED-PAYLOAD", "SIGNED"):
            status, headers, body = signed_put(daemon, bucket, key, data,
                                               "UNSIGNED-PAYLOAD" if mode == "UNSIGNED-PAYLOAD" else None)
        else:
            status, headers, body = streaming_put(daemon, bucket, key, data, mode, chunk_size=100_000)
        assert status == 200, (mode, body)
        assert headers.get("etag") == md5, mode
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == data, mode
        assert got["ETag"] == md5
        if "TRAILER" in mode:
            assert got["ChecksumCRC32"] == sigv4.crc32_b64(data)


def test_large_bodies_that_break_a_promise_store_nothing(daemon, s3, bucket):
    """Past one chunk, each digest that finishes on a hash thread still decides the
    answer: a wrong payload SHA-256, Content-MD5 or trailer checksum, or a tampered
    chunk late in the body, refuses the upload and stores nothing."""
    data = os.urandom(3 * MIB + 5)
    status, _, body = signed_put(daemon, bucket, "sha", data, hashlib.sha256(b"other").hexdigest())
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    status, _, body = signed_put(daemon, bucket, "md5", data, extra={"content-md5": wrong_md5})
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    status, _, body = streaming_put(daemon, bucket, "crc", data, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                    trailer_value=sigv4.crc32_b64(b"other"))
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    status, _, body = streaming_put(daemon, bucket, "late", data, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                    chunk_size=256 * 1024, tamper=11)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    for key in ("sha", "md5", "crc", "late"):
        assert_absent(s3, bucket, key)
    right_md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    status, _, body = signed_put(daemon, bucket, "md5", data, extra={"content-md5": right_md5})
    assert status == 200, body


def test_presigned_urls(daemon, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned body")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300)
    assert urllib.request.urlopen(url).read() == b"presigned body"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pp"}, ExpiresIn=300)
    request = urllib.request.Request(put_url, data=b"uploaded", method="PUT")
    assert urllib.request.urlopen(request).status == 200
    assert get_back(s3, bucket, "pp") == b"uploaded"
    # Signed two hours ago for one minute (the signer's clock, instead of a sleep).
    query = sigv4.presign("GET", f"/{bucket}/p", [], {"host": host(daemon)}, ACCESS_KEY, SECRET_KEY,
                          sigv4.amz_now(-7200), expires=60)
    expired = f"{daemon.endpoint}/{bucket}/p?{query}"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(expired)
    assert info.value.code == 403
    body = info.value.read()
    assert b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(tampered)
    assert info.value.code == 403


def is_public(s3, bucket, key):
    grants = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)


def test_presigned_urls_carry_signed_headers(daemon, s3, bucket):
    # boto3 signs the ACL and metadata as headers the uploader must then send.
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "signed-acl", "ACL": "public-read",
                                                          "Metadata": {"a": "1"}}, ExpiresIn=300)
    request = urllib.request.Request(url, data=b"x", method="PUT",
                                     headers={"x-amz-acl": "public-read", "x-amz-meta-a": "1"})
    assert urllib.request.urlopen(request).status == 200
    assert is_public(s3, bucket, "signed-acl")
    assert s3.head_object(Bucket=bucket, Key="signed-acl")["Metadata"] == {"a": "1"}
    # Signers that hoist x-amz-* headers into the query (the Go SDKs do): the signed
    # parameters are obeyed as the headers they stand for.
    path = f"/{bucket}/hoisted"
    query = sigv4.presign("PUT", path, [("x-amz-acl", "public-read"), ("x-amz-meta-h", "2")],
                          {"host": host(daemon)}, ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "PUT", path, {"host": host(daemon)}, b"h", query=query)
    assert status == 200, body
    assert is_public(s3, bucket, "hoisted")
    assert s3.head_object(Bucket=bucket, Key="hoisted")["Metadata"] == {"h": "2"}
    # The same header with another value is not covered by the signature.
    status, _, body = sigv4.request(daemon.port, "PUT", path, {"host": host(daemon), "x-amz-acl": "public-read-write"},
                                    b"h2", query=query)
    assert status == 403 and b"<HeadersNotSigned>x-amz-acl</HeadersNotSigned>" in body
    assert get_back(s3, bucket, "hoisted") == b"h"


def test_unsigned_acl_header_publishes_nothing(daemon, s3, bucket):
    """Issue 8's second hole: an x-amz-acl added outside SignedHeaders, and a presigned
    PUT URL turned into a CopyObject of another bucket's object."""
    s3.put_object(Bucket=bucket, Key="private-src", Body=b"private source")
    headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/o", [], {"host": host(daemon)},
                                    hashlib.sha256(b"o").hexdigest(), ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    headers["x-amz-acl"] = "public-read"
    status, _, body = sigv4.request(daemon.port, "PUT", f"/{bucket}/o", headers, b"o")
    assert status == 403 and b"There were headers present in the request which were not signed" in body
    assert_absent(s3, bucket, "o")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "upload"}, ExpiresIn=300)
    request = urllib.request.Request(url, data=b"", method="PUT",
                                     headers={"x-amz-copy-source": f"{bucket}/private-src", "x-amz-acl": "public-read"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 403 and b"<Code>AccessDenied</Code>" in info.value.read()
    assert_absent(s3, bucket, "upload")
