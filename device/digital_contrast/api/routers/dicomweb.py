"""DICOMweb subset (PS3.18): STOW-RS; QIDO-RS for studies, series (of a study or of all) and
instances; WADO-RS for series, instances, metadata (study, series, instance) and frames, what
a viewer such as OHIF reads. Everything is scoped to the caller's site."""

import asyncio
import contextlib
import contextvars
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from queue import Full, Queue
from typing import Annotated, Any

import pydicom
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse

from digital_contrast.api.deps import Caller, DbSession, Service
from digital_contrast.api.dicomweb import (
    DICOM_JSON,
    MultipartRelatedParser,
    StowRequest,
    build_multipart_related,
    parse_qido_query,
    series_result,
    study_result,
)
from digital_contrast.api.dicomweb.errors import DicomWebError, DicomWebErrorCode
from digital_contrast.api.dicomweb.metadata import (
    FRAME_SYNTAX,
    frame_bytes,
    instance_result,
    metadata_json,
    parse_frame_list,
    with_included,
)
from digital_contrast.api.dicomweb.multipart import Part
from digital_contrast.api.dicomweb.qido import DateRangeMatch, QidoQuery
from digital_contrast.api.dicomweb.urls import instance_url, require_uid, series_url, study_url
from digital_contrast.errors import DigitalContrastError
from digital_contrast.intake import IntakeAborted, ingest
from digital_contrast.store.studies import (
    first_instance,
    list_instances,
    list_series,
    list_studies,
    series_instance_counts,
    study_stats,
)

router = APIRouter(prefix="/dicomweb", tags=["DICOMweb"])
UID = Annotated[str, Path(max_length=64, examples=["1.2.826.0.1.3680043.8.498.1"])]
STOW_RESPONSE = {"description": "Store Instances Response (PS3.18 10.5.3), DICOM JSON",
                 "content": {DICOM_JSON: {}}}
MULTIPART = {"description": "multipart/related; type=\"application/dicom\"",
             "content": {"multipart/related": {}}}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + router.prefix


_END = object()
# Each STOW request being received holds one reader thread, which frames the body's parts,
# checks and stores them: its own pool, so that many slow uploads never starve the thread
# pool of the other routes. The event loop hands it the body in batches of about
# _BATCH_BYTES (a thread hand-off per socket read cost more than the framing); past
# _BUFFERED_BATCHES of them it stops reading the socket (back-pressure).
_READERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="stow-reader")
_BATCH_BYTES = 1 << 20
_BUFFERED_BATCHES = 4


async def _hand_over(queue: "Queue[object]", item: object, reader: "asyncio.Future[object]"
                     ) -> None:
    """Give the reader the next batch, waiting while it is behind: the socket is then not
    read, and TCP slows the client down."""
    while True:
        try:
            queue.put_nowait(item)
            return
        except Full:
            if reader.done():  # the reader stopped: its error ends the request
                await reader
                return
            await asyncio.sleep(0.002)


def _parts_of(parser: MultipartRelatedParser, queue: "Queue[object]") -> Iterator[Part]:
    """Parts framed as the request body delivers its chunks; a body or framing error raises
    here, in the reader."""
    while (item := queue.get()) is not _END:
        if isinstance(item, BaseException):
            raise item
        for chunk in item:  # type: ignore[attr-defined]
            yield from parser.feed(chunk)
    yield from parser.close()


async def _stow(request: Request, state: Service, db: DbSession, caller: Caller,
                study: str | None) -> JSONResponse:
    limit = state.settings.max_upload_bytes
    stow = StowRequest(_base(request), study_instance_uid=study)
    parser = MultipartRelatedParser(request.headers.get("content-type", ""))
    # Parts are checked and written (in the reader thread) while the body is still arriving;
    # rows are recorded only once the whole body has been read and framed correctly, so a
    # body that fails half-way stores nothing (its files stay invisible and are journaled
    # for removal by the purge).
    queue: Queue[object] = Queue(maxsize=_BUFFERED_BATCHES)
    checked = (instance for part in _parts_of(parser, queue)
               if (instance := stow.check(part)) is not None)
    # In the request's context: its log lines keep the request id (logs.REQUEST_ID).
    intake = asyncio.get_running_loop().run_in_executor(
        _READERS, contextvars.copy_context().run, ingest, state.instances, db, caller.site,
        caller.actor, checked, "stow-rs")
    received = 0
    batch: list[bytes] = []
    batched = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise DigitalContrastError(
                    "UPLOAD_TOO_LARGE", f"the request exceeds {limit} bytes (DC_MAX_UPLOAD_BYTES)")
            batch.append(chunk)
            batched += len(chunk)
            if batched >= _BATCH_BYTES:
                await _hand_over(queue, batch, intake)
                batch, batched = [], 0
        await _hand_over(queue, batch, intake)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await _hand_over(queue, exc if isinstance(exc, Exception)
                             else IntakeAborted("request cancelled"), intake)
            await intake  # the reader stops before any row is written
        raise
    await _hand_over(queue, _END, intake)
    outcome = await intake  # a framing error found at the end raises here
    for instance in outcome.stored:
        stow.stored(instance)
    for instance, reason, detail in outcome.failed:
        stow.failed(instance, reason, detail)
    return JSONResponse(stow.response(), status_code=stow.status, media_type=DICOM_JSON)


@router.post("/studies", summary="STOW-RS: store instances", responses={200: STOW_RESPONSE})
async def store_instances(request: Request, state: Service, db: DbSession,
                          caller: Caller) -> JSONResponse:
    """Body: `multipart/related; type="application/dicom"`, one DICOM file per part. The
    response lists every stored instance (ReferencedSOPSequence) and every refused one
    (FailedSOPSequence with its FailureReason); 200 all stored, 202 some, 409 none."""
    return await _stow(request, state, db, caller, None)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study",
             responses={200: STOW_RESPONSE})
async def store_study_instances(request: Request, study: UID, state: Service, db: DbSession,
                                caller: Caller) -> JSONResponse:
    return await _stow(request, state, db, caller, require_uid(study, "Study Instance UID"))


def _date_filter(match: Any) -> str | None:
    if not isinstance(match, DateRangeMatch):
        return None

    def fmt(day: date | None) -> str:
        return day.strftime("%Y%m%d") if day else ""

    if match.start == match.end:
        return fmt(match.start)
    return f"{fmt(match.start)}-{fmt(match.end)}"


def _pattern(query: QidoQuery, key: str) -> Any:
    match = query.filters.get(key)
    return getattr(match, "pattern", None) or getattr(match, "uids", None) or \
        getattr(match, "codes", None)


def _header_of(state: Service, instance: Any) -> pydicom.Dataset:
    """A stored instance's data set without pixels, its file's hash checked on the way."""
    return pydicom.dcmread(io.BytesIO(state.instances.read(instance.file_path,
                                                           instance.sha256)),
                           stop_before_pixels=True)


def _included(state: Service, db: DbSession, query: QidoQuery, result: dict[str, Any], *,
              study_id: int | None = None, series_id: int | None = None) -> dict[str, Any]:
    """includefield: what the index does not hold is read from the first stored instance."""
    if not (query.include_fields or query.include_all):
        return result
    first = first_instance(db, study_id=study_id, series_id=series_id)
    return with_included(result, _header_of(state, first) if first else None,
                         query.include_fields, query.include_all)


@router.get("/studies", summary="QIDO-RS: search studies",
            responses={200: {"content": {DICOM_JSON: {}}}})
def search_studies(request: Request, state: Service, db: DbSession,
                   caller: Caller) -> JSONResponse:
    query = parse_qido_query(request.query_params, "study")
    studies = list_studies(
        db, caller.site, patient_id=_pattern(query, "PatientID"),
        study_instance_uid=_pattern(query, "StudyInstanceUID"),
        study_date=_date_filter(query.filters.get("StudyDate")),
        accession_number=_pattern(query, "AccessionNumber"),
        modality=_pattern(query, "ModalitiesInStudy"), limit=query.limit, offset=query.offset)
    stats = study_stats(db, [s.id for s in studies])
    body = [_included(state, db, query, study_result(
        study_instance_uid=s.study_instance_uid, patient_id=s.patient_id,
        patient_name=s.patient_name, study_date=s.study_date,
        accession_number=s.accession_number, study_description=s.study_description,
        modalities_in_study=stats[s.id].modalities,
        number_of_study_related_series=stats[s.id].series_count,
        number_of_study_related_instances=stats[s.id].instance_count,
        retrieve_url=study_url(_base(request), s.study_instance_uid)), study_id=s.id)
        for s in studies]
    headers = {"Warning": ", ".join(f'299 digital-contrast "{w}"' for w in query.warnings)
               } if query.warnings else {}
    return JSONResponse(body, media_type=DICOM_JSON, headers=headers)


def _series_search(request: Request, state: Service, db: DbSession, caller: Caller,
                   study: str | None) -> JSONResponse:
    query = parse_qido_query(request.query_params, "series")
    series = list_series(db, caller.site, study or _pattern(query, "StudyInstanceUID"),
                         series_instance_uid=_pattern(query, "SeriesInstanceUID"),
                         modality=_pattern(query, "Modality"),
                         patient_id=_pattern(query, "PatientID"))
    window = series[query.offset:query.offset + query.limit]
    counts = series_instance_counts(db, [s.id for s in window])
    body = [_included(state, db, query, series_result(
        study_instance_uid=s.study.study_instance_uid,
        series_instance_uid=s.series_instance_uid,
        modality=s.modality or "OT", series_number=s.series_number,
        series_description=s.series_description,
        number_of_series_related_instances=counts[s.id],
        retrieve_url=series_url(_base(request), s.study.study_instance_uid,
                                s.series_instance_uid)), series_id=s.id)
        for s in window]
    return JSONResponse(body, media_type=DICOM_JSON)


@router.get("/studies/{study}/series", summary="QIDO-RS: search the series of a study",
            responses={200: {"content": {DICOM_JSON: {}}}})
def search_series(request: Request, study: UID, state: Service, db: DbSession,
                  caller: Caller) -> JSONResponse:
    return _series_search(request, state, db, caller, require_uid(study, "Study Instance UID"))


@router.get("/series", summary="QIDO-RS: search series of every study",
            responses={200: {"content": {DICOM_JSON: {}}}})
def search_all_series(request: Request, state: Service, db: DbSession,
                      caller: Caller) -> JSONResponse:
    """Study keys (StudyInstanceUID, PatientID) match too; each result names its study."""
    return _series_search(request, state, db, caller, None)


def _headers_of(state: Service, instances: list) -> list[pydicom.Dataset]:
    if not instances:
        raise DigitalContrastError("NOT_FOUND", "no such study, series or instance at this site")
    return [_header_of(state, i) for i in instances]


@router.get("/studies/{study}/series/{series}/instances",
            summary="QIDO-RS: search the instances of a series",
            responses={200: {"content": {DICOM_JSON: {}}}})
def search_instances(request: Request, study: UID, series: UID, state: Service,
                     db: DbSession, caller: Caller) -> JSONResponse:
    query = parse_qido_query(request.query_params, "instance")
    rows = list_instances(db, caller.site, require_uid(study, "Study Instance UID"),
                          require_uid(series, "Series Instance UID"),
                          sop_instance_uid=_pattern(query, "SOPInstanceUID"))
    window = rows[query.offset:query.offset + query.limit]
    body = [with_included(instance_result(header, instance_url(
        _base(request), study, series, str(header.SOPInstanceUID))), header,
        query.include_fields, query.include_all)
        for header in (_headers_of(state, window) if window else [])]
    return JSONResponse(body, media_type=DICOM_JSON)


def _metadata(state: Service, instances: list) -> JSONResponse:
    return JSONResponse([metadata_json(h) for h in _headers_of(state, instances)],
                        media_type=DICOM_JSON)


@router.get("/studies/{study}/metadata", summary="WADO-RS: metadata of a study",
            responses={200: {"content": {DICOM_JSON: {}}}})
def study_metadata(study: UID, state: Service, db: DbSession, caller: Caller) -> JSONResponse:
    study = require_uid(study, "Study Instance UID")
    instances = [i for s in list_series(db, caller.site, study)
                 for i in list_instances(db, caller.site, study, s.series_instance_uid)]
    return _metadata(state, instances)


@router.get("/studies/{study}/series/{series}/metadata", summary="WADO-RS: metadata of a "
            "series", responses={200: {"content": {DICOM_JSON: {}}}})
def series_metadata(study: UID, series: UID, state: Service, db: DbSession,
                    caller: Caller) -> JSONResponse:
    return _metadata(state, list_instances(db, caller.site,
                                           require_uid(study, "Study Instance UID"),
                                           require_uid(series, "Series Instance UID")))


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata",
            summary="WADO-RS: metadata of an instance",
            responses={200: {"content": {DICOM_JSON: {}}}})
def instance_metadata(study: UID, series: UID, instance: UID, state: Service, db: DbSession,
                      caller: Caller) -> JSONResponse:
    return _metadata(state, list_instances(
        db, caller.site, require_uid(study, "Study Instance UID"),
        require_uid(series, "Series Instance UID"),
        sop_instance_uid=require_uid(instance, "SOP Instance UID")))


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            summary="WADO-RS: frames of an instance (native pixel bytes)",
            response_class=StreamingResponse, responses={200: {
                "description": "multipart/related; type=\"application/octet-stream\"",
                "content": {"multipart/related": {}}}})
def retrieve_frames(request: Request, study: UID, series: UID, instance: UID,
                    frames: Annotated[str, Path(max_length=1000, examples=["1", "1,2"])],
                    state: Service, db: DbSession, caller: Caller) -> StreamingResponse:
    """Each frame's pixels, uncompressed little endian (decoded first when stored compressed),
    one part per frame."""
    accept = request.headers.get("accept", "*/*")
    if not any(t in accept for t in ("*/*", "multipart/related", "application/octet-stream")):
        raise DicomWebError(DicomWebErrorCode.NOT_ACCEPTABLE,
                            "frames are sent as multipart/related; "
                            "type=\"application/octet-stream\"")
    numbers = parse_frame_list(frames)
    rows = list_instances(db, caller.site, require_uid(study, "Study Instance UID"),
                          require_uid(series, "Series Instance UID"),
                          sop_instance_uid=require_uid(instance, "SOP Instance UID"))
    if not rows:
        raise DigitalContrastError("NOT_FOUND", "no such instance at this site")
    ds = pydicom.dcmread(io.BytesIO(state.instances.read(rows[0].file_path, rows[0].sha256)))
    body, content_type = build_multipart_related(frame_bytes(ds, numbers),
                                                 "application/octet-stream",
                                                 transfer_syntax=FRAME_SYNTAX)
    return StreamingResponse(body, media_type=content_type)


def _multipart(state: Service, instances: list) -> StreamingResponse:
    if not instances:
        raise DigitalContrastError("NOT_FOUND", "no such series or instance at this site")
    # Each file is read once, lazily, and its hash checked before its bytes are sent: a corrupt
    # file ends the stream (INSTANCE_CORRUPT) rather than reaching the client.
    body, content_type = build_multipart_related(
        state.instances.read(i.file_path, i.sha256) for i in instances)
    return StreamingResponse(body, media_type=content_type)


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: retrieve a series",
            response_class=StreamingResponse, responses={200: MULTIPART})
def retrieve_series(study: UID, series: UID, state: Service, db: DbSession,
                    caller: Caller) -> StreamingResponse:
    instances = list_instances(db, caller.site, require_uid(study, "Study Instance UID"),
                               require_uid(series, "Series Instance UID"))
    return _multipart(state, instances)


@router.get("/studies/{study}/series/{series}/instances/{instance}",
            summary="WADO-RS: retrieve an instance", response_class=StreamingResponse,
            responses={200: MULTIPART})
def retrieve_instance(study: UID, series: UID, instance: UID, state: Service, db: DbSession,
                      caller: Caller) -> StreamingResponse:
    instances = list_instances(db, caller.site, require_uid(study, "Study Instance UID"),
                               require_uid(series, "Series Instance UID"),
                               sop_instance_uid=require_uid(instance, "SOP Instance UID"))
    return _multipart(state, instances)
