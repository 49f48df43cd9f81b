"""Alembic migrations of the anigraph schema (SQLite and PostgreSQL)."""
