"""Released data: removed once no read can still open it, while serving and at
startup, and nothing a crash leaves behind survives a restart, however quick. Both
kinds of stored object are covered: files, and the small objects the local backend
keeps in the metadata database (up to 32 KiB)."""

import os
import shutil
import sqlite3

import pytest

from conftest import Daemon, metric, wait_for


# Bodies this much larger than their few bytes are files; the others are inline.
FILE_PAD = 40 * 1024


def data_files(daemon):
    root = os.path.join(daemon.data_dir, "objects")
    return sorted(f for _, _, files in os.walk(root) for f in files)


def inline_objects(daemon):
    db = sqlite3.connect(f"file:{os.path.join(daemon.data_dir, 'metadata.db')}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in db.execute("SELECT data_id FROM blobs"))
    finally:
        db.close()


def stored(daemon):
    """Every stored object's data id: files, then inline objects."""
    return data_files(daemon) + inline_objects(daemon)


def reclaim_rows(daemon):
    db = sqlite3.connect(f"file:{os.path.join(daemon.data_dir, 'metadata.db')}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute("SELECT data_id FROM reclaim")]
    finally:
        db.close()


@pytest.fixture
def fresh():
    d = Daemon().start()
    yield d
    d.stop()
    shutil.rmtree(d.data_dir, ignore_errors=True)


@pytest.mark.parametrize("pad", [0, FILE_PAD], ids=["inline", "files"])
def test_released_data_is_removed_while_serving(fresh, pad):
    s3 = fresh.client()
    s3.create_bucket(Bucket="churn")
    p = b"p" * pad
    for i in range(6):
        s3.put_object(Bucket="churn", Key="k", Body=p + b"v" * (i + 1))  # 5 overwrites release 5
    s3.put_object(Bucket="churn", Key="gone", Body=p + b"x")
    s3.delete_object(Bucket="churn", Key="gone")  # 1
    upload = s3.create_multipart_upload(Bucket="churn", Key="mp")["UploadId"]
    s3.upload_part(Bucket="churn", Key="mp", UploadId=upload, PartNumber=1, Body=p + b"a")
    s3.upload_part(Bucket="churn", Key="mp", UploadId=upload, PartNumber=1, Body=p + b"b")  # 1
    s3.abort_multipart_upload(Bucket="churn", Key="mp", UploadId=upload)  # 1
    s3.put_object(Bucket="churn", Key="d1", Body=p + b"1")
    s3.put_object(Bucket="churn", Key="d2", Body=p + b"2")
    s3.delete_objects(Bucket="churn", Delete={"Objects": [{"Key": "d1"}, {"Key": "d2"}]})  # 2
    wait_for(lambda: metric(fresh, "bleepstore_reclaim_waiting_files") == 0, "released data to be removed")
    assert metric(fresh, "bleepstore_reclaimed_files_total") == 10
    left = stored(fresh)
    assert len(left) == 1, left
    assert (left == data_files(fresh)) == (pad > 0), "files above the inline size, rows below"
    assert s3.get_object(Bucket="churn", Key="k")["Body"].read() == p + b"v" * 6
    assert reclaim_rows(fresh) == []


def test_a_quick_restart_removes_what_a_crash_left(fresh):
    s3 = fresh.client()
    s3.create_bucket(Bucket="left")
    s3.put_object(Bucket="left", Key="live", Body=b"still here")
    s3.put_object(Bucket="left", Key="big", Body=b"B" * FILE_PAD)
    live = stored(fresh)
    assert len(data_files(fresh)) == 1 and len(inline_objects(fresh)) == 1, live
    fresh.kill9()
    # What a crash can leave: a file published whose row never committed (an orphan,
    # written just now, as in a restart within the second), and a file released by a
    # commit whose removal never ran (a reclaim row).
    orphan = "ab" + "0" * 29 + "1"
    released = "cd" + "0" * 29 + "2"
    for name in (orphan, released):
        with open(os.path.join(fresh.data_dir, "objects", name[:2], name), "wb") as f:
            f.write(b"leftover")
    # The same two, kept inline: a sealed object no row names, and a released one.
    inline_orphan, inline_released = "i" + "ef" + "0" * 29 + "3", "i" + "fe" + "0" * 29 + "4"
    db = sqlite3.connect(os.path.join(fresh.data_dir, "metadata.db"))
    for name in (inline_orphan, inline_released):
        db.execute("INSERT INTO blob_chunks (data_id, seq, bytes) VALUES (?, 0, ?)", (name, b"leftover"))
        db.execute("INSERT INTO blobs (data_id, size) VALUES (?, 8)", (name,))
    for name in (released, inline_released):
        db.execute("INSERT INTO reclaim (data_id, released_ms) VALUES (?, 0)", (name,))
    db.commit()
    db.close()
    offset = os.path.getsize(fresh.log_path)
    fresh.start()
    assert released not in data_files(fresh), "startup removes released files before serving"
    assert inline_released not in inline_objects(fresh), "and released inline objects"
    assert reclaim_rows(fresh) == []

    def swept():
        with open(fresh.log_path, "rb") as log:
            log.seek(offset)
            return b"orphan sweep examined" in log.read()

    wait_for(swept, "the orphan sweep")
    assert stored(fresh) == live
    assert fresh.client().get_object(Bucket="left", Key="live")["Body"].read() == b"still here"
    assert fresh.client().get_object(Bucket="left", Key="big")["Body"].read() == b"B" * FILE_PAD


def test_every_version_keeps_its_bytes_and_deleted_ones_go(fresh):
    """Noncurrent versions are referenced data: a restart's orphan sweep keeps their
    files and inline objects, and deleting a version by id (only then) frees them."""
    s3 = fresh.client()
    s3.create_bucket(Bucket="kept")
    s3.put_bucket_versioning(Bucket="kept", VersioningConfiguration={"Status": "Enabled"})
    bodies = {}
    for body in (b"first" * 10, b"F" * FILE_PAD, b"third"):
        bodies[s3.put_object(Bucket="kept", Key="k", Body=body)["VersionId"]] = body
    marker = s3.delete_object(Bucket="kept", Key="k")["VersionId"]
    assert len(stored(fresh)) == 3, "every version keeps its bytes under a delete marker"
    offset = os.path.getsize(fresh.log_path)
    fresh.kill9()
    fresh.start()

    def swept():
        with open(fresh.log_path, "rb") as log:
            log.seek(offset)
            return b"orphan sweep examined" in log.read()

    wait_for(swept, "the orphan sweep")
    s3 = fresh.client()
    assert len(stored(fresh)) == 3, "the sweep took a noncurrent version's bytes"
    for version, body in bodies.items():
        assert s3.get_object(Bucket="kept", Key="k", VersionId=version)["Body"].read() == body
    big = next(v for v, b in bodies.items() if len(b) == FILE_PAD)
    s3.delete_object(Bucket="kept", Key="k", VersionId=big)
    wait_for(lambda: len(stored(fresh)) == 2 and data_files(fresh) == [], "the deleted version's file to go")
    s3.delete_object(Bucket="kept", Key="k", VersionId=marker)
    assert len(stored(fresh)) == 2, "removing a marker frees nothing"
