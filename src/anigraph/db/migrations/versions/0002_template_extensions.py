"""template extension fields: MaxSize, QualityTarget, SegmentMode, Duration, LoopMode

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 07:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "animated_graphics_templates"


def upgrade() -> None:
    # Server defaults keep every existing template exactly as Tencent defines it.
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_size", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("quality_target", sa.Float(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("segment_mode", sa.String(length=16), server_default="Fixed", nullable=False)
        )
        batch_op.add_column(sa.Column("duration", sa.Float(), server_default="3", nullable=False))
        batch_op.add_column(
            sa.Column("loop_mode", sa.String(length=16), server_default="None", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for column in ("loop_mode", "duration", "segment_mode", "quality_target", "max_size"):
            batch_op.drop_column(column)
