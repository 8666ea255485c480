"""Jobs: submit (202, idempotent), read one, list by state and time, fetch the result zip;
ask for an attribution of a finished job, list and fetch the maps of a job."""

import base64
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.orm import Session

from digital_contrast.api.deps import Caller, DbSession, Service
from digital_contrast.api.routers.sustainability import potential_of
from digital_contrast.api.schemas import (
    DeliveryRequest,
    DeliveryView,
    ExplainRequest,
    JobRequest,
    JobView,
    MapView,
    OutcomeRequest,
    OutcomeView,
)
from digital_contrast.carbon.accounting import confirmed_avoided
from digital_contrast.errors import DigitalContrastError
from digital_contrast.jobs.submit import submit, submit_explain
from digital_contrast.store import Job, JobState, Series
from digital_contrast.store.audit import append_audit
from digital_contrast.store.destinations import get_destination
from digital_contrast.store.footprints import report_outcome
from digital_contrast.store.job_artifacts import FILE_NAME, SLUG, media_type
from digital_contrast.store.jobs import PageKey, get_job, list_jobs
from digital_contrast.store.outbox import deliveries_of_jobs, enqueue, result_series_uids
from digital_contrast.store.studies import get_series, list_instances, series_uids

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _views(db: Session, jobs: list[Job]) -> list[JobView]:
    """Views of jobs, their series UIDs and deliveries read in one query each (not per job)."""
    uids = series_uids(db, {j.series_id for j in jobs if j.series_id is not None})
    deliveries = deliveries_of_jobs(db, [j.id for j in jobs])
    return [JobView.of(job, uids.get(job.series_id) if job.series_id is not None else None,
                       deliveries.get(job.id, [])) for job in jobs]


def _view(db: Session, job: Job) -> JobView:
    return _views(db, [job])[0]


_JOB_ID = re.compile(r"[\w-]{1,36}", re.ASCII)  # a UUID, nothing a database would refuse


def page_cursor(created_at: datetime, job_id: str) -> str:
    """The opaque cursor of the page after a job: its creation time and id, base64url."""
    raw = f"{created_at.astimezone(UTC).isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str | None) -> PageKey | None:
    """The job a cursor names (REQUEST_INVALID for one this service did not make)."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, job_id = raw.partition("|")
        parsed = datetime.fromisoformat(moment)
        after = parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):  # bad base64 (binascii.Error), UTF-8 or time
        after = None
    if after is None or not _JOB_ID.fullmatch(job_id):
        raise DigitalContrastError("REQUEST_INVALID", "cursor is not one this service gave: "
                                   "take it from the Link header of the previous page")
    return after, job_id


def _next_page(request: Request, last: Job) -> str:
    """The Link header value of the page after `last`: the same query with its cursor."""
    url = request.url.include_query_params(cursor=page_cursor(last.created_at, last.id))
    return f'<{url.path}?{url.query}>; rel="next"'


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
    same (instances, use case, bundle, options) returns the existing job. Every job computes
    the confidence of its result and publishes an uncertainty map; with `explain` it also
    publishes an attribution map, by a method that passed its sanity checks for the production
    model (409 EXPLAIN_METHOD_REFUSED otherwise, and nothing is queued)."""
    submitted = submit(db, state.settings.mlflow_uri, site=caller.site,
                       series_uid=request.series_uid, use_case=request.use_case,
                       explain=request.explain, method=request.method,
                       region_box_mm=request.region_box_mm, submitted_by=caller.key_id)
    append_audit(db, caller.site, caller.actor, "job.submit", "job", submitted.job.id,
                 "success" if submitted.created else "existing",
                 {"use_case": request.use_case, "explain": request.explain})
    db.commit()
    response.headers["Location"] = f"/v1/jobs/{submitted.job.id}"
    return _view(db, submitted.job)


@router.get("", summary="List jobs", responses={200: {"headers": {"Link": {
    "description": 'After a full page: <the same query continued>; rel="next"',
    "schema": {"type": "string"}}}}})
def jobs(request: Request, response: Response, db: DbSession, caller: Caller,
         state: Annotated[JobState | None, Query(description="Only jobs in this state")] = None,
         since: Annotated[datetime | None, Query(
             description="Only jobs created at or after this time (ISO 8601 with zone)")] = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 100,
         cursor: Annotated[str | None, Query(max_length=200, description="Continue after the "
                                             "previous page (from its Link header)")] = None,
         ) -> list[JobView]:
    """Newest first. A full page carries a `Link: <...>; rel="next"` header: the same query
    continued after its last job, by a cursor (keyset pagination: every page costs what the
    first does, and jobs submitted meanwhile do not shift later pages)."""
    if since is not None and since.tzinfo is None:
        raise DigitalContrastError("REQUEST_INVALID", "since needs a time zone, e.g. Z")
    try:
        since = since.astimezone(UTC) if since is not None else None
    except OverflowError:
        raise DigitalContrastError("REQUEST_INVALID", "since is outside the calendar once "
                                   "converted to UTC") from None
    page = list_jobs(db, caller.site, state, since, limit=limit, after=_after(cursor))
    if len(page) == limit:
        response.headers["Link"] = _next_page(request, page[-1])
    return _views(db, page)


@router.get("/{job_id}", summary="Read a job")
def job(job_id: str, db: DbSession, caller: Caller) -> JobView:
    return _view(db, _own_job(db, job_id, caller.site))


def _succeeded(job: Job) -> Job:
    if job.state != JobState.SUCCEEDED or not job.output_series_uid:
        raise DigitalContrastError("RESULT_NOT_READY", f"the job is {job.state.value}")
    return job


def _map_entries(job: Job) -> list[dict[str, Any]]:
    return list((job.result or {}).get("maps", []))


@router.post("/{job_id}/deliveries", status_code=202, summary="Push the result to a "
             "destination (PACS)", responses={202: {"description": "Queued in the outbox"}})
def deliver(job_id: str, request: DeliveryRequest, db: DbSession,
            caller: Caller) -> DeliveryView:
    """Queues a delivery of the job's result series (the synthetic series and its maps) to
    one of the site's destinations; the delivery worker sends it by C-STORE or STOW-RS, with
    retries. 409 RESULT_NOT_READY for a job without a result, 404 DESTINATION_NOT_FOUND for a
    name the site has not enabled. Destinations marked auto get every result without this."""
    job = _succeeded(_own_job(db, job_id, caller.site))
    destination = get_destination(db, caller.site, request.destination)
    delivery = enqueue(db, job, destination, result_series_uids(job), caller.actor)
    append_audit(db, caller.site, caller.actor, "delivery.request", "delivery", delivery.id,
                 "success", {"job_id": job.id, "destination": destination.name})
    db.commit()
    return DeliveryView.of(delivery)


@router.post("/{job_id}/outcome", summary="Report whether a contrast scan followed")
def outcome(job_id: str, request: OutcomeRequest, db: DbSession, caller: Caller) -> OutcomeView:
    """Confirms (or not) the contrast-scan footprint the job potentially avoided. Only a
    succeeded job can have spared a contrast scan (409 OUTCOME_NOT_APPLICABLE otherwise); 404
    JOB_NOT_FOUND for a job that is unknown, of another site or not finished. A later report
    replaces an earlier one; every report is audited."""
    record = report_outcome(db, job_id, caller.site, request.contrast_scan_avoided)
    append_audit(db, caller.site, caller.actor, "job.outcome", "job", job_id, "success",
                 {"contrast_scan_avoided": request.contrast_scan_avoided})
    db.commit()
    confirmed = confirmed_avoided(potential_of(record), request.contrast_scan_avoided)
    assert record.outcome_at is not None and confirmed is not None  # an outcome was reported
    return OutcomeView(
        job_id=job_id, contrast_scan_avoided=request.contrast_scan_avoided,
        reported_at=record.outcome_at,
        confirmed_avoided=confirmed.to_dict(),
        factor_set=f"{record.factor_set_id}@{record.factor_set_version}")


@router.get("/{job_id}/result.zip", summary="Download the synthetic series, its maps and "
            "result.json", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}})
def result_zip(job_id: str, state: Service, db: DbSession, caller: Caller) -> StreamingResponse:
    """`<series UID>/NNNNN.dcm` (the synthetic series), `maps/<slug>/` (each map's Parametric
    Map and Secondary Captures as DICOM, PNG previews and NIfTI) and `result.json`."""
    job = _succeeded(_own_job(db, job_id, caller.site))
    output = get_series(db, caller.site, job.output_series_uid or "")
    source = db.get(Series, job.series_id) if job.series_id is not None else None
    if output is None or source is None:
        raise DigitalContrastError("NOT_FOUND", "the result was removed by retention")
    study = output.study.study_instance_uid
    instances = list_instances(db, caller.site, study, output.series_instance_uid)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for instance in instances:
            archive.writestr(f"{output.series_instance_uid}/{instance.instance_number:05d}.dcm",
                             state.instances.read(instance.file_path, instance.sha256))
        for entry in _map_entries(job):
            folder = f"maps/{entry['slug']}"
            for key, name in (("parametric_map_series_uid", "parametric_map"),
                              ("secondary_capture_series_uid", "secondary_capture")):
                for instance in list_instances(db, caller.site, study, entry[key]):
                    archive.writestr(f"{folder}/{name}_{instance.instance_number:05d}.dcm",
                                     state.instances.read(instance.file_path, instance.sha256))
            for file in MapView.of(job.id, entry).files:
                path = state.artifacts.map_file(job.id, entry["slug"], file.name)
                if path is not None:
                    archive.write(path, f"{folder}/{file.name}")
        archive.writestr("result.json", json.dumps(job.result, indent=2) + "\n")
    append_audit(db, caller.site, caller.actor, "result.retrieve", "job", job.id, "success")
    db.commit()
    buffer.seek(0)
    return StreamingResponse(buffer, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{job.id}.zip"'})


@router.post("/{job_id}/explain", status_code=202, summary="Explain a finished job's result",
             responses={202: {"description": "Queued, or the same request's existing job"}})
def explain_job(job_id: str, response: Response, state: Service, db: DbSession,
                caller: Caller,
                request: Annotated[ExplainRequest | None, Body()] = None) -> JobView:
    """Queues a job that attributes the synthesized enhancement of a succeeded job's result to
    its input: same series, use case and model, recomputed (deterministic); it publishes only
    the attribution map (`explain_of` names the job explained). 404 for an unknown job, 409
    RESULT_NOT_READY before the job succeeded, 409 EXPLAIN_METHOD_REFUSED for a method that did
    not pass its sanity checks for the job's model. The same request returns the same job."""
    request = request or ExplainRequest()
    submitted = submit_explain(db, state.settings.mlflow_uri, site=caller.site, job_id=job_id,
                               method=request.method, region_box_mm=request.region_box_mm,
                               submitted_by=caller.key_id)
    append_audit(db, caller.site, caller.actor, "job.submit", "job", submitted.job.id,
                 "success" if submitted.created else "existing",
                 {"explain_of": submitted.job.options.get("explain_of"),
                  "method": request.method.value})
    db.commit()
    response.headers["Location"] = f"/v1/jobs/{submitted.job.id}"
    return _view(db, submitted.job)


@router.get("/{job_id}/maps", summary="List a job's maps")
def maps(job_id: str, db: DbSession, caller: Caller) -> list[MapView]:
    """The uncertainty map (every job that published a result) and the attribution map (when
    asked for): their DICOM series in the study and their files."""
    job = _succeeded(_own_job(db, job_id, caller.site))
    return [MapView.of(job.id, entry) for entry in _map_entries(job)]


@router.get("/{job_id}/maps/{slug}/{name}", summary="Download a map's preview or NIfTI",
            response_class=FileResponse, responses={200: {"content": {
                "image/png": {}, "application/gzip": {}},
                "description": "A PNG preview (NCCT | synthetic | map, with the warning burned "
                               "in) or the map's values as NIfTI (.nii.gz)"}})
def map_file(job_id: str, state: Service, db: DbSession, caller: Caller,
             slug: Annotated[str, Path(max_length=64, pattern=SLUG.pattern,
                                       examples=["uncertainty-tta"])],
             name: Annotated[str, Path(max_length=80, pattern=FILE_NAME.pattern,
                                       examples=["preview_axial.png"])]) -> FileResponse:
    job = _succeeded(_own_job(db, job_id, caller.site))
    entry = next((e for e in _map_entries(job) if e["slug"] == slug), None)
    listed = {f.name for f in MapView.of(job.id, entry).files} if entry is not None else set()
    path = state.artifacts.map_file(job.id, slug, name) if name in listed else None
    if path is None:
        raise DigitalContrastError("MAP_NOT_FOUND", "this job has no map file of that name")
    append_audit(db, caller.site, caller.actor, "result.retrieve", "job", job.id, "success",
                 {"map": slug, "file": name})
    db.commit()
    return FileResponse(path, media_type=media_type(name), filename=name)
