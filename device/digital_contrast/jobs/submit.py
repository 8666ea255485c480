"""Submitting a job: the series as it is now (its instance set hash), the use case and the
production bundle it will run, pinned at submission. The same request twice is the same job.

A job may ask for an attribution map (`explain`): the method must have passed its sanity checks
for the bundle the job will run (its validation record), or nothing is queued
(EXPLAIN_METHOD_REFUSED). `submit_explain` asks for the attribution of a finished job's result
afterwards: a job on the same series, use case and bundle that publishes only the map.
"""

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digital_contrast.errors import DigitalContrastError
from digital_contrast.explain.attribution import Method
from digital_contrast.explain.steps import require_method
from digital_contrast.inference.locked_model import resolve_registered
from digital_contrast.model.registry import ModelRegistry, RegisteredBundle
from digital_contrast.store import Instance, JobState, Origin, begin_write
from digital_contrast.store.jobs import Submitted, get_job, submit_job
from digital_contrast.store.studies import get_series, instance_set_sha256
from digital_contrast.usecases import load_use_case

Box = tuple[tuple[float, float, float], tuple[float, float, float]]


class JobRequestError(DigitalContrastError):
    """SERIES_NOT_FOUND, SERIES_SYNTHETIC, JOB_NOT_FOUND, RESULT_NOT_READY, NOT_FOUND."""


def idempotency_key(site: str, instance_set: str, use_case: str, bundle_sha256: str,
                    options: dict[str, Any]) -> str:
    text = json.dumps([site, instance_set, use_case, bundle_sha256, options], sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def explain_options(method: Method | str | None, region_box_mm: Box | None) -> dict[str, Any]:
    """The options of a job that asks for an attribution map (part of its idempotency key)."""
    return {"explain": True, "method": str(method or Method.INTEGRATED_GRADIENTS),
            "region_box_mm": [list(map(float, corner)) for corner in region_box_mm]
            if region_box_mm is not None else None}


def _require_method(registry: ModelRegistry, registered: RegisteredBundle,
                    method: Method | str) -> None:
    """EXPLAIN_METHOD_REFUSED unless `method` passed its sanity checks for this bundle."""
    signed = registry.validation_record(registered)
    require_method(signed.record.explain if signed is not None else None, method)


def submit(db: Session, registry_uri: str, *, site: str, series_uid: str, use_case: str,
           explain: bool = False, method: Method | str | None = None,
           region_box_mm: Box | None = None, submitted_by: int | None = None) -> Submitted:
    """Queue (or find) the job; the caller commits."""
    case = load_use_case(use_case)  # USECASE_UNKNOWN
    options: dict[str, Any] = (explain_options(method, region_box_mm) if explain
                               else {"explain": False})
    begin_write(db)  # SQLite: the reads below and the insert are one writer's transaction
    series = get_series(db, site, series_uid)
    if series is None:
        raise JobRequestError("SERIES_NOT_FOUND", "no series with this UID at this site")
    if series.origin == Origin.PRODUCED or series.synthetic:
        raise JobRequestError("SERIES_SYNTHETIC", "a synthetic series is never an input")
    registry = ModelRegistry(registry_uri)
    registered = resolve_registered(registry, case)  # USECASE_NO_MODEL
    if explain:
        _require_method(registry, registered, options["method"])  # EXPLAIN_METHOD_REFUSED
    instances = list(db.scalars(select(Instance).where(Instance.series_id == series.id)))
    instance_set = instance_set_sha256(instances)
    return submit_job(
        db, site=site, series_id=series.id, use_case=case.id,
        bundle_sha256=registered.sha256, model_name=registered.name,
        model_version=registered.version, instance_set_sha256=instance_set, options=options,
        submitted_by=submitted_by,
        idempotency_key=idempotency_key(site, instance_set, case.id, registered.sha256,
                                        options))


def submit_explain(db: Session, registry_uri: str, *, site: str, job_id: str,
                   method: Method | str | None = None, region_box_mm: Box | None = None,
                   submitted_by: int | None = None) -> Submitted:
    """Queue (or find) the attribution of a succeeded job's result: the same series, use case
    and bundle, options naming the job it explains. The caller commits."""
    begin_write(db)
    original = get_job(db, job_id, site=site)
    root_id = (original.options or {}).get("explain_of") if original is not None else None
    if root_id:  # explaining an explanation job explains the job it explains
        original = get_job(db, str(root_id), site=site)
    if original is None:
        raise JobRequestError("JOB_NOT_FOUND", "no job with this id at this site")
    if original.state != JobState.SUCCEEDED:
        raise JobRequestError("RESULT_NOT_READY", f"the job is {original.state.value}; only "
                              "a succeeded job's result can be explained")
    if original.series_id is None or not original.output_series_uid:
        raise JobRequestError("NOT_FOUND", "the job's series was removed by retention")
    registry = ModelRegistry(registry_uri)
    registered = registry.show(original.model_name, original.model_version)
    options = explain_options(method, region_box_mm) | {"explain_of": original.id}
    _require_method(registry, registered, options["method"])  # EXPLAIN_METHOD_REFUSED
    return submit_job(
        db, site=site, series_id=original.series_id, use_case=original.use_case,
        bundle_sha256=original.bundle_sha256, model_name=original.model_name,
        model_version=original.model_version,
        instance_set_sha256=original.instance_set_sha256, options=options,
        submitted_by=submitted_by,
        idempotency_key=idempotency_key(site, original.instance_set_sha256 or "",
                                        original.use_case, original.bundle_sha256, options))
