"""Submitting a job: the series as it is now (its instance set hash), the use case and the
production bundle it will run, pinned at submission. The same request twice is the same job."""

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digital_contrast.errors import DigitalContrastError
from digital_contrast.inference.locked_model import resolve_registered
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.store import Instance, Origin, begin_write
from digital_contrast.store.jobs import Submitted, submit_job
from digital_contrast.store.studies import get_series, instance_set_sha256
from digital_contrast.usecases import load_use_case


class JobRequestError(DigitalContrastError):
    """SERIES_NOT_FOUND, SERIES_SYNTHETIC, EXPLAIN_UNAVAILABLE."""


def idempotency_key(site: str, instance_set: str, use_case: str, bundle_sha256: str,
                    options: dict[str, Any]) -> str:
    text = json.dumps([site, instance_set, use_case, bundle_sha256, options], sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def submit(db: Session, registry_uri: str, *, site: str, series_uid: str, use_case: str,
           explain: bool = False, submitted_by: int | None = None) -> Submitted:
    """Queue (or find) the job; the caller commits."""
    if explain:
        raise JobRequestError("EXPLAIN_UNAVAILABLE", "explainability maps are not available "
                              "in this version; submit with explain=false")
    case = load_use_case(use_case)  # USECASE_UNKNOWN
    begin_write(db)  # SQLite: the reads below and the insert are one writer's transaction
    series = get_series(db, site, series_uid)
    if series is None:
        raise JobRequestError("SERIES_NOT_FOUND", "no series with this UID at this site")
    if series.origin == Origin.PRODUCED or series.synthetic:
        raise JobRequestError("SERIES_SYNTHETIC", "a synthetic series is never an input")
    registered = resolve_registered(ModelRegistry(registry_uri), case)  # USECASE_NO_MODEL
    instances = list(db.scalars(select(Instance).where(Instance.series_id == series.id)))
    instance_set = instance_set_sha256(instances)
    options = {"explain": explain}
    return submit_job(
        db, site=site, series_id=series.id, use_case=case.id,
        bundle_sha256=registered.sha256, model_name=registered.name,
        model_version=registered.version, instance_set_sha256=instance_set, options=options,
        submitted_by=submitted_by,
        idempotency_key=idempotency_key(site, instance_set, case.id, registered.sha256,
                                        options))
