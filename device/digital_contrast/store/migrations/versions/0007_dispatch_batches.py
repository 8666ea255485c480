"""Jobs record when their message reached the broker (the Celery executor), and cohorts are
batches of cases from one manifest, each case with its job or the code it was refused with.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("use_case", sa.String(64), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("manifest_version", sa.Integer(), nullable=False),
        sa.Column("case_count", sa.Integer(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("site", "manifest_sha256",
                            name=op.f("uq_batches_site_manifest_sha256")),
    )
    op.create_index(op.f("ix_batches_site"), "batches", ["site"])
    op.create_table(
        "batch_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(128), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("series_instance_uid", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("refusal_code", sa.String(64), nullable=True),
        sa.Column("refusal_detail", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"],
                                name=op.f("fk_batch_cases_batch_id_batches")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_batch_cases_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_cases")),
        sa.UniqueConstraint("batch_id", "case_id", name=op.f("uq_batch_cases_batch_id_case_id")),
    )
    op.create_index(op.f("ix_batch_cases_batch_id"), "batch_cases", ["batch_id"])
    op.create_index(op.f("ix_batch_cases_job_id"), "batch_cases", ["job_id"])


def downgrade() -> None:
    op.drop_table("batch_cases")
    op.drop_table("batches")
    op.execute("ALTER TABLE jobs DROP COLUMN dispatched_at")  # no batch copy on SQLite
