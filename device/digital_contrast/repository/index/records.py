"""Index rows: built from a series as ingest wrote it, and written idempotently (a series
ingested again replaces its row: one row per site and pseudonymous series UID)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digital_contrast.repository.index.classify import HEADER, SeriesLabels
from digital_contrast.repository.index.tables import Series
from digital_contrast.store.studies import instance_set_sha256

_UPDATED = [c.name for c in Series.__table__.columns if c.name not in ("id", "site",
                                                                         "series_uid")]


def quality_of(positions: Sequence[float]) -> str:
    """"complete" when the slice positions step evenly (one spacing within 1 %), "gaps" when
    a step is missing or doubled, "unknown" without positions or with a single slice."""
    if len(positions) < 2:
        return "unknown"
    steps = np.diff(np.sort(np.asarray(positions, dtype=np.float64)))
    typical = float(np.median(steps))
    if typical <= 0:
        return "gaps"
    return "complete" if np.all(np.abs(steps - typical) <= 0.01 * typical) else "gaps"


def _date(value: Any) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(value or "")[:8], "%Y%m%d").date()
    except ValueError:
        return None


def series_row(site: str, labels: SeriesLabels, deidentified: Dataset, *,
               positions: Sequence[float], files: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The row of one ingested series; `deidentified` is one of its de-identified instances
    (UIDs, pseudonym and the shifted date come from it, never from the source); `files` its
    (SOP instance UID, file SHA-256) pairs, hashed as batch manifests name a series."""
    return {
        "site": site, "series_uid": str(deidentified.SeriesInstanceUID),
        "study_uid": str(deidentified.StudyInstanceUID), "patient": str(deidentified.PatientID),
        "modality": labels.modality, "region": labels.region, "region_source": HEADER,
        "phase": labels.phase, "phase_source": HEADER, "kvp": labels.kvp,
        "thickness_mm": labels.thickness_mm, "kernel": labels.kernel,
        "manufacturer": labels.manufacturer, "study_date": _date(deidentified.get("StudyDate")),
        "age_band": labels.age_band, "sex": labels.sex, "instances": len(files),
        "quality": quality_of(positions), "instance_set_sha256": instance_set_sha256(files),
        "source": "ingest", "generated": "",
        "extra": {k: str(deidentified.get(k, "") or "") for k in
                  ("SeriesDescription", "BodyPartExamined", "ContrastBolusAgent")},
    }


def record_series(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, replacing those of the same site and series UID."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(Series).values(list(rows))
    statement = statement.on_conflict_do_update(
        index_elements=["site", "series_uid"],
        set_={name: getattr(statement.excluded, name) for name in _UPDATED})
    session.execute(statement)


def bulk_insert(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Plain inserts of new rows (loading a whole index at once)."""
    if rows:
        session.execute(insert(Series), list(rows))
