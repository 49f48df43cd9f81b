"""``Store.sweep_leftovers``: what a write killed with -9 leaves, removed once it is old enough.

Part of the Store contract (every backend, through the ``store`` fixture of storage_fixtures):
a real child process is SIGKILLed inside ``writer`` (the local store keeps a hidden temp file
beside the object, the S3 store a spool file), and on S3 also in the middle of a multipart
upload. A sweep with a cutoff before the kill keeps everything (it could be a live write); one
after it removes exactly the leftovers and never a published object.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from anigraph.storage import LocalStore, Store
from anigraph.storage.s3 import S3Store

pytest_plugins = ["storage_fixtures"]

# The child builds the same store, starts writes and dies with SIGKILL: no finally, no cleanup.
KILLED_WRITER = """
import json, os, signal, sys
from pathlib import Path
spec = json.loads(sys.argv[1])
if spec["kind"] == "local":
    from anigraph.storage import LocalStore
    store = LocalStore(Path(spec["root"]))
else:
    from anigraph.storage.s3 import S3Store
    store = S3Store(spec["bucket"], prefix=spec["prefix"], endpoint_url=spec["endpoint_url"],
                    region="us-east-1", spool_dir=Path(spec["spool"]))
    # What s3transfer leaves when its process dies between parts.
    name = store.prefix + store.new_key(1, "upload", ".mp4")
    upload = store.client.create_multipart_upload(Bucket=store.bucket, Key=name)
    store.client.upload_part(Bucket=store.bucket, Key=name, UploadId=upload["UploadId"],
                             PartNumber=1, Body=b"p" * 1024)
with store.writer(store.new_key(1, "output", ".gif"), "image/gif") as handle:
    handle.write(b"x" * 100_000)
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def spec_of(store: Store) -> dict[str, Any]:
    if isinstance(store, LocalStore):
        return {"kind": "local", "root": str(store.root)}
    assert isinstance(store, S3Store) and store.spool_dir is not None
    return {
        "kind": "s3",
        "bucket": store.bucket,
        "prefix": store.prefix,
        "endpoint_url": store.client.meta.endpoint_url,
        "spool": str(store.spool_dir),
    }


def kill_a_writer(store: Store) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, json.dumps(spec_of(store))],
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def leftovers(store: Store) -> dict[str, float]:
    """What interrupted writes left, seen from outside the store, with the time each is dated
    by: a file's mtime, an upload's Initiated (moto reports a fixed 2010 date for that)."""
    if isinstance(store, LocalStore):
        files = [p for p in store.root.rglob(".*") if p.is_file()]
        return {str(p.relative_to(store.root)): p.stat().st_mtime for p in files}
    assert isinstance(store, S3Store) and store.spool_dir is not None
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    return {p.name: p.stat().st_mtime for p in store.spool_dir.iterdir()} | {
        f"upload:{u['Key']}": u["Initiated"].timestamp() for u in uploads.get("Uploads", [])
    }


def test_a_killed_write_is_swept_once_old_enough(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "kept.gif"
    source.write_bytes(b"k" * 5000)
    kept = store.put_file(store.new_key(1, "output", ".gif"), source, "image/gif")
    kill_a_writer(store)
    left = leftovers(store)
    assert len(left) == (1 if isinstance(store, LocalStore) else 2), left
    assert [o.key for o in store.list_objects()] == [kept.key], "nothing of it is visible"

    assert store.sweep_leftovers(min(left.values()) - 1) == 0, "younger than the cutoff: kept"
    assert leftovers(store) == left
    assert store.sweep_leftovers(max(left.values()) + 1) == len(left)
    assert leftovers(store) == {}
    assert b"".join(store.open(kept.key)) == source.read_bytes()
    assert store.sweep_leftovers(time.time() + 1) == 0, "a second sweeper finds nothing"


def test_local_sweep_touches_only_its_own_temp_names(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    folder = store.root / "1" / "output" / "20260101"
    folder.mkdir(parents=True)
    temp = folder / ".0123abcd.gif.0123456789abcdef.tmp"
    sidecar_temp = folder / ".0123abcd.gif.meta.json.fedcba9876543210.tmp"
    foreign = [folder / ".keep", folder / "x.tmp", store.root / ".git" / "config"]
    foreign[-1].parent.mkdir()
    for path in (temp, sidecar_temp, *foreign):
        path.write_bytes(b"old")
        os.utime(path, (time.time() - 86400, time.time() - 86400))
    assert store.sweep_leftovers(time.time() - 3600) == 2
    assert not temp.exists() and not sidecar_temp.exists()
    assert all(path.exists() for path in foreign)


@pytest.mark.parametrize("prefix", ["", "other"])
def test_s3_sweep_aborts_only_its_own_uploads(
    s3_server: Any, s3_store: S3Store, prefix: str
) -> None:
    """Uploads under another prefix, or with names no key can be, belong to someone else."""
    client = s3_store.client
    others = [f"{prefix}/1/upload/20260101/x.mp4".lstrip("/"), f"{s3_store.prefix}.hidden/x"]
    started = [client.create_multipart_upload(Bucket=s3_store.bucket, Key=k) for k in others]
    try:
        assert s3_store.sweep_leftovers(time.time() + 1) == 0
        listed = client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", [])
        assert {u["UploadId"] for u in started} <= {u["UploadId"] for u in listed}
    finally:
        for key, upload in zip(others, started, strict=True):
            client.abort_multipart_upload(
                Bucket=s3_store.bucket, Key=key, UploadId=upload["UploadId"]
            )


def test_spool_sweep_keeps_other_files(s3_store: S3Store) -> None:
    assert s3_store.spool_dir is not None
    mine = s3_store.spool_dir / ".anigraph-abc123.part"
    theirs = s3_store.spool_dir / "other-program.part"
    for path in (mine, theirs):
        path.write_bytes(b"old")
    assert s3_store.sweep_leftovers(time.time() + 1) == 1
    assert not mine.exists() and theirs.exists()
