#!/usr/bin/env python3
"""Runs a command with an upstream storage server up on loopback, for the gateway
backends' tests: starts it (tests/python/upstreams.py), creates a bucket, names it in
the environment the tests read, runs the command, stops the server, and exits with the
command's status.

    scripts/with_upstream.py s3s-fs -- cargo test --release
    scripts/with_upstream.py moto -- python3 -m pytest tests/python/test_objects.py

s3s-fs and moto set BLEEPSTORE_TEST_S3_UPSTREAM="endpoint bucket access-key secret-key".
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))

import upstreams  # noqa: E402

BUCKET = "bleepstore-tests"


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(f"usage: {sys.argv[0]} s3s-fs|moto -- COMMAND...")
    kind, command = sys.argv[1], sys.argv[3:]
    servers = {"s3s-fs": upstreams.S3sFs, "moto": upstreams.MotoServer}
    if kind not in servers:
        sys.exit(f"{sys.argv[0]}: unknown upstream {kind!r}; expected one of {', '.join(servers)}")
    with servers[kind]() as server:
        server.create_bucket(BUCKET)
        env = dict(os.environ)
        env["BLEEPSTORE_TEST_S3_UPSTREAM"] = f"{server.endpoint} {BUCKET} {server.access_key} {server.secret_key}"
        print(f"with_upstream: {kind} at {server.endpoint} (started in {server.startup_seconds:.2f} s)", flush=True)
        done = subprocess.run(command, env=env)
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
