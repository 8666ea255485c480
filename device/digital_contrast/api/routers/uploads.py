"""Zip upload of a series, for tools without DICOMweb: same checks and intake as STOW-RS."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from digital_contrast.api.deps import Caller, DbSession, Service
from digital_contrast.api.schemas import UploadFailure, UploadResult
from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.safe_zip import ZipLimits, iter_zip_members
from digital_contrast.intake import FailedInstance, ParsedInstance, ingest, validate_instance

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])
SPOOL = "incoming"  # uploads being received, in the data folder (patient data)


class _Members:
    """The zip's members checked one at a time as intake draws them (one member's bytes in
    memory); the ones that are not acceptable DICOM are listed, and a zip with none refused."""

    def __init__(self, archive: Path, limits: ZipLimits) -> None:
        self.archive, self.limits = archive, limits
        self.failed: list[UploadFailure] = []
        self.names: dict[str, str] = {}  # SOP Instance UID -> member name

    def __iter__(self) -> Iterator[ParsedInstance]:
        for name, data in iter_zip_members(self.archive, self.limits):  # ZIP_* refusals
            outcome = validate_instance(data)
            if isinstance(outcome, FailedInstance):
                self.failed.append(UploadFailure(member=name,
                                                 reason=int(outcome.failure_reason),
                                                 detail=outcome.detail, code=outcome.code))
            else:
                self.names[outcome.sop_instance_uid] = name
                yield outcome
        if not self.names:  # raised inside intake: whatever was written is removed
            raise DigitalContrastError("UPLOAD_NO_DICOM",
                                       "the zip holds no acceptable DICOM file")


async def _spool(request: Request, path: Path, limit: int) -> None:
    """The body to a private file in the data folder, not to memory."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as spool:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise DigitalContrastError("UPLOAD_TOO_LARGE", f"the upload exceeds {limit} "
                                           "bytes (DC_MAX_UPLOAD_BYTES)")
            spool.write(chunk)


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
    folder = settings.data_dir / SPOOL
    folder.mkdir(mode=0o700, exist_ok=True)
    spooled = folder / f"{uuid.uuid4().hex}.zip"
    with state.instances.journal.intent() as intent:  # a killed upload leaves no spool
        intent.add(spooled)
        try:
            await _spool(request, spooled, settings.max_upload_bytes)
            members = _Members(spooled, ZipLimits(max_total_bytes=settings.max_upload_bytes,
                                                  max_members=settings.max_upload_members))
            # Decompressing, parsing DICOM and writing are blocking work: off the event loop.
            result = await run_in_threadpool(ingest, state.instances, db, caller.site,
                                             caller.actor, members, "zip")
        finally:
            spooled.unlink(missing_ok=True)
    failed = members.failed + [
        UploadFailure(member=members.names[instance.sop_instance_uid], reason=int(reason),
                      detail=detail) for instance, reason, detail in result.failed]
    return UploadResult(stored=len(result.stored), series_uids=result.series_uids,
                        failed=failed)
