"""Store objects copied under the same keys, streamed and verified.

Keys are chosen by the store and never reused, so a key names one content for good: an object
already in the target with the same size is the same object and is skipped (that is what makes
a second run cheap), while the same key with another size is refused rather than overwritten.

Each copy is published whole by the target store (``put_file``/``writer``), then checked
against the source's size and MD5; a mismatch is deleted and reported. Memory stays flat: a
local source is handed over as a file (the S3 store uploads it in parts), any other is streamed
in chunks into the target's writer. A few objects are copied at once, because for small objects
a remote store's round trips, not bandwidth, set the pace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from anigraph.storage.base import ListedObject, Store, StoredObject
from anigraph.transfer.errors import TransferError
from anigraph.transfer.opening import first_line


@dataclass
class ObjectPlan:
    to_copy: list[ListedObject] = field(default_factory=list)
    present: int = 0
    """Objects the target already holds with the same size."""
    present_bytes: int = 0
    source_keys: set[str] = field(default_factory=set)

    @property
    def copy_bytes(self) -> int:
        return sum(entry.size for entry in self.to_copy)


def plan_objects(in_source: dict[str, int], in_target: dict[str, int]) -> ObjectPlan:
    """What to copy, from both stores' listings (``{key: size}``)."""
    plan = ObjectPlan(source_keys=set(in_source))
    conflicts = []
    for key in sorted(in_source):
        size = in_source[key]
        if key not in in_target:
            plan.to_copy.append(ListedObject(key, size))
        elif in_target[key] == size:
            plan.present += 1
            plan.present_bytes += size
        else:
            conflicts.append(key)
    if conflicts:
        raise TransferError(
            f"{len(conflicts)} object(s) exist in the target store with another size (first: "
            f"{conflicts[0]}); migrate-store never overwrites: remove them or pick another target"
        )
    return plan


def copy_objects(
    source: Store,
    target: Store,
    entries: Iterable[ListedObject],
    *,
    parallel: int,
    advance: Callable[[int], None],
) -> int:
    """Copy ``entries`` with ``parallel`` threads; the number of bytes copied.

    The first failure stops the run: objects not started are not started, those in flight
    finish (each is whole or absent), and the error is raised.
    """
    failed = threading.Event()

    def copy(key: str) -> StoredObject | None:
        if failed.is_set():
            return None  # queued behind a failure: left for the next run
        try:
            return copy_object(source, target, key)
        except BaseException:
            failed.set()
            raise

    copied = 0
    window = parallel * 4  # enough queued work to keep every thread busy, no more in memory
    with ThreadPoolExecutor(parallel, thread_name_prefix="migrate-store") as pool:
        pending: set[Future[StoredObject | None]] = set()

        def collect(done: set[Future[StoredObject | None]]) -> None:
            nonlocal copied
            for future in done:
                stored = future.result()  # raises the copy's error
                if stored is not None:
                    copied += stored.size
                    advance(stored.size)

        try:
            for entry in entries:
                if failed.is_set():
                    break
                if len(pending) >= window:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
                pending.add(pool.submit(copy, entry.key))
        except BaseException:  # a failed copy, or Ctrl-C: queued copies must not start
            failed.set()
            raise
        finally:
            done, pending = wait(pending)
        collect(done)
    return copied


def copy_object(source: Store, target: Store, key: str) -> StoredObject:
    """Copy one object and prove the copy: same size and MD5 as the source, or nothing."""
    try:
        original = source.stat(key)
        if original is None:
            raise TransferError(f"object {key} disappeared from the source store during the copy")
        path = source.local_path(key)
        if path is not None:
            target.put_file(key, path, original.content_type)
        else:
            with target.writer(key, original.content_type) as out:
                for chunk in source.open(key):
                    out.write(chunk)
        copy = target.stat(key)
        if copy is None or (copy.size, copy.md5) != (original.size, original.md5):
            target.delete(key)
            raise TransferError(
                f"object {key}: the copy does not match the source (size or MD5); it was removed"
            )
        return copy
    except (OSError, ValueError, BotoCoreError, ClientError) as exc:
        raise TransferError(
            f"copying object {key} failed: {first_line(exc)} (objects copied so far are kept "
            "and skipped next time: fix the cause and run the command again)"
        ) from None
