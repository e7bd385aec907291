"""Object operations through boto3: bytes, headers, ranges, conditionals."""

import datetime
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, SECRET_KEY


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response


@pytest.mark.parametrize("key", ["a", "a/b", "../../x", "a//b", "/lead", "sp ace", "plus+sign",
                                 "per%cent", "ünï/cödé ✓", "q?x=1&y", "k" * 1024])
def test_round_trip_keys(s3, bucket, key):
    body = key.encode() * 3
    put = s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [key]


def test_keys_never_escape_or_collide(daemon, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"file a")
    s3.put_object(Bucket=bucket, Key="a/b", Body=b"file a/b")
    s3.put_object(Bucket=bucket, Key="../../../../tmp/escape", Body=b"inside")
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"file a"
    assert s3.get_object(Bucket=bucket, Key="a/b")["Body"].read() == b"file a/b"
    assert not os.path.exists("/tmp/escape")
    for root, _, files in os.walk(daemon.data_dir):
        assert "escape" not in files and "b" not in files


def test_key_too_long(s3, bucket):
    err = error_of(s3.put_object, Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert err["Error"]["Code"] == "KeyTooLongError"


def test_headers_and_metadata_round_trip(s3, bucket):
    s3.put_object(Bucket=bucket, Key="doc", Body=b"<p>hi</p>", ContentType="text/html",
                  ContentEncoding="identity", ContentLanguage="en", ContentDisposition="inline",
                  CacheControl="max-age=60", Expires=datetime.datetime(2030, 1, 1),
                  Metadata={"Color": "blue", "x-y": "z"})
    for response in (s3.get_object(Bucket=bucket, Key="doc"), s3.head_object(Bucket=bucket, Key="doc")):
        assert response["ContentType"] == "text/html"
        assert response["ContentEncoding"] == "identity"
        assert response["ContentLanguage"] == "en"
        assert response["ContentDisposition"] == "inline"
        assert response["CacheControl"] == "max-age=60"
        assert response["Metadata"] == {"color": "blue", "x-y": "z"}
        assert response["ContentLength"] == 9
        assert response["AcceptRanges"] == "bytes"
        assert response["LastModified"]
    plain = s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="plain")["ContentType"] == "application/octet-stream"
    assert plain["ETag"]


def test_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"data", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="o", ResponseContentType="application/json",
                        ResponseContentDisposition="attachment; filename=x.json",
                        ResponseCacheControl="no-cache")
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "attachment; filename=x.json"
    assert got["CacheControl"] == "no-cache"


def test_empty_and_overwritten_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="e", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="e")
    assert got["Body"].read() == b"" and got["ContentLength"] == 0
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    s3.put_object(Bucket=bucket, Key="e", Body=b"second version")
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == b"second version"


def test_large_object_round_trip(s3, bucket):
    body = os.urandom(64 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    got = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    part = s3.get_object(Bucket=bucket, Key="big", Range="bytes=1000000-1999999")["Body"].read()
    assert part == body[1000000:2000000]


@pytest.mark.parametrize("size", [8 * 1024 * 1024 + 1, 9 * 1024 * 1024, 13 * 1024 * 1024 + 4097])
def test_objects_written_around_the_page_cache_round_trip(s3, bucket, size):
    """On the local backend an upload of 8 MiB or more writes its bytes around the page
    cache in aligned stages, and its unaligned end through the page cache: every
    byte, at a stage boundary and at the end, reads back as sent."""
    body = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="direct", Body=body)
    got = s3.get_object(Bucket=bucket, Key="direct")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    stage = 8 * 1024 * 1024
    around = s3.get_object(Bucket=bucket, Key="direct", Range=f"bytes={stage - 5000}-{stage + 5000}")
    assert around["Body"].read() == body[stage - 5000:stage + 5001]
    tail = s3.get_object(Bucket=bucket, Key="direct", Range="bytes=-5000")["Body"].read()
    assert tail == body[-5000:]


@pytest.mark.parametrize("header,status,expected", [
    ("bytes=0-9", 206, (0, 10)), ("bytes=90-", 206, (90, 100)), ("bytes=-5", 206, (95, 100)),
    ("bytes=50-1000", 206, (50, 100)), ("bytes=9-1", 200, (0, 100)), ("bytes=abc", 200, (0, 100)),
    ("pages=1-2", 200, (0, 100)),
])
def test_ranges(s3, bucket, header, status, expected):
    body = bytes(range(100))
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    got = s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == status
    assert got["Body"].read() == body[expected[0]:expected[1]]
    if status == 206:
        assert got["ContentRange"] == f"bytes {expected[0]}-{expected[1] - 1}/100"


def test_unsatisfiable_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    err = error_of(s3.get_object, Bucket=bucket, Key="r", Range="bytes=10-20")
    assert err["Error"]["Code"] == "InvalidRange"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 416
    assert err["ResponseMetadata"]["HTTPHeaders"]["content-range"] == "bytes */10"


def test_conditionals_follow_rfc7232(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"cond")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    before = modified - datetime.timedelta(days=1)
    after = modified + datetime.timedelta(days=1)
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"cond"
    assert error_of(s3.get_object, Bucket=bucket, Key="c", IfMatch='"nope"')["Error"]["Code"] == "PreconditionFailed"
    assert error_of(s3.get_object, Bucket=bucket, Key="c", IfNoneMatch=etag)["Error"]["Code"] == "304"
    assert error_of(s3.get_object, Bucket=bucket, Key="c", IfModifiedSince=after)["Error"]["Code"] == "304"
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=before)["Body"].read() == b"cond"
    assert error_of(s3.get_object, Bucket=bucket, Key="c", IfUnmodifiedSince=before)["Error"]["Code"] == "PreconditionFailed"
    # If-Match true wins over a false If-Unmodified-Since; If-None-Match false beats If-Modified-Since.
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=before)["Body"].read() == b"cond"
    assert s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"other"', IfModifiedSince=after)["Body"].read() == b"cond"
    assert error_of(s3.head_object, Bucket=bucket, Key="c", IfMatch='"nope"')["Error"]["Code"] == "412"


def test_conditional_put(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    err = error_of(s3.put_object, Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 412
    s3.put_object(Bucket=bucket, Key="once", Body=b"3", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"3"


def test_missing_objects_and_delete(s3, bucket):
    err = error_of(s3.get_object, Bucket=bucket, Key="missing")
    assert err["Error"]["Code"] == "NoSuchKey" and err["Error"]["Key"] == "missing"
    head = error_of(s3.head_object, Bucket=bucket, Key="missing")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert s3.delete_object(Bucket=bucket, Key="missing")["ResponseMetadata"]["HTTPStatusCode"] == 204
    s3.put_object(Bucket=bucket, Key="d", Body=b"x")
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(s3.get_object, Bucket=bucket, Key="d")["Error"]["Code"] == "NoSuchKey"
    err = error_of(s3.get_object, Bucket="no-such-bucket-here", Key="d")
    assert err["Error"]["Code"] == "NoSuchBucket"
    # Unversioned: only the null version exists; a missing bucket is named before that.
    s3.put_object(Bucket=bucket, Key="v", Body=b"v")
    assert s3.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"v"
    err = error_of(s3.get_object, Bucket=bucket, Key="v", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert err["Error"]["Code"] == "InvalidArgument" and err["Error"]["ArgumentName"] == "versionId"
    err = error_of(s3.get_object, Bucket="no-such-bucket-here", Key="v", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert err["Error"]["Code"] == "NoSuchBucket"


def test_content_md5_and_checksums(s3, bucket):
    import base64
    good = base64.b64encode(hashlib.md5(b"abc").digest()).decode()
    s3.put_object(Bucket=bucket, Key="m", Body=b"abc", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"abd").digest()).decode()
    assert error_of(s3.put_object, Bucket=bucket, Key="m2", Body=b"abc", ContentMD5=bad)["Error"]["Code"] == "BadDigest"
    assert error_of(s3.put_object, Bucket=bucket, Key="m2", Body=b"abc", ContentMD5="!!")["Error"]["Code"] == "InvalidDigest"
    assert error_of(s3.head_object, Bucket=bucket, Key="m2")["ResponseMetadata"]["HTTPStatusCode"] == 404
    for algorithm in ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"):
        put = s3.put_object(Bucket=bucket, Key=f"c-{algorithm}", Body=b"checksummed", ChecksumAlgorithm=algorithm)
        assert put.get(f"Checksum{algorithm}"), put
        head = s3.head_object(Bucket=bucket, Key=f"c-{algorithm}", ChecksumMode="ENABLED")
        assert head.get(f"Checksum{algorithm}"), head


def test_wrong_checksum_header_stores_nothing(daemon, bucket):
    body = b"payload with a checksum"
    amz = sigv4.amz_now()
    headers = {"host": f"127.0.0.1:{daemon.port}", "x-amz-checksum-crc32": sigv4.crc32_b64(b"other")}
    headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/ck", [], headers, "UNSIGNED-PAYLOAD",
                                    ACCESS_KEY, SECRET_KEY, amz)
    status, _, resp = sigv4.request(daemon.port, "PUT", f"/{bucket}/ck", headers, body)
    assert status == 400 and b"<Code>BadDigest</Code>" in resp
    headers = {"host": f"127.0.0.1:{daemon.port}", "x-amz-checksum-crc32": sigv4.crc32_b64(body)}
    headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/ck", [], headers, "UNSIGNED-PAYLOAD",
                                    ACCESS_KEY, SECRET_KEY, amz)
    status, resp_headers, _ = sigv4.request(daemon.port, "PUT", f"/{bucket}/ck", headers, body)
    assert status == 200 and resp_headers["x-amz-checksum-crc32"] == sigv4.crc32_b64(body)


def test_virtual_hosted_style_raw_host_header(daemon, bucket):
    host = f"{bucket}.localhost:{daemon.port}"
    headers, _ = sigv4.sign_headers("PUT", "/raw/key", [], {"host": host}, hashlib.sha256(b"vh").hexdigest(),
                                    ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, _ = sigv4.request(daemon.port, "PUT", "/raw/key", headers, b"vh")
    assert status == 200
    headers, _ = sigv4.sign_headers("GET", f"/{bucket}/raw/key", [], {"host": f"127.0.0.1:{daemon.port}"},
                                    sigv4.EMPTY_SHA256, ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "GET", f"/{bucket}/raw/key", headers)
    assert (status, body) == (200, b"vh")


@pytest.mark.parametrize("query", ["tagging", "torrent"])
def test_unimplemented_object_subresources_answer_501(daemon, bucket, query):
    headers, _ = sigv4.sign_headers("GET", f"/{bucket}/k", [(query, "")], {"host": f"127.0.0.1:{daemon.port}"},
                                    sigv4.EMPTY_SHA256, ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "GET", f"/{bucket}/k", headers, query=f"{query}=")
    assert status == 501 and b"<Code>NotImplemented</Code>" in body


def test_racing_create_only_puts_have_one_winner(daemon, bucket):
    import threading
    results = []
    barrier = threading.Barrier(8)

    def racer(n):
        client = daemon.client()
        barrier.wait()
        try:
            client.put_object(Bucket=bucket, Key="race", Body=f"writer {n}".encode(), IfNoneMatch="*")
            results.append(("won", n))
        except ClientError as error:
            results.append((error.response["ResponseMetadata"]["HTTPStatusCode"], n))

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for outcome, n in results if outcome == "won"]
    assert len(winners) == 1 and sorted(o for o, _ in results if o != "won") == [412] * 7
    body = daemon.client().get_object(Bucket=bucket, Key="race")["Body"].read()
    assert body == f"writer {winners[0]}".encode()


def test_wrong_crc32c_stores_nothing(daemon, bucket):
    import base64
    body = b"crc32c protected"
    headers = {"host": f"127.0.0.1:{daemon.port}",
               "x-amz-checksum-crc32c": base64.b64encode(b"\x00\x00\x00\x01").decode()}
    headers, _ = sigv4.sign_headers("PUT", f"/{bucket}/c32c", [], headers, "UNSIGNED-PAYLOAD",
                                    ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, resp = sigv4.request(daemon.port, "PUT", f"/{bucket}/c32c", headers, body)
    assert status == 400 and b"<Code>BadDigest</Code>" in resp
    assert b"CRC32C" in resp
    status, _, _ = sigv4.request(daemon.port, "HEAD", f"/{bucket}/c32c",
                                 sigv4.sign_headers("HEAD", f"/{bucket}/c32c", [], {"host": f"127.0.0.1:{daemon.port}"},
                                                    sigv4.EMPTY_SHA256, ACCESS_KEY, SECRET_KEY, sigv4.amz_now())[0])
    assert status == 404


def test_empty_put_then_reuse_of_the_connection(daemon, bucket):
    """botocore sends Expect: 100-continue even with an empty body, and if the first
    answer is not a 100 it keeps that answer's status for every later response on the
    connection. So an empty PUT must get its 100 too, and the next request on the same
    connection must be answered (a stall shows as a read timeout here)."""
    s3 = daemon.client(read_timeout=3)
    for n in range(3):
        s3.put_object(Bucket=bucket, Key=f"empty{n}", Body=b"")
        s3.put_object(Bucket=bucket, Key=f"full{n}", Body=b"z" * 50_000)
    assert s3.get_object(Bucket=bucket, Key="full2")["Body"].read() == b"z" * 50_000
    assert s3.head_object(Bucket=bucket, Key="empty2")["ContentLength"] == 0
