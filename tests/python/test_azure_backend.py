"""The azure gateway backend against Azurite on loopback (tests/python/upstreams.py),
which checks Shared Key signatures and Content-MD5. What the SDK suite cannot show, in
the checks all three gateways share (gateway_checks.py): the upstream names and ETags,
an outage in the middle of PUTs, a pooled connection the upstream closed, kill -9 in
the middle of uploads and the orphan sweep; and startup's checks. (The SDK suite itself
runs on this backend with BLEEPSTORE_TEST_BACKEND=azure.)"""

import xml.etree.ElementTree as ElementTree

import pytest

import gateway_checks
from gateway_checks import refused
from conftest import Daemon
from upstreams import Azurite


def azure_daemon(tmp_path, upstream, container, prefix="gw/", upstream_section="", threads=2, **extra):
    settings = {"container": container, "prefix": prefix,
                "connection_string": f'"{upstream.connection_string}"',
                "orphan_grace_seconds": 0, **extra}
    config = tmp_path / "azure.yaml"
    config.write_text("storage:\n  backend: azure\n  azure:\n"
                      + "".join(f"    {k}: {v}\n" for k, v in settings.items()) + upstream_section)
    return Daemon(data_dir=str(tmp_path / "data"), extra_args=["--config", str(config)], threads=threads)


def blob_names(upstream, container, prefix=""):
    names, marker = [], ""
    while True:
        query = [("restype", "container"), ("comp", "list"), ("prefix", prefix)]
        if marker:
            query.append(("marker", marker))
        resp = upstream.request("GET", container, query)
        assert resp.status == 200, resp.body[:300]
        root = ElementTree.fromstring(resp.body)
        names += [blob.findtext("Name") for blob in root.iter("Blob")]
        marker = root.findtext("NextMarker") or ""
        if not marker:
            return names


@pytest.fixture
def azurite(tmp_path):
    # On disk, so that it keeps its blobs across the outages and restarts of the checks.
    with Azurite(in_memory=False) as upstream:
        upstream.create_container("gateway")
        yield upstream


@pytest.fixture
def gateway(tmp_path, azurite):
    def plant(name, data):
        assert azurite.put_blob("gateway", name, data).status == 201
    # Azurite says Keep-Alive: timeout=5; the daemon keeps a connection a second less.
    return gateway_checks.Gateway("azure", azurite, lambda: blob_names(azurite, "gateway", gateway_checks.PREFIX),
                                  plant, lambda **kw: azure_daemon(tmp_path, azurite, "gateway", **kw),
                                  idle_seconds=4)


class TestAzureGateway(gateway_checks.GatewayTests):
    """The tests all gateways share, onto Azurite."""


def test_startup_checks_the_container(tmp_path, azurite):
    refused(azure_daemon(tmp_path, azurite, "no-such-container"), 'container "no-such-container" does not exist')
    wrong_key = azurite.connection_string.replace(azurite.key, "A" + azurite.key[1:])
    refused(azure_daemon(tmp_path, azurite, "gateway", connection_string=f'"{wrong_key}"'), "denied")
    refused(azure_daemon(tmp_path, azurite, "gateway", account_url="http://127.0.0.1:9/devstoreaccount1"),
            "storage.backend azure", "127.0.0.1:9")
