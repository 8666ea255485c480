"""Jobs: submit (202, idempotent), read one, list by state and time, fetch the result zip."""

import io
import json
import zipfile
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from digital_contrast.api.deps import Caller, DbSession, Service
from digital_contrast.api.schemas import JobRequest, JobView
from digital_contrast.errors import DigitalContrastError
from digital_contrast.jobs.submit import submit
from digital_contrast.store import Job, JobState, Series
from digital_contrast.store.audit import append_audit
from digital_contrast.store.jobs import get_job, list_jobs
from digital_contrast.store.studies import get_series, list_instances

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _view(db: Session, job: Job) -> JobView:
    series = db.get(Series, job.series_id) if job.series_id is not None else None
    return JobView.of(job, series.series_instance_uid if series else None)


def _own_job(db: Session, job_id: str, site: str) -> Job:
    job = get_job(db, job_id, site=site)
    if job is None:
        raise DigitalContrastError("JOB_NOT_FOUND", "no job with this id at this site")
    return job


@router.post("", status_code=202, summary="Submit a synthesis job",
             responses={202: {"description": "Queued, or the same request's existing job"}})
def submit_job(request: JobRequest, response: Response, state: Service, db: DbSession,
               caller: Caller) -> JobView:
    """Pins the series' current instance set and the production bundle of the use case. The
    same (instances, use case, bundle, options) returns the existing job."""
    submitted = submit(db, state.settings.mlflow_uri, site=caller.site,
                       series_uid=request.series_uid, use_case=request.use_case,
                       explain=request.explain, submitted_by=caller.key_id)
    append_audit(db, caller.site, caller.actor, "job.submit", "job", submitted.job.id,
                 "success" if submitted.created else "existing", {"use_case": request.use_case})
    db.commit()
    response.headers["Location"] = f"/v1/jobs/{submitted.job.id}"
    return _view(db, submitted.job)


@router.get("", summary="List jobs")
def jobs(db: DbSession, caller: Caller,
         state: Annotated[JobState | None, Query(description="Only jobs in this state")] = None,
         since: Annotated[datetime | None, Query(
             description="Only jobs created at or after this time (ISO 8601 with zone)")] = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[JobView]:
    if since is not None and since.tzinfo is None:
        raise DigitalContrastError("REQUEST_INVALID", "since needs a time zone, e.g. Z")
    return [_view(db, job) for job in list_jobs(db, caller.site, state, since, limit=limit)]


@router.get("/{job_id}", summary="Read a job")
def job(job_id: str, db: DbSession, caller: Caller) -> JobView:
    return _view(db, _own_job(db, job_id, caller.site))


@router.get("/{job_id}/result.zip", summary="Download the synthetic series and result.json",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}})
def result_zip(job_id: str, state: Service, db: DbSession, caller: Caller) -> StreamingResponse:
    job = _own_job(db, job_id, caller.site)
    if job.state != JobState.SUCCEEDED or not job.output_series_uid:
        raise DigitalContrastError("RESULT_NOT_READY", f"the job is {job.state.value}")
    output = get_series(db, caller.site, job.output_series_uid)
    source = db.get(Series, job.series_id) if job.series_id is not None else None
    if output is None or source is None:
        raise DigitalContrastError("NOT_FOUND", "the result was removed by retention")
    instances = list_instances(db, caller.site, output.study.study_instance_uid,
                               output.series_instance_uid)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for instance in instances:
            archive.writestr(f"{output.series_instance_uid}/{instance.instance_number:05d}.dcm",
                             state.instances.read(instance.file_path, instance.sha256))
        archive.writestr("result.json", json.dumps(job.result, indent=2) + "\n")
    append_audit(db, caller.site, caller.actor, "result.retrieve", "job", job.id, "success")
    db.commit()
    buffer.seek(0)
    return StreamingResponse(buffer, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{job.id}.zip"'})
