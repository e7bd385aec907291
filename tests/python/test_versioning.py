"""Object versioning by S3's rules: the bucket's versioning state, versions and
delete markers through every operation that names a version, ListObjectVersions
paged, a seeded random sequence against a model of the rules, and racing writers."""

import base64
import collections
import hashlib
import os
import random
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ElementTree

import botocore
import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, BIN, SECRET_KEY, make_client

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
# The random sequence's seed; BLEEPSTORE_VERSIONING_SEED replays another.
SEED = int(os.environ.get("BLEEPSTORE_VERSIONING_SEED", "20240611"))


# ---------------------------------------------------------------- helpers

def error_of(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response


def status_of(response):
    return response["ResponseMetadata"]["HTTPStatusCode"]


def header_of(response, name):
    return response["ResponseMetadata"]["HTTPHeaders"].get(name)


def etag_of(body):
    return '"%s"' % hashlib.md5(body).hexdigest()


def same_version(got, expected):
    """A version id as answered: the null version may also go without the header."""
    return got == expected or (expected == "null" and got is None)


def enable(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def suspend(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def put_version(s3, bucket, key, body):
    """PUT in an Enabled bucket: the new version's id, checked to be a real one."""
    put = s3.put_object(Bucket=bucket, Key=key, Body=body)
    version = put.get("VersionId")
    assert version and version != "null", f"PUT {key} in an Enabled bucket gave VersionId {version!r}"
    assert put["ETag"] == etag_of(body)
    return version


def delete_marker(s3, bucket, key):
    """DELETE without a version in an Enabled bucket: the new marker's id."""
    deleted = s3.delete_object(Bucket=bucket, Key=key)
    assert deleted.get("DeleteMarker") is True, f"DELETE {key} made no delete marker: {deleted}"
    marker = deleted.get("VersionId")
    assert marker and marker != "null", f"DELETE {key} gave marker VersionId {marker!r}"
    return marker


def versions_of(s3, bucket, key=None):
    """ListObjectVersions through boto3 (one page): (versions, markers), each a list of
    (key, VersionId, IsLatest) in answer order; only `key`'s if given."""
    page = s3.list_object_versions(Bucket=bucket, **({"Prefix": key} if key else {}))
    assert not page["IsTruncated"]
    keep = (lambda e: e["Key"] == key) if key else (lambda e: True)
    versions = [(v["Key"], v["VersionId"], v["IsLatest"]) for v in page.get("Versions", []) if keep(v)]
    markers = [(m["Key"], m["VersionId"], m["IsLatest"]) for m in page.get("DeleteMarkers", []) if keep(m)]
    return versions, markers


def current_keys(s3, bucket):
    """The keys ListObjectsV2 and ListObjects show, checked to agree."""
    v2 = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket).get("Contents", [])]
    assert v1 == v2, f"ListObjects shows {v1}, ListObjectsV2 shows {v2}"
    return v2


def signed(daemon, method, path, query=(), body=b"", headers=None):
    """One SigV4-signed raw request: (status, headers, body)."""
    headers = {"host": f"127.0.0.1:{daemon.port}", **(headers or {})}
    headers, _ = sigv4.sign_headers(method, path, list(query), headers, hashlib.sha256(body).hexdigest(),
                                    ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    return sigv4.request(daemon.port, method, path, headers, body, query=sigv4.raw_query(query))


def put_versioning_raw(daemon, bucket, document):
    """PutBucketVersioning with exactly these bytes as the configuration."""
    md5 = base64.b64encode(hashlib.md5(document).digest()).decode()
    return signed(daemon, "PUT", f"/{bucket}", [("versioning", "")], document, {"content-md5": md5})


def local(tag):
    return tag.rsplit("}", 1)[-1]


def child_text(element, name):
    for child in element:
        if local(child.tag) == name:
            return child.text or ""
    return None


# One listed entry: kind is "version", "marker" or "prefix" (a CommonPrefixes; then
# name is the prefix and the rest is None). etag is None for markers.
Entry = collections.namedtuple("Entry", "kind name version_id is_latest etag")


def versions_page(daemon, bucket, **params):
    """One ListObjectVersions page, read from the raw XML so that the order of
    versions and delete markers among each other is kept: (entries, truncated,
    next key marker, next version id marker)."""
    names = {"prefix": "prefix", "delimiter": "delimiter", "max_keys": "max-keys",
             "key_marker": "key-marker", "version_id_marker": "version-id-marker"}
    query = [("versions", "")] + [(names[k], str(v)) for k, v in params.items() if v is not None]
    status, _, body = signed(daemon, "GET", f"/{bucket}", query)
    assert status == 200, f"ListObjectVersions {params} answered {status}: {body[:400]!r}"
    root = ElementTree.fromstring(body)
    entries, prefixes = [], []
    for child in root:
        tag = local(child.tag)
        if tag in ("Version", "DeleteMarker"):
            entries.append(Entry("version" if tag == "Version" else "marker", child_text(child, "Key"),
                                 child_text(child, "VersionId"), child_text(child, "IsLatest") == "true",
                                 child_text(child, "ETag") if tag == "Version" else None))
        elif tag == "CommonPrefixes":
            prefixes.append(Entry("prefix", child_text(child, "Prefix"), None, None, None))
    keys = [e.name.encode() for e in entries]
    assert keys == sorted(keys), f"ListObjectVersions {params}: keys out of order in a page: {entries}"
    # Versions and markers of one key keep their order (a stable sort); the common
    # prefixes go in among the keys where they sort.
    merged = sorted(entries + prefixes, key=lambda e: e.name.encode())
    truncated = child_text(root, "IsTruncated")
    assert truncated in ("true", "false"), f"IsTruncated is {truncated!r}"
    return merged, truncated == "true", child_text(root, "NextKeyMarker"), child_text(root, "NextVersionIdMarker")


def walk_versions(daemon, bucket, max_keys, prefix=None, delimiter=None):
    """Every entry of ListObjectVersions, walked page by page along the Next*Marker
    of each answer, each page checked: no more than max_keys entries, a truncated page
    full and with a NextKeyMarker, the last page empty only if everything is."""
    collected, key_marker, version_marker, seen_markers = [], None, None, set()
    for _ in range(1000):
        entries, truncated, next_key, next_version = versions_page(
            daemon, bucket, max_keys=max_keys, prefix=prefix, delimiter=delimiter,
            key_marker=key_marker, version_id_marker=version_marker)
        where = f"page after ({key_marker!r}, {version_marker!r}) with MaxKeys={max_keys}"
        assert len(entries) <= max_keys, f"{where} holds {len(entries)} entries"
        if not truncated:
            assert entries or not collected, f"{where} is empty but the page before said IsTruncated"
            return collected + entries
        assert len(entries) == max_keys, f"{where} is truncated with only {len(entries)} entries"
        assert next_key, f"{where} is truncated without a NextKeyMarker"
        collected += entries
        key_marker, version_marker = next_key, next_version or None
        assert (key_marker, version_marker) not in seen_markers, f"{where}: the markers repeat"
        seen_markers.add((key_marker, version_marker))
    raise AssertionError("ListObjectVersions never ended")


def add_user(daemon):
    """A second user (its own key pair) and its client."""
    access = "ver-" + uuid.uuid4().hex[:8]
    subprocess.run([BIN, "--data-dir", daemon.data_dir, "credentials", "add", "--access-key", access,
                    "--secret-key", "versioning-secret"], check=True, capture_output=True, timeout=30)
    return access, make_client(daemon.endpoint, access_key=access, secret_key="versioning-secret")


def remove_bucket(s3, name):
    """Deletes every upload, version and delete marker by id, then the bucket."""
    try:
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for _ in range(100):
            page = s3.list_object_versions(Bucket=name)
            entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
            if not entries:
                break
            for entry in entries:
                s3.delete_object(Bucket=name, Key=entry["Key"], VersionId=entry["VersionId"])
        s3.delete_bucket(Bucket=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucket":
            raise


@pytest.fixture
def vbucket(s3):
    """A fresh bucket, never versioned yet. The suite's `bucket` fixture removes only
    current objects, which leaves a versioned bucket not empty; this one removes every
    version and marker by id afterwards."""
    name = "v-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name)
    yield name
    remove_bucket(s3, name)


# ---------------------------------------------------------------- 1. the bucket's state

def test_versioning_state_goes_enabled_and_suspended(s3, vbucket):
    """A new bucket has no Status; Enabled and Suspended read back as set."""
    state = s3.get_bucket_versioning(Bucket=vbucket)
    assert "Status" not in state and "MFADelete" not in state, state
    enable(s3, vbucket)
    assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Enabled"
    suspend(s3, vbucket)
    assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Suspended"
    enable(s3, vbucket)
    assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Enabled"


def test_bad_configurations_are_refused_and_change_nothing(daemon, s3, vbucket):
    """MFADelete=Enabled is NotImplemented (501); a Status other than Enabled or
    Suspended is a 400 (so a versioned bucket never goes back to unversioned);
    malformed XML is MalformedXML; none of them changes the state."""
    for state in ("Enabled", "Suspended"):
        s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": state})
        err = error_of(s3.put_bucket_versioning, Bucket=vbucket,
                       VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
        assert err["Error"]["Code"] == "NotImplemented" and status_of(err) == 501, err
        # boto3 sends any Status string as given.
        for bad in ("Disabled", "Off", "enabled", ""):
            err = error_of(s3.put_bucket_versioning, Bucket=vbucket, VersioningConfiguration={"Status": bad})
            assert status_of(err) == 400, f"Status {bad!r} answered {status_of(err)}: {err['Error']}"
        for document in (b"<VersioningConfiguration><Status>Enabled</Status>", b"not xml at all",
                         b"<VersioningConfiguration><Status>Enabled</Stat></VersioningConfiguration>"):
            status, _, body = put_versioning_raw(daemon, vbucket, document)
            assert status == 400 and b"<Code>MalformedXML</Code>" in body, (document, status, body[:300])
        assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == state, \
            f"a refused configuration changed the state from {state}"


def test_versioning_needs_the_bucket_owner(daemon, s3, vbucket):
    """Another user gets AccessDenied on Put and GetBucketVersioning of a bucket it
    does not own, and its attempt changes nothing."""
    access, other = add_user(daemon)
    try:
        enable(s3, vbucket)
        err = error_of(other.put_bucket_versioning, Bucket=vbucket,
                       VersioningConfiguration={"Status": "Suspended"})
        assert err["Error"]["Code"] == "AccessDenied", err["Error"]
        err = error_of(other.get_bucket_versioning, Bucket=vbucket)
        assert err["Error"]["Code"] == "AccessDenied", err["Error"]
        assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Enabled"
    finally:
        subprocess.run([BIN, "--data-dir", daemon.data_dir, "credentials", "remove", "--access-key", access],
                       capture_output=True, timeout=30)


# ---------------------------------------------------------------- 2. versions

def test_each_put_is_a_version(s3, vbucket):
    """In an Enabled bucket every PUT makes a distinct version; GET/HEAD without a
    version give the latest, with one give exactly that version (bytes, ETag, the id
    echoed); ListObjectVersions lists them newest first, only the first IsLatest."""
    enable(s3, vbucket)
    bodies = [f"version {n} ".encode() * (n + 1) for n in range(4)]
    ids = [put_version(s3, vbucket, "doc", body) for body in bodies]
    assert len(set(ids)) == len(ids), f"version ids repeat: {ids}"
    got = s3.get_object(Bucket=vbucket, Key="doc")
    assert got["Body"].read() == bodies[-1] and got.get("VersionId") == ids[-1], got.get("VersionId")
    head = s3.head_object(Bucket=vbucket, Key="doc")
    assert head["ETag"] == etag_of(bodies[-1]) and head.get("VersionId") == ids[-1]
    for version, body in zip(ids, bodies):
        got = s3.get_object(Bucket=vbucket, Key="doc", VersionId=version)
        assert got["Body"].read() == body, f"GET of version {version} gave other bytes"
        assert got["ETag"] == etag_of(body) and got.get("VersionId") == version
        head = s3.head_object(Bucket=vbucket, Key="doc", VersionId=version)
        assert head["ETag"] == etag_of(body) and head["ContentLength"] == len(body)
        assert head.get("VersionId") == version
    page = s3.list_object_versions(Bucket=vbucket)
    listed = [(v["Key"], v["VersionId"], v["IsLatest"], v["ETag"], v["Size"]) for v in page["Versions"]]
    expected = [("doc", v, n == 0, etag_of(b), len(b)) for n, (v, b) in enumerate(zip(ids[::-1], bodies[::-1]))]
    assert listed == expected, "ListObjectVersions is not the versions newest first with one IsLatest"
    assert "DeleteMarkers" not in page or page["DeleteMarkers"] == []


# ---------------------------------------------------------------- 3. delete markers

def test_delete_adds_a_marker_that_hides_the_key(s3, vbucket):
    """DELETE without a version adds a delete marker: GET/HEAD answer 404 naming the
    marker in their headers, GET/HEAD of the marker's id 405, the key leaves
    ListObjects(V2), and ListObjectVersions shows the marker as latest above the
    (now noncurrent) versions, which stay readable by id."""
    enable(s3, vbucket)
    first = put_version(s3, vbucket, "k", b"first")
    second = put_version(s3, vbucket, "k", b"second")
    marker = delete_marker(s3, vbucket, "k")
    assert marker not in (first, second)
    for call in (s3.get_object, s3.head_object):
        err = error_of(call, Bucket=vbucket, Key="k")
        assert status_of(err) == 404, f"{call.__name__} of a deleted key answered {status_of(err)}"
        assert header_of(err, "x-amz-delete-marker") == "true", err["ResponseMetadata"]["HTTPHeaders"]
        assert header_of(err, "x-amz-version-id") == marker, err["ResponseMetadata"]["HTTPHeaders"]
        err = error_of(call, Bucket=vbucket, Key="k", VersionId=marker)
        assert status_of(err) == 405, f"{call.__name__} of the marker's id answered {status_of(err)}"
    assert error_of(s3.get_object, Bucket=vbucket, Key="k")["Error"]["Code"] == "NoSuchKey"
    assert error_of(s3.get_object, Bucket=vbucket, Key="k", VersionId=marker)["Error"]["Code"] == "MethodNotAllowed"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=first)["Body"].read() == b"first"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=second)["Body"].read() == b"second"
    assert current_keys(s3, vbucket) == [], "a key whose latest version is a delete marker is listed"
    versions, markers = versions_of(s3, vbucket)
    assert markers == [("k", marker, True)], markers
    assert versions == [("k", second, False), ("k", first, False)], versions


def test_deleting_the_marker_restores_the_key(s3, vbucket):
    """DELETE of the delete marker by its id (answered DeleteMarker=True, id echoed)
    makes the version under it current again."""
    enable(s3, vbucket)
    first = put_version(s3, vbucket, "k", b"first")
    second = put_version(s3, vbucket, "k", b"second")
    marker = delete_marker(s3, vbucket, "k")
    deleted = s3.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert deleted.get("DeleteMarker") is True and deleted.get("VersionId") == marker, deleted
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"second" and got.get("VersionId") == second
    assert s3.head_object(Bucket=vbucket, Key="k").get("VersionId") == second
    assert current_keys(s3, vbucket) == ["k"]
    assert versions_of(s3, vbucket) == ([("k", second, True), ("k", first, False)], [])


# ---------------------------------------------------------------- 4. deleting versions

def test_delete_by_version_id_removes_only_that_version(s3, vbucket):
    """DELETE with a version id removes exactly that version and adds no marker; when
    it was the current one, the newest remaining version becomes current; deleting
    an id that is gone again answers 204 with the id echoed and changes nothing."""
    enable(s3, vbucket)
    one, two, three = (put_version(s3, vbucket, "k", body) for body in (b"one", b"two", b"three"))
    deleted = s3.delete_object(Bucket=vbucket, Key="k", VersionId=two)
    assert status_of(deleted) == 204 and deleted.get("VersionId") == two, deleted
    assert not deleted.get("DeleteMarker"), "deleting a version by id reported a delete marker"
    assert versions_of(s3, vbucket) == ([("k", three, True), ("k", one, False)], []), "not only that version went"
    for call in (s3.get_object, s3.head_object):
        err = error_of(call, Bucket=vbucket, Key="k", VersionId=two)
        assert status_of(err) == 404, f"{call.__name__} of a deleted version answered {status_of(err)}"
    assert error_of(s3.get_object, Bucket=vbucket, Key="k", VersionId=two)["Error"]["Code"] == "NoSuchVersion"
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"three"
    # The current version, by id: the next newer-most takes over.
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=three)
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"one" and got.get("VersionId") == one
    assert versions_of(s3, vbucket) == ([("k", one, True)], [])
    assert current_keys(s3, vbucket) == ["k"]
    for gone in (two, three):
        again = s3.delete_object(Bucket=vbucket, Key="k", VersionId=gone)
        assert status_of(again) == 204 and again.get("VersionId") == gone, again
        assert not again.get("DeleteMarker")
    assert versions_of(s3, vbucket) == ([("k", one, True)], [])


def test_malformed_version_id_is_invalid_argument(s3, vbucket):
    """A version id that no version could have is a 400 InvalidArgument."""
    enable(s3, vbucket)
    put_version(s3, vbucket, "k", b"x")
    err = error_of(s3.get_object, Bucket=vbucket, Key="k", VersionId="not-a-version")
    assert status_of(err) == 400 and err["Error"]["Code"] == "InvalidArgument", err["Error"]
    assert status_of(error_of(s3.head_object, Bucket=vbucket, Key="k", VersionId="not-a-version")) == 400


# ---------------------------------------------------------------- 5. the null version

def test_objects_from_before_versioning_are_the_null_version(s3, vbucket):
    """An object written before versioning is the `null` version: listed as such, still
    readable by VersionId=null after an overwrite in the Enabled bucket, and deleting
    VersionId=null removes only it."""
    s3.put_object(Bucket=vbucket, Key="k", Body=b"before")
    assert versions_of(s3, vbucket) == ([("k", "null", True)], [])
    enable(s3, vbucket)
    after = put_version(s3, vbucket, "k", b"after")
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId="null")["Body"].read() == b"before"
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"after"
    assert versions_of(s3, vbucket) == ([("k", after, True), ("k", "null", False)], [])
    deleted = s3.delete_object(Bucket=vbucket, Key="k", VersionId="null")
    assert deleted.get("VersionId") == "null" and not deleted.get("DeleteMarker"), deleted
    assert versions_of(s3, vbucket) == ([("k", after, True)], [])
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"after"
    err = error_of(s3.get_object, Bucket=vbucket, Key="k", VersionId="null")
    assert err["Error"]["Code"] == "NoSuchVersion", err["Error"]


# ---------------------------------------------------------------- 6. suspended

def test_suspended_puts_replace_the_null_version(s3, vbucket):
    """Under Suspended a PUT writes the null version (no id or "null"), replacing the
    previous null version, while versions made when Enabled survive."""
    enable(s3, vbucket)
    kept = put_version(s3, vbucket, "k", b"enabled")
    suspend(s3, vbucket)
    put = s3.put_object(Bucket=vbucket, Key="k", Body=b"suspended 1")
    assert put.get("VersionId") in (None, "null"), f"a Suspended PUT gave VersionId {put.get('VersionId')!r}"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId="null")["Body"].read() == b"suspended 1"
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"suspended 1" and same_version(got.get("VersionId"), "null")
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=kept)["Body"].read() == b"enabled"
    s3.put_object(Bucket=vbucket, Key="k", Body=b"suspended 2")
    assert versions_of(s3, vbucket) == ([("k", "null", True), ("k", kept, False)], []), \
        "a second Suspended PUT did not replace the null version"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId="null")["Body"].read() == b"suspended 2"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=kept)["Body"].read() == b"enabled"


def test_suspended_delete_adds_a_null_marker(s3, vbucket):
    """Under Suspended a DELETE without a version replaces the null version with a
    null delete marker; re-enabling stacks new versions above it."""
    enable(s3, vbucket)
    kept = put_version(s3, vbucket, "k", b"enabled")
    suspend(s3, vbucket)
    s3.put_object(Bucket=vbucket, Key="k", Body=b"null bytes")
    deleted = s3.delete_object(Bucket=vbucket, Key="k")
    assert deleted.get("DeleteMarker") is True, deleted
    assert deleted.get("VersionId") in (None, "null"), f"a Suspended DELETE gave VersionId {deleted.get('VersionId')!r}"
    assert versions_of(s3, vbucket) == ([("k", kept, False)], [("k", "null", True)]), \
        "the null version was not replaced by a null delete marker"
    err = error_of(s3.get_object, Bucket=vbucket, Key="k")
    assert err["Error"]["Code"] == "NoSuchKey" and header_of(err, "x-amz-delete-marker") == "true"
    assert status_of(error_of(s3.get_object, Bucket=vbucket, Key="k", VersionId="null")) == 405
    assert current_keys(s3, vbucket) == []
    enable(s3, vbucket)
    assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Enabled"
    newer = put_version(s3, vbucket, "k", b"re-enabled")
    assert newer != kept
    assert versions_of(s3, vbucket) == ([("k", newer, True), ("k", kept, False)], [("k", "null", False)])
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"re-enabled"


# ---------------------------------------------------------------- 7. paging

def fill_for_paging(s3, bucket):
    """Keys with versions and delete markers mixed, one of them with 7 entries, and a
    null version from before versioning: the full listing expected, in order."""
    written = collections.defaultdict(list)  # key -> (kind, version id, etag), oldest first

    def put(key, body):
        written[key].append(("version", put_version(s3, bucket, key, body), etag_of(body)))

    def delete(key):
        written[key].append(("marker", delete_marker(s3, bucket, key), None))

    s3.put_object(Bucket=bucket, Key="null-first", Body=b"before versioning")
    written["null-first"].append(("version", "null", etag_of(b"before versioning")))
    enable(s3, bucket)
    put("a", b"a")
    for n, step in enumerate(["put", "put", "delete", "put", "put", "delete", "put"]):
        if step == "put":
            put("b", f"b{n}".encode())
        else:
            delete("b")
    put("c/1", b"c1 first")
    put("c/1", b"c1 second")
    put("c/2", b"c2")
    delete("c/2")
    put("d", b"d")
    delete("d")
    delete("d")
    put("e/f/g", b"efg")
    put("null-first", b"after versioning")
    return [Entry(kind, key, version, n == 0, etag) for key in sorted(written, key=str.encode)
            for n, (kind, version, etag) in enumerate(reversed(written[key]))]


def rolled_up(entries, prefix, delimiter):
    """What a listing with this prefix and delimiter shows of the full one: entries
    under the prefix, those past a delimiter rolled into one CommonPrefixes each."""
    out, seen = [], set()
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        rest = entry.name[len(prefix):]
        if delimiter and delimiter in rest:
            common = prefix + rest[:rest.index(delimiter) + len(delimiter)]
            if common not in seen:
                seen.add(common)
                out.append(Entry("prefix", common, None, None, None))
        else:
            out.append(entry)
    return out


@pytest.mark.parametrize("max_keys", [1, 2, 3])
def test_list_object_versions_pages_walk_everything_once(daemon, s3, vbucket, max_keys):
    """Walking KeyMarker/VersionIdMarker along NextKeyMarker/NextVersionIdMarker with a
    small MaxKeys gives the single full listing exactly: every version and marker once,
    in order (one key's 7 entries spanning pages), IsTruncated right on every page;
    boto3's paginator sees the same entries."""
    expected = fill_for_paging(s3, vbucket)
    full = walk_versions(daemon, vbucket, 1000)
    assert full == expected, "the full listing is not the versions and markers newest first per key"
    paged = walk_versions(daemon, vbucket, max_keys)
    assert paged == full, f"paging with MaxKeys={max_keys} repeated, skipped or reordered entries"
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(
            Bucket=vbucket, PaginationConfig={"PageSize": max_keys}):
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        seen += [(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])]
    assert sorted(seen) == sorted((e.name, e.version_id) for e in full), "boto3's paginator saw other entries"


@pytest.mark.parametrize("prefix,delimiter", [("", "/"), ("c/", "/"), ("e/", "/"), ("b", None), ("c/", None)])
@pytest.mark.parametrize("max_keys", [1, 2, 3, 1000])
def test_list_object_versions_prefix_and_delimiter(daemon, s3, vbucket, prefix, delimiter, max_keys):
    """Prefix and Delimiter select and roll up as ListObjects does (each CommonPrefixes
    once, counted in MaxKeys), paged or not."""
    expected = rolled_up(fill_for_paging(s3, vbucket), prefix, delimiter)
    listed = walk_versions(daemon, vbucket, max_keys, prefix=prefix, delimiter=delimiter)
    assert listed == expected, f"Prefix={prefix!r} Delimiter={delimiter!r} MaxKeys={max_keys}"
    if delimiter and not prefix and max_keys == 1000:
        page = s3.list_object_versions(Bucket=vbucket, Delimiter=delimiter)
        assert [p["Prefix"] for p in page.get("CommonPrefixes", [])] == ["c/", "e/"]


# ---------------------------------------------------------------- 8. DeleteObjects

def test_batch_delete_in_a_versioned_bucket(s3, vbucket):
    """DeleteObjects in an Enabled bucket: a key alone gets a delete marker (reported
    DeleteMarker=True with its DeleteMarkerVersionId), a key with a version id loses
    that version, and a key with a delete marker's id loses that marker."""
    enable(s3, vbucket)
    a1 = put_version(s3, vbucket, "a", b"a1")
    a2 = put_version(s3, vbucket, "a", b"a2")
    b1 = put_version(s3, vbucket, "b", b"b1")
    c1 = put_version(s3, vbucket, "c", b"c1")
    c_marker = delete_marker(s3, vbucket, "c")
    result = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [
        {"Key": "b"}, {"Key": "a", "VersionId": a1}, {"Key": "c", "VersionId": c_marker}]})
    assert "Errors" not in result, result["Errors"]
    deleted = {d["Key"]: d for d in result["Deleted"]}
    assert sorted(deleted) == ["a", "b", "c"], result["Deleted"]
    b_marker = deleted["b"].get("DeleteMarkerVersionId")
    assert deleted["b"].get("DeleteMarker") is True and b_marker and b_marker != "null", deleted["b"]
    assert deleted["a"].get("VersionId") == a1 and not deleted["a"].get("DeleteMarker"), deleted["a"]
    assert deleted["c"].get("DeleteMarker") is True, deleted["c"]
    assert deleted["c"].get("DeleteMarkerVersionId") == c_marker, deleted["c"]
    assert deleted["c"].get("VersionId", c_marker) == c_marker, deleted["c"]
    versions, markers = versions_of(s3, vbucket)
    assert versions == [("a", a2, True), ("b", b1, False), ("c", c1, True)], versions
    assert markers == [("b", b_marker, True)], markers
    assert error_of(s3.get_object, Bucket=vbucket, Key="a", VersionId=a1)["Error"]["Code"] == "NoSuchVersion"
    assert error_of(s3.get_object, Bucket=vbucket, Key="b")["Error"]["Code"] == "NoSuchKey"
    assert s3.get_object(Bucket=vbucket, Key="c")["Body"].read() == b"c1"
    assert current_keys(s3, vbucket) == ["a", "c"]


# ---------------------------------------------------------------- 9. copies and multipart

def test_copy_and_multipart_make_versions(s3, vbucket):
    """CopyObject into an Enabled bucket makes a new version; a CopySource with a
    VersionId copies that old version (CopySourceVersionId echoes it), as does
    UploadPartCopy; CompleteMultipartUpload makes a version GET accepts."""
    enable(s3, vbucket)
    old = put_version(s3, vbucket, "src", b"old source bytes")
    new = put_version(s3, vbucket, "src", b"new source bytes")
    copy = s3.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src"})
    first_copy = copy.get("VersionId")
    assert first_copy and first_copy != "null", f"CopyObject gave VersionId {first_copy!r}"
    assert s3.get_object(Bucket=vbucket, Key="dst", VersionId=first_copy)["Body"].read() == b"new source bytes"
    copy = s3.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": old})
    assert copy.get("CopySourceVersionId") == old, f"CopySourceVersionId is {copy.get('CopySourceVersionId')!r}"
    second_copy = copy.get("VersionId")
    assert second_copy and second_copy not in ("null", first_copy), f"CopyObject gave VersionId {second_copy!r}"
    assert copy["CopyObjectResult"]["ETag"] == etag_of(b"old source bytes")
    got = s3.get_object(Bucket=vbucket, Key="dst")
    assert got["Body"].read() == b"old source bytes" and got.get("VersionId") == second_copy
    assert s3.get_object(Bucket=vbucket, Key="dst", VersionId=first_copy)["Body"].read() == b"new source bytes"
    assert versions_of(s3, vbucket, "dst") == ([("dst", second_copy, True), ("dst", first_copy, False)], [])

    before = put_version(s3, vbucket, "mp", b"before the upload")
    upload = s3.create_multipart_upload(Bucket=vbucket, Key="mp")["UploadId"]
    part = s3.upload_part_copy(Bucket=vbucket, Key="mp", UploadId=upload, PartNumber=1,
                               CopySource={"Bucket": vbucket, "Key": "src", "VersionId": old})
    done = s3.complete_multipart_upload(Bucket=vbucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    made = done.get("VersionId")
    assert made and made not in ("null", before), f"CompleteMultipartUpload gave VersionId {made!r}"
    got = s3.get_object(Bucket=vbucket, Key="mp", VersionId=made)
    assert got["Body"].read() == b"old source bytes", "UploadPartCopy did not copy the named source version"
    assert got.get("VersionId") == made
    assert s3.get_object(Bucket=vbucket, Key="mp", VersionId=before)["Body"].read() == b"before the upload"
    assert versions_of(s3, vbucket, "mp") == ([("mp", made, True), ("mp", before, False)], [])


# ---------------------------------------------------------------- 10. ACLs and attributes

def test_acl_and_attributes_of_one_version(daemon, s3, vbucket):
    """Put/GetObjectAcl with a VersionId act on that version only: an old version made
    public-read is readable anonymously by its id while the current one stays private;
    GetObjectAttributes with a VersionId tells that version's ETag and size."""
    enable(s3, vbucket)
    old = put_version(s3, vbucket, "k", b"old and public")
    new = put_version(s3, vbucket, "k", b"new and private, longer")
    s3.put_object_acl(Bucket=vbucket, Key="k", VersionId=old, ACL="public-read")

    def public(**version):
        grants = s3.get_object_acl(Bucket=vbucket, Key="k", **version)["Grants"]
        return any(g["Grantee"].get("URI") == ALL_USERS and g["Permission"] == "READ" for g in grants)

    assert public(VersionId=old), "the old version's ACL does not grant AllUsers READ"
    assert not public(VersionId=new) and not public(), "the ACL of one version changed the current one's"
    anonymous = make_client(daemon.endpoint, signature_version=botocore.UNSIGNED)
    got = anonymous.get_object(Bucket=vbucket, Key="k", VersionId=old)
    assert got["Body"].read() == b"old and public"
    for version in ({}, {"VersionId": new}):
        err = error_of(anonymous.get_object, Bucket=vbucket, Key="k", **version)
        assert err["Error"]["Code"] == "AccessDenied", f"anonymous GET {version} answered {err['Error']}"
    for version, body in ((old, b"old and public"), (new, b"new and private, longer")):
        attributes = s3.get_object_attributes(Bucket=vbucket, Key="k", VersionId=version,
                                              ObjectAttributes=["ETag", "ObjectSize"])
        assert attributes["ETag"].strip('"') == hashlib.md5(body).hexdigest(), attributes
        assert attributes["ObjectSize"] == len(body), attributes


# ---------------------------------------------------------------- 11. DeleteBucket

def test_delete_bucket_needs_every_version_gone(s3):
    """A bucket holding only noncurrent versions and delete markers lists no objects
    but is not empty (BucketNotEmpty), nor while only markers are left; once every
    version and marker is deleted by id it can be deleted."""
    name = "v-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name)
    try:
        enable(s3, name)
        for key in ("k", "other"):
            put_version(s3, name, key, b"1")
            put_version(s3, name, key, b"2")
            delete_marker(s3, name, key)
        assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
        err = error_of(s3.delete_bucket, Bucket=name)
        assert err["Error"]["Code"] == "BucketNotEmpty" and status_of(err) == 409, err["Error"]
        versions, markers = versions_of(s3, name)
        for key, version, _ in versions:
            s3.delete_object(Bucket=name, Key=key, VersionId=version)
        err = error_of(s3.delete_bucket, Bucket=name)
        assert err["Error"]["Code"] == "BucketNotEmpty", "a bucket with only delete markers was deleted"
        for key, version, _ in markers:
            s3.delete_object(Bucket=name, Key=key, VersionId=version)
        assert versions_of(s3, name) == ([], [])
        s3.delete_bucket(Bucket=name)
        assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        remove_bucket(s3, name)


# ---------------------------------------------------------------- 12. conditional writes

def test_create_only_put_sees_only_the_current_version(s3, vbucket):
    """PUT with If-None-Match: * fails 412 while the key has a current version, and
    succeeds when its latest version is a delete marker, as a new version."""
    enable(s3, vbucket)
    first = s3.put_object(Bucket=vbucket, Key="once", Body=b"1", IfNoneMatch="*").get("VersionId")
    assert first and first != "null"
    err = error_of(s3.put_object, Bucket=vbucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert status_of(err) == 412, err["Error"]
    marker = delete_marker(s3, vbucket, "once")
    again = s3.put_object(Bucket=vbucket, Key="once", Body=b"3", IfNoneMatch="*").get("VersionId")
    assert again and again not in ("null", first, marker)
    assert s3.get_object(Bucket=vbucket, Key="once")["Body"].read() == b"3"
    assert status_of(error_of(s3.put_object, Bucket=vbucket, Key="once", Body=b"4", IfNoneMatch="*")) == 412
    assert versions_of(s3, vbucket) == ([("once", again, True), ("once", first, False)],
                                         [("once", marker, False)])


# ---------------------------------------------------------------- 13. model-based

Version = collections.namedtuple("Version", "id marker body")


def test_random_operations_follow_the_model(daemon, s3, vbucket):
    """A seeded random sequence of PUTs, DELETEs, DELETEs by id (of live or gone
    versions and markers), Suspend and Enable over 3 keys matches a model of S3's rules
    after every step: GET/HEAD of each key, and ListObjectVersions paged by 2 (the same
    entries in the same order, IsLatest only on each key's first)."""
    print(f"seed {SEED}")
    rng = random.Random(SEED)
    keys = ["k0", "k1", "k2/x"]
    model = {key: [] for key in keys}  # newest first
    issued = {key: [] for key in keys}  # every id the key ever had, live or gone
    history = []
    state = [None]  # None (never versioned), "Enabled" or "Suspended"

    def where():
        return f"seed {SEED}, step {len(history)}, last steps {history[-6:]}"

    def put(key):
        body = rng.randbytes(rng.randrange(0, 40))
        answer = s3.put_object(Bucket=vbucket, Key=key, Body=body)
        version = answer.get("VersionId")
        if state[0] == "Enabled":
            assert version and version != "null" and version not in issued[key], \
                f"Enabled PUT gave VersionId {version!r}; {where()}"
        else:
            assert version in (None, "null"), f"{state[0]} PUT gave VersionId {version!r}; {where()}"
            version = "null"
            model[key] = [v for v in model[key] if v.id != "null"]
        model[key].insert(0, Version(version, False, body))
        issued[key].append(version)
        return f"put {key} -> {version}"

    def delete(key):
        answer = s3.delete_object(Bucket=vbucket, Key=key)
        version = answer.get("VersionId")
        assert answer.get("DeleteMarker") is True, f"{state[0]} DELETE made no marker: {answer}; {where()}"
        if state[0] == "Enabled":
            assert version and version != "null" and version not in issued[key], \
                f"Enabled DELETE gave marker VersionId {version!r}; {where()}"
        else:
            assert version in (None, "null"), f"Suspended DELETE gave VersionId {version!r}; {where()}"
            version = "null"
            model[key] = [v for v in model[key] if v.id != "null"]
        model[key].insert(0, Version(version, True, None))
        issued[key].append(version)
        return f"delete {key} -> marker {version}"

    def delete_version(key):
        live = [v.id for v in model[key]]
        if live and rng.random() < 0.8:
            version = rng.choice(live)
        elif issued[key]:
            version = rng.choice(issued[key])
        else:
            return put(key)
        found = next((v for v in model[key] if v.id == version), None)
        answer = s3.delete_object(Bucket=vbucket, Key=key, VersionId=version)
        assert status_of(answer) == 204 and same_version(answer.get("VersionId"), version), \
            f"{answer}; {where()}"
        assert bool(answer.get("DeleteMarker")) == bool(found and found.marker), \
            f"DeleteMarker {answer.get('DeleteMarker')!r} deleting {'a marker' if found and found.marker else 'a version'}; {where()}"
        model[key] = [v for v in model[key] if v.id != version]
        return f"delete {key} version {version} ({'live' if found else 'gone'})"

    def switch(to):
        s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": to})
        state[0] = to
        assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == to, where()
        return to

    def check():
        for key in keys:
            latest = model[key][0] if model[key] else None
            if latest is None or latest.marker:
                for call in (s3.get_object, s3.head_object):
                    err = error_of(call, Bucket=vbucket, Key=key)
                    assert status_of(err) == 404, f"{call.__name__} {key} answered {status_of(err)}; {where()}"
                    if call == s3.get_object:
                        assert err["Error"]["Code"] == "NoSuchKey", f"GET {key}: {err['Error']}; {where()}"
                    if latest is not None:
                        assert header_of(err, "x-amz-delete-marker") == "true", where()
                        assert same_version(header_of(err, "x-amz-version-id"), latest.id), where()
            else:
                got = s3.get_object(Bucket=vbucket, Key=key)
                assert got["Body"].read() == latest.body, f"GET {key} is not version {latest.id}; {where()}"
                assert same_version(got.get("VersionId"), latest.id), f"GET {key}: {got.get('VersionId')!r}; {where()}"
                head = s3.head_object(Bucket=vbucket, Key=key)
                assert head["ETag"] == etag_of(latest.body) and same_version(head.get("VersionId"), latest.id), where()
        expected = [Entry("marker" if v.marker else "version", key, v.id, n == 0,
                          None if v.marker else etag_of(v.body))
                    for key in sorted(keys, key=str.encode) for n, v in enumerate(model[key])]
        listed = walk_versions(daemon, vbucket, 2)
        assert listed == expected, f"ListObjectVersions differs from the model; {where()}\n" \
                                   f"listed   {listed}\nexpected {expected}"

    # Before versioning: PUT writes and DELETE removes the null version, no markers.
    for key in keys:
        history.append(put(key))
    history.append(put("k1"))
    s3.delete_object(Bucket=vbucket, Key="k2/x")
    model["k2/x"] = []
    history.append("unversioned delete k2/x")
    check()
    history.append(switch("Enabled"))
    check()
    for _ in range(150):
        size = sum(len(entries) for entries in model.values())
        op = rng.choices(["put", "delete", "delete_version", "Suspended", "Enabled"],
                         weights=[35, 20, 30 if size < 24 else 60, 7, 8])[0]
        key = rng.choice(keys)
        if op == "put":
            history.append(put(key))
        elif op == "delete":
            history.append(delete(key))
        elif op == "delete_version":
            history.append(delete_version(key))
        else:
            history.append(switch(op))
        check()


# ---------------------------------------------------------------- 14. concurrency

def test_concurrent_puts_each_get_a_version(daemon, s3, vbucket):
    """16 writers PUT one key at once: every acknowledged VersionId is listed exactly
    once, 16 versions in all, one of them IsLatest, and GET gives that one's bytes."""
    enable(s3, vbucket)
    writers = 16
    clients = [daemon.client() for _ in range(writers)]
    barrier = threading.Barrier(writers, timeout=30)
    answers, failures = [], []

    def writer(n):
        body = f"writer {n} ".encode() * (n + 1)
        barrier.wait()
        try:
            answers.append((clients[n].put_object(Bucket=vbucket, Key="race", Body=body).get("VersionId"), body))
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append((n, error))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    acknowledged = dict(answers)
    ids = [version for version, _ in answers]
    assert len(acknowledged) == writers and None not in acknowledged and "null" not in acknowledged, \
        f"the {writers} PUTs were acknowledged with version ids {ids}"
    page = s3.list_object_versions(Bucket=vbucket)
    assert not page.get("DeleteMarkers") and not page["IsTruncated"], page.get("DeleteMarkers")
    listed = [v["VersionId"] for v in page["Versions"]]
    assert sorted(listed) == sorted(acknowledged), f"listed {listed}, acknowledged {list(acknowledged)}"
    latest = [v for v in page["Versions"] if v["IsLatest"]]
    assert len(latest) == 1 and page["Versions"][0] is latest[0], "not exactly one IsLatest, first"
    assert latest[0]["ETag"] == etag_of(acknowledged[latest[0]["VersionId"]])
    got = s3.get_object(Bucket=vbucket, Key="race")
    assert got.get("VersionId") == latest[0]["VersionId"]
    assert got["Body"].read() == acknowledged[latest[0]["VersionId"]]
    for version, body in acknowledged.items():
        assert s3.get_object(Bucket=vbucket, Key="race", VersionId=version)["Body"].read() == body
