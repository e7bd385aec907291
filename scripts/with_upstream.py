#!/usr/bin/env python3
"""Runs a command with upstream storage servers up on loopback, for the gateway
backends' tests: starts each (tests/python/upstreams.py), creates a bucket, names it in
the environment the tests read, runs the command, stops the servers, and exits with the
command's status.

    scripts/with_upstream.py s3s-fs,azurite -- cargo test --release
    scripts/with_upstream.py moto -- python3 -m pytest tests/python/test_objects.py

s3s-fs and moto set BLEEPSTORE_TEST_S3_UPSTREAM="endpoint bucket access-key secret-key";
azurite sets BLEEPSTORE_TEST_AZURE_UPSTREAM="blob-endpoint container"; fake-gcs sets
BLEEPSTORE_TEST_GCS_UPSTREAM="endpoint bucket".
"""

import contextlib

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))

import upstreams  # noqa: E402

BUCKET = "bleepstore-tests"


def s3_variable(server):
    return "BLEEPSTORE_TEST_S3_UPSTREAM", f"{server.endpoint} {BUCKET} {server.access_key} {server.secret_key}"


def azure_variable(server):
    return "BLEEPSTORE_TEST_AZURE_UPSTREAM", f"{server.blob_endpoint} {BUCKET}"


def gcs_variable(server):
    return "BLEEPSTORE_TEST_GCS_UPSTREAM", f"{server.endpoint} {BUCKET}"


SERVERS = {
    "s3s-fs": (upstreams.S3sFs, s3_variable),
    "moto": (upstreams.MotoServer, s3_variable),
    "azurite": (upstreams.Azurite, azure_variable),
    "fake-gcs": (upstreams.FakeGcs, gcs_variable),
}


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(f"usage: {sys.argv[0]} KIND[,KIND...] -- COMMAND... (kinds: {', '.join(SERVERS)})")
    kinds, command = sys.argv[1].split(","), sys.argv[3:]
    for kind in kinds:
        if kind not in SERVERS:
            sys.exit(f"{sys.argv[0]}: unknown upstream {kind!r}; expected one of {', '.join(SERVERS)}")
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        for kind in kinds:
            server_class, variable = SERVERS[kind]
            server = stack.enter_context(server_class())
            server.create_bucket(BUCKET)
            name, value = variable(server)
            env[name] = value
            print(f"with_upstream: {kind} at {server.endpoint} (started in {server.startup_seconds:.2f} s)",
                  flush=True)
        done = subprocess.run(command, env=env)
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
