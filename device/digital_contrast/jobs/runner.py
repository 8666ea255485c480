"""One claimed job, start to finish: pinned inputs, the locked core, atomic publication.

Inputs are the instance set pinned at submission: a series that changed since is refused
(SERIES_CHANGED), and every file's hash is checked as it is read. The synthetic series is
written to a scratch folder, its files put into the content-addressed store, and its rows and
the job's success committed in one transaction: a half-written series is never visible. A
rerun after a crash produces the same UIDs and the same bytes, so it publishes the same series.
"""

import logging
import tempfile
import threading
import traceback
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.imaging.synthetic import SynthesizingModel, write_synthetic_series
from digital_contrast.inference import LockedModel, synthesize
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.store import (
    Instance,
    InstanceStore,
    Job,
    JobState,
    Origin,
    StoreError,
    begin_write,
)
from digital_contrast.store.audit import append_audit
from digital_contrast.store.jobs import finish_job, get_job
from digital_contrast.store.studies import instance_set_sha256, record_instances

log = logging.getLogger(__name__)
# torch's thread settings are process-wide: threads of one process take turns in the core
# (run `digital-contrast worker` processes for parallel inference).
_CORE = threading.Lock()
IMAGE_REFUSALS = ("IMG_", "ZIP_", "CONF_", "USECASE_")


@dataclass(frozen=True)
class JobContext:
    sessions: sessionmaker[Session]
    instances: InstanceStore
    work_dir: Path
    registry_uri: str


@dataclass(frozen=True)
class Outcome:
    state: JobState
    result: dict[str, Any]
    error_code: str | None = None
    error_detail: str | None = None


def _inputs(ctx: JobContext, job: Job) -> list[bytes]:
    with ctx.sessions() as session:
        instances = list(session.scalars(select(Instance).where(
            Instance.series_id == job.series_id).order_by(Instance.id)))
    if not instances or instance_set_sha256(instances) != job.instance_set_sha256:
        raise DigitalContrastError("SERIES_CHANGED", "the series changed after the job was "
                                   "submitted; submit a new job for the current series")
    return [ctx.instances.read(i.file_path, i.sha256) for i in instances]


def _synthesize(ctx: JobContext, job: Job) -> tuple[Outcome, list[bytes]]:
    volume = read_series(_inputs(ctx, job))
    with _CORE:
        model = LockedModel.load(job.use_case, version=job.model_version,
                                 registry=ModelRegistry(ctx.registry_uri))
        if model.bundle_sha256 != job.bundle_sha256:
            raise DigitalContrastError("MODEL_INTEGRITY", "the registered bundle differs from "
                                       "the one the job was submitted for")
        result = synthesize(volume, job.use_case, model)
    assert volume.source is not None  # read_series always keeps its source
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.work_dir, prefix=f"job-{job.id}-") as scratch:
        written = write_synthetic_series(
            result.volume, volume.source,
            SynthesizingModel(result.model_name, result.model_version, result.bundle_sha256),
            Path(scratch), options=result.options)
        files = [path.read_bytes() for path in sorted(written.folder.iterdir())]
    record = result.to_dict() | {"output_series_instance_uid": written.series_instance_uid}
    return Outcome(JobState.SUCCEEDED, record), files


def _refusal(exc: DigitalContrastError) -> Outcome:
    verdict = getattr(exc, "verdict", None)
    result = {"conformity": verdict.to_dict()} if verdict is not None else {}
    state = JobState.REJECTED if exc.code.startswith(IMAGE_REFUSALS) or \
        exc.code == "SERIES_CHANGED" else JobState.FAILED
    return Outcome(state, result, exc.code, exc.detail)


def run_job(ctx: JobContext, job_id: str, worker_id: str) -> JobState:
    """Run a job this worker has claimed and record its outcome (never raises for a job's own
    failure; a lost lease or an unreachable database propagates)."""
    with ctx.sessions() as session:
        job = get_job(session, job_id)
        if job is None:
            return JobState.FAILED
        session.expunge(job)
    files: list[bytes] = []
    try:
        outcome, files = _synthesize(ctx, job)
    except DigitalContrastError as exc:  # ConformityError included: it carries the verdict
        outcome = _refusal(exc)
    except Exception as exc:  # a fault of ours: the job fails, the worker goes on
        # Where, not what: an exception message may quote a DICOM value (PHI).
        log.error("job %s failed unexpectedly: %s at\n%s", job_id, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        outcome = Outcome(JobState.FAILED, {}, "INTERNAL_ERROR",
                          "the job failed unexpectedly; operators have the details")
    stored = [ctx.instances.put(data) for data in files]
    with ctx.sessions() as session:
        begin_write(session)  # SQLite: hold the write lock from the first read on
        headers = [pydicom.dcmread(BytesIO(data), stop_before_pixels=True) for data in files]
        for row in record_instances(session, job.site, list(zip(headers, stored, strict=True)),
                                    Origin.PRODUCED):
            if isinstance(row, StoreError):
                raise row
        finish_job(session, job_id, worker_id, outcome.state, result=outcome.result,
                   error_code=outcome.error_code, error_detail=outcome.error_detail,
                   output_series_uid=outcome.result.get("output_series_instance_uid"))
        append_audit(session, job.site, f"worker:{worker_id}", f"job.{outcome.state.value}",
                     "job", job_id, "success" if outcome.state is JobState.SUCCEEDED
                     else "refused" if outcome.state is JobState.REJECTED else "failure",
                     {"error_code": outcome.error_code} if outcome.error_code else {})
        session.commit()
    log.info("job %s %s%s", job_id, outcome.state.value,
             f" ({outcome.error_code})" if outcome.error_code else "")
    return outcome.state
