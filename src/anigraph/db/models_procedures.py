"""Task-flow (procedure) templates.

A task flow is a named, stored set of task inputs that ProcessMediaByProcedure, ApplyUpload's
``Procedure`` and PullUpload's ``Procedure`` start on a media item. Names are the key Tencent's
API uses (there is no numeric id on the wire), so (sub_app_id, name) is unique; the surrogate
``id`` only gives a stable tie-break when several flows share a creation time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from anigraph.db.models import Base


class ProcedureTemplate(Base):
    """A custom task flow of one sub-application.

    ``media_process_task`` is the stored MediaProcessTaskInput. Only its
    ``AnimatedGraphicTaskSet`` is meaningful (anigraph makes animated images only); each item is
    kept normalised as ``{"Definition": int, "StartTimeOffset": float, "EndTimeOffset": float}``
    so that a run copies it verbatim into the task's subtasks.
    """

    __tablename__ = "procedure_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sub_app_id: Mapped[int] = mapped_column(ForeignKey("sub_apps.id"), index=True)
    # 20 characters at most by the API; the column is wider so multi-byte names always fit.
    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16), default="Custom")
    comment: Mapped[str] = mapped_column(String(256), default="")
    media_process_task: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("sub_app_id", "name", name="uq_procedure_name"),)
