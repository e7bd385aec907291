"""The tests the three gateway backends share (test_aws_backend.py onto s3s-fs,
test_azure_backend.py onto Azurite, test_gcp_backend.py onto fake-gcs-server). A backend's
file says how to start a daemon on its upstream and how to look at that upstream (a
`gateway` fixture, a `Gateway`) and runs `GatewayTests` on it; what is checked is the same
for all three:

- objects go upstream under data ids, never under a client's key, and come back with the
  daemon's own ETags;
- an upstream that goes away in the middle of PUTs (one streamed upstream as it arrives,
  one held and sent whole at its end) fails them with a 500, acknowledges and stores
  nothing, and the daemon serves again once it is back (/readyz recovers);
- a pooled keep-alive connection that the upstream closed while it was idle (a restart)
  costs the next requests nothing: they succeed;
- kill -9 in the middle of uploads (PUTs and a multipart part) loses nothing acknowledged,
  and the sweep at the next start removes the upstream objects no acknowledged write
  names, and only those;
- a frozen upstream costs a request the client's timeouts, not a hang.

Nothing here waits by sleeping: each step polls what it waits for (the kernel's socket
queues in /proc/net/tcp, the upstream's listing, the daemon's log) with a deadline.
"""

import hashlib
import os
import re
import socket
import sqlite3
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

import sigv4
from conftest import ACCESS_KEY, HASTY_UPSTREAM, SECRET_KEY, assert_a_hung_upstream_fails_fast, wait_for

MiB = 1024 * 1024
PREFIX = "gw/"
DATA_ID = re.compile(r"^[0-9a-f]{32}$")
# A gateway's client that never tries a request twice (a dead pooled connection aside).
ONE_ATTEMPT = "  upstream:\n    max_attempts: 1\n"
# TCP states in /proc/net/tcp.
ESTABLISHED, CLOSE_WAIT = 0x01, 0x08


class Gateway:
    """One backend's upstream as the checks see it.

    backend: the name of the backend (storage.backend: aws, azure or gcp);
    server: the upstreams.Upstream the daemon writes to, which keeps its data across a
        restart (down(), restart());
    names(): every upstream name under the daemon's prefix (PREFIX);
    plant(name, data): an object put upstream behind the daemon's back;
    daemon(**settings): a daemon onto the upstream (not started); `threads` is its
        number of cores, `upstream_section` a storage.upstream block for its YAML;
    idle_seconds: how long the daemon keeps an idle connection to this server (the
        server's Keep-Alive: timeout less the client's margin, else its idle limit)."""

    def __init__(self, backend, server, names, plant, daemon, idle_seconds=30):
        self.backend = backend
        self.server = server
        self.names = names
        self.plant = plant
        self.daemon = daemon
        self.idle_seconds = idle_seconds


# ---------------------------------------------------------------------------
# Raw requests and what the kernel says about sockets.

def start_put(daemon, path, size, first_bytes, query=()):
    """A PUT of `size` bytes to `path` (with `query` pairs) on a raw socket that sends
    only `first_bytes` of them."""
    headers, _ = sigv4.sign_headers(
        "PUT", path, list(query), {"host": f"127.0.0.1:{daemon.port}", "content-length": str(size)},
        "UNSIGNED-PAYLOAD", ACCESS_KEY, SECRET_KEY, sigv4.amz_now())
    target = path + ("?" + sigv4.canonical_query(list(query)) if query else "")
    sock = socket.create_connection(("127.0.0.1", daemon.port))
    head = f"PUT {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode() + first_bytes)
    return sock


def send_rest(sock, data):
    """Sends the rest of a body; the daemon may have answered and closed first."""
    try:
        sock.sendall(data)
    except OSError:
        pass


def status_of(sock):
    """The status of the answer on `sock` (None if the connection ended without one)."""
    sock.settimeout(60)
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return int(data.split(b" ", 2)[1])


def tcp_sockets():
    """Every IPv4 TCP socket of this host: (inode, local port, remote port, state,
    send queue, receive queue)."""
    sockets = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            sent, received = (int(n, 16) for n in fields[4].split(":"))
            sockets.append((fields[9], int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16),
                            int(fields[3], 16), sent, received))
    return sockets


def taken_in(daemon, sock):
    """Whether the daemon has read every byte sent so far on `sock`: none waits in our
    send queue or in its receive queue."""
    mine = sock.getsockname()[1]
    queues = {(local, remote): (sent, received) for _, local, remote, _, sent, received in tcp_sockets()}
    ours, theirs = queues.get((mine, daemon.port)), queues.get((daemon.port, mine))
    return ours is not None and theirs is not None and ours[0] == 0 and theirs[1] == 0


def connections_to(daemon, port):
    """The states of the daemon's TCP connections to `port`, sorted."""
    fds = f"/proc/{daemon.proc.pid}/fd"
    inodes = set()
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return sorted(state for inode, _, remote, state, _, _ in tcp_sockets() if inode in inodes and remote == port)


def probe(daemon, path):
    """The status of an operations endpoint (/readyz, /health)."""
    try:
        return urllib.request.urlopen(daemon.endpoint + path, timeout=30).status
    except urllib.error.HTTPError as error:
        return error.code


def status_of_call(call):
    """The HTTP status a boto3 call failed with (it must fail)."""
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def refused(daemon, *fragments):
    """Starting `daemon` fails, and the reason names every fragment."""
    with pytest.raises(RuntimeError) as info:
        daemon.start()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


class Locked:
    """The daemon's metadata database held locked for writing, as a stalled disk would
    hold it: the daemon's commits wait (up to its busy timeout) while reads go on."""

    def __init__(self, daemon):
        self.db = sqlite3.connect(os.path.join(daemon.data_dir, "metadata.db"), timeout=10,
                                  isolation_level=None)

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        self.db.execute("ROLLBACK")
        self.db.close()
        return False


# ---------------------------------------------------------------------------
# The tests.

class GatewayTests:
    """The tests every gateway backend runs on its own upstream: its file subclasses
    this as a Test... class beside a `gateway` fixture (a Gateway)."""

    def test_objects_go_upstream_under_data_ids_and_come_back(self, gateway):
        """Upstream names are the prefix and a data id whatever the client's key (here one
        with a slash, spaces, '+', '%' and a non-ASCII letter); each object, its copy and a
        range of it come back whole, with the daemon's MD5 ETag (never the upstream's); a
        deleted object leaves the upstream."""
        d = gateway.daemon().start()
        try:
            s3 = d.client()
            s3.create_bucket(Bucket="photos")
            bodies = {"a/b c+d%é.jpg": os.urandom(5000), "big": os.urandom(9 * MiB + 3)}
            for key, body in bodies.items():
                s3.put_object(Bucket="photos", Key=key, Body=body)
            s3.copy_object(Bucket="photos", Key="copy", CopySource={"Bucket": "photos", "Key": "big"})
            bodies["copy"] = bodies["big"]
            names = gateway.names()
            assert len(names) == 3, names
            assert all(n.startswith(PREFIX) and DATA_ID.match(n[len(PREFIX):]) for n in names), names
            for key, body in bodies.items():
                got = s3.get_object(Bucket="photos", Key=key)
                assert got["Body"].read() == body
                assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
            ranged = s3.get_object(Bucket="photos", Key="big", Range="bytes=4194300-4194400")["Body"].read()
            assert ranged == bodies["big"][4194300:4194401]
            s3.delete_object(Bucket="photos", Key="big")
            wait_for(lambda: len(gateway.names()) == 2, "the deleted object to leave the upstream")
        finally:
            d.stop()

    def test_an_outage_mid_put_fails_it_cleanly_and_the_daemon_recovers(self, gateway):
        """The upstream goes down while two PUTs are under way: a 20 MiB one that streams
        upstream as it arrives (the daemon has taken in its first 4 MiB) and a small one
        the daemon holds to send whole at its end (it has half of it). Both get a 500 once
        their bodies are in, as do a PUT and a GET while it is down, and /readyz and
        /health say 503. When the upstream is back, /readyz recovers, the daemon serves
        reads and writes again, neither PUT is visible, and the upstream holds nothing but
        what was acknowledged."""
        d = gateway.daemon().start()
        try:
            s3 = d.client()
            s3.create_bucket(Bucket="outage")
            s3.put_object(Bucket="outage", Key="before", Body=b"x" * 1000)
            acknowledged = set(gateway.names())
            streamed = start_put(d, "/outage/streamed", 20 * MiB, b"s" * (4 * MiB))
            held = start_put(d, "/outage/held", 100_000, b"h" * 50_000)
            wait_for(lambda: taken_in(d, streamed) and taken_in(d, held), "the daemon to take in the first bytes")
            with gateway.server.down():
                for sock, rest in ((streamed, 16 * MiB), (held, 50_000)):
                    send_rest(sock, b"r" * rest)
                    assert status_of(sock) == 500
                    sock.close()
                assert status_of_call(lambda: s3.put_object(Bucket="outage", Key="during", Body=b"z" * 100)) == 500
                assert status_of_call(lambda: s3.get_object(Bucket="outage", Key="before")) == 500
                assert probe(d, "/readyz") == 503 and probe(d, "/health") == 503
            wait_for(lambda: probe(d, "/readyz") == 200, "/readyz to recover", seconds=30)
            assert set(gateway.names()) == acknowledged
            for key in ("streamed", "held", "during"):
                assert status_of_call(lambda: s3.head_object(Bucket="outage", Key=key)) == 404, key
            assert s3.get_object(Bucket="outage", Key="before")["Body"].read() == b"x" * 1000
            s3.put_object(Bucket="outage", Key="after", Body=b"w" * 100)
            assert keys(s3, "outage") == ["after", "before"]
        finally:
            d.stop()

    def test_a_pooled_connection_the_upstream_closed_is_not_a_failure(self, gateway):
        """The daemon (one core, so one pool) keeps the connection of its last upstream
        request for the next; the upstream restarts meanwhile, closing it (the daemon's end
        is left in CLOSE_WAIT, still pooled). The next request of each kind, a GET, a PUT
        held and sent whole, one streamed as it arrives, a copy and a DELETE, must succeed on
        a fresh connection rather than fail on the dead one, with one attempt per request
        (storage.upstream.max_attempts: 1), so that no retry after a backoff hides it."""
        d = gateway.daemon(threads=1, upstream_section=ONE_ATTEMPT).start()
        try:
            s3 = d.client()
            s3.create_bucket(Bucket="stale")
            big = os.urandom(3 * MiB)
            s3.put_object(Bucket="stale", Key="big", Body=big)
            requests = [
                ("a GET", lambda: s3.get_object(Bucket="stale", Key="big")["Body"].read() == big),
                ("a held PUT", lambda: s3.put_object(Bucket="stale", Key="small", Body=b"s" * 1000)),
                ("a streamed PUT", lambda: s3.put_object(Bucket="stale", Key="big2", Body=big)),
                ("a copy", lambda: s3.copy_object(Bucket="stale", Key="copy",
                                                  CopySource={"Bucket": "stale", "Key": "big"})),
                ("a DELETE", lambda: s3.delete_object(Bucket="stale", Key="big2")),
            ]
            port = gateway.server.port
            for what, request in requests:
                for _ in range(3):
                    # An upstream request, whose connection stays idle in the pool.
                    s3.get_object(Bucket="stale", Key="big", Range="bytes=0-9")["Body"].read()
                    used = time.monotonic()
                    assert ESTABLISHED in connections_to(d, port), what
                    gateway.server.stop()
                    wait_for(lambda: set(connections_to(d, port)) == {CLOSE_WAIT}, "the pooled connection to be closed")
                    gateway.server.start()
                    if time.monotonic() - used < gateway.idle_seconds - 0.5:
                        break
                    # The restart took longer than the pool keeps a connection: again.
                else:
                    raise AssertionError(f"the upstream never restarted within {gateway.idle_seconds} s")
                assert request() is not False, what
            assert keys(s3, "stale") == ["big", "copy", "small"]
            assert s3.get_object(Bucket="stale", Key="copy")["Body"].read() == big
        finally:
            d.stop()

    def test_kill9_mid_uploads_loses_nothing_acknowledged_and_the_sweep_takes_orphans(self, gateway):
        """kill -9 with three writes under way: a 30 MiB PUT torn after its first 3 MiB, and
        a PUT and a multipart part whose bytes reached the upstream but whose rows were not
        committed (the metadata database is held locked until the kill). After the restart
        every acknowledged object and part is intact, none of the three is visible, and the
        sweep removes the two upstream objects no row names, keeping a name under the
        prefix that is no data id (not the daemon's to remove). The upload then completes."""
        d = gateway.daemon().start()
        try:
            s3 = d.client()
            s3.create_bucket(Bucket="crash")
            kept = {f"k{i}": os.urandom(i * 700_001) for i in range(1, 4)}
            for key, body in kept.items():
                s3.put_object(Bucket="crash", Key=key, Body=body)
            upload = s3.create_multipart_upload(Bucket="crash", Key="mp")["UploadId"]
            first = os.urandom(5 * MiB)
            etag = s3.upload_part(Bucket="crash", Key="mp", UploadId=upload, PartNumber=1, Body=first)["ETag"]
            acknowledged = set(gateway.names())
            assert len(acknowledged) == 4
            torn = start_put(d, "/crash/torn", 30 * MiB, b"t" * (3 * MiB))
            wait_for(lambda: taken_in(d, torn), "the daemon to take in the torn PUT's first bytes")
            with Locked(d):
                whole = start_put(d, "/crash/whole", 2 * MiB, os.urandom(2 * MiB))
                part = start_put(d, "/crash/mp", 1000, b"2" * 1000, [("partNumber", "2"), ("uploadId", upload)])
                wait_for(lambda: len(set(gateway.names()) - acknowledged) == 2, "both writes to reach the upstream",
                         seconds=4)
                d.kill9()
            for sock in (torn, whole, part):
                sock.close()
            gateway.plant(PREFIX + "README", b"not ours")
            d.start()
            wait_for(lambda: "removed 2 orphans" in open(d.log_path).read(), "the orphan sweep")
            assert set(gateway.names()) == acknowledged | {PREFIX + "README"}
            s3 = d.client()
            for key, body in kept.items():
                assert s3.get_object(Bucket="crash", Key=key)["Body"].read() == body, key
            for key in ("torn", "whole"):
                assert status_of_call(lambda: s3.head_object(Bucket="crash", Key=key)) == 404, key
            parts = s3.list_parts(Bucket="crash", Key="mp", UploadId=upload)["Parts"]
            assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, etag)]
            second = s3.upload_part(Bucket="crash", Key="mp", UploadId=upload, PartNumber=2, Body=b"2" * 1000)["ETag"]
            s3.complete_multipart_upload(Bucket="crash", Key="mp", UploadId=upload, MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": etag}, {"PartNumber": 2, "ETag": second}]})
            assert s3.get_object(Bucket="crash", Key="mp")["Body"].read() == first + b"2" * 1000
        finally:
            d.stop()

    def test_the_database_keeps_the_upstream_it_was_first_served_with(self, gateway):
        """Started on another prefix, a daemon whose rows name objects under the first
        refuses to start, naming it, rather than serve rows whose bytes are elsewhere."""
        gateway.daemon(prefix="one/").start().stop()
        refused(gateway.daemon(prefix="two/"), f"describes objects in the {gateway.backend}", "one/")

    def test_a_hung_upstream_hits_the_timeouts(self, gateway):
        """A frozen upstream costs a request the client's timeouts, not a hang."""
        d = gateway.daemon(upstream_section=HASTY_UPSTREAM).start()
        try:
            assert_a_hung_upstream_fails_fast(d, gateway.server, "hung")
        finally:
            d.stop()
