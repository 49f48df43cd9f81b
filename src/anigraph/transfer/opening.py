"""Databases and stores from the URLs an operator typed, with one-line errors for bad input.

Nothing is created here unless asked: a dry run must leave no file, folder or schema behind, so
a SQLite file or a store folder that does not exist yet is reported as ``None`` ("empty")
instead of being made by opening it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from anigraph.db.database import Database
from anigraph.storage.base import Store
from anigraph.storage.factory import local_store_path, parse_store_url
from anigraph.storage.local import LocalStore
from anigraph.transfer.errors import TransferError


def first_line(exc: BaseException) -> str:
    """The part of an error message worth printing (drivers append SQL, hints and context)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def parse_database_url(url: str, role: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise TransferError(f"{role} database URL {url!r} is not valid: {exc}") from None


def database_label(url: str) -> str:
    """The URL as it may be printed: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (``None`` for other databases); in-memory ones are refused."""
    if url.get_backend_name() != "sqlite":
        return None
    if url.database in (None, "", ":memory:"):
        raise TransferError("a SQLite database URL needs a file: sqlite:////path/anigraph.db")
    return Path(url.database).expanduser().resolve()


def open_database(url: str, role: str, *, create: bool) -> Database | None:
    """A connected database, or ``None`` for a SQLite file that does not exist and ``create``
    is false (nothing to read, and nothing may be made)."""
    parsed = parse_database_url(url, role)
    path = sqlite_file(parsed)
    if path is not None and not path.is_file():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        database = Database(url)
    except (NoSuchModuleError, ImportError) as exc:
        raise TransferError(f"{role} database: no driver for {url!r}: {first_line(exc)}") from None
    try:
        with database.engine.connect():
            pass
    except SQLAlchemyError as exc:
        database.dispose()
        raise TransferError(
            f"cannot connect to the {role} database {database_label(url)}: {first_line(exc)}"
        ) from None
    return database


def same_database(a: str, b: str) -> bool:
    first, second = make_url(a), make_url(b)
    if first.get_backend_name() == "sqlite" or second.get_backend_name() == "sqlite":
        return first.get_backend_name() == second.get_backend_name() and sqlite_file(
            first
        ) == sqlite_file(second)
    return (first.host, first.port, first.database) == (second.host, second.port, second.database)


def check_store_url(url: str, role: str) -> Path | None:
    """The folder of a local store URL (``None`` for S3), after checking the URL's syntax."""
    try:
        folder = local_store_path(url)
        if folder is None:
            parse_store_url(url)  # checks the S3 parameters; makes a client, sends nothing
    except ValueError as exc:
        raise TransferError(f"{role} store URL {url!r} is not valid: {exc}") from None
    return folder


def open_store(url: str, role: str, *, create: bool) -> Store | None:
    """The store, or ``None`` for a local folder that does not exist and ``create`` is false."""
    folder = check_store_url(url, role)
    if folder is not None:
        if not folder.is_dir() and not create:
            return None
        return LocalStore(folder)
    return parse_store_url(url)


def stores_overlap(source_url: str, target_url: str) -> bool:
    """True if one store's objects would live inside the other's (a copy would read its own
    output, or the target would be the source). Compares the URLs; nothing is opened."""
    from anigraph.storage.s3 import S3Store

    source_folder, target_folder = local_store_path(source_url), local_store_path(target_url)
    if source_folder is not None and target_folder is not None:
        first, second = source_folder.resolve(), target_folder.resolve()
        return first.is_relative_to(second) or second.is_relative_to(first)
    if source_folder is not None or target_folder is not None:
        return False
    first_store, second_store = parse_store_url(source_url), parse_store_url(target_url)
    assert isinstance(first_store, S3Store) and isinstance(second_store, S3Store)
    if (first_store.endpoint_url, first_store.bucket) != (
        second_store.endpoint_url,
        second_store.bucket,
    ):
        return False
    return first_store.prefix.startswith(second_store.prefix) or second_store.prefix.startswith(
        first_store.prefix
    )


@contextmanager
def store_errors(role: str, store: Store) -> Iterator[None]:
    """S3 failures (no bucket, no credentials, no route) as one-line ``TransferError``s."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in ("NoSuchBucket", "404"):
            message = "the bucket does not exist"
        elif code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            message = f"access denied ({code})"
        else:
            message = f"{code}: {error.get('Message', '')}".rstrip(": ")
        raise TransferError(f"{role} store {store!r}: {message}") from None
    except BotoCoreError as exc:
        raise TransferError(f"{role} store {store!r}: {first_line(exc)}") from None


@contextmanager
def database_errors(what: str) -> Iterator[None]:
    """Database failures (lost connection, lock timeout, permission) as one line."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise TransferError(f"{what}: {first_line(exc)}") from None
