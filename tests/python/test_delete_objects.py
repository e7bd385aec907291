"""DeleteObjects (batch) and conditional DELETE."""

import hashlib

import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, SECRET_KEY


def test_batch_delete_reports_each_key(s3, bucket):
    keys = ["plain", "  lead and trail  ", "dir/inner", "tab\tkey"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys + ["never-existed"]]})
    assert sorted(d["Key"] for d in result["Deleted"]) == sorted(keys + ["never-existed"])
    assert "Errors" not in result
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_quiet_mode_lists_nothing(s3, bucket):
    s3.put_object(Bucket=bucket, Key="q", Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q"}], "Quiet": True})
    assert "Deleted" not in result and "Errors" not in result
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_more_than_1000_keys_is_malformed(s3, bucket):
    with pytest.raises(ClientError) as info:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert info.value.response["Error"]["Code"] == "MalformedXML"


@pytest.mark.parametrize("body", [b"not xml", b"<Delete></Delete>", b"<Other><Object><Key>a</Key></Object></Other>"])
def test_bad_documents_are_malformed(daemon, bucket, body):
    headers = {"host": f"127.0.0.1:{daemon.port}"}
    headers, _ = sigv4.sign_headers("POST", f"/{bucket}", [("delete", "")], headers,
                                    hashlib.sha256(body).hexdigest(), ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, resp = sigv4.request(daemon.port, "POST", f"/{bucket}", headers, body, query="delete=")
    assert status == 400 and b"<Code>MalformedXML</Code>" in resp


def test_conditional_delete(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"x")["ETag"]
    with pytest.raises(ClientError) as info:
        s3.delete_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="c", IfMatch=etag)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
