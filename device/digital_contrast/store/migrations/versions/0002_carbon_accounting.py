"""Carbon accounting: one emission record per finished job (energy, method, avoided footprint,
reported outcome) carrying what the sustainability aggregates filter on; their daily rollups
(sums and log-spaced energy bins) that keep aggregates over millions of jobs fast; and the
per-host measurement slot that keeps measured intervals on one host from overlapping.

The emission_records table of 0001 was a placeholder that nothing wrote; it is replaced.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "emission_records"
JOB_STATES = ("queued", "running", "succeeded", "rejected", "failed")  # as the model's CHECK
ENERGY_STATUSES = ("measured", "estimated", "unavailable")
ROLLUP_COUNTS = ("jobs", "succeeded", "rejected", "failed", "energy_measured",
                 "energy_estimated", "energy_unavailable", "outcome_avoided",
                 "outcome_followed")
ROLLUP_SUMS = ("energy_kwh", "emitted_kg_co2e", "net_basis_potential", "net_basis_confirmed",
               *(f"{kind}_{name}" for kind in ("potential", "confirmed")
                 for name in ("kg_co2e", "iodine_g", "plastics_g", "steel_g", "energy_kwh")))
ROLLUP_KEYS = ("site", "day", "use_case", "model_version", "factor_set_id", "factor_set_version")


def _rollup_keys() -> list[sa.Column]:
    return [sa.Column("site", sa.String(64), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("use_case", sa.String(64), nullable=False),
            sa.Column("model_version", sa.String(64), nullable=False),
            sa.Column("factor_set_id", sa.String(64), nullable=False),
            sa.Column("factor_set_version", sa.String(32), nullable=False)]


def _check(column: str, values: Sequence[str]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{TABLE}_{column}"))


def _number(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=nullable)


def upgrade() -> None:
    op.drop_table(TABLE)
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("use_case", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("job_state", sa.String(16), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("energy_status", sa.String(16), nullable=False),
        sa.Column("energy_reason", sa.Text(), nullable=True),
        sa.Column("method", sa.String(128), nullable=True),
        _number("duration_s"), _number("cpu_energy_kwh"), _number("gpu_energy_kwh"),
        _number("ram_energy_kwh"), _number("energy_kwh"), _number("emissions_kg_co2e"),
        _number("grid_intensity_kg_per_kwh"),
        sa.Column("country_iso_code", sa.String(3), nullable=True),
        _number("pue"),
        sa.Column("codecarbon_version", sa.String(32), nullable=True),
        sa.Column("factor_set_id", sa.String(64), nullable=False),
        sa.Column("factor_set_version", sa.String(32), nullable=False),
        _number("avoided_kg_co2e", False), _number("avoided_iodine_g", False),
        _number("avoided_plastics_g", False), _number("avoided_steel_g", False),
        _number("avoided_energy_kwh", False),
        sa.Column("contrast_scan_avoided", sa.Boolean(), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        _check("job_state", JOB_STATES),
        _check("energy_status", ENERGY_STATUSES),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f(f"fk_{TABLE}_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint("job_id", name=op.f(f"uq_{TABLE}_job_id")),
    )
    # Every aggregate filters on the site and a time range first.
    op.create_index(op.f(f"ix_{TABLE}_site_finished_at"), TABLE, ["site", "finished_at"])
    op.create_table(
        "emission_daily", *_rollup_keys(),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in ROLLUP_COUNTS),
        *(sa.Column(name, sa.Double(), nullable=False) for name in ROLLUP_SUMS),
        sa.PrimaryKeyConstraint(*ROLLUP_KEYS, name=op.f("pk_emission_daily")),
    )
    op.create_table(
        "emission_energy_bins", *_rollup_keys(),
        sa.Column("bin", sa.Integer(), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*ROLLUP_KEYS, "bin", name=op.f("pk_emission_energy_bins")),
    )
    op.create_table(
        "measurement_slots",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_measurement_slots")),
    )


def downgrade() -> None:
    for table in ("measurement_slots", "emission_energy_bins", "emission_daily"):
        op.drop_table(table)
    op.drop_table(TABLE)
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _number("duration_s", False), _number("energy_kwh", False),
        _number("emissions_kg_co2e", False),
        sa.Column("country_iso_code", sa.String(3), nullable=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f(f"fk_{TABLE}_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    op.create_index(op.f(f"ix_{TABLE}_job_id"), TABLE, ["job_id"])
    op.create_index(op.f(f"ix_{TABLE}_site"), TABLE, ["site"])
