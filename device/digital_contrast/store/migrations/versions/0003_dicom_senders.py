"""DIMSE senders: the calling AE titles allowed to send images by C-STORE (and to echo), each
mapped to the site its images belong to, optionally bound to the address it connects from.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "dicom_senders"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ae_title", sa.String(16), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint("ae_title", name=op.f(f"uq_{TABLE}_ae_title")),
    )
    op.create_index(op.f(f"ix_{TABLE}_site"), TABLE, ["site"])


def downgrade() -> None:
    op.drop_index(op.f(f"ix_{TABLE}_site"), table_name=TABLE)
    op.drop_table(TABLE)
