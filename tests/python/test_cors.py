"""CORS by S3's rules: Put/Get/DeleteBucketCors, the OPTIONS preflight answered
without authentication from the first matching rule (403 when none matches), the
Access-Control-* headers on real answers, errors included, and a real browser that
reads and writes across origins under a rule and is refused once it is removed."""

import http.client
import http.server
import json
import os
import subprocess
import threading

import pytest
from botocore.exceptions import ClientError

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response


def raw(daemon, method, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request(method, path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


RULES = {"CORSRules": [
    {"ID": "app", "AllowedOrigins": ["https://app.example.com", "http://*.example.org"],
     "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["content-*", "x-amz-*"],
     "ExposeHeaders": ["ETag", "x-amz-version-id"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
]}


def test_cors_configuration_round_trips_and_is_checked(s3, bucket):
    err = error_of(s3.get_bucket_cors, Bucket=bucket)
    assert err["Error"]["Code"] == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got[0] == {**RULES["CORSRules"][0], "AllowedHeaders": ["content-*", "x-amz-*"]}
    assert got[1] == RULES["CORSRules"][1]
    for rules, code in [
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}], "InvalidRequest"),
        ([{"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]}], "InvalidRequest"),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101, "InvalidRequest"),
    ]:
        err = error_of(s3.put_bucket_cors, Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        assert err["Error"]["Code"] == code, rules[:1]
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["ID"] == "app", "a refused put changed the rules"
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(s3.get_bucket_cors, Bucket=bucket)["Error"]["Code"] == "NoSuchCORSConfiguration"


def test_preflight_answers_from_the_matching_rule_without_credentials(daemon, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    ask = lambda origin, method, headers=None: raw(daemon, "OPTIONS", f"/{bucket}/some/key", {  # noqa: E731
        "Origin": origin, "Access-Control-Request-Method": method,
        **({"Access-Control-Request-Headers": headers} if headers else {})})
    status, headers, _ = ask("https://app.example.com", "PUT", "Content-Type, X-Amz-Meta-Color")
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-methods"] == "GET, PUT"
    assert headers["access-control-allow-headers"] == "content-type, x-amz-meta-color"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-version-id"
    assert headers["access-control-max-age"] == "600"
    assert headers["access-control-allow-credentials"] == "true"
    status, headers, _ = ask("http://cdn.example.org", "GET")
    assert status == 200 and headers["access-control-allow-origin"] == "http://cdn.example.org"
    # The lone-* rule answers any origin with *, for its method only.
    status, headers, _ = ask("https://elsewhere.test", "HEAD")
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in headers
    for origin, method, asked in [("https://elsewhere.test", "GET", None),
                                  ("https://app.example.com", "DELETE", None),
                                  ("https://app.example.com", "PUT", "authorization"),
                                  ("https://app.example.com.evil.test", "GET", None)]:
        status, headers, body = ask(origin, method, asked)
        assert status == 403 and b"<Code>AccessForbidden</Code>" in body, (origin, method, asked)
        assert "access-control-allow-origin" not in headers
    status, _, body = raw(daemon, "OPTIONS", f"/{bucket}/k", {"Access-Control-Request-Method": "GET"})
    assert status == 400 and b"Origin request header needed" in body
    # Buckets without rules, and buckets that do not exist, are refused alike.
    s3.delete_bucket_cors(Bucket=bucket)
    assert ask("https://app.example.com", "GET")[0] == 403
    status, _, body = raw(daemon, "OPTIONS", "/no-such-bucket-for-cors/k", {
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
    assert status == 403 and b"AccessForbidden" in body


def test_real_answers_carry_the_headers_errors_included(daemon, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"shared")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    path = url.split(f":{daemon.port}", 1)[1]
    status, headers, body = raw(daemon, "GET", path, {"Origin": "https://app.example.com"})
    assert (status, body) == (200, b"shared") and "access-control-allow-origin" not in headers
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    status, headers, body = raw(daemon, "GET", path, {"Origin": "https://app.example.com"})
    assert (status, body) == (200, b"shared")
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-version-id"
    assert "Origin" in headers["vary"]
    # An error answer carries them too; an unsigned request is still refused.
    status, headers, body = raw(daemon, "GET", f"/{bucket}/k", {"Origin": "https://app.example.com"})
    assert status == 403 and b"AccessDenied" in body
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    # An origin or method no rule allows gets none.
    status, headers, _ = raw(daemon, "GET", path, {"Origin": "https://other.test"})
    assert status == 200 and "access-control-allow-origin" not in headers


class PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        page = b"<!doctype html><title>other origin</title><p>cors check</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args):
        pass


@pytest.fixture
def other_origin():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def browser(page, get_url, put_url):
    run = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "cors_check.mjs"), page, get_url, put_url],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["errors"] == [], report
    return report


def test_a_browser_on_another_origin_reads_and_writes_only_under_a_rule(s3, bucket, other_origin):
    s3.put_object(Bucket=bucket, Key="page-data", Body=b"for the browser")
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "page-data"},
                                        ExpiresIn=300)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "from-browser"},
                                        ExpiresIn=300)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": [other_origin], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"],
         "ExposeHeaders": ["ETag"]}]})
    report = browser(other_origin + "/", get_url, put_url)
    assert report["origin"] == other_origin
    assert report["get"]["status"] == 200 and report["get"]["body"] == "for the browser", report
    assert report["get"]["etag"], "the exposed ETag is readable from the page"
    assert report["put"]["status"] == 200, report
    stored = s3.get_object(Bucket=bucket, Key="from-browser")
    assert stored["Body"].read() == b'{"from":"browser"}' and stored["ContentType"] == "application/json"
    s3.delete_object(Bucket=bucket, Key="from-browser")
    # Without the rule the browser refuses the read, and never sends the write.
    s3.delete_bucket_cors(Bucket=bucket)
    report = browser(other_origin + "/", get_url, put_url)
    assert "error" in report["get"] and "Failed to fetch" in report["get"]["error"], report
    assert "error" in report["put"], report
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="from-browser")
