"""A small independent SigV4 signer (written from the AWS documentation) for
the request forms boto3 does not send over plain HTTP: UNSIGNED-PAYLOAD, no
x-amz-content-sha256, aws-chunked with chunk signatures, and trailers."""

import base64
import datetime
import hashlib
import hmac
import http.client
import urllib.parse
import zlib

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region="us-east-1", service="s3"):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def amz_now(offset_seconds=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_seconds)
    return t.strftime("%Y%m%dT%H%M%SZ")


def uri_encode(text, encode_slash=True):
    safe = "-_.~" + ("" if encode_slash else "/")
    return urllib.parse.quote(text, safe=safe)


def canonical_query(query_pairs):
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in query_pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def sign_headers(method, path, query_pairs, headers, payload_hash, access, secret, amz_date,
                 region="us-east-1", sign_content_sha=True):
    """Returns (headers with x-amz-date, x-amz-content-sha256 and Authorization, signature)."""
    headers = {k.lower(): v for k, v in headers.items()}
    headers["x-amz-date"] = amz_date
    if sign_content_sha:
        headers["x-amz-content-sha256"] = payload_hash
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names)
    canonical = "\n".join([method, uri_encode(path, encode_slash=False), canonical_query(query_pairs),
                           canonical_headers, ";".join(names), payload_hash])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret, amz_date[:8], region), sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers, signature


def presign(method, path, query_pairs, headers, access, secret, amz_date, expires=300, region="us-east-1"):
    """The raw query of a presigned URL signing `headers` (host among them) and the query."""
    headers = {k.lower(): v for k, v in headers.items()}
    names = sorted(headers)
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    pairs = list(query_pairs) + [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"{access}/{scope}"),
        ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", ";".join(names))]
    canonical_headers = "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names)
    canonical = "\n".join([method, uri_encode(path, encode_slash=False), canonical_query(pairs),
                           canonical_headers, ";".join(names), "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret, amz_date[:8], region), sts.encode(), hashlib.sha256).hexdigest()
    return raw_query(pairs + [("X-Amz-Signature", signature)])


def raw_query(pairs):
    """A query string of (name, value) pairs, encoded as SigV4 canonicalises them."""
    return "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in pairs)


# Signature Version 2, from the S3 developer guide ("Signing and authenticating REST
# requests"): HMAC-SHA1 over the method, Content-MD5, Content-Type, the date (or the
# expiry), the x-amz-* headers and the resource with its sub-resources.

V2_SUBRESOURCES = {
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory", "legal-hold",
    "lifecycle", "location", "logging", "metrics", "notification", "object-lock", "partNumber", "policy",
    "replication", "requestPayment", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "response-content-language", "response-content-type", "response-expires",
    "restore", "retention", "select", "select-type", "storageClass", "tagging", "torrent", "uploadId",
    "uploads", "versionId", "versioning", "versions", "website",
}


def v2_string_to_sign(method, path, query_pairs, headers, date_line, host_bucket=None):
    headers = {k.lower(): v for k, v in headers.items()}
    amz = sorted((k, " ".join(str(v).split())) for k, v in headers.items() if k.startswith("x-amz-"))
    resource = (f"/{host_bucket}" if host_bucket else "") + uri_encode(path, encode_slash=False)
    subs = sorted((k, v) for k, v in query_pairs if k in V2_SUBRESOURCES)
    if subs:
        resource += "?" + "&".join(f"{k}={v}" if v != "" else k for k, v in subs)
    return "\n".join([method, headers.get("content-md5", ""), headers.get("content-type", ""), date_line]
                     + [f"{k}:{v}" for k, v in amz] + [resource])


def v2_signature(secret, string_to_sign):
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()


def sign_v2(method, path, query_pairs, headers, access, secret, host_bucket=None, date=None):
    """Headers with Date and `Authorization: AWS access:signature` added."""
    headers = dict(headers)
    headers["date"] = date or http_date()
    sts = v2_string_to_sign(method, path, query_pairs, headers, headers["date"], host_bucket)
    headers["authorization"] = f"AWS {access}:{v2_signature(secret, sts)}"
    return headers


def presign_v2(method, path, query_pairs, headers, access, secret, expires_at, host_bucket=None):
    """The raw query of a SigV2 presigned URL (good until `expires_at`, Unix seconds)."""
    sts = v2_string_to_sign(method, path, query_pairs, headers, str(expires_at), host_bucket)
    return raw_query(list(query_pairs) + [("AWSAccessKeyId", access), ("Expires", str(expires_at)),
                                          ("Signature", v2_signature(secret, sts))])


def http_date(offset_seconds=0):
    import email.utils
    import time as _time
    return email.utils.formatdate(_time.time() + offset_seconds, usegmt=True)


def chunk_signature(key, amz_date, scope, previous, data):
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256,
                     hashlib.sha256(data).hexdigest()])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def signed_chunked_body(data, chunk_size, secret, amz_date, seed, region="us-east-1",
                        trailer=None, tamper_chunk=None):
    """aws-chunked body with chained signatures; optional (name, value) trailer, signed."""
    key = signing_key(secret, amz_date[:8], region)
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    previous = seed
    out = b""
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for index, chunk in enumerate(chunks):
        sig = chunk_signature(key, amz_date, scope, previous, chunk)
        previous = sig
        sent = chunk
        if tamper_chunk == index and chunk:
            sent = bytes([chunk[0] ^ 1]) + chunk[1:]
        out += f"{len(chunk):x};chunk-signature={sig}\r\n".encode()
        if chunk:
            out += sent + b"\r\n"
    if trailer:
        block = f"{trailer[0]}:{trailer[1]}\n".encode()
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous,
                         hashlib.sha256(block).hexdigest()])
        tsig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out += f"{trailer[0]}:{trailer[1]}\r\nx-amz-trailer-signature:{tsig}\r\n".encode()
    return out + b"\r\n"


def unsigned_trailer_body(data, chunk_size, trailer):
    out = b""
    for i in range(0, len(data), chunk_size):
        chunk = data[i:i + chunk_size]
        out += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    return out + f"0\r\n{trailer[0]}:{trailer[1]}\r\n\r\n".encode()


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def request(port, method, path, headers=None, body=b"", query=""):
    """Sends one request on a fresh connection; returns (status, headers dict, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    target = uri_encode(path, encode_slash=False) + (("?" + query) if query else "")
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    if body and not any(k.lower() == "content-length" for k in (headers or {})):
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body if body else None)
    response = conn.getresponse()
    data = response.read()
    result = (response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    conn.close()
    return result
