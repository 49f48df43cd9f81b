"""Task-flow (procedure) templates."""

from __future__ import annotations

from anigraph.db.models import Base  # noqa: F401  (tables are added by the procedures work)
