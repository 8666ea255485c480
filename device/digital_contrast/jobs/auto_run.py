"""Auto-run: a received series that has been stable for a while and whose header fits a use
case's envelope gets a job by itself. Never for synthetic or produced series, and at most one
automatic job per (series, use case); the full envelope is still checked by the job."""

import logging
from datetime import datetime, timedelta
from io import BytesIO

import pydicom
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.conformity import header as checks
from digital_contrast.imaging.conformity.verdict import Outcome
from digital_contrast.jobs.submit import submit
from digital_contrast.store import Instance, InstanceStore, Job, Origin, Series
from digital_contrast.store.audit import append_audit
from digital_contrast.store.columns import utcnow
from digital_contrast.usecases import load_use_case
from digital_contrast.usecases.schema import Envelope

log = logging.getLogger(__name__)
# Checks that need the header alone (the image checks run in the job).
HEADER_CHECKS = (checks.modality, checks.not_synthetic, checks.not_derived,
                 checks.not_virtual_non_contrast, checks.adult, checks.body_part, checks.kvp,
                 checks.kernel, checks.contrast_agent)


def header_fits(header: pydicom.Dataset, envelope: Envelope) -> bool:
    return all(check(None, header, envelope).outcome is not Outcome.FAILED  # type: ignore[arg-type]
               for check in HEADER_CHECKS)


def _stable_series(db: Session, use_case: str, before: datetime) -> list[Series]:
    has_job = exists().where(Job.series_id == Series.id, Job.use_case == use_case)
    return list(db.scalars(select(Series).where(
        Series.origin == Origin.RECEIVED, Series.synthetic.is_(False),
        Series.updated_at <= before, ~has_job).order_by(Series.id).limit(100)))


def auto_submit(sessions: sessionmaker[Session], instances: InstanceStore, registry_uri: str,
                use_cases: list[str], stable_s: float, *, now: datetime | None = None
                ) -> list[str]:
    """Submit the jobs the routing rule calls for; returns their ids."""
    before = (now or utcnow()) - timedelta(seconds=stable_s)
    submitted: list[str] = []
    for use_case in use_cases:
        envelope = load_use_case(use_case).envelope
        with sessions() as db:
            for series in _stable_series(db, use_case, before):
                first = db.scalars(select(Instance).where(Instance.series_id == series.id)
                                   .order_by(Instance.id).limit(1)).first()
                if first is None:
                    continue
                header = pydicom.dcmread(BytesIO(instances.read(first.file_path, first.sha256)),
                                         stop_before_pixels=True)
                if not header_fits(header, envelope):
                    continue
                try:
                    job = submit(db, registry_uri, site=series.site,
                                 series_uid=series.series_instance_uid, use_case=use_case).job
                except DigitalContrastError as exc:
                    log.warning("auto-run for %s not submitted (%s)", use_case, exc.code)
                    continue
                append_audit(db, series.site, "auto-run", "job.submit", "job", job.id,
                             "success", {"use_case": use_case})
                db.commit()
                submitted.append(job.id)
    return submitted
