"""Records for regulatory readers: the audit trail of the site, the model registry, and the
records on disk (validation records, QMS documents, release records), read-only."""

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse

from digital_contrast.api import records_files as files
from digital_contrast.api.deps import Caller, DbSession, Service
from digital_contrast.api.problems import MEDIA_TYPE as PROBLEM
from digital_contrast.api.schemas import (
    QmsDocument,
    ReleaseManifest,
    ReleaseSummary,
    ValidationRecordView,
)
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.store.audit import list_audit
from digital_contrast.usecases import use_cases

router = APIRouter(prefix="/v1", tags=["records"])

# Downloads are attachments, never sniffed, and an HTML record opened from the API cannot run
# script with the reader's dashboard session.
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
NOT_FOUND = {"description": "RECORD_NOT_FOUND: no such record or file (also any name that "
                            "would lead outside its folder)",
             "content": {PROBLEM: {}}}
TAMPERED = {"description": "RECORD_TAMPERED: the file differs from the SHA-256 in the manifest "
                           "or is missing; RECORD_UNREADABLE: the manifest cannot be read",
            "content": {PROBLEM: {}}}
FILE_TYPES = {"application/json": {}, "text/html": {}, "application/pdf": {}, "text/csv": {},
              "text/markdown": {}}


def record_roots(state: Service) -> files.RecordRoots:
    """Where the records lie (a dependency, so tests can point it elsewhere)."""
    return files.RecordRoots.of(state.settings)


Roots = Annotated[files.RecordRoots, Depends(record_roots)]


def _download(path: Path, name: str) -> FileResponse:
    return FileResponse(path, media_type=files.media_type(name), filename=name,
                        headers=DOWNLOAD_HEADERS)


@router.get("/audit", summary="Audit events of this site")
def audit(db: DbSession, caller: Caller,
          since: Annotated[datetime | None, Query()] = None,
          limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> list[dict[str, Any]]:
    return [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action,
             "object_type": e.object_type, "object_id": e.object_id, "outcome": e.outcome,
             "detail": e.detail, "hash": e.hash}
            for e in list_audit(db, caller.site, since=since, limit=limit)]


@router.get("/models", summary="Registered model versions per use case")
def models(state: Service, caller: Caller) -> dict[str, list[dict[str, Any]]]:
    registry = ModelRegistry(state.settings.mlflow_uri)
    return {case.id: [{"version": v.version, "model_version": v.model_version,
                       "bundle_sha256": v.sha256, "aliases": list(v.aliases),
                       "validation_passed": v.validation_passed}
                      for v in registry.versions(case.model_name, missing_ok=True)]
            for case in use_cases().values()}


@router.get("/records/validation", summary="Validation records: validate runs, filed "
            "candidates and released models")
def validation_records(roots: Roots) -> list[ValidationRecordView]:
    return files.list_validation_records(roots)


@router.get("/records/validation/{record_id}/{file_name}",
            summary="Download a file of a validation record", response_class=FileResponse,
            responses={200: {"content": FILE_TYPES, "description": "The file (attachment)"},
                       404: NOT_FOUND})
def validation_record_file(
        roots: Roots,
        record_id: Annotated[str, PathParam(description="The record's id, as listed",
                                            examples=["filed:aaa-cta:1.0.0"])],
        file_name: Annotated[str, PathParam(
            description="validation_record.json, run.json, report.html, report.pdf, cases.csv "
            "(runs); validation_record.json, MODEL_CARD.md, quality_report.json (models)",
            examples=["validation_record.json"])]) -> FileResponse:
    return _download(files.validation_file(roots, record_id, file_name), file_name)


@router.get("/records/qms", summary="Generated QMS documents (trace matrix, risk report, SOUP "
            "list, SBOM, design)")
def qms_documents(roots: Roots) -> list[QmsDocument]:
    return files.list_qms_documents(roots)


@router.get("/records/qms/{file_name}", summary="Download a QMS document",
            response_class=FileResponse,
            responses={200: {"content": FILE_TYPES, "description": "The document (attachment)"},
                       404: NOT_FOUND})
def qms_document(roots: Roots, file_name: Annotated[str, PathParam(examples=["trace.html"])]
                 ) -> FileResponse:
    return _download(files.qms_file(roots, file_name), file_name)


@router.get("/records/releases", summary="Release records, newest version first")
def releases(roots: Roots) -> list[ReleaseSummary]:
    return files.list_releases(roots)


@router.get("/records/releases/{version}", summary="The manifest of a release record",
            responses={404: NOT_FOUND, 409: TAMPERED})
def release(roots: Roots, version: Annotated[str, PathParam(examples=["1.0.0"])]
            ) -> ReleaseManifest:
    return files.release_manifest(roots, version)


@router.get("/records/releases/{version}/files/{path:path}",
            summary="Download a file of a release record, verified against its manifest",
            response_class=StreamingResponse,
            responses={200: {"content": {**FILE_TYPES, "application/zip": {}},
                             "description": "The file, served only when the manifest lists it "
                                            "and its SHA-256 still matches (attachment)"},
                       404: NOT_FOUND, 409: TAMPERED})
def release_file(roots: Roots, version: Annotated[str, PathParam(examples=["1.0.0"])],
                 path: Annotated[str, PathParam(description="A path listed in the manifest's "
                                                "files", examples=["trace/trace.html"])]
                 ) -> StreamingResponse:
    verified = files.open_release_file(roots, version, path)
    quoted = quote(verified.name)
    disposition = (f'attachment; filename="{verified.name}"' if quoted == verified.name
                   else f"attachment; filename*=utf-8''{quoted}")
    return StreamingResponse(verified.chunks(), media_type=files.media_type(verified.name),
                             headers={**DOWNLOAD_HEADERS, "Content-Length": str(verified.size),
                                      "Content-Disposition": disposition})
