"""Several key pairs, each its own user, managed with `bleepstore credentials`."""

import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import BIN, make_client


def cli(daemon, *args):
    return subprocess.run([BIN, "--data-dir", daemon.data_dir, "credentials", *args],
                          capture_output=True, text=True, timeout=30)


def test_second_user_is_isolated(daemon, s3, bucket):
    access = "user-" + uuid.uuid4().hex[:8]
    added = cli(daemon, "add", "--access-key", access, "--secret-key", "second-secret", "--display-name", "Second")
    assert added.returncode == 0, added.stderr
    listing = cli(daemon, "list")
    assert access in listing.stdout and "second-secret" not in listing.stdout
    second = make_client(daemon.endpoint, access_key=access, secret_key="second-secret")
    s3.put_object(Bucket=bucket, Key="private", Body=b"first user's")
    for call in (lambda: second.get_object(Bucket=bucket, Key="private"),
                 lambda: second.list_objects_v2(Bucket=bucket),
                 lambda: second.put_object(Bucket=bucket, Key="x", Body=b"x"),
                 lambda: second.delete_bucket(Bucket=bucket)):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] == "AccessDenied"
    own = "own-" + uuid.uuid4().hex[:8]
    second.create_bucket(Bucket=own)
    assert [b["Name"] for b in second.list_buckets()["Buckets"]] == [own]
    assert own not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket=own)
    assert info.value.response["Error"]["Code"] == "BucketAlreadyExists"
    second.delete_bucket(Bucket=own)
    removed = cli(daemon, "remove", "--access-key", access)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert access not in cli(daemon, "list").stdout
