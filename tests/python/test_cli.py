"""The aws CLI, unmodified, against the daemon."""

import os
import subprocess
import sys

from conftest import ACCESS_KEY, SECRET_KEY


def aws(daemon, *args, input_bytes=None):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    cmd = [sys.executable, "-m", "awscli", "--endpoint-url", daemon.endpoint, *args]
    return subprocess.run(cmd, env=env, capture_output=True, input=input_bytes, timeout=120)


def test_cli_mb_cp_ls_rm(daemon, tmp_path):
    source = tmp_path / "file.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    assert aws(daemon, "s3", "mb", "s3://cli-bucket").returncode == 0
    done = aws(daemon, "s3", "cp", str(source), "s3://cli-bucket/dir/file.bin")
    assert done.returncode == 0, done.stderr
    listing = aws(daemon, "s3", "ls", "s3://cli-bucket", "--recursive")
    assert b"dir/file.bin" in listing.stdout
    back = tmp_path / "back.bin"
    assert aws(daemon, "s3", "cp", "s3://cli-bucket/dir/file.bin", str(back)).returncode == 0
    assert back.read_bytes() == source.read_bytes()
    assert aws(daemon, "s3", "rm", "s3://cli-bucket/dir/file.bin").returncode == 0
    assert aws(daemon, "s3", "rb", "s3://cli-bucket").returncode == 0
