"""Multipart checksums (composite and full-object), GetObjectAttributes and checksums
on copies, through boto3. Expected values are computed here, independently of the daemon:
zlib for CRC32, awscrt for CRC32C and CRC64/NVME, hashlib for the SHAs."""

import base64
import hashlib
import os
import zlib

import pytest
from awscrt import checksums as crt
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]


def raw_digest(alg, data):
    if alg == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if alg == "CRC32C":
        return crt.crc32c(data).to_bytes(4, "big")
    if alg == "CRC64NVME":
        return crt.crc64nvme(data).to_bytes(8, "big")
    if alg == "SHA1":
        return hashlib.sha1(data).digest()
    return hashlib.sha256(data).digest()


def b64(alg, data):
    return base64.b64encode(raw_digest(alg, data)).decode()


def composite(alg, bodies):
    inner = b"".join(raw_digest(alg, body) for body in bodies)
    return f"{b64(alg, inner)}-{len(bodies)}"


def upload(s3, bucket, key, alg, sizes, kind=None, part_alg=None):
    """Creates an upload with a checksum and uploads parts with boto3 computing theirs."""
    extra = {"ChecksumType": kind} if kind else {}
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=alg, **extra)
    upload_id = created["UploadId"]
    parts, bodies = [], []
    for number, size in enumerate(sizes, start=1):
        body = os.urandom(size)
        answer = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body,
            ChecksumAlgorithm=part_alg or alg,
        )
        assert answer[f"Checksum{alg}"] == b64(alg, body)
        parts.append({"PartNumber": number, "ETag": answer["ETag"], f"Checksum{alg}": b64(alg, body)})
        bodies.append(body)
    return created, upload_id, parts, bodies


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_composite_checksum(s3, bucket, alg):
    created, upload_id, parts, bodies = upload(s3, bucket, "obj", alg, [5 * MIB, 1000])
    assert created["ChecksumAlgorithm"] == alg and created["ChecksumType"] == "COMPOSITE"
    listed = s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id)
    assert listed["ChecksumAlgorithm"] == alg and listed["ChecksumType"] == "COMPOSITE"
    assert [p[f"Checksum{alg}"] for p in listed["Parts"]] == [b64(alg, b) for b in bodies]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="obj", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    expected = composite(alg, bodies)
    assert done[f"Checksum{alg}"] == expected and done["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == expected and head["ChecksumType"] == "COMPOSITE"
    # A part read alone carries the part's own checksum.
    second = s3.get_object(Bucket=bucket, Key="obj", PartNumber=2, ChecksumMode="ENABLED")
    assert second[f"Checksum{alg}"] == b64(alg, bodies[1])
    assert second["Body"].read() == bodies[1]
    attrs = s3.get_object_attributes(
        Bucket=bucket, Key="obj", ObjectAttributes=["Checksum", "ObjectParts", "ObjectSize", "ETag"]
    )
    # GetObjectAttributes shows a composite value without its part-count suffix.
    assert attrs["Checksum"] == {f"Checksum{alg}": expected.rsplit("-", 1)[0], "ChecksumType": "COMPOSITE"}
    assert attrs["ObjectSize"] == 5 * MIB + 1000
    assert attrs["ETag"] == head["ETag"].strip('"')
    object_parts = attrs["ObjectParts"]
    assert object_parts["TotalPartsCount"] == 2 and object_parts["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"], p[f"Checksum{alg}"]) for p in object_parts["Parts"]] == [
        (1, 5 * MIB, b64(alg, bodies[0])),
        (2, 1000, b64(alg, bodies[1])),
    ]


@pytest.mark.parametrize("alg,kind", [("CRC32", "FULL_OBJECT"), ("CRC32C", "FULL_OBJECT"), ("CRC64NVME", None)])
def test_full_object_checksum(s3, bucket, alg, kind):
    created, upload_id, parts, bodies = upload(s3, bucket, "full", alg, [5 * MIB, 3 * MIB + 1], kind=kind)
    assert created["ChecksumType"] == "FULL_OBJECT"
    whole = b"".join(bodies)
    expected = b64(alg, whole)
    # A wrong object checksum is BadDigest and nothing is stored; the upload survives.
    wrong = b64(alg, b"something else")
    err = error_of(
        s3.complete_multipart_upload, Bucket=bucket, Key="full", UploadId=upload_id,
        MultipartUpload={"Parts": parts}, ChecksumType="FULL_OBJECT", **{f"Checksum{alg}": wrong},
    )
    assert err["Code"] == "BadDigest"
    assert error_of(s3.head_object, Bucket=bucket, Key="full")["Code"] == "404"
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="full", UploadId=upload_id, MultipartUpload={"Parts": parts},
        ChecksumType="FULL_OBJECT", **{f"Checksum{alg}": expected},
    )
    assert done[f"Checksum{alg}"] == expected and done["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert got[f"Checksum{alg}"] == expected and got["ChecksumType"] == "FULL_OBJECT"
    assert got["Body"].read() == whole
    attrs = s3.get_object_attributes(Bucket=bucket, Key="full", ObjectAttributes=["Checksum", "ObjectParts"])
    assert attrs["Checksum"] == {f"Checksum{alg}": expected, "ChecksumType": "FULL_OBJECT"}
    assert attrs["ObjectParts"]["TotalPartsCount"] == 2 and "Parts" not in attrs["ObjectParts"]


def test_full_object_parts_without_checksums_are_computed(daemon, s3, bucket):
    """A full-object upload accepts parts that carry no checksum: the daemon computes them."""
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="CRC64NVME")
    plain = daemon.client(request_checksum_calculation="when_required")
    bodies = [os.urandom(5 * MIB), os.urandom(10)]
    parts = []
    for number, body in enumerate(bodies, start=1):
        etag = plain.upload_part(
            Bucket=bucket, Key="k", UploadId=created["UploadId"], PartNumber=number, Body=body
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    done = plain.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=created["UploadId"], MultipartUpload={"Parts": parts}
    )
    assert done["ChecksumCRC64NVME"] == b64("CRC64NVME", b"".join(bodies))


def test_checksum_rules(daemon, s3, bucket):
    for alg, kind in [("SHA256", "FULL_OBJECT"), ("SHA1", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE")]:
        err = error_of(s3.create_multipart_upload, Bucket=bucket, Key="k", ChecksumAlgorithm=alg, ChecksumType=kind)
        assert err["Code"] == "InvalidRequest", (alg, kind)
    # A part of another algorithm than the upload's is refused, and one without any
    # checksum is refused when the object checksum is composite.
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")
    upload_id = created["UploadId"]
    err = error_of(
        s3.upload_part, Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x",
        ChecksumAlgorithm="CRC32",
    )
    assert err["Code"] == "InvalidRequest" and "sha256" in err["Message"]
    plain = daemon.client(request_checksum_calculation="when_required")
    err = error_of(plain.upload_part, Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert err["Code"] == "InvalidRequest"
    # Completion: a wrong part checksum is InvalidPart, a missing one InvalidRequest,
    # and composite parts must be numbered 1, 2, 3... without gaps.
    bodies = {1: os.urandom(5 * MIB), 3: b"tail"}
    parts = []
    for number, body in bodies.items():
        answer = s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body, ChecksumAlgorithm="SHA256"
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": answer["ChecksumSHA256"]})
    gap = error_of(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload_id,
                   MultipartUpload={"Parts": parts})
    assert gap["Code"] == "InvalidPartOrder"
    first = parts[:1]
    bad = [dict(first[0], ChecksumSHA256=b64("SHA256", b"other"))]
    err = error_of(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload_id,
                   MultipartUpload={"Parts": bad})
    assert err["Code"] == "InvalidPart"
    missing = [{"PartNumber": 1, "ETag": first[0]["ETag"]}]
    err = error_of(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=upload_id,
                   MultipartUpload={"Parts": missing})
    assert err["Code"] == "InvalidRequest" and "part 1" in err["Message"]
    assert error_of(s3.head_object, Bucket=bucket, Key="k")["Code"] == "404"
    done = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                        MultipartUpload={"Parts": first})
    assert done["ChecksumSHA256"] == composite("SHA256", [bodies[1]])


def test_attributes_of_a_single_put(s3, bucket):
    body = b"A" * 1024
    s3.put_object(Bucket=bucket, Key="one", Body=body, ChecksumAlgorithm="SHA256")
    attrs = s3.get_object_attributes(
        Bucket=bucket, Key="one", ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    )
    assert attrs["ETag"] == hashlib.md5(body).hexdigest()
    assert attrs["Checksum"] == {"ChecksumSHA256": b64("SHA256", body), "ChecksumType": "FULL_OBJECT"}
    assert attrs["StorageClass"] == "STANDARD" and attrs["ObjectSize"] == 1024
    assert "ObjectParts" not in attrs
    assert attrs["LastModified"] == s3.head_object(Bucket=bucket, Key="one")["LastModified"]
    only = s3.get_object_attributes(Bucket=bucket, Key="one", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == 1024 and "ETag" not in only and "Checksum" not in only
    assert error_of(s3.get_object_attributes, Bucket=bucket, Key="one", ObjectAttributes=["Colour"])["Code"] == \
        "InvalidArgument"
    assert error_of(s3.get_object_attributes, Bucket=bucket, Key="none", ObjectAttributes=["ETag"])["Code"] == \
        "NoSuchKey"


def test_attribute_parts_are_paged(s3, bucket):
    _, upload_id, parts, bodies = upload(s3, bucket, "paged", "CRC32C", [5 * MIB, 5 * MIB, 7])
    s3.complete_multipart_upload(Bucket=bucket, Key="paged", UploadId=upload_id, MultipartUpload={"Parts": parts})
    first = s3.get_object_attributes(Bucket=bucket, Key="paged", ObjectAttributes=["ObjectParts"], MaxParts=2)
    page = first["ObjectParts"]
    assert page["TotalPartsCount"] == 3 and page["IsTruncated"] is True and page["MaxParts"] == 2
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2] and page["NextPartNumberMarker"] == 2
    rest = s3.get_object_attributes(
        Bucket=bucket, Key="paged", ObjectAttributes=["ObjectParts"], MaxParts=2, PartNumberMarker=2
    )["ObjectParts"]
    assert rest["IsTruncated"] is False
    assert [(p["PartNumber"], p["ChecksumCRC32C"]) for p in rest["Parts"]] == [(3, b64("CRC32C", bodies[2]))]


def test_upload_part_copy_carries_the_upload_checksum(s3, bucket):
    source = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    created = s3.create_multipart_upload(Bucket=bucket, Key="dst", ChecksumAlgorithm="CRC32C")
    upload_id = created["UploadId"]
    copied = s3.upload_part_copy(
        Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{5 * MIB - 1}",
    )["CopyPartResult"]
    assert copied["ChecksumCRC32C"] == b64("CRC32C", source[:5 * MIB])
    tail = s3.upload_part(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=2, Body=b"end",
                          ChecksumAlgorithm="CRC32C")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="dst", UploadId=upload_id,
        MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": copied["ETag"], "ChecksumCRC32C": copied["ChecksumCRC32C"]},
            {"PartNumber": 2, "ETag": tail["ETag"], "ChecksumCRC32C": tail["ChecksumCRC32C"]},
        ]},
    )
    assert done["ChecksumCRC32C"] == composite("CRC32C", [source[:5 * MIB], b"end"])


def test_copy_object_with_a_new_checksum(s3, bucket):
    body = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key="plain", Body=body, ChecksumAlgorithm="CRC32")
    answer = s3.copy_object(
        Bucket=bucket, Key="sha", CopySource={"Bucket": bucket, "Key": "plain"}, ChecksumAlgorithm="SHA256"
    )["CopyObjectResult"]
    assert answer["ChecksumSHA256"] == b64("SHA256", body)
    head = s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64("SHA256", body) and "ChecksumCRC32" not in head
    # Without a new algorithm the copy keeps the source's checksum.
    s3.copy_object(Bucket=bucket, Key="same", CopySource={"Bucket": bucket, "Key": "plain"})
    assert s3.head_object(Bucket=bucket, Key="same", ChecksumMode="ENABLED")["ChecksumCRC32"] == b64("CRC32", body)
