#!/usr/bin/env python3
"""Writes src/ops/openapi.json, the OpenAPI 3.1 description served at /openapi.json.

The S3 operations are listed once in OPERATIONS below; run this script after adding
one (tests/python/test_ops.py checks that every routed operation is described).
S3 tells operations apart by method and query subresource on the same path, which
OpenAPI cannot key on, so each subresource gets its own path entry ("/{bucket}?acl").
"""

import json
import os

BUCKET = {"name": "bucket", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "Bucket name (path style; virtual-hosted style works with --domain)."}
KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
       "description": "Object key, percent-encoded; slashes are part of the key."}


def query(name, description, required=False, kind="string"):
    return {"name": name, "in": "query", "required": required, "schema": {"type": kind},
            "description": description}


def header(name, description, required=False):
    return {"name": name, "in": "header", "required": required, "schema": {"type": "string"},
            "description": description}


UPLOAD_ID = query("uploadId", "Multipart upload id from CreateMultipartUpload.", True)
PART_NUMBER = query("partNumber", "Part number, 1 to 10000.", True, "integer")
VERSION_ID = query("versionId", "One version of the object (`null` for the null version); the current one when absent.")
CONDITIONALS = [
    header("If-Match", "Only if the ETag matches."),
    header("If-None-Match", "Only if the ETag differs (on PUT: `*`, only if the key is new)."),
    header("If-Modified-Since", "Only if modified since this HTTP date."),
    header("If-Unmodified-Since", "Only if not modified since this HTTP date."),
]
CHECKSUMS = [header(f"x-amz-checksum-{alg}", f"Base64 {alg.upper()} of the body, verified.")
             for alg in ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]]
PAYLOAD = [
    header("x-amz-content-sha256", "Hex SHA-256 of the body, UNSIGNED-PAYLOAD, or a STREAMING-* mode."),
    header("Content-MD5", "Base64 MD5 of the body, verified."),
]
LISTING = [
    query("prefix", "Only keys that start with this."),
    query("delimiter", "Roll keys up to the first delimiter after the prefix into CommonPrefixes."),
    query("max-keys", "Keys per page, 0 to 1000.", kind="integer"),
    query("encoding-type", "`url` to percent-encode keys in the answer."),
]
XML = {"application/xml": {"schema": {"type": "string"}}}
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}

# (path, method, operationId, tag, summary, parameters, request body, success responses)
OPERATIONS = [
    ("/", "get", "ListBuckets", "Bucket", "List the requester's buckets.", [], None, {"200": XML}),
    ("/{bucket}", "put", "CreateBucket", "Bucket", "Create a bucket.",
     [header("x-amz-acl", "Canned ACL."),
      header("x-amz-bucket-object-lock-enabled", "`true`: object lock (and versioning) on for good.")],
     XML, {"200": None}),
    ("/{bucket}", "delete", "DeleteBucket", "Bucket", "Delete an empty bucket.", [], None, {"204": None}),
    ("/{bucket}", "head", "HeadBucket", "Bucket", "Whether the bucket exists and may be used.", [], None,
     {"200": None}),
    ("/{bucket}", "get", "ListObjects", "Bucket", "List objects (version 1).",
     LISTING + [query("marker", "List keys after this one.")], None, {"200": XML}),
    ("/{bucket}?list-type=2", "get", "ListObjectsV2", "Bucket", "List objects (version 2).",
     LISTING + [query("continuation-token", "Token from the previous page."),
                query("start-after", "List keys after this one."),
                query("fetch-owner", "Include owners.", kind="boolean")], None, {"200": XML}),
    ("/{bucket}?location", "get", "GetBucketLocation", "Bucket", "The bucket's region.", [], None,
     {"200": XML}),
    ("/{bucket}?versions", "get", "ListObjectVersions", "Bucket",
     "List every version and delete marker, newest first within a key (objects written while "
     "versioning was off are the `null` version).",
     LISTING + [query("key-marker", "List after this key (or within it, with version-id-marker)."),
                query("version-id-marker", "List the key-marker's versions older than this one.")],
     None, {"200": XML}),
    ("/{bucket}?versioning", "get", "GetBucketVersioning", "Bucket",
     "Versioning state: Enabled, Suspended, or no Status when never enabled.", [], None, {"200": XML}),
    ("/{bucket}?versioning", "put", "PutBucketVersioning", "Bucket",
     "Enable or suspend versioning (a VersioningConfiguration; there is no way back to unversioned).",
     PAYLOAD, XML, {"200": None}),
    ("/{bucket}?cors", "get", "GetBucketCors", "Bucket", "The bucket's CORS rules.", [], None, {"200": XML}),
    ("/{bucket}?cors", "put", "PutBucketCors", "Bucket",
     "Set the bucket's CORS rules (up to 100); browsers' preflights are answered from them, and "
     "allowed origins get Access-Control-* headers on every answer.", PAYLOAD, XML, {"200": None}),
    ("/{bucket}?cors", "delete", "DeleteBucketCors", "Bucket", "Remove the bucket's CORS rules.", [], None,
     {"204": None}),
    ("/{bucket}?object-lock", "get", "GetObjectLockConfiguration", "Bucket",
     "The bucket's object lock configuration (ObjectLockConfigurationNotFoundError without one).", [], None,
     {"200": XML}),
    ("/{bucket}?object-lock", "put", "PutObjectLockConfiguration", "Bucket",
     "Turn object lock on (versioning must be Enabled; it stays on) and set a default retention.",
     PAYLOAD, XML, {"200": None}),
    ("/{bucket}?acl", "get", "GetBucketAcl", "Bucket", "The bucket's access control list.", [], None,
     {"200": XML}),
    ("/{bucket}?acl", "put", "PutBucketAcl", "Bucket",
     "Set the bucket's ACL from a canned ACL, grant headers or an AccessControlPolicy document.",
     [header("x-amz-acl", "Canned ACL.")], XML, {"200": None}),
    ("/{bucket}?delete", "post", "DeleteObjects", "Object", "Delete up to 1000 keys at once.",
     PAYLOAD, XML, {"200": XML}),
    ("/{bucket}?uploads", "get", "ListMultipartUploads", "MultipartUpload",
     "List multipart uploads in progress.",
     [query("prefix", "Only keys with this prefix."), query("delimiter", "Roll up keys."),
      query("key-marker", "Start after this key."), query("upload-id-marker", "Start after this upload."),
      query("max-uploads", "Uploads per page.", kind="integer")], None, {"200": XML}),
    ("/{bucket}/{key}", "put", "PutObject", "Object", "Store an object (streamed to disk, durable before 200).",
     PAYLOAD + CHECKSUMS + [header("If-None-Match", "`*`: only if the key is new."),
                            header("If-Match", "Only if the current ETag matches."),
                            header("x-amz-acl", "Canned ACL."),
                            header("Content-Type", "Stored and returned on GET."),
                            header("x-amz-object-lock-mode", "GOVERNANCE or COMPLIANCE (with the date)."),
                            header("x-amz-object-lock-retain-until-date", "ISO 8601; in the future."),
                            header("x-amz-object-lock-legal-hold", "ON or OFF.")],
     BINARY, {"200": None}),
    ("/{bucket}/{key}", "get", "GetObject", "Object", "Read an object, whole, by range or by part.",
     CONDITIONALS + [header("Range", "`bytes=first-last`, `bytes=first-` or `bytes=-suffix`."),
                     header("x-amz-checksum-mode", "`ENABLED` to get the stored checksum."),
                     query("partNumber", "Read one part of a multipart object.", kind="integer"),
                     VERSION_ID],
     None, {"200": BINARY, "206": BINARY, "304": None}),
    ("/{bucket}/{key}", "head", "HeadObject", "Object", "An object's metadata.",
     CONDITIONALS + [header("x-amz-checksum-mode", "`ENABLED` to get the stored checksum."), VERSION_ID],
     None, {"200": None, "304": None}),
    ("/{bucket}/{key}", "delete", "DeleteObject", "Object",
     "Delete an object (with versioning on, add a delete marker), or one version of it by versionId.",
     [header("If-Match", "Only if the current ETag matches."), VERSION_ID], None, {"204": None}),
    ("/{bucket}/{key}?x-amz-copy-source", "put", "CopyObject", "Object",
     "Copy an object (bytes copied in the kernel); the request carries an x-amz-copy-source header.",
     [header("x-amz-copy-source", "`bucket/key` of the source, URL-encoded.", True),
      header("x-amz-metadata-directive", "COPY or REPLACE."),
      header("x-amz-copy-source-if-match", "Only if the source ETag matches."),
      header("x-amz-checksum-algorithm", "Compute a new checksum of this algorithm for the copy.")],
     None, {"200": XML}),
    ("/{bucket}/{key}?acl", "get", "GetObjectAcl", "Object", "The object's access control list.", [VERSION_ID],
     None, {"200": XML}),
    ("/{bucket}/{key}?acl", "put", "PutObjectAcl", "Object", "Set the object's ACL.",
     [header("x-amz-acl", "Canned ACL."), VERSION_ID], XML, {"200": None}),
    ("/{bucket}/{key}?retention", "get", "GetObjectRetention", "Object", "A version's retention.",
     [VERSION_ID], None, {"200": XML}),
    ("/{bucket}/{key}?retention", "put", "PutObjectRetention", "Object",
     "Set a version's retention: lengthen it, or shorten a GOVERNANCE one with the bypass header.",
     [header("x-amz-bypass-governance-retention", "`true`: the bucket owner overrides GOVERNANCE."), VERSION_ID],
     XML, {"200": None}),
    ("/{bucket}/{key}?legal-hold", "get", "GetObjectLegalHold", "Object", "A version's legal hold.",
     [VERSION_ID], None, {"200": XML}),
    ("/{bucket}/{key}?legal-hold", "put", "PutObjectLegalHold", "Object", "Turn a version's legal hold ON or OFF.",
     [VERSION_ID], XML, {"200": None}),
    ("/{bucket}/{key}?attributes", "get", "GetObjectAttributes", "Object",
     "ETag, checksum, parts, storage class and size of an object, without its bytes.",
     [header("x-amz-object-attributes", "Comma-separated: ETag, Checksum, ObjectParts, StorageClass, ObjectSize.",
             True),
      header("x-amz-max-parts", "Parts per page."), header("x-amz-part-number-marker", "List parts after this."),
      VERSION_ID],
     None, {"200": XML}),
    ("/{bucket}/{key}?uploads", "post", "CreateMultipartUpload", "MultipartUpload", "Start a multipart upload.",
     [header("x-amz-checksum-algorithm", "CRC32, CRC32C, CRC64NVME, SHA1 or SHA256."),
      header("x-amz-checksum-type", "COMPOSITE or FULL_OBJECT.")], None, {"200": XML}),
    ("/{bucket}/{key}?partNumber&uploadId", "put", "UploadPart", "MultipartUpload", "Upload one part.",
     [PART_NUMBER, UPLOAD_ID] + PAYLOAD + CHECKSUMS, BINARY, {"200": None}),
    ("/{bucket}/{key}?partNumber&uploadId&x-amz-copy-source", "put", "UploadPartCopy", "MultipartUpload",
     "Make a part from (a range of) another object.",
     [PART_NUMBER, UPLOAD_ID, header("x-amz-copy-source", "`bucket/key` of the source.", True),
      header("x-amz-copy-source-range", "`bytes=first-last` of the source.")], None, {"200": XML}),
    ("/{bucket}/{key}?uploadId", "post", "CompleteMultipartUpload", "MultipartUpload",
     "Assemble the listed parts into the object (by reference: nothing is copied).",
     [UPLOAD_ID, header("If-None-Match", "`*`: only if the key is new.")] + CHECKSUMS, XML, {"200": XML}),
    ("/{bucket}/{key}?uploadId", "delete", "AbortMultipartUpload", "MultipartUpload",
     "Abandon an upload and free its parts.", [UPLOAD_ID], None, {"204": None}),
    ("/{bucket}/{key}?uploadId", "get", "ListParts", "MultipartUpload", "List an upload's parts.",
     [UPLOAD_ID, query("max-parts", "Parts per page.", kind="integer"),
      query("part-number-marker", "List parts after this.", kind="integer")], None, {"200": XML}),
]

PLAIN = {"text/plain": {"schema": {"type": "string"}}}
CHECK = {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok", "error"]},
                                          "latency_ms": {"type": "number"},
                                          "error": {"type": "string"}}}
HEALTH = {"application/json": {"schema": {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok", "error"]}, "version": {"type": "string"},
                   "uptime_seconds": {"type": "integer"},
                   "checks": {"type": "object", "properties": {"metadata": CHECK, "storage": CHECK}}}}}}
OPS_ENDPOINTS = [
    ("/health", "Health", "Metadata and storage checks with their latency.",
     {"200": ("All checks pass.", HEALTH), "503": ("A check failed.", HEALTH)}),
    ("/healthz", "Healthz", "Liveness: the process answers.", {"200": ("Alive.", None)}),
    ("/readyz", "Readyz", "Readiness: 503 while starting or draining.",
     {"200": ("Ready.", None), "503": ("Starting or draining.", None)}),
    ("/metrics", "Metrics", "Prometheus text format 0.0.4, `bleepstore_` metrics and process figures.",
     {"200": ("Metrics.", {"text/plain; version=0.0.4": {"schema": {"type": "string"}}})}),
    ("/openapi.json", "OpenApi", "This document.",
     {"200": ("OpenAPI 3.1.", {"application/json": {"schema": {"type": "object"}}})}),
    ("/docs", "Docs", "Swagger UI over this document.",
     {"200": ("HTML page.", {"text/html": {"schema": {"type": "string"}}})}),
]


def build():
    paths = {}
    for path, method, op_id, tag, summary, params, body, responses in OPERATIONS:
        item = paths.setdefault(path, {})
        path_params = [BUCKET] if "{bucket}" in path else []
        if "{key}" in path:
            path_params.append(KEY)
        operation = {
            "operationId": op_id,
            "tags": [tag],
            "summary": summary,
            "parameters": path_params + params,
            "responses": {
                status: {"description": "Success.", **({"content": content} if content else {})}
                for status, content in responses.items()
            },
        }
        operation["responses"]["default"] = {"$ref": "#/components/responses/S3Error"}
        if body:
            operation["requestBody"] = {"content": body, "required": op_id not in ("CreateBucket",)}
        item[method] = operation
    for path, op_id, summary, responses in OPS_ENDPOINTS:
        paths[path] = {"get": {
            "operationId": op_id,
            "tags": ["Operations"],
            "summary": summary,
            "security": [],
            "responses": {status: {"description": text, **({"content": content} if content else {})}
                          for status, (text, content) in responses.items()},
        }}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "BleepStore S3-Compatible API",
            "version": "0.1.0",
            "description": "The S3 operations this BleepStore daemon serves, and its operations endpoints. "
                           "S3 selects an operation by method, path and query subresource; paths here "
                           "carry the subresource after `?` to keep operations apart. Every other S3 "
                           "operation answers 501 NotImplemented.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "__SERVER_URL__", "description": "This server."}],
        "tags": [
            {"name": "Bucket", "description": "Buckets and their listings."},
            {"name": "Object", "description": "Objects: read, write, copy, delete, ACLs."},
            {"name": "MultipartUpload", "description": "Multipart uploads."},
            {"name": "Operations", "description": "Health, readiness, metrics and this description (no auth)."},
        ],
        "security": [{"sigv4": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4 (`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., "
                                   "Signature=...`), or the same signature in the query string of a "
                                   "presigned URL (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Signature`...). "
                                   "Requests without either are anonymous and succeed only where an ACL "
                                   "grants AllUsers.",
                },
            },
            "responses": {
                "S3Error": {
                    "description": "An S3 error document.",
                    "content": {"application/xml": {"schema": {
                        "type": "object",
                        "xml": {"name": "Error"},
                        "properties": {"Code": {"type": "string"}, "Message": {"type": "string"},
                                       "Resource": {"type": "string"}, "RequestId": {"type": "string"},
                                       "HostId": {"type": "string"}},
                    }}},
                },
            },
        },
    }


if __name__ == "__main__":
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "ops", "openapi.json")
    with open(target, "w") as out:
        json.dump(build(), out, indent=2)
        out.write("\n")
    print(f"wrote {os.path.normpath(target)}")
