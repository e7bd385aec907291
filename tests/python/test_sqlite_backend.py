"""The sqlite backend (storage.backend: sqlite): object bytes live in the metadata
database, in chunk rows committed with the rows that name them. Nothing goes to
files, deletes free the rows, kill -9 in the middle of an upload leaves nothing
behind after the restart, and every acknowledged object survives. (The SDK suite
also runs on it: scripts/test.sh sets BLEEPSTORE_TEST_BACKEND=sqlite for a pass.)"""

import hashlib
import os
import socket
import sqlite3

import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, SECRET_KEY, Daemon, data_files_settled, wait_for


def sqlite_daemon(tmp_path):
    config = tmp_path / "sqlite.yaml"
    config.write_text("storage:\n  backend: sqlite\n")
    return Daemon(data_dir=str(tmp_path / "data"), extra_args=["--config", str(config)])


def blob_rows(daemon):
    """(sealed objects, chunk rows) in the daemon's database, read beside it."""
    db = sqlite3.connect(f"file:{os.path.join(daemon.data_dir, 'metadata.db')}?mode=ro", uri=True)
    try:
        sealed = db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
        chunks = db.execute("SELECT COUNT(*) FROM blob_chunks").fetchone()[0]
        return sealed, chunks
    finally:
        db.close()


def files_under(path):
    return [f for _, _, files in os.walk(path) for f in files]


def test_bytes_live_in_the_database_and_deletes_free_them(tmp_path):
    d = sqlite_daemon(tmp_path).start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="rows")
        bodies = {f"k{size}": os.urandom(size) for size in (0, 1, 4096, 300_000, 3 * 1024 * 1024 + 7)}
        for key, body in bodies.items():
            s3.put_object(Bucket="rows", Key=key, Body=body)
        for key, body in bodies.items():
            assert s3.get_object(Bucket="rows", Key=key)["Body"].read() == body, key
        big = bodies[f"k{3 * 1024 * 1024 + 7}"]
        # A range across a chunk boundary (chunks are 1 MiB).
        got = s3.get_object(Bucket="rows", Key=f"k{len(big)}", Range="bytes=1048570-2097160")["Body"].read()
        assert got == big[1048570:2097161]
        # Multipart by reference, then a copy of the multipart object.
        upload = s3.create_multipart_upload(Bucket="rows", Key="multi")["UploadId"]
        parts = [bytes([n]) * (5 * 1024 * 1024) for n in (1, 2)] + [b"end"]
        etags = [s3.upload_part(Bucket="rows", Key="multi", UploadId=upload, PartNumber=n + 1, Body=p)["ETag"]
                 for n, p in enumerate(parts)]
        s3.complete_multipart_upload(
            Bucket="rows", Key="multi", UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
        s3.copy_object(Bucket="rows", Key="copy", CopySource={"Bucket": "rows", "Key": "multi"})
        assert s3.get_object(Bucket="rows", Key="copy")["Body"].read() == b"".join(parts)
        # No object file anywhere: every byte is in the database.
        assert files_under(os.path.join(d.data_dir, "objects")) == []
        sealed, chunks = blob_rows(d)
        assert sealed == len(bodies) + 3 + 3  # the objects, the parts, the copied parts
        for key in list(bodies) + ["multi", "copy"]:
            s3.delete_object(Bucket="rows", Key=key)
        data_files_settled(d)
        assert blob_rows(d) == (0, 0)
    finally:
        d.stop()


def test_kill9_mid_upload_leaves_no_chunks_and_loses_nothing_acknowledged(tmp_path):
    d = sqlite_daemon(tmp_path).start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="crash")
        kept = {f"kept-{i}": os.urandom(i * 600_001) for i in range(5)}
        for key, body in kept.items():
            s3.put_object(Bucket="crash", Key=key, Body=body)
        before = blob_rows(d)
        # A 20 MiB PUT that sends 6 MiB and stops: its first chunks reach the database.
        size = 20 * 1024 * 1024
        headers, _ = sigv4.sign_headers(
            "PUT", "/crash/torn", [], {"host": f"127.0.0.1:{d.port}", "content-length": str(size)},
            "UNSIGNED-PAYLOAD", ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
        sock = socket.create_connection(("127.0.0.1", d.port))
        head = "PUT /crash/torn HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode() + b"x" * (6 * 1024 * 1024))
        wait_for(lambda: blob_rows(d)[1] > before[1], "the torn upload's chunks to reach the database")
        d.kill9()
        sock.close()
        d.start()
        assert "recovery: 1 interrupted uploads removed from the database" in open(d.log_path).read()
        assert blob_rows(d) == before
        s3 = d.client()
        for key, body in kept.items():
            got = s3.get_object(Bucket="crash", Key=key)["Body"].read()
            assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), key
        with pytest.raises(ClientError) as info:
            s3.head_object(Bucket="crash", Key="torn")
        assert info.value.response["Error"]["Code"] == "404"
    finally:
        d.stop()


def test_a_database_of_another_backend_is_refused(tmp_path):
    local = Daemon(data_dir=str(tmp_path / "data")).start()
    try:
        local.client().create_bucket(Bucket="mine")
        local.client().put_object(Bucket="mine", Key="k", Body=b"a file")
    finally:
        local.stop()
    with pytest.raises(RuntimeError) as info:
        sqlite_daemon(tmp_path).start()
    assert "describes objects in the local storage backend, and this configuration uses sqlite" \
        in str(info.value)
