"""The index's tables (SQLAlchemy 2 typed declarative): series, and saved cohorts with their
frozen members; the schema is owned by the migrations under index/migrations, never by
`create_all`.

What comes from headers is flagged as such (`phase_source`, `region_source`): image-based
classification comes later, and a cohort must know which labels nobody has verified. Values
generated to fill a column a source lacks (the scale test on IDC's index) name that column in
`generated`, so no figure can pass them off as data.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PHASES = ("native", "arterial", "portal_venous", "delayed", "unknown")
REGIONS = ("head", "neck", "chest", "abdomen", "pelvis", "abdomen_pelvis", "chest_abdomen_pelvis",
           "whole_body", "extremity", "unknown")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s", "pk": "pk_%(table_name)s"})


class Series(Base):
    __tablename__ = "repository_series"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64))
    study_uid: Mapped[str] = mapped_column(String(64))
    patient: Mapped[str] = mapped_column(String(64))  # the site's pseudonym
    modality: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(32))
    region_source: Mapped[str] = mapped_column(String(16))  # "header" (unverified)
    phase: Mapped[str] = mapped_column(String(16))
    phase_source: Mapped[str] = mapped_column(String(16))  # "header" (unverified)
    kvp: Mapped[float | None] = mapped_column(Double)
    thickness_mm: Mapped[float | None] = mapped_column(Double)
    kernel: Mapped[str | None] = mapped_column(String(64))
    manufacturer: Mapped[str | None] = mapped_column(String(64))
    study_date: Mapped[date | None] = mapped_column(Date)  # shifted by the patient's offset
    age_band: Mapped[str | None] = mapped_column(String(8))  # "60-69", "90+"
    sex: Mapped[str | None] = mapped_column(String(1))  # M, F, O
    instances: Mapped[int] = mapped_column(Integer)
    quality: Mapped[str] = mapped_column(String(16))  # "complete", "gaps", "unknown"
    # SHA-256 over sorted (SOP instance UID, file SHA-256): a batch manifest's series identity
    instance_set_sha256: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # "ingest", "idc-index"
    generated: Mapped[str] = mapped_column(String(256), default="")  # columns filled by us
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("uq_repository_series_site_series_uid", "site", "series_uid", unique=True),
        Index("ix_repository_series_cohort", "region", "phase", "kvp", "thickness_mm"),
        Index("ix_repository_series_study_phase", "study_uid", "phase"),
        Index("ix_repository_series_age_band_sex", "age_band", "sex"),
        Index("ix_repository_series_kernel", "kernel"),
    )


class Cohort(Base):
    """A saved search, versioned: a new version when its query or its members change. Its
    members are frozen when it is saved, so a version always resolves to the same manifest."""

    __tablename__ = "repository_cohorts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    series_count: Mapped[int] = mapped_column(Integer)
    # SHA-256 over the sorted "site<TAB>series UID<TAB>instance-set hash" lines of its members
    cohort_sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("uq_repository_cohorts_name_version", "name", "version",
                            unique=True),)


class CohortMember(Base):
    __tablename__ = "repository_cohort_members"

    cohort_id: Mapped[int] = mapped_column(ForeignKey("repository_cohorts.id",
                                                      ondelete="CASCADE"), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    series_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64))
    patient: Mapped[str] = mapped_column(String(64))
    instance_set_sha256: Mapped[str | None] = mapped_column(String(64))
    # a pair cohort's contrast series keeps the native series of its study: the model's input
    native_series_uid: Mapped[str | None] = mapped_column(String(64))
    native_instance_set_sha256: Mapped[str | None] = mapped_column(String(64))


class ExportRecord(Base):
    """One export of a cohort: what left, under which data use agreement, sealed in a chain
    (HMAC of the record and the previous seal under a keys-folder secret), so a record removed
    or changed afterwards shows."""

    __tablename__ = "repository_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cohort: Mapped[str] = mapped_column(String(64))
    cohort_version: Mapped[int] = mapped_column(Integer)
    cohort_sha256: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(256))
    data_use_agreement: Mapped[str] = mapped_column(String(128))
    use_case: Mapped[str] = mapped_column(String(64))
    min_k: Mapped[int] = mapped_column(Integer)
    series_exported: Mapped[int] = mapped_column(Integer)
    series_suppressed: Mapped[int] = mapped_column(Integer)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    previous_seal: Mapped[str] = mapped_column(String(64))
    seal: Mapped[str] = mapped_column(String(64))


class IngestRun(Base):
    """One `repository ingest` through the Celery executor: pass 1's plan, its items worked
    off by the workers. Its rows stay in the site's own index: an item's source paths may be
    identifying, and never appear in a log or a report."""

    __tablename__ = "repository_ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    out: Mapped[str] = mapped_column(String(4096))  # the repository folder, absolute
    # planned (not every pending item's message confirmed yet), dispatched, complete
    state: Mapped[str] = mapped_column(String(16))
    series: Mapped[int] = mapped_column(Integer)  # items: the series pass 1 found
    files: Mapped[int] = mapped_column(Integer)  # DICOM instances pass 1 found
    not_dicom: Mapped[int] = mapped_column(Integer)
    # the site's safe-list of private elements at planning: [{creator, group, element}]
    safe_private: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # an HMAC under the site's key at planning: a worker holding another key refuses to work
    key_check: Mapped[str] = mapped_column(String(64))


class IngestItem(Base):
    """One series of a run. `item_key` is an HMAC of its source series UID under the site's
    key: opaque, yet the same for the same series in every run at the site."""

    __tablename__ = "repository_ingest_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("repository_ingest_runs.id",
                                                   ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(64))
    sources: Mapped[list[str]] = mapped_column(JSON)  # source file paths: identifying
    state: Mapped[str] = mapped_column(String(16))  # pending, done, refused, failed
    code: Mapped[str | None] = mapped_column(String(64))  # refusal code or failure's type
    instances: Mapped[int] = mapped_column(Integer)  # in the source
    written: Mapped[int] = mapped_column(Integer, default=0)
    series_uid: Mapped[str | None] = mapped_column(String(64))  # pseudonymous, once done
    seconds: Mapped[float | None] = mapped_column(Double)  # de-identifying and writing it
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_repository_ingest_items_run_id_item_key", "run_id", "item_key", unique=True),
        Index("ix_repository_ingest_items_run_id_state", "run_id", "state"),
    )
