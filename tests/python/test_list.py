"""ListObjects v1 and v2 against a model of S3's answers, paged exhaustively."""

import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, SECRET_KEY

KEYS = ["a", "a/b", "a/c/d", "a/c/e", "b/x", "b/y", "c", "d/", "e e", "f+g", "z", "é/1", "é/2"]


def model(prefix="", delimiter=None, after=""):
    """Entries S3 returns in order: ('key', k) or ('prefix', p)."""
    entries, seen = [], set()
    for key in sorted(KEYS, key=lambda k: k.encode()):
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if delimiter and delimiter in rest:
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if common in seen or common.encode() <= after.encode():
                continue
            seen.add(common)
            entries.append(("prefix", common))
        elif key.encode() > after.encode():
            entries.append(("key", key))
    return entries


@pytest.fixture
def filled(s3, bucket):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def page_entries(page):
    entries = [("key", o["Key"]) for o in page.get("Contents", [])]
    entries += [("prefix", p["Prefix"]) for p in page.get("CommonPrefixes", [])]
    return sorted(entries, key=lambda e: e[1].encode())


@pytest.mark.parametrize("prefix,delimiter", [("", None), ("", "/"), ("a/", "/"), ("a", None), ("é", "/"), ("zz", None)])
@pytest.mark.parametrize("max_keys", [1, 2, 1000])
def test_v2_pages_match_model(s3, filled, prefix, delimiter, max_keys):
    collected, token = [], None
    for _ in range(50):
        kwargs = dict(Bucket=filled, Prefix=prefix, MaxKeys=max_keys)
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_objects_v2(**kwargs)
        assert page["KeyCount"] == len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        assert page["KeyCount"] <= max_keys
        collected += page_entries(page)
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert collected == model(prefix, delimiter)


@pytest.mark.parametrize("delimiter", [None, "/"])
def test_v1_pages_with_markers(s3, filled, delimiter):
    collected, marker = [], ""
    for _ in range(50):
        kwargs = dict(Bucket=filled, MaxKeys=2, Marker=marker)
        if delimiter:
            kwargs["Delimiter"] = delimiter
        page = s3.list_objects(**kwargs)
        entries = page_entries(page)
        collected += entries
        if not page["IsTruncated"]:
            break
        if delimiter:
            marker = page["NextMarker"]
        else:
            assert "NextMarker" not in page
            marker = entries[-1][1]
    assert collected == model("", delimiter)
    owner = s3.list_objects(Bucket=filled, MaxKeys=1)["Contents"][0]["Owner"]
    assert owner["ID"] and owner["DisplayName"] == ACCESS_KEY


def test_start_after_and_fetch_owner(s3, filled):
    page = s3.list_objects_v2(Bucket=filled, StartAfter="b/x")
    assert [o["Key"] for o in page["Contents"]][:2] == ["b/y", "c"]
    assert page["StartAfter"] == "b/x"
    assert "Owner" not in page["Contents"][0]
    page = s3.list_objects_v2(Bucket=filled, FetchOwner=True, MaxKeys=1)
    assert page["Contents"][0]["Owner"]["DisplayName"] == ACCESS_KEY
    assert page["Contents"][0]["StorageClass"] == "STANDARD"
    assert page["Contents"][0]["Size"] == 1


def test_max_keys_zero_and_invalid(s3, filled, daemon):
    page = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert page["KeyCount"] == 0 and "Contents" not in page
    headers, _ = sigv4.sign_headers("GET", f"/{filled}", [("list-type", "2"), ("max-keys", "-1")],
                                    {"host": f"127.0.0.1:{daemon.port}"}, sigv4.EMPTY_SHA256,
                                    ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "GET", f"/{filled}", headers, query="list-type=2&max-keys=-1")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body


def test_encoding_type_url(daemon, filled):
    query = [("list-type", "2"), ("encoding-type", "url"), ("prefix", "e")]
    headers, _ = sigv4.sign_headers("GET", f"/{filled}", query, {"host": f"127.0.0.1:{daemon.port}"},
                                    sigv4.EMPTY_SHA256, ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    status, _, body = sigv4.request(daemon.port, "GET", f"/{filled}", headers,
                                    query="list-type=2&encoding-type=url&prefix=e")
    assert status == 200
    assert b"<Key>e%20e</Key>" in body and b"<EncodingType>url</EncodingType>" in body


def test_list_missing_bucket(s3):
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket="does-not-exist-xyz")
    assert info.value.response["Error"]["Code"] == "NoSuchBucket"


def test_versions_of_an_unversioned_bucket(s3, filled):
    assert "Status" not in s3.get_bucket_versioning(Bucket=filled)
    versions, marker = [], None
    for _ in range(50):
        kwargs = dict(Bucket=filled, MaxKeys=3)
        if marker:
            kwargs["KeyMarker"] = marker
        page = s3.list_object_versions(**kwargs)
        for version in page.get("Versions", []):
            assert version["VersionId"] == "null" and version["IsLatest"]
            versions.append(version["Key"])
        if not page["IsTruncated"]:
            break
        marker = page["NextKeyMarker"]
    assert versions == [k for kind, k in model() if kind == "key"]
    # A versioning-aware cleaner deletes by (key, "null") version.
    s3.delete_objects(Bucket=filled, Delete={"Objects": [{"Key": k, "VersionId": "null"} for k in KEYS]})
    assert s3.list_object_versions(Bucket=filled).get("Versions", []) == []
