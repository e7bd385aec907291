"""The gcp gateway backend against fake-gcs-server on loopback (tests/python/upstreams.py).
What the SDK suite cannot show, in the checks all three gateways share
(gateway_checks.py): the upstream names and ETags, an outage in the middle of PUTs, a
pooled connection the upstream closed, kill -9 in the middle of uploads and the orphan
sweep; and startup's checks. (The SDK suite runs on this backend too: scripts/test.sh
sets BLEEPSTORE_TEST_BACKEND=gcp.)"""

import json
import urllib.parse

import pytest

import gateway_checks
from gateway_checks import refused
from conftest import Daemon
from upstreams import FakeGcs


def gcp_daemon(tmp_path, upstream, bucket, prefix="gw/", endpoint=None, upstream_section="", threads=2):
    settings = {"bucket": bucket, "prefix": prefix, "endpoint_url": endpoint or upstream.endpoint,
                "orphan_grace_seconds": 0}
    config = tmp_path / "gcp.yaml"
    config.write_text("storage:\n  backend: gcp\n  gcp:\n" + "".join(f"    {k}: {v}\n" for k, v in settings.items())
                      + upstream_section)
    return Daemon(data_dir=str(tmp_path / "data"), extra_args=["--config", str(config)], threads=threads)


def names(upstream, bucket, prefix=""):
    query = urllib.parse.urlencode({"prefix": prefix})
    answer = upstream.json_request("GET", f"/storage/v1/b/{bucket}/o?{query}")
    return [item["name"] for item in json.loads(answer.body).get("items", [])]


@pytest.fixture
def gcs():
    with FakeGcs(backend="filesystem") as upstream:
        upstream.create_bucket("gateway")
        yield upstream


@pytest.fixture
def gateway(tmp_path, gcs):
    return gateway_checks.Gateway("gcp", gcs, lambda: names(gcs, "gateway", gateway_checks.PREFIX),
                                  lambda name, data: gcs.upload("gateway", name, data),
                                  lambda **kw: gcp_daemon(tmp_path, gcs, "gateway", **kw))


class TestGcpGateway(gateway_checks.GatewayTests):
    """The tests all gateways share, onto fake-gcs-server."""


def test_startup_checks_the_bucket(tmp_path, gcs):
    refused(gcp_daemon(tmp_path, gcs, "no-such-bucket"), "storage.backend gcp", "no-such-bucket")
    refused(gcp_daemon(tmp_path, gcs, "gateway", endpoint="http://127.0.0.1:9"), "storage.backend gcp", "127.0.0.1:9")
