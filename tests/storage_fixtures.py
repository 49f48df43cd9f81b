"""A real S3-compatible server on loopback (moto's server mode) and stores that use it.

Loaded with ``pytest_plugins = ["storage_fixtures"]`` by the storage test modules. One server
and one bucket serve the whole session; each test gets its own random key prefix, so tests
stay independent without paying for a bucket each. Without moto the S3 tests skip with a
reason, except under CI (``CI`` set), where a missing backend must fail loudly.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BUCKET = "anigraph-test"
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""Dummy keys: moto accepts any; real ones must never be needed (or leak) in tests."""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so S3 tests must run)")
    pytest.skip(reason)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    region: str
    credentials: dict[str, str] = field(default_factory=lambda: dict(CREDENTIALS))

    def client(self) -> Any:
        """A boto3 S3 client for this server with dummy credentials (not the ambient ones)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session(
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
            region_name=self.region,
        ).client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
        )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 in a thread on 127.0.0.1 and a free port, with the test bucket created."""
    try:
        import boto3  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        _unavailable(f"S3 tests need moto[server] and boto3: {exc}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    info = S3Server(f"http://{host}:{port}", BUCKET, REGION)
    try:
        info.client().create_bucket(Bucket=BUCKET)
        yield info
    finally:
        server.stop()


@pytest.fixture
def s3_prefix() -> str:
    """A fresh prefix per test: isolation inside the shared bucket."""
    return f"t{secrets.token_hex(6)}"


@pytest.fixture
def s3_store(s3_server: S3Server, s3_prefix: str, tmp_path: Path) -> Any:
    """An ``S3Store`` on the loopback server, under this test's own prefix, spooling in a
    folder of this test's own (the system temp folder is shared with other processes)."""
    from anigraph.storage.s3 import S3Store

    spool = tmp_path / "s3-spool"
    spool.mkdir()
    return S3Store(s3_server.bucket, prefix=s3_prefix, client=s3_server.client(), spool_dir=spool)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Every Store backend; the contract tests must pass for each."""
    from anigraph.storage import LocalStore

    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    return LocalStore(tmp_path / "store")
