"""Object lock by S3's rules: a bucket's lock configuration and its default retention,
each version's retention (GOVERNANCE or COMPLIANCE) and legal hold, set by PUT headers,
by CopyObject and multipart uploads and by their own operations; the integrity check
a lock bucket demands of every upload; deletes and retention changes the lock refuses,
the bucket owner's governance bypass (and nobody else's), and racing requests.

Everything the shared daemon keeps is GOVERNANCE (bypassable) or a legal hold that the
cleanup turns off; a test that makes a COMPLIANCE version, which nothing can remove
before its date, runs on a daemon of its own whose data directory is removed after."""

import base64
import datetime
import hashlib
import os
import shutil
import subprocess
import threading
import uuid
import zlib

import pytest
from botocore.exceptions import ClientError

from conftest import BIN, Daemon, make_client

DAY = 86400
# How far a retain-until date computed by the server may be from the one expected
# from LastModified (which is to the second).
SLACK = 60
NO_CHECKSUM = {"request_checksum_calculation": "when_required"}


# ---------------------------------------------------------------- helpers

def status_of(response):
    return response["ResponseMetadata"]["HTTPStatusCode"]


def header_of(response, name):
    return response["ResponseMetadata"]["HTTPHeaders"].get(name)


def refused(what, call, status, code, **kwargs):
    """Runs a call that must fail with this status and error code; its error answer."""
    try:
        answer = call(**kwargs)
    except ClientError as error:
        response = error.response
        got = (status_of(response), response["Error"].get("Code"))
        assert got == (status, code), \
            f"{what}: expected {status} {code}, got {got[0]} {got[1]}: {response['Error'].get('Message')}"
        return response
    raise AssertionError(f"{what}: expected {status} {code}, but it succeeded "
                         f"({status_of(answer)})")


def future(seconds):
    """A retain-until date `seconds` from now, to the second."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now + datetime.timedelta(seconds=seconds)


def md5_b64(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def sha256_b64(body):
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def crc32_b64(body):
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


def put_version(s3, bucket, key, body=b"locked bytes", **kwargs):
    """A PUT (with boto3's default CRC32 checksum) in a versioned bucket: its VersionId."""
    version = s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs).get("VersionId")
    assert version and version != "null", f"PUT {key} in a lock bucket gave VersionId {version!r}"
    return version


def version_exists(s3, bucket, key, version):
    try:
        s3.head_object(Bucket=bucket, Key=key, VersionId=version)
        return True
    except ClientError as error:
        if status_of(error.response) == 404:
            return False
        raise


def listed_versions(s3, bucket, key):
    page = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in page.get("Versions", []) if v["Key"] == key]


def lock_config(s3, bucket, mode=None, days=None, years=None):
    config = {"ObjectLockEnabled": "Enabled"}
    if mode:
        retention = {"Mode": mode}
        if days is not None:
            retention["Days"] = days
        if years is not None:
            retention["Years"] = years
        config["Rule"] = {"DefaultRetention": retention}
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=config)


def new_lock_bucket(s3, default=None):
    """A bucket created with object lock; `default` is (mode, days) for a default rule."""
    name = "lk-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    if default:
        lock_config(s3, name, mode=default[0], days=default[1])
    return name


def assert_default_retention(head, mode, seconds, what):
    """HEAD shows `mode` and a retain-until date `seconds` after LastModified."""
    assert head.get("ObjectLockMode") == mode, \
        f"{what}: ObjectLockMode {head.get('ObjectLockMode')!r}, expected {mode}"
    until = head.get("ObjectLockRetainUntilDate")
    assert until is not None, f"{what}: HEAD has no ObjectLockRetainUntilDate"
    gap = (until - head["LastModified"]).total_seconds()
    assert abs(gap - seconds) <= SLACK, \
        f"{what}: retain-until {until} is {gap:.0f} s after LastModified {head['LastModified']}, expected {seconds}"


def remove_bucket(s3, name):
    """Deletes every upload, version and marker by id with BypassGovernanceRetention
    (turning a legal hold off first), then the bucket. A version COMPLIANCE keeps is
    left, and with it the bucket; the shared daemon's tests make none."""
    try:
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        kept = set()
        for _ in range(100):
            page = s3.list_object_versions(Bucket=name)
            entries = [e for e in page.get("Versions", []) + page.get("DeleteMarkers", [])
                       if (e["Key"], e["VersionId"]) not in kept]
            if not entries:
                break
            for entry in entries:
                key, version = entry["Key"], entry["VersionId"]
                try:
                    s3.delete_object(Bucket=name, Key=key, VersionId=version, BypassGovernanceRetention=True)
                except ClientError as error:
                    if error.response["Error"]["Code"] != "AccessDenied":
                        raise
                    try:
                        s3.put_object_legal_hold(Bucket=name, Key=key, VersionId=version,
                                                 LegalHold={"Status": "OFF"})
                        s3.delete_object(Bucket=name, Key=key, VersionId=version,
                                         BypassGovernanceRetention=True)
                    except ClientError as again:
                        if again.response["Error"]["Code"] != "AccessDenied":
                            raise
                        kept.add((key, version))
        if not kept:
            s3.delete_bucket(Bucket=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucket":
            raise


@pytest.fixture
def buckets(s3):
    """Makes buckets (with object lock unless lock=False) and removes every version of
    them afterwards."""
    made = []

    def make(lock=True, default=None):
        if lock:
            name = new_lock_bucket(s3, default)
        else:
            name = "pl-" + uuid.uuid4().hex[:20]
            s3.create_bucket(Bucket=name)
        made.append(name)
        return name

    yield make
    for name in made:
        remove_bucket(s3, name)


@pytest.fixture
def scratch():
    """A daemon of the test's own, for COMPLIANCE versions: its data dies with it."""
    d = Daemon().start()
    yield d
    d.stop()
    shutil.rmtree(d.data_dir, ignore_errors=True)
    for leftover in (d.log_path, d.data_dir + ".yaml"):
        if os.path.exists(leftover):
            os.remove(leftover)


class SentHeaders:
    """The headers of the last request a client sent, seen at botocore's before-send."""

    def __init__(self, client):
        self.last = {}
        client.meta.events.register("before-send.s3", self._see)

    def _see(self, request, **_):
        self.last = {k.lower(): v for k, v in request.headers.items()}

    def integrity(self):
        """The integrity headers sent: Content-MD5, x-amz-checksum-<alg>, x-amz-trailer."""
        return sorted(k for k in self.last
                      if k in ("content-md5", "x-amz-trailer") or k.startswith("x-amz-checksum-"))


def add_user(daemon):
    access = "lock-" + uuid.uuid4().hex[:8]
    subprocess.run([BIN, "--data-dir", daemon.data_dir, "credentials", "add", "--access-key", access,
                    "--secret-key", "lock-secret"], check=True, capture_output=True, timeout=30)
    return access, make_client(daemon.endpoint, access_key=access, secret_key="lock-secret")


def race(calls):
    """Runs the calls in threads started together on a barrier: each one's outcome,
    (status, error code or None), in order."""
    barrier = threading.Barrier(len(calls), timeout=30)
    outcomes = [None] * len(calls)

    def run(n):
        barrier.wait()
        try:
            outcomes[n] = (status_of(calls[n]()), None)
        except ClientError as error:
            outcomes[n] = (status_of(error.response), error.response["Error"].get("Code"))
        except Exception as error:  # noqa: BLE001 - reported by the caller's assertions
            outcomes[n] = ("exception", repr(error))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


# ---------------------------------------------------------------- 1. the bucket's configuration

def test_bucket_created_with_lock_is_versioned_for_good(s3, buckets):
    """CreateBucket with ObjectLockEnabledForBucket: versioning Enabled, the lock
    configuration Enabled with no Rule, and versioning cannot be suspended (409)."""
    name = buckets()
    assert s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled", \
        "a bucket made with object lock does not show versioning Enabled"
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}, f"GetObjectLockConfiguration answered {config}"
    refused("PutBucketVersioning Suspended on a lock bucket", s3.put_bucket_versioning, 409,
            "InvalidBucketState", Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled"


def test_lock_turned_on_later_needs_versioning_enabled(s3, buckets):
    """A bucket made without lock has no configuration (404
    ObjectLockConfigurationNotFoundError); PutObjectLockConfiguration is 409
    InvalidBucketState while versioning is off or Suspended, works once it is
    Enabled, and versioning then stays Enabled."""
    name = buckets(lock=False)
    refused("GetObjectLockConfiguration of a bucket without lock", s3.get_object_lock_configuration, 404,
            "ObjectLockConfigurationNotFoundError", Bucket=name)
    enable = {"ObjectLockEnabled": "Enabled"}
    refused("PutObjectLockConfiguration on an unversioned bucket", s3.put_object_lock_configuration, 409,
            "InvalidBucketState", Bucket=name, ObjectLockConfiguration=enable)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    refused("PutObjectLockConfiguration on a Suspended bucket", s3.put_object_lock_configuration, 409,
            "InvalidBucketState", Bucket=name, ObjectLockConfiguration=enable)
    refused("GetObjectLockConfiguration after the refused ones", s3.get_object_lock_configuration, 404,
            "ObjectLockConfigurationNotFoundError", Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=enable)
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}, f"GetObjectLockConfiguration answered {config}"
    refused("PutBucketVersioning Suspended once lock is on", s3.put_bucket_versioning, 409,
            "InvalidBucketState", Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled"


# ---------------------------------------------------------------- 2. default retention

def test_default_retention_rule_reads_back_and_applies(s3, buckets):
    """A Rule of GOVERNANCE Days=1, then Years=1, reads back as set and gives each new
    object that retention from its LastModified (GetObjectRetention agrees); changing
    the rule leaves the objects already there as they were."""
    name = buckets()
    lock_config(s3, name, "GOVERNANCE", days=1)
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled",
                      "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}, config
    day_version = put_version(s3, name, "by-day")
    head = s3.head_object(Bucket=name, Key="by-day")
    assert_default_retention(head, "GOVERNANCE", DAY, "object under a Days=1 rule")
    retention = s3.get_object_retention(Bucket=name, Key="by-day")["Retention"]
    assert retention == {"Mode": "GOVERNANCE", "RetainUntilDate": head["ObjectLockRetainUntilDate"]}, \
        f"GetObjectRetention {retention} differs from HEAD {head['ObjectLockRetainUntilDate']}"

    lock_config(s3, name, "GOVERNANCE", years=1)
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled",
                      "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": 1}}}, config
    put_version(s3, name, "by-year")
    head = s3.head_object(Bucket=name, Key="by-year")
    assert_default_retention(head, "GOVERNANCE", 365 * DAY, "object under a Years=1 rule")
    assert s3.get_object_retention(Bucket=name, Key="by-year")["Retention"]["RetainUntilDate"] == \
        head["ObjectLockRetainUntilDate"]
    old = s3.head_object(Bucket=name, Key="by-day", VersionId=day_version)
    assert_default_retention(old, "GOVERNANCE", DAY, "object put before the rule changed")


def test_bad_default_retention_rules_are_refused(s3, buckets):
    """Days=0 is 400 InvalidArgument; Days with Years, and an unknown Mode, are 400
    MalformedXML; none of them changes the configuration."""
    name = buckets()
    lock_config(s3, name, "GOVERNANCE", days=1)
    for what, retention, code in (
            ("Days=0", {"Mode": "GOVERNANCE", "Days": 0}, "InvalidArgument"),
            ("Days and Years", {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, "MalformedXML"),
            ("Mode FOREVER", {"Mode": "FOREVER", "Days": 1}, "MalformedXML")):
        refused(f"PutObjectLockConfiguration with {what}", s3.put_object_lock_configuration, 400, code,
                Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled",
                                                      "Rule": {"DefaultRetention": retention}})
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}, \
        f"a refused configuration changed the rule: {config}"


# ---------------------------------------------------------------- 3. lock headers on PUT

def test_put_with_lock_headers_sets_retention_and_hold(s3, buckets):
    """ObjectLockMode, RetainUntilDate and LegalHoldStatus on PUT come back on HEAD and
    GET (as headers and as boto3's fields) and from GetObjectRetention and
    GetObjectLegalHold."""
    name = buckets()
    until = future(2 * DAY)
    version = put_version(s3, name, "held", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
                          ObjectLockLegalHoldStatus="ON")
    for what, answer in (("HEAD", s3.head_object(Bucket=name, Key="held")),
                         ("GET", s3.get_object(Bucket=name, Key="held"))):
        assert header_of(answer, "x-amz-object-lock-mode") == "GOVERNANCE", \
            f"{what}: x-amz-object-lock-mode is {header_of(answer, 'x-amz-object-lock-mode')!r}"
        assert header_of(answer, "x-amz-object-lock-retain-until-date"), f"{what}: no retain-until header"
        assert answer.get("ObjectLockMode") == "GOVERNANCE", f"{what}: {answer.get('ObjectLockMode')!r}"
        assert answer.get("ObjectLockRetainUntilDate") == until, \
            f"{what}: ObjectLockRetainUntilDate {answer.get('ObjectLockRetainUntilDate')}, put {until}"
        assert answer.get("ObjectLockLegalHoldStatus") == "ON", \
            f"{what}: ObjectLockLegalHoldStatus {answer.get('ObjectLockLegalHoldStatus')!r}"
    retention = s3.get_object_retention(Bucket=name, Key="held")["Retention"]
    assert retention == {"Mode": "GOVERNANCE", "RetainUntilDate": until}, f"GetObjectRetention: {retention}"
    hold = s3.get_object_legal_hold(Bucket=name, Key="held", VersionId=version)["LegalHold"]
    assert hold == {"Status": "ON"}, f"GetObjectLegalHold: {hold}"


def test_bad_lock_headers_on_put_are_refused(s3, buckets):
    """A mode without a date, a date without a mode, and a date in the past are 400
    InvalidArgument; lock headers on a bucket without lock are 400 InvalidRequest;
    none of them stores anything."""
    name = buckets()
    plain = buckets(lock=False)
    for what, params in (("mode alone", {"ObjectLockMode": "GOVERNANCE"}),
                         ("date alone", {"ObjectLockRetainUntilDate": future(DAY)}),
                         ("a past date", {"ObjectLockMode": "GOVERNANCE",
                                          "ObjectLockRetainUntilDate": future(-DAY)})):
        refused(f"PUT with {what}", s3.put_object, 400, "InvalidArgument",
                Bucket=name, Key="bad", Body=b"x", **params)
    for what, params in (("retention", {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": future(DAY)}),
                         ("legal hold", {"ObjectLockLegalHoldStatus": "ON"})):
        refused(f"PUT with {what} in a bucket without lock", s3.put_object, 400, "InvalidRequest",
                Bucket=plain, Key="bad", Body=b"x", **params)
    assert listed_versions(s3, name, "bad") == [], "a refused PUT stored a version in the lock bucket"
    assert "Contents" not in s3.list_objects_v2(Bucket=plain), "a refused PUT stored an object"


# ---------------------------------------------------------------- 4. integrity of uploads

def test_upload_to_lock_bucket_needs_md5_or_checksum(daemon, s3, buckets):
    """A PUT with neither Content-MD5 nor a checksum (checked on the wire) is 400
    InvalidRequest in a lock bucket, though fine in a plain one; with Content-MD5 alone,
    or an x-amz-checksum-sha256 alone, it is stored."""
    name = buckets()
    plain = buckets(lock=False)
    bare = daemon.client(**NO_CHECKSUM)
    sent = SentHeaders(bare)
    body = b"must be checked"
    bare.put_object(Bucket=plain, Key="control", Body=body)
    assert sent.integrity() == [], f"the control PUT carried {sent.integrity()}"
    refused("PUT without Content-MD5 or checksum to a lock bucket", bare.put_object, 400, "InvalidRequest",
            Bucket=name, Key="unchecked", Body=body)
    assert sent.integrity() == [], f"the refused PUT carried {sent.integrity()}: not a test of none"
    assert listed_versions(s3, name, "unchecked") == [], "the refused PUT stored a version"
    bare.put_object(Bucket=name, Key="md5", Body=body, ContentMD5=md5_b64(body))
    assert sent.integrity() == ["content-md5"], f"the MD5 PUT carried {sent.integrity()}"
    bare.put_object(Bucket=name, Key="sha", Body=body, ChecksumSHA256=sha256_b64(body))
    assert sent.integrity() == ["x-amz-checksum-sha256"], f"the checksum PUT carried {sent.integrity()}"
    for key in ("md5", "sha"):
        assert s3.get_object(Bucket=name, Key=key)["Body"].read() == body


def test_upload_part_to_lock_bucket_needs_md5_or_checksum(daemon, s3, buckets):
    """UploadPart with neither Content-MD5 nor a checksum is 400 InvalidRequest in a
    lock bucket; a part with Content-MD5, or with x-amz-checksum-crc32, is taken and
    its upload completes."""
    name = buckets()
    bare = daemon.client(**NO_CHECKSUM)
    sent = SentHeaders(bare)
    body = b"part bytes"
    for key, integrity, expected in (("md5-part", {"ContentMD5": md5_b64(body)}, ["content-md5"]),
                                     ("crc-part", {"ChecksumCRC32": crc32_b64(body)}, ["x-amz-checksum-crc32"])):
        upload = bare.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
        refused(f"UploadPart without Content-MD5 or checksum ({key})", bare.upload_part, 400, "InvalidRequest",
                Bucket=name, Key=key, UploadId=upload, PartNumber=1, Body=body)
        assert sent.integrity() == [], f"the refused UploadPart carried {sent.integrity()}"
        etag = bare.upload_part(Bucket=name, Key=key, UploadId=upload, PartNumber=1, Body=body,
                                **integrity)["ETag"]
        assert sent.integrity() == expected, f"the UploadPart for {key} carried {sent.integrity()}"
        bare.complete_multipart_upload(Bucket=name, Key=key, UploadId=upload,
                                       MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        assert s3.get_object(Bucket=name, Key=key)["Body"].read() == body


# ---------------------------------------------------------------- 5. deletes the lock refuses

def test_governance_refuses_delete_by_id_until_bypassed(s3, buckets):
    """Under GOVERNANCE, a delete by version id (also through DeleteObjects) is 403
    AccessDenied and the version stays readable; a delete without an id only adds a
    marker; the owner's BypassGovernanceRetention deletes it."""
    name = buckets(default=("GOVERNANCE", 1))
    version = put_version(s3, name, "gov", b"governed")
    refused("DELETE by id under GOVERNANCE", s3.delete_object, 403, "AccessDenied",
            Bucket=name, Key="gov", VersionId=version)
    assert s3.get_object(Bucket=name, Key="gov", VersionId=version)["Body"].read() == b"governed"
    batch = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "gov", "VersionId": version}]})
    assert [e.get("Code") for e in batch.get("Errors", [])] == ["AccessDenied"] and not batch.get("Deleted"), \
        f"DeleteObjects by id under GOVERNANCE answered {batch.get('Deleted')} / {batch.get('Errors')}"
    marker = s3.delete_object(Bucket=name, Key="gov")
    assert marker.get("DeleteMarker") is True, f"DELETE without id made no marker: {marker}"
    assert listed_versions(s3, name, "gov") == [version], "the marker's DELETE removed the version"
    deleted = s3.delete_object(Bucket=name, Key="gov", VersionId=version, BypassGovernanceRetention=True)
    assert status_of(deleted) == 204, f"DELETE by id with bypass answered {status_of(deleted)}"
    assert listed_versions(s3, name, "gov") == [], "the bypassing DELETE left the version"


def test_governance_bypass_through_delete_objects(s3, buckets):
    """DeleteObjects with BypassGovernanceRetention by the owner deletes a GOVERNANCE
    version by id."""
    name = buckets(default=("GOVERNANCE", 1))
    version = put_version(s3, name, "gov")
    batch = s3.delete_objects(Bucket=name, BypassGovernanceRetention=True,
                              Delete={"Objects": [{"Key": "gov", "VersionId": version}]})
    assert not batch.get("Errors") and [d.get("VersionId") for d in batch.get("Deleted", [])] == [version], \
        f"DeleteObjects with bypass answered {batch.get('Deleted')} / {batch.get('Errors')}"
    assert listed_versions(s3, name, "gov") == []


def test_compliance_refuses_delete_even_with_bypass(scratch):
    """Under COMPLIANCE, a delete by version id with BypassGovernanceRetention is 403
    AccessDenied, DeleteObjects reports an AccessDenied error for it, and the version
    stays readable."""
    s3 = scratch.client()
    name = new_lock_bucket(s3)
    version = put_version(s3, name, "kept", b"compliant", ObjectLockMode="COMPLIANCE",
                          ObjectLockRetainUntilDate=future(DAY))
    refused("DELETE by id under COMPLIANCE without bypass", s3.delete_object, 403, "AccessDenied",
            Bucket=name, Key="kept", VersionId=version)
    refused("DELETE by id under COMPLIANCE with bypass", s3.delete_object, 403, "AccessDenied",
            Bucket=name, Key="kept", VersionId=version, BypassGovernanceRetention=True)
    for bypass in (False, True):
        batch = s3.delete_objects(Bucket=name, BypassGovernanceRetention=bypass,
                                  Delete={"Objects": [{"Key": "kept", "VersionId": version}]})
        errors = batch.get("Errors", [])
        assert [(e.get("Key"), e.get("VersionId"), e.get("Code")) for e in errors] == \
            [("kept", version, "AccessDenied")] and not batch.get("Deleted"), \
            f"DeleteObjects (bypass={bypass}) under COMPLIANCE answered {batch.get('Deleted')} / {errors}"
    assert s3.get_object(Bucket=name, Key="kept", VersionId=version)["Body"].read() == b"compliant"


def test_legal_hold_refuses_delete_until_released(s3, buckets):
    """A legal hold (with no retention) refuses a delete by id even with bypass (403
    AccessDenied); once PutObjectLegalHold sets it OFF, the delete works."""
    name = buckets()
    version = put_version(s3, name, "hold", ObjectLockLegalHoldStatus="ON")
    head = s3.head_object(Bucket=name, Key="hold")
    assert "ObjectLockMode" not in head, f"a hold alone came with a retention: {head.get('ObjectLockMode')}"
    refused("DELETE by id of a held version with bypass", s3.delete_object, 403, "AccessDenied",
            Bucket=name, Key="hold", VersionId=version, BypassGovernanceRetention=True)
    assert listed_versions(s3, name, "hold") == [version]
    s3.put_object_legal_hold(Bucket=name, Key="hold", VersionId=version, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=name, Key="hold", VersionId=version)["LegalHold"] == {"Status": "OFF"}
    s3.delete_object(Bucket=name, Key="hold", VersionId=version)
    assert listed_versions(s3, name, "hold") == [], "the delete after the hold went OFF left the version"


# ---------------------------------------------------------------- 6. changing a retention

def test_governance_retention_changes(s3, buckets):
    """A GOVERNANCE retention may be lengthened; shortening or removing it is 403
    AccessDenied without bypass and works with BypassGovernanceRetention."""
    name = buckets()
    put_version(s3, name, "gov", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=future(DAY))
    longer, shorter = future(3 * DAY), future(2 * DAY)

    def retention():
        return s3.get_object_retention(Bucket=name, Key="gov")["Retention"]

    s3.put_object_retention(Bucket=name, Key="gov", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": longer})
    assert retention() == {"Mode": "GOVERNANCE", "RetainUntilDate": longer}, "lengthening did not hold"
    refused("shortening GOVERNANCE without bypass", s3.put_object_retention, 403, "AccessDenied",
            Bucket=name, Key="gov", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": shorter})
    refused("removing GOVERNANCE without bypass", s3.put_object_retention, 403, "AccessDenied",
            Bucket=name, Key="gov", Retention={})
    assert retention() == {"Mode": "GOVERNANCE", "RetainUntilDate": longer}, "a refused change changed it"
    s3.put_object_retention(Bucket=name, Key="gov", BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": shorter})
    assert retention() == {"Mode": "GOVERNANCE", "RetainUntilDate": shorter}, "shortening with bypass did not hold"
    s3.put_object_retention(Bucket=name, Key="gov", BypassGovernanceRetention=True, Retention={})
    refused("GetObjectRetention after removal with bypass", s3.get_object_retention, 404,
            "NoSuchObjectLockConfiguration", Bucket=name, Key="gov")
    assert "ObjectLockMode" not in s3.head_object(Bucket=name, Key="gov")


def test_compliance_retention_only_lengthens(scratch):
    """A COMPLIANCE retention may be lengthened; shortening it or making it GOVERNANCE
    is 403 AccessDenied even with bypass; GOVERNANCE may become COMPLIANCE."""
    s3 = scratch.client()
    name = new_lock_bucket(s3)
    put_version(s3, name, "comp", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=future(DAY))
    longer, shorter = future(3 * DAY), future(2 * DAY)
    s3.put_object_retention(Bucket=name, Key="comp", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    assert s3.get_object_retention(Bucket=name, Key="comp")["Retention"] == \
        {"Mode": "COMPLIANCE", "RetainUntilDate": longer}, "lengthening COMPLIANCE did not hold"
    for bypass in (False, True):
        refused(f"shortening COMPLIANCE (bypass={bypass})", s3.put_object_retention, 403, "AccessDenied",
                Bucket=name, Key="comp", BypassGovernanceRetention=bypass,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": shorter})
        refused(f"COMPLIANCE to GOVERNANCE (bypass={bypass})", s3.put_object_retention, 403, "AccessDenied",
                Bucket=name, Key="comp", BypassGovernanceRetention=bypass,
                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": longer})
        refused(f"removing COMPLIANCE (bypass={bypass})", s3.put_object_retention, 403, "AccessDenied",
                Bucket=name, Key="comp", BypassGovernanceRetention=bypass, Retention={})
    assert s3.get_object_retention(Bucket=name, Key="comp")["Retention"] == \
        {"Mode": "COMPLIANCE", "RetainUntilDate": longer}, "a refused change changed the COMPLIANCE retention"
    until = future(DAY)
    put_version(s3, name, "gov", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    s3.put_object_retention(Bucket=name, Key="gov", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
    assert s3.get_object_retention(Bucket=name, Key="gov")["Retention"] == \
        {"Mode": "COMPLIANCE", "RetainUntilDate": until}, "GOVERNANCE did not become COMPLIANCE"


def test_retention_and_hold_by_version_id(s3, buckets):
    """PutObjectRetention and PutObjectLegalHold with a VersionId act on that (older)
    version; the current one is unchanged."""
    name = buckets()
    older = put_version(s3, name, "multi", b"older")
    current = put_version(s3, name, "multi", b"current")
    until = future(DAY)
    s3.put_object_retention(Bucket=name, Key="multi", VersionId=older,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    s3.put_object_legal_hold(Bucket=name, Key="multi", VersionId=older, LegalHold={"Status": "ON"})
    got = s3.get_object_retention(Bucket=name, Key="multi", VersionId=older)["Retention"]
    assert got == {"Mode": "GOVERNANCE", "RetainUntilDate": until}, f"the older version's retention: {got}"
    head = s3.head_object(Bucket=name, Key="multi", VersionId=older)
    assert head.get("ObjectLockMode") == "GOVERNANCE" and head.get("ObjectLockLegalHoldStatus") == "ON", \
        f"HEAD of the older version: {head.get('ObjectLockMode')}, {head.get('ObjectLockLegalHoldStatus')}"
    head = s3.head_object(Bucket=name, Key="multi")
    assert head.get("VersionId") == current
    assert "ObjectLockMode" not in head and "ObjectLockLegalHoldStatus" not in head, \
        f"the current version took the lock: {head.get('ObjectLockMode')}, {head.get('ObjectLockLegalHoldStatus')}"
    for version in (None, current):
        params = {"VersionId": version} if version else {}
        refused(f"GetObjectRetention of the current version ({params})", s3.get_object_retention, 404,
                "NoSuchObjectLockConfiguration", Bucket=name, Key="multi", **params)
        refused(f"GetObjectLegalHold of the current version ({params})", s3.get_object_legal_hold, 404,
                "NoSuchObjectLockConfiguration", Bucket=name, Key="multi", **params)


def test_lock_operations_on_a_bucket_without_lock(s3, buckets):
    """Put/GetObjectRetention and Put/GetObjectLegalHold on a bucket without object
    lock are 400 InvalidRequest."""
    plain = buckets(lock=False)
    s3.put_object(Bucket=plain, Key="obj", Body=b"x")
    for what, call, params in (
            ("PutObjectRetention", s3.put_object_retention,
             {"Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": future(DAY)}}),
            ("GetObjectRetention", s3.get_object_retention, {}),
            ("PutObjectLegalHold", s3.put_object_legal_hold, {"LegalHold": {"Status": "ON"}}),
            ("GetObjectLegalHold", s3.get_object_legal_hold, {})):
        refused(f"{what} on a bucket without lock", call, 400, "InvalidRequest", Bucket=plain, Key="obj", **params)
    assert "ObjectLockMode" not in s3.head_object(Bucket=plain, Key="obj")


# ---------------------------------------------------------------- 7. copies and multipart uploads

def test_copy_takes_the_destination_default_not_the_source_lock(scratch):
    """A copy into a bucket whose default is GOVERNANCE 1 day gets that, not its
    COMPLIANCE source's longer retention nor its legal hold; a copy request asking for
    a legal hold gets one."""
    s3 = scratch.client()
    source = new_lock_bucket(s3)
    target = new_lock_bucket(s3, default=("GOVERNANCE", 1))
    put_version(s3, source, "src", b"source bytes", ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=future(5 * DAY), ObjectLockLegalHoldStatus="ON")
    s3.copy_object(Bucket=target, Key="copy", CopySource={"Bucket": source, "Key": "src"})
    head = s3.head_object(Bucket=target, Key="copy")
    assert_default_retention(head, "GOVERNANCE", DAY, "copy into a GOVERNANCE 1 day bucket")
    assert head.get("ObjectLockLegalHoldStatus") in (None, "OFF"), \
        f"the copy took the source's legal hold: {head.get('ObjectLockLegalHoldStatus')}"
    assert s3.get_object(Bucket=target, Key="copy")["Body"].read() == b"source bytes"
    s3.copy_object(Bucket=target, Key="held-copy", CopySource={"Bucket": source, "Key": "src"},
                   ObjectLockLegalHoldStatus="ON")
    head = s3.head_object(Bucket=target, Key="held-copy")
    assert_default_retention(head, "GOVERNANCE", DAY, "copy asking for a legal hold")
    assert head.get("ObjectLockLegalHoldStatus") == "ON", \
        f"the copy asking for a hold has {head.get('ObjectLockLegalHoldStatus')!r}"


def test_multipart_upload_carries_its_lock(s3, buckets):
    """CreateMultipartUpload with a mode, date and legal hold: the completed object
    has that retention and hold."""
    name = buckets()
    until = future(DAY)
    upload = s3.create_multipart_upload(Bucket=name, Key="mp", ObjectLockMode="GOVERNANCE",
                                        ObjectLockRetainUntilDate=until,
                                        ObjectLockLegalHoldStatus="ON")["UploadId"]
    first, second = b"a" * (5 * 1024 * 1024), b"b" * 1000
    parts = []
    for number, body in ((1, first), (2, second)):
        etag = s3.upload_part(Bucket=name, Key="mp", UploadId=upload, PartNumber=number, Body=body,
                              ContentMD5=md5_b64(body))["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    version = s3.complete_multipart_upload(Bucket=name, Key="mp", UploadId=upload,
                                           MultipartUpload={"Parts": parts}).get("VersionId")
    head = s3.head_object(Bucket=name, Key="mp")
    assert head.get("VersionId") == version and head["ContentLength"] == len(first) + len(second)
    assert head.get("ObjectLockMode") == "GOVERNANCE" and head.get("ObjectLockRetainUntilDate") == until, \
        f"the completed upload's retention: {head.get('ObjectLockMode')} {head.get('ObjectLockRetainUntilDate')}"
    assert head.get("ObjectLockLegalHoldStatus") == "ON", \
        f"the completed upload's hold: {head.get('ObjectLockLegalHoldStatus')!r}"
    assert s3.get_object_retention(Bucket=name, Key="mp")["Retention"] == \
        {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    assert s3.get_object_legal_hold(Bucket=name, Key="mp")["LegalHold"] == {"Status": "ON"}


# ---------------------------------------------------------------- 8. who may bypass

def test_acl_grantee_cannot_bypass_governance(daemon, s3, buckets):
    """A second user granted WRITE on a lock bucket may put, and delete an unlocked
    version by id, but its delete of a GOVERNANCE version with BypassGovernanceRetention
    is 403 AccessDenied (the version stays), and Put/GetObjectLockConfiguration are
    AccessDenied to it."""
    name = buckets(default=("GOVERNANCE", 1))
    access, other = add_user(daemon)
    try:
        owner = s3.get_bucket_acl(Bucket=name)["Owner"]
        other_id = hashlib.sha256(access.encode()).hexdigest()
        s3.put_bucket_acl(Bucket=name, AccessControlPolicy={"Owner": owner, "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": other_id}, "Permission": "WRITE"}]})
        version = put_version(s3, name, "gov", b"owner's")
        for bypass in (False, True):
            refused(f"the grantee's DELETE by id (bypass={bypass})", other.delete_object, 403, "AccessDenied",
                    Bucket=name, Key="gov", VersionId=version, BypassGovernanceRetention=bypass)
        assert listed_versions(s3, name, "gov") == [version], "the grantee's delete removed the version"
        refused("the grantee's PutObjectRetention removal with bypass", other.put_object_retention, 403,
                "AccessDenied", Bucket=name, Key="gov", VersionId=version, BypassGovernanceRetention=True,
                Retention={})
        assert s3.head_object(Bucket=name, Key="gov", VersionId=version).get("ObjectLockMode") == "GOVERNANCE"
        # The WRITE grant works: the denials above are the lock's.
        lock_config(s3, name)  # no default rule now, so the grantee's own version is unlocked
        mine = put_version(other, name, "theirs", b"grantee's")
        other.delete_object(Bucket=name, Key="theirs", VersionId=mine)
        assert listed_versions(s3, name, "theirs") == [], "the grantee could not delete an unlocked version"
        refused("the grantee's PutObjectLockConfiguration", other.put_object_lock_configuration, 403,
                "AccessDenied", Bucket=name, ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 7}}})
        refused("the grantee's GetObjectLockConfiguration", other.get_object_lock_configuration, 403,
                "AccessDenied", Bucket=name)
        assert s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"] == \
            {"ObjectLockEnabled": "Enabled"}, "the grantee's refused configuration changed it"
    finally:
        subprocess.run([BIN, "--data-dir", daemon.data_dir, "credentials", "remove", "--access-key", access],
                       capture_output=True, timeout=30)


# ---------------------------------------------------------------- 9. races

def test_racing_deletes_against_governance_and_legal_hold(daemon, s3, buckets):
    """16 simultaneous deletes by id of a GOVERNANCE version, without bypass, are all
    AccessDenied and the version stays. Then, for fresh versions, 8 bypassing deletes
    race 8 PutObjectLegalHold ON: a version that survives has its hold ON and no delete
    of it answered 204; a version gone had a delete answer 204 and no hold answer 200."""
    name = buckets(default=("GOVERNANCE", 1))
    clients = [daemon.client() for _ in range(16)]
    version = put_version(s3, name, "contested")
    outcomes = race([lambda c=c: c.delete_object(Bucket=name, Key="contested", VersionId=version)
                     for c in clients])
    assert outcomes == [(403, "AccessDenied")] * 16, f"the deletes without bypass answered {outcomes}"
    assert listed_versions(s3, name, "contested") == [version], "a refused delete removed the version"

    for round_ in range(8):
        key = f"raced-{round_}"
        version = put_version(s3, name, key)
        calls = []
        for n, c in enumerate(clients):
            if n % 2:
                calls.append(lambda c=c: c.delete_object(Bucket=name, Key=key, VersionId=version,
                                                         BypassGovernanceRetention=True))
            else:
                calls.append(lambda c=c: c.put_object_legal_hold(Bucket=name, Key=key, VersionId=version,
                                                                 LegalHold={"Status": "ON"}))
        outcomes = race(calls)
        deletes, holds = outcomes[1::2], outcomes[0::2]
        where = f"round {round_}: deletes answered {deletes}, holds answered {holds}"
        assert all(o in ((204, None), (403, "AccessDenied")) for o in deletes), where
        assert all(o == (200, None) or o[0] == 404 for o in holds), where
        exists = version_exists(s3, name, key, version)
        if exists:
            hold = s3.get_object_legal_hold(Bucket=name, Key=key, VersionId=version)["LegalHold"]
            assert hold == {"Status": "ON"}, f"{where}: the version survived with hold {hold}"
            assert (204, None) not in deletes, f"{where}: a delete answered 204 but the version is there"
            assert all(o == (200, None) for o in holds), f"{where}: a hold failed on a version that exists"
        else:
            assert (204, None) in deletes, f"{where}: the version is gone but no delete answered 204"
            # A hold that took before the delete would have kept the version.
            assert (200, None) not in holds, f"{where}: a hold answered 200 but the version is gone"
        assert listed_versions(s3, name, key) == ([version] if exists else []), \
            f"{where}: ListObjectVersions disagrees with HEAD (exists={exists})"


def test_racing_bypass_deletes_under_compliance(scratch):
    """16 simultaneous deletes by id with bypass of a COMPLIANCE version are all
    AccessDenied and the version stays."""
    s3 = scratch.client()
    name = new_lock_bucket(s3)
    version = put_version(s3, name, "kept", b"compliant", ObjectLockMode="COMPLIANCE",
                          ObjectLockRetainUntilDate=future(DAY))
    clients = [scratch.client() for _ in range(16)]
    outcomes = race([lambda c=c: c.delete_object(Bucket=name, Key="kept", VersionId=version,
                                                 BypassGovernanceRetention=True) for c in clients])
    assert outcomes == [(403, "AccessDenied")] * 16, f"the bypassing deletes answered {outcomes}"
    assert s3.get_object(Bucket=name, Key="kept", VersionId=version)["Body"].read() == b"compliant"
    assert listed_versions(s3, name, "kept") == [version]
