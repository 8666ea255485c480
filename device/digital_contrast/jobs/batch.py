"""Cohort synthesis: the cases of a manifest submitted as jobs of one batch, through whichever
executor the site runs (the embedded queue or Celery), watched until every case has an outcome.

Each case is committed with its job (or its refusal) in one transaction, so a batch stopped at
any point resumes where it was: recorded cases are skipped and the jobs' idempotency keys return
the job a case already has. A case from a folder is first stored through the same intake checks
as every other channel; a case whose instances are not exactly those its manifest names (the
instance set hash) is refused, never run on other data.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digital_contrast.batch_manifest import (
    Manifest,
    ManifestCase,
    ManifestHeader,
    case_files,
)
from digital_contrast.errors import DigitalContrastError
from digital_contrast.intake import IntakeCode, ParsedInstance, ingest, validate_instance
from digital_contrast.jobs.submit import submit
from digital_contrast.service import ServiceState
from digital_contrast.store import Instance, Origin
from digital_contrast.store.audit import append_audit
from digital_contrast.store.batches import (
    BatchProgress,
    batch_for_manifest,
    batch_outcomes,
    batch_progress,
    recorded_case_ids,
)
from digital_contrast.store.studies import get_series, instance_set_sha256
from digital_contrast.store.tables import Batch, BatchCase, Series
from digital_contrast.usecases import load_use_case

log = logging.getLogger(__name__)


class BatchError(DigitalContrastError):
    """BATCH_MANIFEST_CONFLICT, BATCH_NOT_FOUND."""


class CaseRefused(DigitalContrastError):
    """A case that gets no job: SERIES_NOT_FOUND, INSTANCE_SET_MISMATCH, CASE_FOLDER_MISSING,
    CASE_FOLDER_REFUSED (the intake refused its files), SERIES_SYNTHETIC..."""


@dataclass(frozen=True)
class SubmitRound:
    batch_id: str
    submitted: int  # cases given a job in this round
    refused: int  # cases refused before a job existed, in this round
    skipped: int  # cases recorded by an earlier round


def open_batch(service: ServiceState, manifest: Manifest, actor: str) -> Batch:
    """The batch of this manifest at this site: made once, found again on a resume."""
    site = service.settings.site
    load_use_case(manifest.header.use_case)  # USECASE_UNKNOWN before anything is written
    with service.sessions() as db:
        batch = batch_for_manifest(db, site, manifest.sha256)
        if batch is None:
            batch = Batch(site=site, name=manifest.header.name,
                          use_case=manifest.header.use_case, manifest_sha256=manifest.sha256,
                          manifest_version=manifest.header.version,
                          case_count=len(manifest.cases),
                          provenance=dict(manifest.header.provenance), created_by=actor)
            db.add(batch)
            db.flush()
            append_audit(db, site, actor, "batch.create", "batch", batch.id, "success",
                         {"cases": batch.case_count, "use_case": batch.use_case})
            db.commit()
        db.expunge(batch)
    return batch


def submit_cases(service: ServiceState, batch: Batch, manifest: Manifest, actor: str, *,
                 on_case: Callable[[], None] = lambda: None,
                 after_commit: Callable[[], object] = lambda: None) -> SubmitRound:
    """Submit every case not recorded yet; `after_commit` runs after each case's commit (the
    Celery executor publishes there)."""
    with service.sessions() as db:
        recorded = recorded_case_ids(db, batch.id)
    submitted = refused = 0
    for ordinal, case in enumerate(manifest.cases):
        if case.case_id in recorded:
            continue
        try:
            if case.folder is not None:
                _store_folder(service, manifest, case, actor)
            with service.sessions() as db:
                job_id = _submit(db, service, batch, case, actor)
                db.add(_case_row(batch, ordinal, case, job_id, None))
                db.commit()
            submitted += 1
        except DigitalContrastError as exc:  # CaseRefused, or the submission's own refusals
            with service.sessions() as db:
                db.add(_case_row(batch, ordinal, case, None, exc))
                db.commit()
            refused += 1
        after_commit()
        on_case()
    log.info("batch %s: %d cases submitted, %d refused, %d already recorded", batch.id,
             submitted, refused, len(recorded))
    return SubmitRound(batch.id, submitted, refused, len(recorded))


def _case_row(batch: Batch, ordinal: int, case: ManifestCase, job_id: str | None,
              refusal: DigitalContrastError | None) -> BatchCase:
    return BatchCase(batch_id=batch.id, case_id=case.case_id, ordinal=ordinal,
                     series_instance_uid=case.series_instance_uid, job_id=job_id,
                     refusal_code=refusal.code if refusal else None,
                     refusal_detail=refusal.detail if refusal else None)


def _submit(db: Session, service: ServiceState, batch: Batch, case: ManifestCase,
            actor: str) -> str:
    site = service.settings.site
    series = get_series(db, site, case.series_instance_uid)
    if series is None:
        raise CaseRefused("SERIES_NOT_FOUND", "the case's series is not in the store")
    if case.instance_set_sha256 is not None and \
            _instance_set(db, series) != case.instance_set_sha256:
        raise CaseRefused("INSTANCE_SET_MISMATCH", "the stored series is not exactly the "
                          "instances the manifest names (instance_set_sha256)")
    submitted = submit(db, service.settings.mlflow_uri, site=site,
                       series_uid=case.series_instance_uid, use_case=batch.use_case)
    append_audit(db, site, actor, "job.submit", "job", submitted.job.id,
                 "success" if submitted.created else "existing",
                 {"use_case": batch.use_case, "batch": batch.id})
    return submitted.job.id


def _instance_set(db: Session, series: Series) -> str:
    return instance_set_sha256(db.scalars(select(Instance).where(
        Instance.series_id == series.id)))


def _store_folder(service: ServiceState, manifest: Manifest, case: ManifestCase,
                  actor: str) -> None:
    """The case's DICOM files through the intake checks into the store (idempotent: files
    already stored are recognised as the same); a damaged or refused file refuses the case."""
    assert case.folder is not None
    folder = (manifest.root / case.folder).resolve()
    if manifest.root not in folder.parents or not folder.is_dir():
        raise CaseRefused("CASE_FOLDER_MISSING", "the case's folder is not there (or not "
                          "inside the manifest's folder)")
    parsed: list[ParsedInstance] = []
    for path in case_files(folder):
        outcome = validate_instance(path.read_bytes())
        if not isinstance(outcome, ParsedInstance) and outcome.code == IntakeCode.NOT_DICOM:
            continue  # not part of any series (a DICOMDIR's neighbours, notes): as the manifest
        if not isinstance(outcome, ParsedInstance):
            raise CaseRefused("CASE_FOLDER_REFUSED", f"a file of the case was refused by the "
                              f"intake checks ({outcome.code})")
        parsed.append(outcome)
    with service.sessions() as db:
        result = ingest(service.instances, db, service.settings.site, actor, iter(parsed),
                        "batch")
    if result.failed:
        raise CaseRefused("CASE_FOLDER_REFUSED", f"{len(result.failed)} file(s) of the case "
                          "could not be stored")


def progress(service: ServiceState, batch: Batch) -> BatchProgress:
    with service.sessions() as db:
        return batch_progress(db, batch)


def outcomes(service: ServiceState, batch: Batch) -> list[dict[str, Any]]:
    with service.sessions() as db:
        return batch_outcomes(db, batch)


def summary(batch: Batch, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, and the energy and emissions the batch's jobs measured (sums over measured jobs
    only, saying how many were measured), beside the potential avoided footprint."""
    def total(key: str) -> float:
        return sum(row[key] for row in rows if row[key] is not None)

    counts = {kind: sum(row["outcome"] == kind for row in rows)
              for kind in ("succeeded", "refused", "failed", "pending")}
    return {
        "batch_id": batch.id, "name": batch.name, "use_case": batch.use_case,
        "manifest_sha256": batch.manifest_sha256, "cases": batch.case_count,
        "recorded": len(rows), **counts,
        "refusal_codes": _codes(rows, "refused"), "failure_codes": _codes(rows, "failed"),
        "energy_kwh": total("energy_kwh"), "emissions_kg_co2e": total("emissions_kg_co2e"),
        "jobs_measured": sum(row["energy_kwh"] is not None for row in rows),
        "potential_avoided_kg_co2e": total("avoided_kg_co2e"),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "evidence": "Energy and CO2e are CodeCarbon measurements of each job on this site's "
                    "hardware (jobs not measured are left out and counted apart). The avoided "
                    "footprint is the potential footprint of the contrast scans the syntheses "
                    "could replace, from the site's factor set, not a measured saving. The "
                    "reference model is trained on a procedural phantom and is not clinically "
                    "validated."}


def _codes(rows: list[dict[str, Any]], outcome: str) -> dict[str, int]:
    codes: dict[str, int] = {}
    for row in rows:
        if row["outcome"] == outcome:
            codes[row["code"] or "UNKNOWN"] = codes.get(row["code"] or "UNKNOWN", 0) + 1
    return dict(sorted(codes.items()))


def manifest_cases_from_store(service: ServiceState) -> Iterator[ManifestCase]:
    """A case per received, non-synthetic series of the site that has instances, with the hash
    of its instances as they are stored now."""
    with service.sessions() as db:
        series_rows = list(db.scalars(select(Series).where(
            Series.site == service.settings.site, Series.origin == Origin.RECEIVED,
            Series.synthetic.is_(False), Series.modality == "CT",
            Series.instances.any()).order_by(Series.id)))
        for series in series_rows:
            yield ManifestCase(case_id=f"series-{series.id}",
                               series_instance_uid=series.series_instance_uid,
                               instance_set_sha256=_instance_set(db, series),
                               provenance={"source": "store"})


def manifest_header(name: str, use_case: str, source: str) -> ManifestHeader:
    from digital_contrast import __version__

    return ManifestHeader(format="digital-contrast/batch-manifest", version=1, name=name,
                          use_case=use_case,
                          created=datetime.now(UTC).isoformat(timespec="seconds"),
                          provenance={"source": source,
                                      "generated_by": f"digital-contrast {__version__}"})
