"""ACLs: canned, grant headers and policy documents, enforced for anonymous
requests and for other users."""

import hashlib
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import BIN, make_client

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def anonymous_get(daemon, path):
    try:
        with urllib.request.urlopen(f"{daemon.endpoint}{path}") as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_anonymous_denied_then_allowed_by_public_read(daemon, s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"hello public")
    status, body = anonymous_get(daemon, f"/{bucket}/obj")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert anonymous_get(daemon, f"/{bucket}")[0] == 403
    assert anonymous_get(daemon, "/")[0] == 403
    s3.put_object_acl(Bucket=bucket, Key="obj", ACL="public-read")
    assert anonymous_get(daemon, f"/{bucket}/obj") == (200, b"hello public")
    # The bucket itself is still private: no anonymous listing, no anonymous writes.
    assert anonymous_get(daemon, f"/{bucket}")[0] == 403
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    status, body = anonymous_get(daemon, f"/{bucket}")
    assert status == 200 and b"<Key>obj</Key>" in body
    request = urllib.request.Request(f"{daemon.endpoint}/{bucket}/anon", data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 403
    acl = s3.get_bucket_acl(Bucket=bucket)
    grants = {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]}
    assert (ALL_USERS, "READ") in grants and (acl["Owner"]["ID"], "FULL_CONTROL") in grants
    s3.put_bucket_acl(Bucket=bucket, ACL="private")


def test_put_object_with_canned_acl(daemon, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pub", Body=b"p", ACL="public-read")
    assert anonymous_get(daemon, f"/{bucket}/pub") == (200, b"p")
    acl = s3.get_object_acl(Bucket=bucket, Key="pub")
    assert any(g["Grantee"].get("URI") == ALL_USERS and g["Permission"] == "READ" for g in acl["Grants"])


def test_canned_and_grants_together_is_invalid(s3, bucket):
    with pytest.raises(ClientError) as info:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read", GrantRead=f'uri="{ALL_USERS}"')
    assert info.value.response["Error"]["Code"] == "InvalidRequest"


def test_second_user_granted_by_id_and_policy_document(daemon, s3, bucket):
    access = "grantee-" + uuid.uuid4().hex[:8]
    subprocess.run([BIN, "--data-dir", daemon.data_dir, "credentials", "add", "--access-key", access,
                    "--secret-key", "grantee-secret"], check=True, capture_output=True)
    other = make_client(daemon.endpoint, access_key=access, secret_key="grantee-secret")
    other_id = hashlib.sha256(access.encode()).hexdigest()
    s3.put_object(Bucket=bucket, Key="shared", Body=b"for you")
    with pytest.raises(ClientError) as info:
        other.list_objects_v2(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    s3.put_bucket_acl(Bucket=bucket, GrantRead=f'id="{other_id}"')
    assert [o["Key"] for o in other.list_objects_v2(Bucket=bucket)["Contents"]] == ["shared"]
    with pytest.raises(ClientError):
        other.get_object(Bucket=bucket, Key="shared")
    owner = s3.get_object_acl(Bucket=bucket, Key="shared")["Owner"]
    s3.put_object_acl(Bucket=bucket, Key="shared", AccessControlPolicy={
        "Owner": owner,
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": other_id}, "Permission": "READ"},
        ],
    })
    assert other.get_object(Bucket=bucket, Key="shared")["Body"].read() == b"for you"
    with pytest.raises(ClientError) as info:
        other.put_object(Bucket=bucket, Key="nope", Body=b"x")
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
