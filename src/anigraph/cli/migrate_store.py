"""Command line of ``anigraph migrate-store``; the work is done by ``anigraph.transfer``.

This module only turns settings into a request and results into text: the plan and the
summary as tables on stdout, progress bars on stderr (on a terminal), and any failure as one
line on stderr with exit status 1.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from anigraph.cli.shared import settings_from, settings_options

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgressBar
    from rich.progress import TaskID

    from anigraph.transfer.migration import Plan, Report, Request


def register(app: click.Group) -> None:
    @app.command("migrate-store")
    @settings_options(("data_dir", "db", "store"))
    @click.option("--to-db", metavar="URL", help="Target database, e.g. postgresql+psycopg://…")
    @click.option(
        "--to-store", metavar="URL", help="Target store: a folder or s3://bucket?endpoint_url=…"
    )
    @click.option(
        "--resume", is_flag=True, help="Finish an interrupted run: rows already there are skipped."
    )
    @click.option("--dry-run", is_flag=True, help="Print what would move and write nothing.")
    @click.option(
        "--batch-size",
        type=click.IntRange(1, 100_000),
        default=1000,
        show_default=True,
        help="Rows per target transaction.",
    )
    @click.option(
        "--parallel",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="Objects copied at once.",
    )
    def migrate_store(
        to_db: str | None,
        to_store: str | None,
        resume: bool,
        dry_run: bool,
        batch_size: int,
        parallel: int,
        **options: Any,
    ) -> None:
        """Move this setup's rows and stored objects to another database and/or store.

        The source is the usual settings (--data-dir, --db, --store); stop every anigraph
        process that uses it first. The target database is brought to the current schema and
        must be empty, unless --resume finishes an earlier run; objects keep their keys.
        """
        if to_db is None and to_store is None:
            raise click.UsageError("give --to-db, --to-store or both")
        from anigraph.transfer.migration import Request

        settings = settings_from(options)
        request = Request(
            source_db=settings.database_url,
            source_store=settings.store_url,
            target_db=to_db,
            target_store=to_store,
            resume=resume,
            batch_size=batch_size,
            parallel=parallel,
        )
        sys.exit(_run(request, dry_run))


def _run(request: Request, dry_run: bool) -> int:
    from rich.console import Console

    from anigraph.transfer import migration
    from anigraph.transfer.errors import TransferError

    # soft_wrap: long URLs and paths stay on one line, so they can be copied.
    out = Console(highlight=False, soft_wrap=True)
    errors = Console(stderr=True, highlight=False)
    try:
        plan = migration.prepare(request)
    except TransferError as exc:
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        return 1
    try:
        _print_plan(out, plan)
        if dry_run:
            out.print("Dry run: nothing was written.")
            return 0
        report = migration.execute(plan, _Bars(errors))
    except TransferError as exc:
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        errors.print("interrupted: run the same command with --resume to finish", markup=False)
        return 130
    finally:
        plan.close()
    _print_summary(out, plan, report)
    return 0


def _print_plan(out: Console, plan: Plan) -> None:
    from rich.filesize import decimal
    from rich.table import Table

    from anigraph.transfer.opening import database_label

    request = plan.request
    out.print(
        f"From  {database_label(request.source_db)}  and  {request.source_store}", markup=False
    )
    target = [database_label(request.target_db)] if request.target_db else []
    target += [request.target_store] if request.target_store else []
    out.print(f"To    {'  and  '.join(target)}", markup=False)
    out.print(
        "The source must not change meanwhile: stop every anigraph process that uses it "
        "(serve, worker, celery-worker).",
        markup=False,
    )
    if request.target_db:
        rows = Table("table", "rows", "in target now", title="Database")
        for table in plan.tables:
            rows.add_row(
                table.name,
                str(plan.source_rows[table.name]),
                str(plan.target_rows[table.name]),
            )
        out.print(rows)
    if request.target_store:
        found = plan.objects
        out.print(
            f"Objects: {len(found.to_copy)} to copy ({decimal(found.copy_bytes)}), "
            f"{found.present} already in the target ({decimal(found.present_bytes)})",
            markup=False,
        )
        _warn_missing(out, plan.missing)


def _warn_missing(out: Console, missing: list[str]) -> None:
    if missing:
        out.print(
            f"Warning: {len(missing)} object(s) the rows need are missing from the source "
            f"store (first: {missing[0]}); they stay missing.",
            markup=False,
        )


def _print_summary(out: Console, plan: Plan, report: Report) -> None:
    from rich.filesize import decimal
    from rich.table import Table

    from anigraph.transfer.opening import database_label

    summary = Table("", "source", "copied", "already there", title="Moved")
    for result in report.tables:
        summary.add_row(result.name, str(result.read), str(result.copied), str(result.skipped))
    if plan.request.target_store:
        summary.add_row(
            "objects",
            str(report.objects + plan.objects.present),
            f"{report.objects} ({decimal(report.bytes)})",
            f"{plan.objects.present} ({decimal(plan.objects.present_bytes)})",
        )
    out.print(summary)
    if report.sequences:
        moved = ", ".join(
            f"{name} -> {next_value}" for name, next_value in report.sequences.items()
        )
        out.print(f"Counters set to continue after the copied keys: {moved}", markup=False)
    if report.late_objects:
        out.print(
            f"Warning: {report.late_objects} object(s) appeared while copying: the source was "
            "in use. Stop it and run again with --resume.",
            markup=False,
        )
    _warn_missing(out, report.missing)
    rows = sum(result.copied for result in report.tables)
    out.print(
        f"Done in {report.seconds:.1f} s: {rows} rows and {report.objects} objects "
        f"({decimal(report.bytes)}) copied.",
        markup=False,
    )
    settings = []
    if plan.request.target_db:
        settings.append(f"--db '{database_label(plan.request.target_db)}'")
    if plan.request.target_store:
        settings.append(f"--store '{plan.request.target_store}'")
    out.print(f"Run anigraph with {' '.join(settings)} from now on.", markup=False)


class _Bars:
    """``transfer.progress.Progress`` as rich progress bars on stderr (terminals only)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar: RichProgressBar | None = None
        self._task: TaskID | None = None

    def start(self, description: str, total: int, *, in_bytes: bool) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        amount = [DownloadColumn(), TransferSpeedColumn()] if in_bytes else [MofNCompleteColumn()]
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            *amount,
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
            disable=not self._console.is_terminal,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, amount)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._bar = self._task = None
