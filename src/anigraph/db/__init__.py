"""Persistence: SQLAlchemy models and the database handle (SQLite by default)."""
