"""The forged-request matrix: every operation the router knows, times every way an
attacker can dress a request up as signed. The operations come from the router's own
table (`bleepstore routes`), so a new one cannot be added without entering the matrix:
an implemented operation with no recipe below fails the suite.

Each cell must be refused with the S3 error that names the forgery, and a probe of the
whole store afterwards (buckets, bucket ACLs, objects with ETag, size, dates, metadata
and ACL, multipart uploads and their parts) must equal the probe before. Each row ends
with controls: the same request genuinely signed, as a header and as a presigned URL,
succeeds, and for an operation that writes, the probe sees the change: so a cell that
held did not hold only because its request was wrong."""

import base64
import hashlib
import json
import shutil
import subprocess
import time

import pytest

import sigv4
from conftest import ACCESS_KEY, BIN, SECRET_KEY, Daemon

ROUTES = json.loads(subprocess.check_output([BIN, "routes"]))

VICTIM, OTHER, EMPTY, LOCKED = "victim", "other", "empty", "locked"
VICTIM_BYTES, OTHER_BYTES = b"victim-bytes", b"other-secret"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"

# Headers that would change what a request does, added unsigned.
UNSIGNED_HEADERS = [
    ("x-amz-acl", "public-read-write"),
    ("x-amz-copy-source", f"{OTHER}/secret"),
    ("x-amz-metadata-directive", "REPLACE"),
    ("x-amz-grant-full-control", "id=attacker"),
    ("x-amz-grant-read", f"uri={ALL_USERS}"),
    ("x-amz-checksum-crc32", "AAAAAA=="),
    ("x-amz-server-side-encryption", "AES256"),
    ("x-amz-meta-planted", "1"),
    ("x-amz-bypass-governance-retention", "true"),
    ("x-amz-object-lock-legal-hold", "ON"),
]
PRESIGNED_UNSIGNED_HEADERS = [("x-amz-acl", "public-read"), ("x-amz-copy-source", f"{OTHER}/secret")]


class Req:
    """One request: method, decoded path, query pairs, extra headers (signed when genuine), body."""

    def __init__(self, method, path, query=(), headers=None, body=b""):
        self.method, self.path, self.query = method, path, list(query)
        self.headers, self.body = dict(headers or {}), body


def xml_body(text):
    body = text.encode()
    return body, {"content-md5": base64.b64encode(hashlib.md5(body).digest()).decode()}


def recipes(fx):
    """A genuine request for every implemented operation, aimed at the fixture, and
    whether it writes. Keyed by the operation names of the routing table."""
    upload = [("uploadId", fx["upload_id"])]
    complete, complete_md5 = xml_body(
        f'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{fx["part_etag"]}</ETag></Part>'
        "</CompleteMultipartUpload>")
    delete, delete_md5 = xml_body("<Delete><Object><Key>k</Key></Object></Delete>")
    versioning, versioning_md5 = xml_body(
        "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>")
    lock, lock_md5 = xml_body(
        "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>"
        "<Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>")
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 86400))
    retention, retention_md5 = xml_body(
        f"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>{later}</RetainUntilDate></Retention>")
    hold, hold_md5 = xml_body("<LegalHold><Status>ON</Status></LegalHold>")
    cors, cors_md5 = xml_body("<CORSConfiguration><CORSRule><AllowedOrigin>https://planted.test</AllowedOrigin>"
                              "<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>")
    return {
        "ListBuckets": (Req("GET", "/"), False),
        "ListMultipartUploads": (Req("GET", f"/{VICTIM}", [("uploads", "")]), False),
        "DeleteObjects": (Req("POST", f"/{VICTIM}", [("delete", "")], delete_md5, delete), True),
        "GetBucketAcl": (Req("GET", f"/{VICTIM}", [("acl", "")]), False),
        "PutBucketAcl": (Req("PUT", f"/{VICTIM}", [("acl", "")], {"x-amz-acl": "public-read"}), True),
        "ListObjectVersions": (Req("GET", f"/{VICTIM}", [("versions", "")]), False),
        "GetBucketVersioning": (Req("GET", f"/{VICTIM}", [("versioning", "")]), False),
        "PutBucketVersioning": (Req("PUT", f"/{VICTIM}", [("versioning", "")], versioning_md5, versioning), True),
        "GetObjectLockConfiguration": (Req("GET", f"/{LOCKED}", [("object-lock", "")]), False),
        "GetBucketCors": (Req("GET", f"/{VICTIM}", [("cors", "")]), False),
        "PutBucketCors": (Req("PUT", f"/{VICTIM}", [("cors", "")], cors_md5, cors), True),
        "DeleteBucketCors": (Req("DELETE", f"/{VICTIM}", [("cors", "")]), True),
        "PutObjectLockConfiguration": (Req("PUT", f"/{LOCKED}", [("object-lock", "")], lock_md5, lock), True),
        "GetObjectRetention": (Req("GET", f"/{LOCKED}/k", [("retention", "")]), False),
        "PutObjectRetention": (Req("PUT", f"/{LOCKED}/k", [("retention", "")], retention_md5, retention), True),
        "GetObjectLegalHold": (Req("GET", f"/{LOCKED}/k", [("legal-hold", "")]), False),
        "PutObjectLegalHold": (Req("PUT", f"/{LOCKED}/k", [("legal-hold", "")], hold_md5, hold), True),
        "GetBucketLocation": (Req("GET", f"/{VICTIM}", [("location", "")]), False),
        "HeadBucket": (Req("HEAD", f"/{VICTIM}"), False),
        "ListObjectsV2": (Req("GET", f"/{VICTIM}", [("list-type", "2")]), False),
        "ListObjects": (Req("GET", f"/{VICTIM}"), False),
        "CreateBucket": (Req("PUT", "/created"), True),
        "DeleteBucket": (Req("DELETE", f"/{EMPTY}"), True),
        "UploadPartCopy": (Req("PUT", f"/{VICTIM}/mp", [("partNumber", "2")] + upload,
                               {"x-amz-copy-source": f"{OTHER}/secret"}), True),
        "UploadPart": (Req("PUT", f"/{VICTIM}/mp", [("partNumber", "2")] + upload, body=b"part two"), True),
        "CompleteMultipartUpload": (Req("POST", f"/{VICTIM}/mp", upload, complete_md5, complete), True),
        "AbortMultipartUpload": (Req("DELETE", f"/{VICTIM}/mp", upload), True),
        "ListParts": (Req("GET", f"/{VICTIM}/mp", upload), False),
        "CreateMultipartUpload": (Req("POST", f"/{VICTIM}/started", [("uploads", "")]), True),
        "GetObjectAcl": (Req("GET", f"/{VICTIM}/k", [("acl", "")]), False),
        "PutObjectAcl": (Req("PUT", f"/{VICTIM}/k", [("acl", "")], {"x-amz-acl": "public-read"}), True),
        "GetObjectAttributes": (Req("GET", f"/{VICTIM}/k", [("attributes", "")],
                                    {"x-amz-object-attributes": "ETag,ObjectSize"}), False),
        "HeadObject": (Req("HEAD", f"/{VICTIM}/k"), False),
        "GetObject": (Req("GET", f"/{VICTIM}/k"), False),
        "CopyObject": (Req("PUT", f"/{VICTIM}/copied", headers={"x-amz-copy-source": f"{OTHER}/secret"}), True),
        "PutObject": (Req("PUT", f"/{VICTIM}/planted", body=b"planted bytes"), True),
        "DeleteObject": (Req("DELETE", f"/{VICTIM}/k"), True),
    }


def generic_request(route):
    """A request that reaches a not-yet-implemented operation's row."""
    method = route["method"].split("|")[0]
    path = {"service": "/", "bucket": f"/{VICTIM}", "object": f"/{VICTIM}/k"}[route["scope"]]
    query = [(route["subresource"], "")] if route["subresource"] else []
    headers = {"x-amz-copy-source": f"{OTHER}/secret"} if route["when"] == "x-amz-copy-source" else {}
    body = b"<Configuration/>" if method in ("PUT", "POST") else b""
    return Req(method, path, query, headers, body)


@pytest.fixture(scope="module")
def store():
    d = Daemon().start()
    yield d
    d.stop()
    shutil.rmtree(d.data_dir, ignore_errors=True)


def reset(s3):
    """Empties the store, then builds the fixture every recipe aims at."""
    for b in s3.list_buckets()["Buckets"]:
        name = b["Name"]
        for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
        listed = s3.list_object_versions(Bucket=name)
        for v in listed.get("Versions", []):
            if name == LOCKED:
                s3.put_object_legal_hold(Bucket=name, Key=v["Key"], VersionId=v["VersionId"],
                                         LegalHold={"Status": "OFF"})
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"], BypassGovernanceRetention=True)
        for v in listed.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        s3.delete_bucket(Bucket=name)
    for name in (VICTIM, OTHER, EMPTY):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_cors(Bucket=VICTIM, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://app.test"], "AllowedMethods": ["GET"]}]})
    # Object lock, with one version under GOVERNANCE retention and a legal hold (off).
    s3.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
    soon = time.time() + 86400
    s3.put_object(Bucket=LOCKED, Key="k", Body=VICTIM_BYTES, ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=soon, ObjectLockLegalHoldStatus="OFF")
    s3.put_object(Bucket=VICTIM, Key="k", Body=VICTIM_BYTES, Metadata={"m": "1"}, ContentType="text/plain")
    s3.put_object(Bucket=OTHER, Key="secret", Body=OTHER_BYTES)
    upload_id = s3.create_multipart_upload(Bucket=VICTIM, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=VICTIM, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part one")
    return {"upload_id": upload_id, "part_etag": part["ETag"]}


def probe(s3):
    """Everything a forged request could have created, changed or deleted (versions,
    delete markers and the versioning state included)."""
    state = {}
    for b in s3.list_buckets()["Buckets"]:
        name = b["Name"]
        objects = {}
        for o in s3.list_objects_v2(Bucket=name).get("Contents", []):
            head = s3.head_object(Bucket=name, Key=o["Key"])
            grants = s3.get_object_acl(Bucket=name, Key=o["Key"])["Grants"]
            objects[o["Key"]] = (head["ETag"], head["ContentLength"], str(head["LastModified"]),
                                 head.get("ContentType"), head["Metadata"], str(grants),
                                 head.get("ObjectLockMode"), str(head.get("ObjectLockRetainUntilDate")),
                                 head.get("ObjectLockLegalHoldStatus"))
        uploads = {}
        for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            parts = s3.list_parts(Bucket=name, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])
            uploads[(u["Key"], u["UploadId"])] = [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts]
        listed = s3.list_object_versions(Bucket=name)
        versions = sorted((v["Key"], v["VersionId"], v["IsLatest"], kind)
                          for kind in ("Versions", "DeleteMarkers") for v in listed.get(kind, []))
        status = s3.get_bucket_versioning(Bucket=name).get("Status")
        try:
            lock = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
        except s3.exceptions.ClientError:
            lock = None
        try:
            cors = s3.get_bucket_cors(Bucket=name)["CORSRules"]
        except s3.exceptions.ClientError:
            cors = None
        status = (status, str(lock), str(cors))
        state[name] = (str(s3.get_bucket_acl(Bucket=name)["Grants"]), objects, uploads, versions, status)
    return state


def host_header(store):
    return {"host": f"127.0.0.1:{store.port}"}


def header_signed(store, req, access=ACCESS_KEY, secret=SECRET_KEY, sign_content_sha=True, amz=None):
    headers = {**host_header(store), **req.headers}
    signed, _ = sigv4.sign_headers(req.method, req.path, req.query, headers,
                                   hashlib.sha256(req.body).hexdigest(), access, secret,
                                   amz or sigv4.amz_now(), sign_content_sha=sign_content_sha)
    return signed


def with_signature(headers, signature):
    out = dict(headers)
    prefix = out["authorization"].rsplit("Signature=", 1)[0]
    out["authorization"] = prefix + "Signature=" + signature
    return out


def presigned_query(store, req, amz=None, expires=300, path=None):
    headers = {**host_header(store), **req.headers}
    return sigv4.presign(req.method, path or req.path, req.query, headers, ACCESS_KEY, SECRET_KEY,
                         amz or sigv4.amz_now(), expires)


NOT_SIGNED = b"There were headers present in the request which were not signed"


def forgeries(store, req):
    """(name, headers, raw query, expected status, expected code, expected message part)."""
    plain_query = sigv4.raw_query(req.query)
    has_body = bool(req.body)
    out = [("anonymous", {**host_header(store), **req.headers}, plain_query, 403, "AccessDenied", None)]
    genuine = header_signed(store, req)
    out.append(("made-up signature", with_signature(genuine, "0" * 64), plain_query,
                403, "SignatureDoesNotMatch", None))
    bare = with_signature(header_signed(store, req, sign_content_sha=False), "0" * 64)
    if has_body:
        out.append(("made-up signature, no x-amz-content-sha256", bare, plain_query, 400, "InvalidRequest",
                    b"Missing required header for this request: x-amz-content-sha256"))
    else:
        out.append(("made-up signature, no x-amz-content-sha256", bare, plain_query,
                    403, "SignatureDoesNotMatch", None))
    # A genuine signature, lifted from a request for another resource with the same headers.
    other = Req("GET", f"/{OTHER}/secret", headers=req.headers, body=req.body)
    lifted = header_signed(store, other, amz=genuine["x-amz-date"])
    replayed = dict(genuine, authorization=lifted["authorization"])
    out.append(("signature of another request", replayed, plain_query, 403, "SignatureDoesNotMatch", None))
    out.append(("wrong secret", header_signed(store, req, secret="not-the-secret"), plain_query,
                403, "SignatureDoesNotMatch", None))
    out.append(("unknown key", header_signed(store, req, access="nobody"), plain_query,
                403, "InvalidAccessKeyId", None))
    presign_headers = {**host_header(store), **req.headers}
    expired = presigned_query(store, req, amz=sigv4.amz_now(-7200), expires=60)
    out.append(("expired presigned URL", presign_headers, expired, 403, "AccessDenied", b"Request has expired"))
    valid = presigned_query(store, req)
    flipped = valid[:-1] + ("0" if valid[-1] != "0" else "1")
    out.append(("tampered presigned URL", presign_headers, flipped, 403, "SignatureDoesNotMatch", None))
    elsewhere = presigned_query(store, req, path=f"/{OTHER}/secret")
    out.append(("presigned URL of another resource", presign_headers, elsewhere,
                403, "SignatureDoesNotMatch", None))
    for name, value in UNSIGNED_HEADERS:
        if name in req.headers:
            continue
        out.append((f"unsigned {name}", {**genuine, name: value}, plain_query, 403, "AccessDenied", NOT_SIGNED))
    for name, value in PRESIGNED_UNSIGNED_HEADERS:
        if name in req.headers:
            continue
        out.append((f"presigned URL + unsigned {name}", {**presign_headers, name: value}, valid,
                    403, "AccessDenied", NOT_SIGNED))
    out.extend(v2_forgeries(store, req, plain_query))
    return out


def v2_signed(store, req, access=ACCESS_KEY, secret=SECRET_KEY):
    return sigv4.sign_v2(req.method, req.path, req.query, {**host_header(store), **req.headers}, access, secret)


def v2_presigned(store, req, expires_at):
    return sigv4.presign_v2(req.method, req.path, req.query, {**host_header(store), **req.headers},
                            ACCESS_KEY, SECRET_KEY, expires_at)


def v2_forgeries(store, req, plain_query):
    """Signature Version 2 signs every x-amz-* header, so one added after signing breaks it."""
    genuine = v2_signed(store, req)
    made_up = dict(genuine, authorization=f"AWS {ACCESS_KEY}:" + "A" * 27 + "=")
    added = "x-amz-acl" if "x-amz-acl" not in req.headers else "x-amz-meta-added"
    now = int(time.time())
    presign_headers = {**host_header(store), **req.headers}
    valid = v2_presigned(store, req, now + 300)
    return [
        ("SigV2 made-up signature", made_up, plain_query, 403, "SignatureDoesNotMatch", None),
        ("SigV2 wrong secret", v2_signed(store, req, secret="not-the-secret"), plain_query,
         403, "SignatureDoesNotMatch", None),
        ("SigV2 unknown key", v2_signed(store, req, access="nobody"), plain_query, 403, "InvalidAccessKeyId", None),
        (f"SigV2 + {added} added after signing", {**genuine, added: "public-read"}, plain_query,
         403, "SignatureDoesNotMatch", None),
        ("SigV2 expired presigned URL", presign_headers, v2_presigned(store, req, now - 10),
         403, "AccessDenied", b"Request has expired"),
        (f"SigV2 presigned URL + {added}", {**presign_headers, added: "public-read"}, valid,
         403, "SignatureDoesNotMatch", None),
    ]


def send(store, req, headers, query):
    return sigv4.request(store.port, req.method, req.path, headers, req.body, query=query)


def code_of(body):
    start = body.find(b"<Code>")
    return body[start + 6:body.find(b"</Code>")].decode() if start >= 0 else None


def check_cells(store, s3, operation, req, before):
    cells = forgeries(store, req)
    for name, headers, query, status, code, message in cells:
        got_status, _, body = send(store, req, headers, query)
        where = f"{operation} / {name}"
        assert got_status == status, (where, got_status, body[:300])
        if req.method != "HEAD":
            assert code_of(body) == code, (where, body[:300])
            if message:
                assert message in body, (where, body[:300])
        assert VICTIM_BYTES not in body and OTHER_BYTES not in body, where
        assert probe(s3) == before, f"{where}: the store changed"
    return len(cells)


IMPLEMENTED = sorted({r["operation"] for r in ROUTES if r["implemented"]})
UNIMPLEMENTED = [r for r in ROUTES if not r["implemented"]]
CELLS = {}


def test_the_router_table_is_the_operation_list():
    # Sanity of the generated list: every S3 family the daemon serves is in it.
    assert len(IMPLEMENTED) >= 27 and len(UNIMPLEMENTED) >= 50
    assert {"GetObject", "PutObject", "CopyObject", "UploadPartCopy", "PutBucketAcl"} <= set(IMPLEMENTED)


@pytest.mark.parametrize("operation", IMPLEMENTED)
def test_forged_requests_are_refused(store, operation):
    s3 = store.client()
    fx = reset(s3)
    table = recipes(fx)
    assert operation in table, f"{operation} is routed but has no recipe in the forged-request matrix"
    req, writes = table[operation]
    before = probe(s3)
    CELLS[operation] = check_cells(store, s3, operation, req, before)
    # Controls: the genuine request is served, and the probe sees what it writes.
    status, _, body = send(store, req, header_signed(store, req), sigv4.raw_query(req.query))
    assert 200 <= status < 300, (operation, "genuine header-signed", status, body[:300])
    assert (probe(s3) != before) == writes, (operation, "genuine header-signed changed the store?")
    fx = reset(s3)
    req, _ = recipes(fx)[operation]
    before = probe(s3)
    status, _, body = send(store, req, {**host_header(store), **req.headers}, presigned_query(store, req))
    assert 200 <= status < 300, (operation, "genuine presigned", status, body[:300])
    assert (probe(s3) != before) == writes, (operation, "genuine presigned changed the store?")
    fx = reset(s3)
    req, _ = recipes(fx)[operation]
    before = probe(s3)
    status, _, body = send(store, req, v2_signed(store, req), sigv4.raw_query(req.query))
    assert 200 <= status < 300, (operation, "genuine SigV2", status, body[:300])
    assert (probe(s3) != before) == writes, (operation, "genuine SigV2 changed the store?")


@pytest.mark.parametrize("route", UNIMPLEMENTED, ids=lambda r: r["operation"])
def test_forged_requests_to_unimplemented_operations_are_refused(store, route):
    s3 = store.client()
    if VICTIM not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        reset(s3)
    req = generic_request(route)
    before = probe(s3)
    CELLS[route["operation"]] = check_cells(store, s3, route["operation"], req, before)
    status, _, body = send(store, req, header_signed(store, req), sigv4.raw_query(req.query))
    assert status == 501 and code_of(body) == "NotImplemented", (route, status, body[:300])
    assert route["operation"].encode() in body


def test_matrix_size():
    """Runs last in this file: the matrix covered every routed operation."""
    routed = {r["operation"] for r in ROUTES}
    assert set(CELLS) == routed, routed - set(CELLS)
    print(f"\nforged-request matrix: {len(routed)} operations, {sum(CELLS.values())} cells, all refused")
