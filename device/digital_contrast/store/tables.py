"""ORM models (SQLAlchemy 2 typed declarative). The schema itself is owned by the migrations.

Every row that belongs to a site carries an indexed `site`; every datetime is aware UTC;
enumerations are strings guarded by CHECK constraints so SQLite and PostgreSQL behave alike.
Audit rows are append-only: the migration installs triggers that refuse UPDATE and DELETE.
"""

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Column,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from digital_contrast.store.columns import UTCDateTime, enum_check, str_enum, utcnow
from digital_contrast.store.enums import (
    DeliveryState,
    EnergyStatus,
    JobState,
    Origin,
    Protocol,
    Role,
)

# Deterministic constraint names, so migrations can name (and drop) what they create.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UID = String(64)  # DICOM UI: at most 64 characters
SHA256 = String(64)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Study(Base):
    __tablename__ = "studies"
    __table_args__ = (UniqueConstraint("site", "study_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    study_instance_uid: Mapped[str] = mapped_column(UID)
    patient_id: Mapped[str | None] = mapped_column(Text)
    patient_name: Mapped[str | None] = mapped_column(Text)
    study_date: Mapped[str | None] = mapped_column(String(8))  # DICOM DA, YYYYMMDD
    accession_number: Mapped[str | None] = mapped_column(Text)
    study_description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    series: Mapped[list["Series"]] = relationship(back_populates="study")


class Series(Base):
    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("site", "series_instance_uid"), enum_check("origin", Origin))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    series_instance_uid: Mapped[str] = mapped_column(UID)
    modality: Mapped[str | None] = mapped_column(String(16))
    series_description: Mapped[str | None] = mapped_column(Text)
    series_number: Mapped[int | None] = mapped_column(Integer)
    body_part_examined: Mapped[str | None] = mapped_column(Text)
    image_type: Mapped[str | None] = mapped_column(Text)  # values joined by backslash
    origin: Mapped[Origin] = mapped_column(str_enum(Origin))
    # SyntheticData YES or our Manufacturer: a series we must never take as input.
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Time of the last instance received: an auto-run waits until the series is stable.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list["Instance"]] = relationship(back_populates="series")


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("site", "sop_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(UID)
    sop_class_uid: Mapped[str | None] = mapped_column(UID)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax_uid: Mapped[str | None] = mapped_column(UID)
    file_path: Mapped[str] = mapped_column(String(128), index=True)  # relative to the store root
    sha256: Mapped[str] = mapped_column(SHA256)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    series: Mapped[Series] = relationship(back_populates="instances")


class ApiKey(Base):
    """Only a salted scrypt hash of the secret is kept; `prefix` is the public lookup id."""

    __tablename__ = "api_keys"
    __table_args__ = (enum_check("role", Role),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    salt: Mapped[str] = mapped_column(String(64))  # hex
    key_hash: Mapped[str] = mapped_column(String(255))  # "scrypt$n$r$p$hex"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # None: keys made before expiry existed


class DicomSender(Base):
    """A DIMSE peer allowed to associate (C-STORE, C-ECHO): its calling AE title, the address
    it must connect from when one is set, and the site whose images it sends."""

    __tablename__ = "dicom_senders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    host: Mapped[str | None] = mapped_column(String(255))  # None: any address
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class Destination(Base):
    """Where a site's results are pushed: a DIMSE peer (AE title, host, port, transfer syntaxes
    in order of preference) or a STOW-RS service (URL; its credential, if any, lives in the
    keys folder, never in the database). `auto` destinations get every succeeded job."""

    __tablename__ = "destinations"
    __table_args__ = (UniqueConstraint("site", "name"), enum_check("protocol", Protocol))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    protocol: Mapped[Protocol] = mapped_column(str_enum(Protocol))
    ae_title: Mapped[str | None] = mapped_column(String(16))
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(Text)
    transfer_syntaxes: Mapped[list[str]] = mapped_column(JSON, default=list)
    tls: Mapped[bool] = mapped_column(default=False)  # DIMSE over TLS (keys folder's tls/)
    has_credential: Mapped[bool] = mapped_column(default=False)
    auto: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class Delivery(Base):
    """One push of a job's result series to one destination: the durable outbox. A worker
    holds it under a lease while sending; a failure schedules the next attempt."""

    __tablename__ = "deliveries"
    __table_args__ = (enum_check("state", DeliveryState),
                      Index("ix_deliveries_due", "state", "next_attempt_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    site: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id"))
    series_uids: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[DeliveryState] = mapped_column(str_enum(DeliveryState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)  # statuses and codes, never PHI
    instances_sent: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    destination: Mapped[Destination] = relationship()


class Job(Base):
    __tablename__ = "jobs"
    # The listing's order (newest first, id breaking ties) per site, and per site and state:
    # a page is one index range, however many jobs there are (migration 0008). They replace
    # the indexes on site alone and on created_at alone (with which PostgreSQL could walk a
    # year of other sites' jobs to fill a small site's page).
    __table_args__ = (enum_check("state", JobState),
                      Index("ix_jobs_site_created_at_id", "site", "created_at", "id"),
                      Index("ix_jobs_site_state_created_at_id", "site", "state", "created_at",
                            "id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    site: Mapped[str] = mapped_column(String(64))
    # Nulled by retention: a de-identified job keeps what it did, not whose data it was.
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id"), index=True)
    use_case: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    instance_set_sha256: Mapped[str | None] = mapped_column(SHA256)
    bundle_sha256: Mapped[str] = mapped_column(SHA256)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    state: Mapped[JobState] = mapped_column(str_enum(JobState), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    output_series_uid: Mapped[str | None] = mapped_column(UID)
    deidentified_at: Mapped[datetime | None]
    # Celery executor: when the job's message was confirmed by the broker (None: not yet).
    dispatched_at: Mapped[datetime | None]

    events: Mapped[list["JobEvent"]] = relationship(back_populates="job",
                                                    order_by="JobEvent.id")


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (enum_check("from_state", JobState), enum_check("to_state", JobState))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_state: Mapped[JobState | None] = mapped_column(str_enum(JobState))  # None: submitted
    to_state: Mapped[JobState] = mapped_column(str_enum(JobState))
    detail: Mapped[dict[str, Any] | None]

    job: Mapped[Job] = relationship(back_populates="events")


class EmissionRecord(Base):
    """One per finished job: the compute it cost (or why that is unknown), the contrast-scan
    footprint it potentially avoided under the factor set in force, and the outcome the site
    reported. It carries the job's site, use case, model and finish time so that aggregates
    over millions of records need no join; it holds no patient data and outlives retention."""

    __tablename__ = "emission_records"
    __table_args__ = (enum_check("job_state", JobState), enum_check("energy_status", EnergyStatus),
                      Index("ix_emission_records_site_finished_at", "site", "finished_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    use_case: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    job_state: Mapped[JobState] = mapped_column(str_enum(JobState))
    finished_at: Mapped[datetime]
    energy_status: Mapped[EnergyStatus] = mapped_column(str_enum(EnergyStatus))
    energy_reason: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(String(128))
    duration_s: Mapped[float | None]
    cpu_energy_kwh: Mapped[float | None]
    gpu_energy_kwh: Mapped[float | None]
    ram_energy_kwh: Mapped[float | None]
    energy_kwh: Mapped[float | None]
    emissions_kg_co2e: Mapped[float | None]
    grid_intensity_kg_per_kwh: Mapped[float | None]
    country_iso_code: Mapped[str | None] = mapped_column(String(3))
    pue: Mapped[float | None]
    codecarbon_version: Mapped[str | None] = mapped_column(String(32))
    factor_set_id: Mapped[str] = mapped_column(String(64))
    factor_set_version: Mapped[str] = mapped_column(String(32))
    # Potential avoided footprint; confirmed = potential once the site reports no contrast scan.
    avoided_kg_co2e: Mapped[float]
    avoided_iodine_g: Mapped[float]
    avoided_plastics_g: Mapped[float]
    avoided_steel_g: Mapped[float]
    avoided_energy_kwh: Mapped[float]
    contrast_scan_avoided: Mapped[bool | None]
    outcome_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any] | None]


# Daily rollups of emission records, so that sustainability aggregates over millions of jobs
# read a few thousand rows. One row per (site, UTC day, use case, model version, factor set);
# the columns are the sums of each record's contribution (`store.footprints.contribution`).
ROLLUP_KEYS = ("site", "day", "use_case", "model_version", "factor_set_id",
               "factor_set_version")
ROLLUP_COUNTS = ("jobs", "succeeded", "rejected", "failed", "energy_measured",
                 "energy_estimated", "energy_unavailable", "outcome_avoided",
                 "outcome_followed")
ROLLUP_SUMS = ("energy_kwh", "emitted_kg_co2e", "net_basis_potential", "net_basis_confirmed",
               *(f"{kind}_{name}" for kind in ("potential", "confirmed")
                 for name in ("kg_co2e", "iodine_g", "plastics_g", "steel_g", "energy_kwh")))


def _rollup_keys(period: str = "day") -> list[Column[Any]]:
    return [Column("site", String(64), primary_key=True),
            Column(period, Date, primary_key=True),
            Column("use_case", String(64), primary_key=True),
            Column("model_version", String(64), primary_key=True),
            Column("factor_set_id", String(64), primary_key=True),
            Column("factor_set_version", String(32), primary_key=True)]


emission_daily = Table(
    "emission_daily", Base.metadata, *_rollup_keys(),
    *(Column(name, Integer, nullable=False) for name in ROLLUP_COUNTS),
    *(Column(name, Double, nullable=False) for name in ROLLUP_SUMS))
# Energy per scan in log-spaced bins per day, for percentiles and the distribution.
emission_energy_bins = Table(
    "emission_energy_bins", Base.metadata, *_rollup_keys(),
    Column("bin", Integer, primary_key=True), Column("jobs", Integer, nullable=False))
# The same per calendar month (`month`: its first day): a day holds up to a few hundred bins,
# so a year of daily bins is a few hundred thousand rows; a range reads its whole months here
# and only the days around them in the daily bins (migration 0008).
emission_energy_bins_monthly = Table(
    "emission_energy_bins_monthly", Base.metadata, *_rollup_keys("month"),
    Column("bin", Integer, primary_key=True), Column("jobs", Integer, nullable=False))


class MeasurementSlot(Base):
    """The host's one measured-inference slot: a lease, taken over once it expires."""

    __tablename__ = "measurement_slots"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class AuditEvent(Base):
    """Append-only and hash chained: hash = sha256(prev_hash + canonical JSON of the fields);
    sealed: mac = HMAC(key `key_id`, seq and hash). Rows written before migration 0005 have
    no seal (store.audit_seal)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("uq_audit_events_seq", "seq", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    site: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]
    # Unique: two appends can never both follow the same row, so the chain cannot fork.
    prev_hash: Mapped[str] = mapped_column(SHA256, unique=True)
    hash: Mapped[str] = mapped_column(SHA256, unique=True)
    seq: Mapped[int | None]  # position in the chain, unique (index below)
    key_id: Mapped[str | None] = mapped_column(String(16))
    mac: Mapped[str | None] = mapped_column(SHA256)


class AuthFailure(Base):
    """Failed API keys of one subject (a client address) in the current window, and how long
    it is locked out."""

    __tablename__ = "auth_failures"

    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class AuditExport(Base):
    """How far the audit trail was sent to one audit repository (syslog target)."""

    __tablename__ = "audit_exports"

    target: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class FileDeletion(Base):
    """Instance files whose rows are gone, pending removal: makes a purge safely re-runnable."""

    __tablename__ = "file_deletions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_path: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    """A cohort submitted from one manifest: the same manifest is the same batch, resumed."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("site", "manifest_sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    site: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128))
    use_case: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(SHA256)
    manifest_version: Mapped[int] = mapped_column(Integer)
    case_count: Mapped[int] = mapped_column(Integer)
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BatchCase(Base):
    """One case of a batch: its job once submitted, or the code it was refused with before a
    job existed (series missing, hash differs)."""

    __tablename__ = "batch_cases"
    __table_args__ = (UniqueConstraint("batch_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    case_id: Mapped[str] = mapped_column(String(128))
    ordinal: Mapped[int] = mapped_column(Integer)
    series_instance_uid: Mapped[str] = mapped_column(UID)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    refusal_code: Mapped[str | None] = mapped_column(String(64))
    refusal_detail: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
