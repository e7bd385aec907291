"""The azure gateway backend against Azurite on loopback (tests/python/upstreams.py),
which checks Shared Key signatures and Content-MD5. What the SDK suite cannot show: the
upstream names, the ETags, the orphan sweep and startup's checks. (The SDK suite itself
runs on this backend with BLEEPSTORE_TEST_BACKEND=azure.)"""

import hashlib
import os
import re
import xml.etree.ElementTree as ElementTree

import pytest

from conftest import HASTY_UPSTREAM, Daemon, assert_a_hung_upstream_fails_fast, wait_for
from upstreams import Azurite

DATA_ID = re.compile(r"^[0-9a-f]{32}$")


def azure_daemon(tmp_path, upstream, container, prefix="gw/", upstream_section="", **extra):
    settings = {"container": container, "prefix": prefix,
                "connection_string": f'"{upstream.connection_string}"',
                "orphan_grace_seconds": 0, **extra}
    config = tmp_path / "azure.yaml"
    config.write_text("storage:\n  backend: azure\n  azure:\n"
                      + "".join(f"    {k}: {v}\n" for k, v in settings.items()) + upstream_section)
    return Daemon(data_dir=str(tmp_path / "data"), extra_args=["--config", str(config)])


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
    with Azurite() as upstream:
        upstream.create_container("gateway")
        yield upstream


def test_objects_go_upstream_under_data_ids_and_come_back(tmp_path, azurite):
    d = azure_daemon(tmp_path, azurite, "gateway").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="photos")
        bodies = {"a/b c+d%é.jpg": os.urandom(5000), "big": os.urandom(9 * 1024 * 1024 + 3)}
        for key, body in bodies.items():
            s3.put_object(Bucket="photos", Key=key, Body=body)
        s3.copy_object(Bucket="photos", Key="copy", CopySource={"Bucket": "photos", "Key": "big"})
        bodies["copy"] = bodies["big"]
        names = blob_names(azurite, "gateway")
        assert len(names) == 3 and all(n.startswith("gw/") and DATA_ID.match(n[3:]) for n in names), names
        for key, body in bodies.items():
            got = s3.get_object(Bucket="photos", Key=key)
            assert got["Body"].read() == body
            # The ETag is the daemon's MD5, never Azure's "0x8D..." one.
            assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        ranged = s3.get_object(Bucket="photos", Key="big", Range="bytes=4194300-4194400")["Body"].read()
        assert ranged == bodies["big"][4194300:4194401]
        s3.delete_object(Bucket="photos", Key="big")
        wait_for(lambda: len(blob_names(azurite, "gateway")) == 2, "the deleted blob to leave the upstream")
    finally:
        d.stop()


def test_the_sweep_takes_orphans_and_leaves_other_names(tmp_path, azurite):
    d = azure_daemon(tmp_path, azurite, "gateway").start()
    try:
        s3 = d.client()
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="k", Body=b"kept" * 1000)
        before = set(blob_names(azurite, "gateway"))
        d.stop()
        # What a crash between the upstream write and the row's commit leaves: a blob
        # under the prefix that no row names. And a name that is not a data id, which is
        # not the daemon's to remove.
        assert azurite.put_blob("gateway", "gw/" + "ab" * 16, b"orphan").status == 201
        assert azurite.put_blob("gateway", "gw/README", b"not ours").status == 201
        d.start()
        wait_for(lambda: "removed 1 orphans" in open(d.log_path).read(), "the orphan sweep")
        assert set(blob_names(azurite, "gateway")) == before | {"gw/README"}
        assert d.client().get_object(Bucket="kept", Key="k")["Body"].read() == b"kept" * 1000
    finally:
        d.stop()


def test_startup_checks_the_container_and_the_database_keeps_its_upstream(tmp_path, azurite):
    missing = azure_daemon(tmp_path, azurite, "no-such-container")
    with pytest.raises(RuntimeError) as info:
        missing.start()
    assert 'container "no-such-container" does not exist' in str(info.value)
    wrong_key = azurite.connection_string.replace(azurite.key, "A" + azurite.key[1:])
    denied = azure_daemon(tmp_path, azurite, "gateway", connection_string=f'"{wrong_key}"')
    with pytest.raises(RuntimeError) as info:
        denied.start()
    assert "denied" in str(info.value)
    unreachable = azure_daemon(tmp_path, azurite, "gateway", account_url="http://127.0.0.1:9/devstoreaccount1")
    with pytest.raises(RuntimeError) as info:
        unreachable.start()
    assert "storage.backend azure" in str(info.value) and "127.0.0.1:9" in str(info.value)
    first = azure_daemon(tmp_path, azurite, "gateway", prefix="one/").start()
    first.stop()
    other = azure_daemon(tmp_path, azurite, "gateway", prefix="two/")
    with pytest.raises(RuntimeError) as info:
        other.start()
    assert "one/" in str(info.value)


def test_a_hung_upstream_hits_the_timeouts(tmp_path, azurite):
    d = azure_daemon(tmp_path, azurite, "gateway", upstream_section=HASTY_UPSTREAM).start()
    try:
        assert_a_hung_upstream_fails_fast(d, azurite, "hung")
    finally:
        d.stop()
