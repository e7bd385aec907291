"""Released data files: removed once no read can still open them, while serving and
at startup, and nothing a crash leaves behind survives a restart, however quick."""

import os
import shutil
import sqlite3

import pytest

from conftest import Daemon, metric, wait_for


def data_files(daemon):
    root = os.path.join(daemon.data_dir, "objects")
    return sorted(f for _, _, files in os.walk(root) for f in files)


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


def test_released_files_are_removed_while_serving(fresh):
    s3 = fresh.client()
    s3.create_bucket(Bucket="churn")
    for i in range(6):
        s3.put_object(Bucket="churn", Key="k", Body=b"v" * (i + 1))  # 5 overwrites release 5 files
    s3.put_object(Bucket="churn", Key="gone", Body=b"x")
    s3.delete_object(Bucket="churn", Key="gone")  # 1
    upload = s3.create_multipart_upload(Bucket="churn", Key="mp")["UploadId"]
    s3.upload_part(Bucket="churn", Key="mp", UploadId=upload, PartNumber=1, Body=b"a")
    s3.upload_part(Bucket="churn", Key="mp", UploadId=upload, PartNumber=1, Body=b"b")  # 1
    s3.abort_multipart_upload(Bucket="churn", Key="mp", UploadId=upload)  # 1
    s3.put_object(Bucket="churn", Key="d1", Body=b"1")
    s3.put_object(Bucket="churn", Key="d2", Body=b"2")
    s3.delete_objects(Bucket="churn", Delete={"Objects": [{"Key": "d1"}, {"Key": "d2"}]})  # 2
    wait_for(lambda: metric(fresh, "bleepstore_reclaim_waiting_files") == 0, "released files to be removed")
    assert metric(fresh, "bleepstore_reclaimed_files_total") == 10
    assert len(data_files(fresh)) == 1, data_files(fresh)
    assert s3.get_object(Bucket="churn", Key="k")["Body"].read() == b"v" * 6
    assert reclaim_rows(fresh) == []


def test_a_quick_restart_removes_what_a_crash_left(fresh):
    s3 = fresh.client()
    s3.create_bucket(Bucket="left")
    s3.put_object(Bucket="left", Key="live", Body=b"still here")
    live = data_files(fresh)
    fresh.kill9()
    # What a crash can leave: a file published whose row never committed (an orphan,
    # written just now, as in a restart within the second), and a file released by a
    # commit whose removal never ran (a reclaim row).
    orphan = "ab" + "0" * 29 + "1"
    released = "cd" + "0" * 29 + "2"
    for name in (orphan, released):
        with open(os.path.join(fresh.data_dir, "objects", name[:2], name), "wb") as f:
            f.write(b"leftover")
    db = sqlite3.connect(os.path.join(fresh.data_dir, "metadata.db"))
    db.execute("INSERT INTO reclaim (data_id, released_ms) VALUES (?, 0)", (released,))
    db.commit()
    db.close()
    offset = os.path.getsize(fresh.log_path)
    fresh.start()
    assert released not in data_files(fresh), "startup removes released files before serving"
    assert reclaim_rows(fresh) == []

    def swept():
        with open(fresh.log_path, "rb") as log:
            log.seek(offset)
            return b"orphan sweep examined" in log.read()

    wait_for(swept, "the orphan sweep")
    assert data_files(fresh) == live
    assert fresh.client().get_object(Bucket="left", Key="live")["Body"].read() == b"still here"
