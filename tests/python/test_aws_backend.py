"""The aws gateway backend against real S3 servers on loopback (tests/python/upstreams.py):
s3s-fs, which checks SigV4, payload hashes and Content-MD5, and moto with IAM users, so
that a wrong signature is refused. What the SDK suite cannot show, in the checks all
three gateways share (gateway_checks.py): the upstream names and ETags, an outage in the
middle of PUTs, a pooled connection the upstream closed, kill -9 in the middle of uploads
and the orphan sweep; and startup's checks. (The SDK suite itself runs on this backend
too: scripts/test.sh sets BLEEPSTORE_TEST_BACKEND=aws.)"""

import os

import pytest
from botocore.exceptions import ClientError

import gateway_checks
from gateway_checks import refused
from conftest import Daemon
from upstreams import MotoServer, S3sFs


def aws_daemon(tmp_path, upstream, bucket, prefix="gw/", upstream_section="", threads=2, **extra):
    settings = {"bucket": bucket, "prefix": prefix, "endpoint_url": upstream.endpoint,
                "access_key_id": upstream.access_key, "secret_access_key": upstream.secret_key,
                "orphan_grace_seconds": 0, **extra}
    config = tmp_path / "aws.yaml"
    config.write_text("storage:\n  backend: aws\n  aws:\n"
                      + "".join(f"    {k}: {v}\n" for k, v in settings.items()) + upstream_section)
    return Daemon(data_dir=str(tmp_path / "data"), extra_args=["--config", str(config)], threads=threads)


def upstream_names(upstream, bucket, prefix=""):
    names = []
    for page in upstream.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names += [o["Key"] for o in page.get("Contents", [])]
    return names


@pytest.fixture
def s3s(tmp_path):
    with S3sFs() as upstream:
        upstream.create_bucket("gateway")
        yield upstream


@pytest.fixture
def gateway(tmp_path, s3s):
    def plant(name, data):
        s3s.client().put_object(Bucket="gateway", Key=name, Body=data)
    return gateway_checks.Gateway("aws", s3s, lambda: upstream_names(s3s, "gateway", gateway_checks.PREFIX),
                                  plant, lambda **kw: aws_daemon(tmp_path, s3s, "gateway", **kw))


class TestAwsGateway(gateway_checks.GatewayTests):
    """The tests all gateways share, onto s3s-fs."""


def test_startup_checks_the_bucket(tmp_path, s3s):
    refused(aws_daemon(tmp_path, s3s, "no-such-bucket"), 'bucket "no-such-bucket" does not exist')
    refused(aws_daemon(tmp_path, s3s, "gateway", secret_access_key="wrong"), "denied")
    refused(aws_daemon(tmp_path, s3s, "gateway", endpoint_url="http://127.0.0.1:9"),
            "storage.backend aws", "127.0.0.1:9")


def test_moto_with_iam_checks_the_gateways_signatures(tmp_path):
    with MotoServer() as moto:
        moto.create_bucket("gateway")
        with pytest.raises(ClientError):
            moto.client(secret_key="not-the-secret").list_objects_v2(Bucket="gateway")
        d = aws_daemon(tmp_path, moto, "gateway").start()
        try:
            s3 = d.client()
            s3.create_bucket(Bucket="signed")
            upload = s3.create_multipart_upload(Bucket="signed", Key="mp")["UploadId"]
            parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
            etags = [s3.upload_part(Bucket="signed", Key="mp", UploadId=upload, PartNumber=n + 1, Body=p)["ETag"]
                     for n, p in enumerate(parts)]
            s3.complete_multipart_upload(
                Bucket="signed", Key="mp", UploadId=upload,
                MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
            s3.copy_object(Bucket="signed", Key="copy", CopySource={"Bucket": "signed", "Key": "mp"})
            assert s3.get_object(Bucket="signed", Key="copy")["Body"].read() == b"".join(parts)
            # Each part and each copied part is its own upstream object.
            assert len(upstream_names(moto, "gateway")) == 4
        finally:
            d.stop()
