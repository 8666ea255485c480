"""Zip upload of a series, for tools without DICOMweb: same checks and intake as STOW-RS."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from digital_contrast.api.deps import Caller, DbSession, Service
from digital_contrast.api.schemas import UploadFailure, UploadResult
from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.safe_zip import ZipLimits, iter_zip_members
from digital_contrast.intake import FailedInstance, ParsedInstance, ingest, validate_instance

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


def _check_members(archive: bytes, limits: ZipLimits
                   ) -> tuple[list[tuple[str, ParsedInstance]], list[UploadFailure]]:
    checked, failed = [], []
    for name, data in iter_zip_members(archive, limits):  # ZIP_* refusals before storing
        outcome = validate_instance(data)
        if isinstance(outcome, FailedInstance):
            failed.append(UploadFailure(member=name, reason=int(outcome.failure_reason),
                                        detail=outcome.detail, code=outcome.code))
        else:
            checked.append((name, outcome))
    return checked, failed


@router.post("", status_code=201, summary="Upload a zip of DICOM files",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/zip": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload(request: Request, state: Service, db: DbSession,
                 caller: Caller) -> UploadResult:
    """Body: the zip itself (`Content-Type: application/zip`). Every entry is checked before
    anything is decompressed (size, count, ratio, paths); DICOM members are stored like STOW-RS
    instances, other members are listed as failed. Nothing is stored when no member is DICOM."""
    settings = state.settings
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/zip":
        raise DigitalContrastError("UPLOAD_MEDIA_TYPE", "send the zip as application/zip")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_upload_bytes:
            raise DigitalContrastError("UPLOAD_TOO_LARGE", f"the upload exceeds "
                                       f"{settings.max_upload_bytes} bytes (DC_MAX_UPLOAD_BYTES)")
    limits = ZipLimits(max_total_bytes=settings.max_upload_bytes,
                       max_members=settings.max_upload_members)
    # Decompressing, parsing DICOM and writing are blocking work: off the event loop.
    checked, failed = await run_in_threadpool(_check_members, bytes(body), limits)
    if not checked:
        raise DigitalContrastError("UPLOAD_NO_DICOM", "the zip holds no acceptable DICOM file")
    names = {id(instance): name for name, instance in checked}
    result = await run_in_threadpool(ingest, state.instances, db, caller.site, caller.actor,
                                     [instance for _, instance in checked], "zip")
    failed += [UploadFailure(member=names[id(instance)], reason=int(reason), detail=detail)
               for instance, reason, detail in result.failed]
    return UploadResult(stored=len(result.stored), series_uids=result.series_uids,
                        failed=failed)
