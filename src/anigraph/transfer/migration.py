"""What a transfer will move (``prepare``), and moving it (``execute``), in a resumable order.

``prepare`` checks everything it can before anything is written: URLs, that the source is not
in use and is at the current schema, that the target database is empty (or ``resume``), that
no target object would be overwritten; then it counts rows and lists objects. It creates
nothing (no SQLite file, no store folder), so a dry run is ``prepare`` alone.

``execute`` then:

1. creates the SQLite file or store folder the target lacks, and migrates the target database
   to the current schema (the same Alembic path as every start);
2. copies the objects (before the rows, so that a row on the target never points at an object
   that is not there yet);
3. copies every table in one read snapshot of the source, parents first, in batches;
4. copies objects the rows need that the listing did not have (made after it, by a source that
   was not stopped; the rows are the reference), and reports any still missing;
5. moves PostgreSQL counters past the copied keys, and checks the row counts.

Every step is idempotent under ``resume``: an interrupted run is finished by running again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError

from anigraph.db import migrate
from anigraph.db.database import Database
from anigraph.storage.base import Store
from anigraph.transfer import objects, opening, references, sequences, tables
from anigraph.transfer.errors import TransferError
from anigraph.transfer.liveness import live_lease, sqlite_in_use
from anigraph.transfer.objects import ObjectPlan
from anigraph.transfer.progress import Progress, Silent
from anigraph.transfer.tables import TableResult

STOP_FIRST = "stop every anigraph process that uses it (serve, worker, celery-worker) first"


@dataclass(frozen=True)
class Request:
    """A transfer as the operator asked for it: URLs in, options."""

    source_db: str
    source_store: str
    target_db: str | None = None
    target_store: str | None = None
    resume: bool = False
    batch_size: int = 1000
    parallel: int = 4


@dataclass
class Plan:
    """What ``execute`` will do, with everything it needs already open."""

    request: Request
    source_db: Database
    source_store: Store | None
    """``None``: a local folder that does not exist, i.e. no objects."""
    target_db: Database | None
    """``None``: the database does not move (or, in a dry run, a SQLite file not made yet)."""
    target_store: Store | None
    tables: list[Table]
    source_rows: dict[str, int]
    target_rows: dict[str, int]
    objects: ObjectPlan
    missing: list[str]
    """Keys rows need (``references.NEEDED``) that the source store does not hold."""
    _resources: ExitStack = field(default_factory=ExitStack, repr=False)

    def close(self) -> None:
        self._resources.close()


@dataclass
class Report:
    tables: list[TableResult]
    objects: int = 0
    bytes: int = 0
    late_objects: int = 0
    """Objects the rows needed that appeared after the listing: the source was in use."""
    missing: list[str] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def prepare(request: Request) -> Plan:
    """Check the request and the endpoints, count and list; raises ``TransferError``."""
    _check_urls(request)
    _check_not_in_use(request.source_db)
    with ExitStack() as resources:
        source_db = opening.open_database(request.source_db, "source", create=False)
        assert source_db is not None  # the file's existence was checked above
        resources.callback(source_db.dispose)
        with opening.database_errors("cannot read the source database"):
            _check_source(source_db)
        target_db = None
        if request.target_db is not None:
            target_db = opening.open_database(request.target_db, "target", create=False)
            if target_db is not None:
                resources.callback(target_db.dispose)
                with opening.database_errors("cannot read the target database"):
                    _check_target(target_db)
        schema = tables.schema_tables()
        source_rows, target_rows = _count_rows(source_db, target_db, schema, request.resume)
        with opening.database_errors("cannot read the source database"):
            source_store, target_store, object_plan, missing = _plan_objects(
                request, source_db, schema
            )
        plan = Plan(
            request=request,
            source_db=source_db,
            source_store=source_store,
            target_db=target_db,
            target_store=target_store,
            tables=schema,
            source_rows=source_rows,
            target_rows=target_rows,
            objects=object_plan,
            missing=missing,
        )
        plan._resources = resources.pop_all()
        return plan


def execute(plan: Plan, progress: Progress | None = None) -> Report:
    """Move what ``plan`` lists; raises ``TransferError`` (running again then finishes)."""
    watch = progress or Silent()
    started = time.monotonic()
    report = Report(tables=[])
    _create_targets(plan)
    if plan.target_db is not None:
        _migrate_schema(plan.target_db)
    if plan.target_store is not None and plan.source_store is not None and plan.objects.to_copy:
        with _phase(watch, "objects", plan.objects.copy_bytes, in_bytes=True):
            report.bytes = objects.copy_objects(
                plan.source_store,
                plan.target_store,
                plan.objects.to_copy,
                parallel=plan.request.parallel,
                advance=watch.advance,
            )
        report.objects = len(plan.objects.to_copy)
    with opening.database_errors("reading the source database"):
        needed = _copy_rows(plan, watch, report)
    if plan.target_store is not None:
        _copy_late_objects(plan, needed, report)
    if plan.target_db is not None:
        with (
            opening.database_errors("moving the target's counters"),
            plan.target_db.engine.begin() as connection,
        ):
            report.sequences = sequences.reset_sequences(connection, plan.tables)
        with opening.database_errors("checking the target database"):
            _verify_rows(plan, report)
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _phase(watch: Progress, description: str, total: int, *, in_bytes: bool) -> Iterator[None]:
    """A progress phase that ends however the work does (a terminal keeps no stale bar)."""
    watch.start(description, total, in_bytes=in_bytes)
    try:
        yield
    finally:
        watch.finish()


# -- prepare -----------------------------------------------------------------------------------


def _check_urls(request: Request) -> None:
    """Syntax and sameness first: a typo must not cost a connection attempt."""
    if request.target_db is None and request.target_store is None:
        raise TransferError("nothing to move: give --to-db, --to-store or both")
    opening.parse_database_url(request.source_db, "source")
    opening.check_store_url(request.source_store, "source")
    if request.target_db is not None:
        opening.parse_database_url(request.target_db, "target")
        if opening.same_database(request.source_db, request.target_db):
            raise TransferError("the target database is the source database")
    if request.target_store is not None:
        opening.check_store_url(request.target_store, "target")
        if opening.stores_overlap(request.source_store, request.target_store):
            raise TransferError(
                f"the target store {request.target_store} overlaps the source store "
                f"{request.source_store}"
            )


def _check_not_in_use(source_url: str) -> None:
    """The SQLite probe, which must run before this process opens the file (see liveness)."""
    path = opening.sqlite_file(opening.parse_database_url(source_url, "source"))
    if path is None:
        return
    if not path.is_file():
        raise TransferError(f"no source database at {path} (check --data-dir or --db)")
    if sqlite_in_use(path):
        raise TransferError(f"the source database {path} is open in another process: {STOP_FIRST}")


def _check_source(source_db: Database) -> None:
    head = ScriptDirectory.from_config(migrate.config()).get_current_head()
    revision = migrate.current(source_db.engine)
    if revision is None:
        raise TransferError("the source database has no anigraph schema")
    if revision != head:
        raise TransferError(
            f"the source schema is at revision {revision}, this anigraph's is {head}: run "
            "'anigraph migrate' on the source with the anigraph version that will serve the target"
        )
    lease = live_lease(source_db)
    if lease is not None:
        raise TransferError(f"the source is in use: {lease}; {STOP_FIRST}")


def _check_target(target_db: Database) -> None:
    """A target written by a newer anigraph cannot be migrated by this one: say so now."""
    revision = migrate.current(target_db.engine)
    if revision is None:
        return
    try:
        ScriptDirectory.from_config(migrate.config()).get_revision(revision)
    except CommandError:
        raise TransferError(
            f"the target schema is at revision {revision}, which this anigraph does not know "
            "(written by a newer version?)"
        ) from None


def _count_rows(
    source_db: Database, target_db: Database | None, schema: list[Table], resume: bool
) -> tuple[dict[str, int], dict[str, int]]:
    with source_db.engine.connect() as connection:
        source_rows = tables.row_counts(connection, schema)
    target_rows = {table.name: 0 for table in schema}
    if target_db is not None:
        try:
            with target_db.engine.connect() as connection:
                target_rows = tables.row_counts(connection, schema)
        except SQLAlchemyError as exc:
            raise TransferError(
                f"cannot read the target database: {opening.first_line(exc)}"
            ) from None
        filled = {name: rows for name, rows in target_rows.items() if rows}
        if filled and not resume:
            name, rows = next(iter(filled.items()))
            raise TransferError(
                f"the target database is not empty ({name}: {rows} rows, {len(filled)} tables "
                "in all); migrate-store never overwrites: use an empty database, or --resume to "
                "finish an interrupted run"
            )
    return source_rows, target_rows


def _plan_objects(
    request: Request, source_db: Database, schema: list[Table]
) -> tuple[Store | None, Store | None, ObjectPlan, list[str]]:
    if request.target_store is None:
        return None, None, ObjectPlan(), []
    source = opening.open_store(request.source_store, "source", create=False)
    target = opening.open_store(request.target_store, "target", create=False)
    in_source: dict[str, int] = {}
    in_target: dict[str, int] = {}
    if source is not None:
        with opening.store_errors("source", source):
            in_source = {entry.key: entry.size for entry in source.list_objects()}
    if target is not None:
        with opening.store_errors("target", target):
            in_target = {entry.key: entry.size for entry in target.list_objects()}
    plan = objects.plan_objects(in_source, in_target)
    with source_db.engine.connect() as connection:
        missing = sorted(set(references.needed_keys(connection, schema)) - plan.source_keys)
    return source, target, plan, missing


# -- execute -----------------------------------------------------------------------------------


def _create_targets(plan: Plan) -> None:
    """Make the SQLite file and store folder that ``prepare`` found missing (and left so)."""
    request = plan.request
    if request.target_db is not None and plan.target_db is None:
        plan.target_db = opening.open_database(request.target_db, "target", create=True)
        assert plan.target_db is not None
        plan._resources.callback(plan.target_db.dispose)
    if request.target_store is not None and plan.target_store is None:
        plan.target_store = opening.open_store(request.target_store, "target", create=True)


def _migrate_schema(database: Database) -> None:
    try:
        migrate.upgrade(database.engine)
    except (SQLAlchemyError, CommandError) as exc:
        raise TransferError(
            f"cannot bring the target database to the current schema: {opening.first_line(exc)}"
        ) from None


def _copy_rows(plan: Plan, watch: Progress, report: Report) -> set[str]:
    """Copy the tables (if the database moves) and read the keys the rows need, all from one
    snapshot of the source; the needed keys are returned."""
    with plan.source_db.engine.connect() as source:
        if source.dialect.name == "postgresql":
            # One snapshot for every table; SQLite gets it from Database's BEGIN IMMEDIATE,
            # which also keeps any writer out while the rows are read.
            source = source.execution_options(isolation_level="REPEATABLE READ")
        with source.begin():
            if plan.target_db is not None:
                with _phase(watch, "rows", sum(plan.source_rows.values()), in_bytes=False):
                    for table in plan.tables:
                        report.tables.append(
                            tables.copy_table(
                                source,
                                plan.target_db.engine,
                                table,
                                batch_size=plan.request.batch_size,
                                resume=plan.request.resume,
                                advance=watch.advance,
                            )
                        )
            if plan.target_store is None:
                return set()
            return set(references.needed_keys(source, plan.tables))


def _copy_late_objects(plan: Plan, needed: set[str], report: Report) -> None:
    assert plan.target_store is not None
    source = plan.source_store
    for key in sorted(needed - plan.objects.source_keys):
        if source is None:
            report.missing.append(key)
            continue
        with opening.store_errors("source", source):
            found = source.stat(key) is not None
        if not found:
            report.missing.append(key)
            continue
        with opening.store_errors("target", plan.target_store):
            if plan.target_store.stat(key) is not None:
                continue  # copied by an earlier run
        report.bytes += objects.copy_object(source, plan.target_store, key).size
        report.objects += 1
        report.late_objects += 1


def _verify_rows(plan: Plan, report: Report) -> None:
    assert plan.target_db is not None
    with plan.target_db.engine.connect() as connection:
        counts = tables.row_counts(connection, plan.tables)
    for result in report.tables:
        expected = result.read
        found = counts[result.name]
        if found < expected or (found != expected and not plan.request.resume):
            raise TransferError(
                f"table {result.name}: {found} rows in the target after copying {expected}"
            )
