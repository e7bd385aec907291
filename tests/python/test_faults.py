"""Injected faults (src/fault.rs, built with `--features fault-injection` as
target/release/bleepstore-faults), aimed at one step."""

import os
import shutil
import sqlite3
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import BIN, ROOT, Daemon, wait_for

FAULT_BIN = os.environ.get("BLEEPSTORE_FAULT_BIN")


@pytest.fixture(scope="module")
def fault_bin():
    """The fault-enabled binary: the one named by BLEEPSTORE_FAULT_BIN, or this
    checkout's, built (a no-op when it is fresh)."""
    if FAULT_BIN:
        return FAULT_BIN
    release = os.path.join(ROOT, "target", "release")
    subprocess.run(["cargo", "build", "--release", "--bins", "--features", "fault-injection"], cwd=ROOT, check=True)
    # Copied then renamed: a daemon may still run the old copy.
    shutil.copy2(os.path.join(release, "bleepstore"), os.path.join(release, "bleepstore-faults.new"))
    os.replace(os.path.join(release, "bleepstore-faults.new"), os.path.join(release, "bleepstore-faults"))
    subprocess.run(["cargo", "build", "--release", "--bins"], cwd=ROOT, check=True)
    return os.path.join(release, "bleepstore-faults")


def data_files(data_dir):
    """(files under objects/, data ids the metadata names, reclaim rows)."""
    db = sqlite3.connect(f"file:{os.path.join(data_dir, 'metadata.db')}?mode=ro", uri=True)
    try:
        named = {r[0] for r in db.execute(
            "SELECT data_id FROM objects WHERE data_id != '' UNION SELECT data_id FROM object_parts "
            "UNION SELECT data_id FROM multipart_parts")}
        waiting = db.execute("SELECT COUNT(*) FROM reclaim").fetchone()[0]
    finally:
        db.close()
    files = {f for _, _, names in os.walk(os.path.join(data_dir, "objects")) for f in names}
    return files, named, waiting


def restart_clean(daemon):
    """Restarts without faults, and waits for the orphan sweep to finish."""
    daemon.stop()
    daemon.env.pop("BLEEPSTORE_FAULTS", None)
    offset = os.path.getsize(daemon.log_path)
    daemon.start()

    def swept():
        with open(daemon.log_path, "rb") as log:
            log.seek(offset)
            return b"orphan sweep examined" in log.read()
    wait_for(swept, "the orphan sweep")


def test_the_shipped_binary_has_no_fault_code(fault_bin):
    with open(BIN, "rb") as shipped:
        in_shipped = b"fault-injection:" in shipped.read()
    with open(fault_bin, "rb") as faulty:
        in_faulty = b"fault-injection:" in faulty.read()
    assert (in_shipped, in_faulty) == (False, True)


@pytest.mark.parametrize("fault", ["landed", "ioerr"])
def test_a_commit_whose_outcome_is_unknown_is_never_answered(fault_bin, fault):
    """A COMMIT failing with SQLITE_IOERR may have reached the disk (a failed WAL
    fsync after its frames were written: a restart replays them). Answering an error
    then removing the new data file left, after a restart, a row whose file was gone;
    the daemon now ends itself unanswered, and recovery settles the one outcome."""
    daemon = Daemon(threads=1, binary=fault_bin).start()
    try:
        s3 = daemon.client()
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="k", Body=b"old bytes")
        daemon.stop()
        daemon.env["BLEEPSTORE_FAULTS"] = f"rate=0,inject=meta.commit:{fault}"
        daemon.start()
        s3 = daemon.client()
        with pytest.raises(Exception) as answered:
            s3.put_object(Bucket="bkt", Key="k", Body=b"new bytes")
        assert daemon.proc.wait(timeout=10) != 0, f"answered: {answered.value!r}"
        with open(daemon.log_path) as log:
            assert "outcome is unknown" in log.read()
        restart_clean(daemon)
        s3 = daemon.client()
        body = s3.get_object(Bucket="bkt", Key="k")["Body"].read()
        assert body == (b"new bytes" if fault == "landed" else b"old bytes")
        files, named, waiting = data_files(daemon.data_dir)
        assert (files, waiting) == (named, 0)
    finally:
        daemon.stop()


def test_a_busy_database_is_answered_503_and_changes_nothing(fault_bin):
    """SQLITE_BUSY past the busy timeout (another process holding the write lock)
    is a retryable 503 ServiceUnavailable, not a 500, and nothing is stored."""
    daemon = Daemon(threads=1, binary=fault_bin).start()
    try:
        daemon.client().create_bucket(Bucket="bkt")
        daemon.stop()
        daemon.env["BLEEPSTORE_FAULTS"] = "rate=0,inject=meta.begin:busy"
        daemon.start()
        s3 = daemon.client()
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket="bkt", Key="k", Body=b"x" * 100_000)
        error = refused.value.response
        assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (503, "ServiceUnavailable")
        assert s3.list_objects_v2(Bucket="bkt").get("KeyCount") == 0
        restart_clean(daemon)
        files, named, waiting = data_files(daemon.data_dir)
        assert (files, named, waiting) == (set(), set(), 0)
    finally:
        daemon.stop()

