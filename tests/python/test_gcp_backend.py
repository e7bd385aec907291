"""The gcp gateway backend against fake-gcs-server on loopback (tests/python/upstreams.py):
upstream names, the daemon's own ETags, an outage of the upstream, the orphan sweep after
kill -9, and startup's checks. (The SDK suite runs on this backend too: scripts/test.sh
sets BLEEPSTORE_TEST_BACKEND=gcp.)"""

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import HASTY_UPSTREAM, Daemon, assert_a_hung_upstream_fails_fast, wait_for
from upstreams import FakeGcs

DATA_ID = re.compile(r"^[0-9a-f]{32}$")


def gcp_daemon(tmp_path, upstream, bucket, prefix="gw/", endpoint=None, upstream_section=""):
    settings = {"bucket": bucket, "prefix": prefix, "endpoint_url": endpoint or upstream.endpoint,
                "orphan_grace_seconds": 0}
    config = tmp_path / "gcp.yaml"
    config.write_text("storage:\n  backend: gcp\n  gcp:\n" + "".join(f"    {k}: {v}\n" for k, v in settings.items())
                      + upstream_section)
    return Daemon(data_dir=str(tmp_path / "data"), extra_args=["--config", str(config)])


def names(upstream, bucket, prefix=""):
    query = urllib.parse.urlencode({"prefix": prefix})
    answer = upstream.json_request("GET", f"/storage/v1/b/{bucket}/o?{query}")
    return [item["name"] for item in json.loads(answer.body).get("items", [])]


@pytest.fixture
def gcs():
    with FakeGcs(backend="filesystem") as upstream:
        upstream.create_bucket("gateway")
        yield upstream


def test_objects_go_upstream_under_data_ids_and_survive_an_outage(tmp_path, gcs):
    d = gcp_daemon(tmp_path, gcs, "gateway").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="photos")
        bodies = {"a/b c+d%é.jpg": os.urandom(5000), "big": os.urandom(6 * 1024 * 1024 + 5)}
        for key, body in bodies.items():
            s3.put_object(Bucket="photos", Key=key, Body=body)
        listed = names(gcs, "gateway")
        assert len(listed) == 2 and all(n.startswith("gw/") and DATA_ID.match(n[3:]) for n in listed), listed
        for key, body in bodies.items():
            got = s3.get_object(Bucket="photos", Key=key)
            assert got["Body"].read() == body
            assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        with gcs.down():
            with pytest.raises(ClientError) as info:
                s3.put_object(Bucket="photos", Key="during", Body=b"z" * 100)
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            with pytest.raises(urllib.error.HTTPError) as probe:
                urllib.request.urlopen(d.endpoint + "/readyz")
            assert probe.value.code == 503
        # Back up (it keeps its files): stale pooled connections do not show.
        assert s3.get_object(Bucket="photos", Key="big")["Body"].read() == bodies["big"]
        s3.put_object(Bucket="photos", Key="after", Body=b"w")
        assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]) == \
            ["a/b c+d%é.jpg", "after", "big"]
        s3.delete_object(Bucket="photos", Key="big")
        wait_for(lambda: len(names(gcs, "gateway")) == 2, "the deleted object to leave the upstream")
    finally:
        d.stop()


def test_kill9_then_the_sweep_takes_orphans_and_keeps_foreign_names(tmp_path, gcs):
    d = gcp_daemon(tmp_path, gcs, "gateway").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="crash")
        kept = {f"k{i}": os.urandom(i * 500_001) for i in range(1, 4)}
        for key, body in kept.items():
            s3.put_object(Bucket="crash", Key=key, Body=body)
        before = set(names(gcs, "gateway"))
        d.kill9()
        gcs.upload("gateway", "gw/" + "cd" * 16, b"orphan")
        gcs.upload("gateway", "gw/README", b"not ours")
        d.start()
        wait_for(lambda: "removed 1 orphans" in open(d.log_path).read(), "the orphan sweep")
        assert set(names(gcs, "gateway")) == before | {"gw/README"}
        for key, body in kept.items():
            assert d.client().get_object(Bucket="crash", Key=key)["Body"].read() == body
    finally:
        d.stop()


def test_startup_checks_the_bucket_and_the_database_keeps_its_upstream(tmp_path, gcs):
    with pytest.raises(RuntimeError) as info:
        gcp_daemon(tmp_path, gcs, "no-such-bucket").start()
    assert "storage.backend gcp" in str(info.value) and "no-such-bucket" in str(info.value)
    with pytest.raises(RuntimeError) as info:
        gcp_daemon(tmp_path, gcs, "gateway", endpoint="http://127.0.0.1:9").start()
    assert "storage.backend gcp" in str(info.value) and "127.0.0.1:9" in str(info.value)
    first = gcp_daemon(tmp_path, gcs, "gateway", prefix="one/").start()
    first.stop()
    with pytest.raises(RuntimeError) as info:
        gcp_daemon(tmp_path, gcs, "gateway", prefix="two/").start()
    assert "describes objects in the gcp" in str(info.value) and "one/" in str(info.value)


def test_a_hung_upstream_hits_the_timeouts(tmp_path, gcs):
    d = gcp_daemon(tmp_path, gcs, "gateway", upstream_section=HASTY_UPSTREAM).start()
    try:
        assert_a_hung_upstream_fails_fast(d, gcs, "hung")
    finally:
        d.stop()
