"""Reads racing writes: a GET serves exactly the object whose metadata it read, bytes,
ETag and size together, however the key is overwritten or deleted around it."""

import hashlib
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import make_client

RACE_SECONDS = 10


def body_of(size, seed):
    block = hashlib.sha256(f"{seed}".encode()).digest()
    return (block * (size // len(block) + 1))[:size]


@pytest.mark.parametrize("what", ["objects", "multipart"])
def test_reads_racing_overwrites_serve_one_version(daemon, bucket, what):
    """2 writers overwrite one key with bodies of different sizes (single PUTs, or
    two-part multipart objects), 4 readers GET it for 10 s: every body's MD5 is its ETag
    (or, for a multipart object, one of the versions written), no answer is 5xx."""
    s3 = daemon.client()
    sizes = [96 * 1024, 300 * 1024, 1024 * 1024 + 17]
    versions = {}  # etag -> body
    lock = threading.Lock()

    def write(client, n):
        body = body_of(sizes[n % len(sizes)], n)
        if what == "objects":
            client.put_object(Bucket=bucket, Key="race", Body=body)
            return
        part = 5 * 1024 * 1024
        body = body_of(part + sizes[n % len(sizes)], n)
        pieces = (body[:part], body[part:])
        # The multipart ETag, known before the object exists, so a reader never sees
        # an ETag the test has not recorded yet.
        etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in pieces)).hexdigest() + "-2"
        with lock:
            versions[etag] = hashlib.md5(body).hexdigest()
        upload = client.create_multipart_upload(Bucket=bucket, Key="race")["UploadId"]
        parts = []
        for number, piece in enumerate(pieces, start=1):
            tag = client.upload_part(Bucket=bucket, Key="race", UploadId=upload, PartNumber=number,
                                     Body=piece)["ETag"]
            parts.append({"PartNumber": number, "ETag": tag})
        client.complete_multipart_upload(Bucket=bucket, Key="race", UploadId=upload,
                                         MultipartUpload={"Parts": parts})

    write(s3, 0)
    stop = time.monotonic() + RACE_SECONDS
    failures, reads, server_errors = [], [0], [0]

    def writer(index):
        client = make_client(daemon.endpoint)
        n = index
        while time.monotonic() < stop:
            n += 2
            write(client, n)

    def reader():
        client = make_client(daemon.endpoint)
        while time.monotonic() < stop:
            try:
                got = client.get_object(Bucket=bucket, Key="race")
            except ClientError as error:
                if error.response["ResponseMetadata"]["HTTPStatusCode"] >= 500:
                    with lock:
                        server_errors[0] += 1
                continue
            body = got["Body"].read()
            etag = got["ETag"].strip('"')
            with lock:
                reads[0] += 1
                expected = versions.get(etag)
            digest = hashlib.md5(body).hexdigest()
            consistent = digest == etag if "-" not in etag else digest == expected
            if not consistent or len(body) != got["ContentLength"]:
                failures.append((etag, len(body), got["ContentLength"]))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"\n{what}: {reads[0]} GETs raced the writers")
    assert reads[0] > 100
    assert server_errors[0] == 0, f"{server_errors[0]} GETs answered 5xx"
    assert not failures, f"{len(failures)} of {reads[0]} GETs carried another version's ETag: {failures[:5]}"


def test_reads_racing_deletes_serve_whole_objects_or_404(daemon, bucket):
    s3 = daemon.client()
    stop = time.monotonic() + 3
    failures = []

    def churn():
        client = make_client(daemon.endpoint)
        n = 0
        while time.monotonic() < stop:
            n += 1
            client.put_object(Bucket=bucket, Key="gone", Body=body_of(200 * 1024 + n, n))
            client.delete_object(Bucket=bucket, Key="gone")

    def reader():
        client = make_client(daemon.endpoint)
        while time.monotonic() < stop:
            try:
                got = client.get_object(Bucket=bucket, Key="gone")
            except ClientError as error:
                if error.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                    failures.append(error.response["ResponseMetadata"]["HTTPStatusCode"])
                continue
            body = got["Body"].read()
            if hashlib.md5(body).hexdigest() != got["ETag"].strip('"'):
                failures.append("torn")

    threads = [threading.Thread(target=churn)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s3.delete_object(Bucket=bucket, Key="gone")
    assert not failures, failures[:10]
