"""An S3-compatible server on loopback for the tests: moto's server mode in a subprocess of its own.

A real HTTP server on 127.0.0.1 (a free port), reached by botocore as any S3 endpoint, so that worker processes
started by a test (Prefect workers, `gongkai` subprocesses) reach the same buckets: everything is passed through
the standard AWS environment variables, which subprocesses inherit.

Fixtures: `s3_server` (session: the running server) and `s3_archive_url` (per test: a fresh bucket, the AWS
environment set for this test and its subprocesses, the `s3://bucket/archive` URL). Outside pytest:
`with running_s3_server() as server: os.environ.update(server.env())`. Without moto the tests skip, unless
GONGKAI_REQUIRE_S3=1 (as .ci/run sets), when they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["S3Server", "running_s3_server", "s3_archive_url", "s3_server"]

START_TIMEOUT_S = 30.0
# test credentials only: moto accepts any; never real ones (the environment's own AWS settings are masked)
TEST_KEY, TEST_SECRET, TEST_REGION = "gongkai-test-key", "gongkai-test-secret", "us-east-1"


@dataclass
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """The AWS environment that points botocore (s3fs, boto3) at this server, for this process and its children."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": TEST_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET,
            "AWS_DEFAULT_REGION": TEST_REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask a cloud metadata address for credentials
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,  # the user's ~/.aws is not read
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",  # loopback never through a proxy
        }

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=TEST_KEY,
                            aws_secret_access_key=TEST_SECRET, region_name=TEST_REGION)

    def objects(self, url: str) -> dict[str, int]:
        """Every object under an `s3://bucket/prefix` URL (all pages of the listing): key → size."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        found: dict[str, int] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update((item["Key"], item["Size"]) for item in page.get("Contents", []))
        return found

    def make_bucket(self, name: str | None = None, *, versioned: bool = False) -> str:
        """A new bucket (a fresh name unless given); its name."""
        bucket = name or f"gongkai-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=bucket)
        if versioned:  # every upload becomes a version: a test can count uploads
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        return bucket


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


@contextmanager
def running_s3_server(*, check_credentials: bool = False) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 in a subprocess (a few tries: a free port can be taken in between).
    `check_credentials`: the server refuses every access key (moto's IAM auth on, no users), as a store refuses
    wrong credentials."""
    import moto.server  # noqa: F401  (fails here, not in the subprocess, when moto[server] is missing)

    for _ in range(3):
        port = _free_port()
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if check_credentials else None
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if _wait_until_up(port, process):
            break
        process.kill()
        process.wait(10)
    else:
        raise RuntimeError("moto's S3 server did not start on 127.0.0.1")
    try:
        yield S3Server(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        if os.environ.get("GONGKAI_REQUIRE_S3") == "1":
            pytest.fail(f"an S3 server required (GONGKAI_REQUIRE_S3=1) but moto[server] is missing: {exc}")
        pytest.skip("moto[server] not installed (the dev extra)")
    with running_s3_server() as server:
        yield server


@pytest.fixture
def s3_archive_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """`s3://<fresh bucket>/archive`, with the AWS environment of the loopback server set for the test."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_server.make_bucket()}/archive"
