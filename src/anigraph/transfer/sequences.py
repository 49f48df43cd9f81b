"""Moving PostgreSQL's counters past the copied keys.

Rows are copied with their primary keys, which bypasses the sequences behind SERIAL and
identity columns; left alone, the next insert would draw 1 and collide with a copied row. The
columns are found in the database itself (every column of the schema's tables that
``pg_get_serial_sequence`` knows), so a counter added by a future migration is covered too.

SQLite needs nothing: a rowid key takes max + 1, and an AUTOINCREMENT table's counter moves up
by itself when a larger key is inserted. (Template Definitions are allocated by the service
above both the copied ``template_counter`` and the highest copied template, on every database.)
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table, text


def reset_sequences(connection: Connection, tables: Sequence[Table]) -> dict[str, int]:
    """Set each counter of ``tables`` to draw max(key) + 1 next; ``{table.column: next}``."""
    if connection.dialect.name != "postgresql":
        return {}
    names = {table.name for table in tables}
    found = connection.execute(
        text(
            "SELECT table_name, column_name, seq FROM ("
            "  SELECT table_name, column_name,"
            "         pg_get_serial_sequence(quote_ident(table_name), column_name) AS seq"
            "  FROM information_schema.columns WHERE table_schema = current_schema()"
            ") AS counters WHERE seq IS NOT NULL ORDER BY table_name, column_name"
        )
    ).all()
    quote = connection.dialect.identifier_preparer.quote
    moved: dict[str, int] = {}
    for table, column, sequence in found:
        if table not in names:
            continue  # not anigraph's: leave other tables in a shared schema alone
        following = connection.scalar(
            text(f"SELECT COALESCE(MAX({quote(column)}), 0) + 1 FROM {quote(table)}")
        )
        # is_called = false: the next nextval() returns exactly ``following``.
        connection.execute(
            text("SELECT setval(:sequence, :following, false)"),
            {"sequence": sequence, "following": following},
        )
        moved[f"{table}.{column}"] = int(following)
    return moved
