"""HTTPS on the S3 port (--tls-cert/--tls-key): boto3 and the aws CLI verifying a
test CA, TLS 1.2 and 1.3, certificate reload on SIGHUP, and clients that do not
speak TLS, stall in the handshake or send garbage."""

import hashlib
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import SSLError

from conftest import ACCESS_KEY, BIN, REGION, SECRET_KEY, Daemon, free_port, wait_for


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue_leaf(directory, name, common_name):
    """A P-256 leaf for 127.0.0.1 signed by the CA in `directory`."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}", cwd=directory)
    with open(os.path.join(directory, f"{name}.ext"), "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                  "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=directory)
    return os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.key")


@pytest.fixture(scope="module")
def pki():
    directory = tempfile.mkdtemp(prefix="bleepstore-pki-")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=BleepStore test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            cwd=directory)
    cert, key = issue_leaf(directory, "leaf", "first")
    return {"dir": directory, "ca": os.path.join(directory, "ca.pem"), "cert": cert, "key": key}


class TlsDaemon(Daemon):
    @property
    def endpoint(self):
        return f"https://127.0.0.1:{self.port}"


def start_tls(cert, key):
    # The daemon reads the files it was started with again on SIGHUP: give it copies.
    directory = tempfile.mkdtemp(prefix="bleepstore-tls-")
    served_cert, served_key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    for source, target in ((cert, served_cert), (key, served_key)):
        with open(source, "rb") as f, open(target, "wb") as out:
            out.write(f.read())
    d = TlsDaemon(extra_args=["--tls-cert", served_cert, "--tls-key", served_key])
    d.served = (served_cert, served_key)
    return d.start()


@pytest.fixture(scope="module")
def tls_daemon(pki):
    d = start_tls(pki["cert"], pki["key"])
    yield d
    d.stop()


def client(d, ca, **config):
    return boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name=REGION, verify=ca,
                        config=Config(retries={"max_attempts": 0}, **config))


def peer(d, ca, **context_options):
    """(negotiated version, the server certificate's DER) of a fresh connection."""
    context = ssl.create_default_context(cafile=ca)
    for name, value in context_options.items():
        setattr(context, name, value)
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version(), tls.getpeercert(binary_form=True)


def test_boto3_over_https_with_a_verified_test_ca(tls_daemon, pki):
    s3 = client(tls_daemon, pki["ca"])
    s3.create_bucket(Bucket="secure")
    big = os.urandom(5 * 1024 * 1024 + 123)
    s3.put_object(Bucket="secure", Key="big", Body=big)
    s3.put_object(Bucket="secure", Key="empty", Body=b"")
    assert s3.get_object(Bucket="secure", Key="big")["Body"].read() == big
    assert s3.get_object(Bucket="secure", Key="empty")["Body"].read() == b""
    ranged = s3.get_object(Bucket="secure", Key="big", Range="bytes=1000000-1999999")["Body"].read()
    assert ranged == big[1000000:2000000]
    # Multipart (8 MiB parts, concurrent), aws-chunked bodies with trailing checksums.
    path = os.path.join(tempfile.mkdtemp(), "multi")
    data = os.urandom(20 * 1024 * 1024)
    open(path, "wb").write(data)
    s3.upload_file(path, "secure", "multi", Config=TransferConfig(multipart_threshold=8 << 20,
                                                                     multipart_chunksize=8 << 20))
    got = s3.get_object(Bucket="secure", Key="multi")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="secure")["Contents"]) == ["big", "empty", "multi"]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "secure", "Key": "big"}, ExpiresIn=60)
    assert url.startswith("https://")
    context = ssl.create_default_context(cafile=pki["ca"])
    assert urllib.request.urlopen(url, context=context).read() == big
    # The API description names the scheme the daemon serves.
    spec = urllib.request.urlopen(tls_daemon.endpoint + "/openapi.json", context=context).read()
    assert tls_daemon.endpoint.encode() in spec


def test_the_aws_cli_over_https(tls_daemon, pki, tmp_path):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": REGION}
    source = tmp_path / "up"
    source.write_bytes(os.urandom(300_000))
    base = ["aws", "--endpoint-url", tls_daemon.endpoint, "--ca-bundle", pki["ca"], "s3"]
    subprocess.run([*base, "mb", "s3://cli-tls"], env=env, check=True, capture_output=True)
    subprocess.run([*base, "cp", str(source), "s3://cli-tls/up"], env=env, check=True, capture_output=True)
    subprocess.run([*base, "cp", "s3://cli-tls/up", str(tmp_path / "down")], env=env, check=True,
                   capture_output=True)
    assert (tmp_path / "down").read_bytes() == source.read_bytes()


def test_tls_1_2_and_1_3(tls_daemon, pki):
    version, _ = peer(tls_daemon, pki["ca"], maximum_version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2"
    version, _ = peer(tls_daemon, pki["ca"], minimum_version=ssl.TLSVersion.TLSv1_3)
    assert version == "TLSv1.3"


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(tls_daemon):
    s3 = client(tls_daemon, True)
    with pytest.raises(SSLError):
        s3.list_buckets()


def test_plain_http_garbage_and_stalled_handshakes_are_cut_and_serving_goes_on(tls_daemon, pki):
    # Plain HTTP to the HTTPS port: not a TLS record, the connection is closed.
    with socket.create_connection(("127.0.0.1", tls_daemon.port), timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = raw.recv(4096)
        assert not answer.startswith(b"HTTP/1.1 200"), answer
    # Random bytes after a valid start of a ClientHello.
    with socket.create_connection(("127.0.0.1", tls_daemon.port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x40" + os.urandom(64))
        raw.recv(4096)
    # A handshake that stalls half-way is cut by its deadline (10 s), not held open.
    stalled = socket.create_connection(("127.0.0.1", tls_daemon.port), timeout=30)
    stalled.sendall(b"\x16\x03\x01\x02\x00")
    started = time.monotonic()
    assert stalled.recv(4096) == b""
    assert 5 < time.monotonic() - started < 25
    stalled.close()
    assert peer(tls_daemon, pki["ca"])[0] in ("TLSv1.2", "TLSv1.3")
    assert client(tls_daemon, pki["ca"]).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_sighup_reloads_the_certificate_and_keeps_the_old_one_on_a_bad_file(pki):
    d = start_tls(pki["cert"], pki["key"])
    try:
        first = peer(d, pki["ca"])[1]
        cert, key = issue_leaf(pki["dir"], "renewed", "second")
        for source, target in zip((cert, key), d.served):
            with open(source, "rb") as f, open(target, "wb") as out:
                out.write(f.read())

        def log_count(text):
            return open(d.log_path, "rb").read().count(text)

        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log_count(b"TLS certificate reloaded") == 1, "the reload to be logged")
        renewed = peer(d, pki["ca"])[1]
        assert renewed != first
        assert renewed == ssl.PEM_cert_to_DER_cert(open(cert).read())
        # A broken renewal: the error is logged and the previous certificate stays.
        with open(d.served[1], "w") as out:
            out.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log_count(b"still serving the previous certificate") == 1, "the failed reload")
        assert peer(d, pki["ca"])[1] == renewed
        assert d.proc.poll() is None
    finally:
        d.stop()


def test_startup_refuses_a_key_that_does_not_fit_the_certificate(pki):
    other_cert, _ = issue_leaf(pki["dir"], "other", "other")
    data_dir = tempfile.mkdtemp(prefix="bleepstore-tls-bad-")
    run = subprocess.run([BIN, "--host", "127.0.0.1", "--port", str(free_port()), "--data-dir", data_dir,
                          "--tls-cert", other_cert, "--tls-key", pki["key"]],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0 and "does not fit certificate" in run.stderr, run.stderr
    run = subprocess.run([BIN, "--data-dir", data_dir, "--tls-cert", pki["cert"]],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0 and "--tls-cert and --tls-key must be given together" in run.stderr
