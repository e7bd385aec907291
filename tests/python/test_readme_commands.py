"""The README's commands, run exactly as written there."""

import os
import shlex
import subprocess
import tempfile

import pytest
from botocore.exceptions import ClientError

from conftest import BIN, Daemon, make_client

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def readme_commands(prefix):
    lines = [line.split("#")[0].strip() for line in open(README)]
    return [shlex.split(line) for line in lines if line.startswith(prefix)]


def run(argv, cwd):
    assert argv[0] == "bleepstore"
    return subprocess.run([BIN, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=30)


def test_the_readme_credentials_commands_work_as_written():
    commands = readme_commands("bleepstore --data-dir ./data credentials ")
    assert [c[4] for c in commands] == ["add", "list", "remove"], commands
    add, listing, remove = commands
    access, secret = add[add.index("--access-key") + 1], add[add.index("--secret-key") + 1]
    cwd = tempfile.mkdtemp(prefix="bleepstore-readme-")
    added = run(add, cwd)
    assert added.returncode == 0, added.stderr
    listed = run(listing, cwd)
    assert listed.returncode == 0 and access in listed.stdout and secret not in listed.stdout, listed

    daemon = Daemon(data_dir=os.path.join(cwd, "data")).start()
    try:
        user = make_client(daemon.endpoint, access_key=access, secret_key=secret)
        user.create_bucket(Bucket="alices")
        assert [b["Name"] for b in user.list_buckets()["Buckets"]] == ["alices"]
    finally:
        daemon.stop()

    removed = run(remove, cwd)
    assert removed.returncode == 0, removed.stderr
    assert access not in run(listing, cwd).stdout
    daemon.start()
    try:
        with pytest.raises(ClientError) as info:
            make_client(daemon.endpoint, access_key=access, secret_key=secret).list_buckets()
        assert info.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    finally:
        daemon.stop()
