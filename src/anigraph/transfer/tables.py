"""The schema's tables, copied row by row with their primary keys.

The list of tables is the ORM metadata's, in foreign-key order (parents before children), so a
table added to ``db/models*.py`` is copied without anyone remembering to list it here. Rows go
in batches, one target transaction per batch: a run that stops leaves whole batches behind,
and ``resume`` skips the rows whose primary key is already there, so running again completes
the copy without duplicating or overwriting anything.

JSON columns distinguish SQL NULL from the JSON value ``null``, and SQLAlchemy reads both back
as ``None``; nullable JSON columns are therefore read with an ``IS NULL`` flag beside them and
written back as whichever of the two the source held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Row,
    Table,
    func,
    inspect,
    null,
    select,
    tuple_,
)
from sqlalchemy.exc import SQLAlchemyError

from anigraph.db.migrate import target_metadata
from anigraph.transfer.errors import TransferError
from anigraph.transfer.opening import first_line

_SQL_NULL = "__sql_null__"
"""Suffix of the label that flags a nullable JSON column holding SQL NULL."""


def schema_tables() -> list[Table]:
    """Every table of the schema, parents before children (Alembic's own table is not one)."""
    return [table for table in target_metadata().sorted_tables if table.name != "alembic_version"]


def row_counts(connection: Connection, tables: Sequence[Table]) -> dict[str, int]:
    """Rows per table; tables missing from the database (a new, unmigrated one) count 0."""
    present = set(inspect(connection).get_table_names())
    return {
        table.name: (
            connection.scalar(select(func.count()).select_from(table)) or 0
            if table.name in present
            else 0
        )
        for table in tables
    }


@dataclass
class TableResult:
    name: str
    read: int = 0
    copied: int = 0
    skipped: int = 0
    """Rows whose primary key the target already had (``resume``)."""


def copy_table(
    source: Connection,
    target: Engine,
    table: Table,
    *,
    batch_size: int,
    resume: bool,
    advance: Callable[[int], None],
) -> TableResult:
    """Copy every row of ``table``, in primary-key order, one target transaction per batch.

    ``source`` is read inside the caller's transaction, so all tables come from one snapshot.
    """
    result = TableResult(table.name)
    json_flags = _nullable_json(table)
    query = select(
        table, *(column.is_(None).label(column.key + _SQL_NULL) for column in json_flags)
    ).order_by(*table.primary_key.columns)
    rows = source.execution_options(yield_per=batch_size).execute(query)
    for batch in rows.partitions():
        values = [_values(row, table, json_flags) for row in batch]
        try:
            with target.begin() as connection:
                if resume:
                    values = _absent(connection, table, values)
                if values:
                    connection.execute(table.insert(), values)
        except SQLAlchemyError as exc:
            raise TransferError(
                f"copying table {table.name} failed: {first_line(exc)} (nothing of that batch "
                "was written; fix the cause and run again with --resume)"
            ) from None
        result.read += len(batch)
        result.copied += len(values)
        result.skipped += len(batch) - len(values)
        advance(len(batch))
    return result


def _nullable_json(table: Table) -> list[Column[Any]]:
    return [column for column in table.columns if isinstance(column.type, JSON) and column.nullable]


def _values(row: Row[Any], table: Table, json_flags: list[Column[Any]]) -> dict[str, Any]:
    mapping = row._mapping
    values = {column.key: mapping[column] for column in table.columns}
    for column in json_flags:
        if mapping[column.key + _SQL_NULL]:
            values[column.key] = null()  # SQL NULL; a plain None would be stored as JSON null
    return values


def _absent(
    connection: Connection, table: Table, values: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of ``values`` whose primary key ``table`` does not hold yet."""
    key_columns = list(table.primary_key.columns)

    def key_of(value: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(value[column.key] for column in key_columns)

    keys = [key_of(value) for value in values]
    if len(key_columns) == 1:
        condition = key_columns[0].in_([key[0] for key in keys])
    else:
        condition = tuple_(*key_columns).in_(keys)
    present = {tuple(row) for row in connection.execute(select(*key_columns).where(condition))}
    return [value for value, key in zip(values, keys, strict=True) if key not in present]
