"""Upload sessions and the COS-compatible object store's multipart state."""

from __future__ import annotations

from anigraph.db.models import Base  # noqa: F401  (tables are added by the uploads work)
