"""Records on disk for regulatory readers, read-only: validation runs and filed or released
validation records, the generated QMS documents and the release records.

Every name a request brings is checked against a fixed shape (or a manifest) before the file
system is touched, and every path is resolved, symlinks followed, and must stay inside its own
record folder; anything else is `RECORD_NOT_FOUND`, exactly like a record that does not exist,
so a request learns nothing about the disk around the records.
"""

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from packaging.version import InvalidVersion, Version
from pydantic import ValidationError

from digital_contrast.api.schemas import (
    CriterionView,
    QmsDocument,
    RecordFile,
    ReleaseManifest,
    ReleaseSummary,
    ValidationRecordView,
)
from digital_contrast.config import REPO_ROOT, Settings
from digital_contrast.errors import DigitalContrastError
from digital_contrast.keys.errors import KeysError
from digital_contrast.keys.signing import TrustedKeys, trusted_keys
from digital_contrast.model.validation_record import (
    SignedRecord,
    ValidationRecord,
    unverified_record,
)

log = logging.getLogger(__name__)

PREFIX = "/v1/records"
RECORD = "validation_record.json"
MANIFEST = "manifest.json"
# Committed evidence of evaluated model candidates (the release package files them there).
FILED_DIR = REPO_ROOT / "validation" / "reports"
# The files a record folder may serve: anything else in it (bundles, weights) is not a record.
RUN_FILES = (RECORD, "run.json", "report.html", "report.pdf", "cases.csv")
MODEL_FILES = (RECORD, "MODEL_CARD.md", "quality_report.json")

RUN_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*-\d{8}T\d{6}Z-[0-9a-f]{12}$")
USE_CASE = re.compile(r"^[a-z][a-z0-9-]{2,40}$")  # as usecases.schema
MODEL_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # no hidden files, no slashes

MEDIA_TYPES = {".json": "application/json", ".html": "text/html", ".pdf": "application/pdf",
               ".csv": "text/csv", ".md": "text/markdown", ".txt": "text/plain",
               ".xml": "application/xml", ".whl": "application/zip"}
CHUNK = 1 << 20


class RecordFileError(DigitalContrastError):
    """RECORD_NOT_FOUND (404), RECORD_TAMPERED and RECORD_UNREADABLE (409)."""


class Source(StrEnum):
    RUN = "run"  # a `digital-contrast validate` run under <build_dir>/validation/
    FILED = "filed"  # an evaluated candidate filed under validation/reports/models/
    RELEASED = "released"  # a released reference model under <releases_dir>/models/


@dataclass(frozen=True)
class RecordRoots:
    build_dir: Path
    releases_dir: Path
    filed_dir: Path = FILED_DIR

    @classmethod
    def of(cls, settings: Settings) -> "RecordRoots":
        return cls(build_dir=settings.build_dir, releases_dir=settings.releases_dir)

    @property
    def runs(self) -> Path:
        return self.build_dir / "validation"

    @property
    def qms(self) -> Path:
        return self.build_dir / "qms"

    def models(self, source: Source) -> Path:
        return (self.filed_dir if source is Source.FILED else self.releases_dir) / "models"


def not_found(detail: str) -> RecordFileError:
    return RecordFileError("RECORD_NOT_FOUND", detail)


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def _plain(parts: tuple[str, ...] | list[str]) -> bool:
    return bool(parts) and all(p and p not in (".", "..") and not any(c in p for c in "/\\\0")
                               for p in parts)


def contained(root: Path, *parts: str) -> Path | None:
    """`root/parts` with symlinks resolved, when it exists and lies strictly inside `root`
    (itself resolved); None otherwise. Parts must be plain names: no separators, `.` or `..`."""
    if not _plain(parts):
        return None
    try:
        base = root.resolve(strict=True)
        path = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a bad name
        return None
    return path if path != base and path.is_relative_to(base) else None


def _file(folder: Path, *parts: str) -> Path | None:
    path = contained(folder, *parts)
    return path if path is not None and path.is_file() else None


def _folders(root: Path) -> Iterator[tuple[str, Path]]:
    """Sub-folders of `root` by name, hidden ones (incomplete builds) and escapes left out."""
    try:
        names = sorted(entry.name for entry in os.scandir(root))
    except OSError:  # no such folder yet: nothing recorded
        return
    for name in names:
        if not name.startswith("."):
            folder = contained(root, name)
            if folder is not None and folder.is_dir():
                yield name, folder


def sha256_of(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


# --- validation records ---------------------------------------------------------------------

def _record_folders(roots: RecordRoots) -> Iterator[tuple[str, Source, Path]]:
    for run_id, folder in _folders(roots.runs):
        if RUN_ID.fullmatch(run_id):
            yield f"{Source.RUN}:{run_id}", Source.RUN, folder
    for source in (Source.FILED, Source.RELEASED):
        for use_case, case_folder in _folders(roots.models(source)):
            if USE_CASE.fullmatch(use_case):
                for version, folder in _folders(case_folder):
                    if MODEL_VERSION.fullmatch(version):
                        yield f"{source}:{use_case}:{version}", source, folder


def _record_folder(roots: RecordRoots, record_id: str) -> tuple[Source, Path]:
    """The folder a record id names: `run:<run-id>` or `filed|released:<use case>:<version>`."""
    source, _, rest = record_id.partition(":")
    folder = None
    if source == Source.RUN and RUN_ID.fullmatch(rest):
        folder = contained(roots.runs, rest)
    elif source in (Source.FILED, Source.RELEASED):
        use_case, _, version = rest.partition(":")
        if USE_CASE.fullmatch(use_case) and MODEL_VERSION.fullmatch(version):
            folder = contained(roots.models(Source(source)), use_case, version)
    if folder is None or not folder.is_dir():
        raise not_found("no validation record with that id")
    return Source(source), folder


def _files_of(record_id: str, source: Source, folder: Path) -> list[RecordFile]:
    files = []
    for name in RUN_FILES if source is Source.RUN else MODEL_FILES:
        path = _file(folder, name)
        if path is not None:
            files.append(RecordFile(name=name, media_type=media_type(name),
                                    size=path.stat().st_size,
                                    href=f"{PREFIX}/validation/{record_id}/{name}"))
    return files


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


_SIGNATURE_STATES = {"RECORD_UNSIGNED": "unsigned", "SIGNER_UNTRUSTED": "untrusted"}


def _read_record(path: Path, trust: TrustedKeys) -> tuple[ValidationRecord, str, str | None]:
    """(record, signature state, signer key id): a record is listed whatever its signature,
    and the listing says which ones are verified."""
    try:
        signed = SignedRecord.verify(path.read_bytes(), trust, path.name)
    except KeysError as exc:
        return unverified_record(path), _SIGNATURE_STATES.get(exc.code, "invalid"), None
    return signed.record, "verified", signed.key_id


def _view(record_id: str, source: Source, folder: Path, record: ValidationRecord,
          signature: str, signed_by: str | None) -> ValidationRecordView:
    return ValidationRecordView(
        signature=signature, signed_by=signed_by,
        id=record_id, source=source.value, use_case=record.use_case,
        model_name=record.model_name, model_version=record.model_version,
        bundle_sha256=record.bundle_sha256, protocol=record.protocol,
        protocol_sha256=record.protocol_sha256, dataset=record.dataset, passed=record.passed,
        criteria=[CriterionView(metric=c.metric, op=c.op, threshold=c.threshold,
                                value=_finite(c.value), passed=c.passed)
                  for c in record.criteria],
        evidence=record.evidence, explain_calibrated=record.explain is not None,
        software_version=record.software_version, created=record.created,
        files=_files_of(record_id, source, folder))


def list_validation_records(roots: RecordRoots) -> list[ValidationRecordView]:
    """Every readable validation record, newest first; a folder without one is skipped (a run
    still being written, or one that failed before its record)."""
    views, trust = [], trusted_keys()
    for record_id, source, folder in _record_folders(roots):
        path = _file(folder, RECORD)
        if path is None:
            continue
        try:
            record, signature, signed_by = _read_record(path, trust)
        except Exception as exc:  # whatever is wrong with one file, the others are listed
            log.warning("validation record %s skipped: %s", record_id, type(exc).__name__)
            continue
        views.append(_view(record_id, source, folder, record, signature, signed_by))
    return sorted(views, key=lambda v: (v.created, v.id), reverse=True)


def validation_file(roots: RecordRoots, record_id: str, file_name: str) -> Path:
    source, folder = _record_folder(roots, record_id)
    allowed = RUN_FILES if source is Source.RUN else MODEL_FILES
    path = _file(folder, file_name) if file_name in allowed else None
    if path is None:
        raise not_found("this validation record has no file of that name")
    return path


# --- QMS documents --------------------------------------------------------------------------

def list_qms_documents(roots: RecordRoots) -> list[QmsDocument]:
    try:
        names = sorted(entry.name for entry in os.scandir(roots.qms))
    except OSError:  # not generated yet
        return []
    documents = []
    for name in names:
        path = _file(roots.qms, name) if FILE_NAME.fullmatch(name) else None
        if path is None:
            continue
        try:
            with path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                digest = sha256_of(handle)
        except OSError as exc:  # e.g. unreadable permissions: left out, the others listed
            log.warning("QMS document %s left out: %s", name, type(exc).__name__)
            continue
        documents.append(QmsDocument(
            name=name, media_type=media_type(name), size=stat.st_size, sha256=digest,
            modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            href=f"{PREFIX}/qms/{name}"))
    return documents


def qms_file(roots: RecordRoots, file_name: str) -> Path:
    path = _file(roots.qms, file_name) if FILE_NAME.fullmatch(file_name) else None
    if path is None:
        raise not_found("no QMS document of that name")
    return path


# --- release records ------------------------------------------------------------------------

def _is_version(name: str) -> bool:
    """A PEP 440 version in normal form: the only folder names `release build` writes (so
    `models/` and anything else beside the releases is not one)."""
    try:
        return str(Version(name)) == name
    except InvalidVersion:
        return False


def _release_folder(roots: RecordRoots, version: str) -> Path:
    folder = contained(roots.releases_dir, version) if _is_version(version) else None
    if folder is None or _file(folder, MANIFEST) is None:
        raise not_found("no release record of that version")
    return folder


def _manifest(folder: Path, version: str) -> ReleaseManifest:
    path = _file(folder, MANIFEST)
    try:
        if path is None:
            raise OSError("manifest missing")
        manifest = ReleaseManifest.model_validate(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise RecordFileError("RECORD_UNREADABLE", f"the manifest of release {version} cannot be "
                              f"read ({type(exc).__name__}); the record cannot be verified"
                              ) from None
    if manifest.version != version:  # a renamed folder is not the record that was built
        raise RecordFileError("RECORD_UNREADABLE", f"the folder {version} holds the manifest of "
                              f"release {manifest.version}")
    return manifest


def release_manifest(roots: RecordRoots, version: str) -> ReleaseManifest:
    return _manifest(_release_folder(roots, version), version)


def list_releases(roots: RecordRoots) -> list[ReleaseSummary]:
    """Complete release records, newest version first; a folder whose manifest cannot be read
    is left out here (logged) and refused with RECORD_UNREADABLE when asked for directly."""
    found = []
    for version, folder in _folders(roots.releases_dir):
        if not _is_version(version) or _file(folder, MANIFEST) is None:
            continue
        try:
            manifest = _manifest(folder, version)
        except RecordFileError:
            log.warning("release %s left out of the listing: unreadable manifest", version)
            continue
        found.append((Version(version), ReleaseSummary(
            version=version, product=manifest.product,
            package_version=manifest.package_version, git_commit=manifest.git_commit,
            built_at=manifest.built_at, evidence_statement=manifest.evidence_statement,
            known_anomalies=manifest.known_anomalies, models=manifest.models,
            file_count=len(manifest.files), manifest_href=f"{PREFIX}/releases/{version}")))
    return [summary for _, summary in sorted(found, key=lambda pair: pair[0], reverse=True)]


@dataclass
class VerifiedFile:
    """An open file whose bytes matched the manifest; stream from this handle, which keeps
    those bytes even if the path is replaced after the check."""

    handle: BinaryIO
    name: str
    size: int

    def chunks(self) -> Iterator[bytes]:
        with self.handle:
            self.handle.seek(0)
            while block := self.handle.read(CHUNK):
                yield block


def open_release_file(roots: RecordRoots, version: str, relative: str) -> VerifiedFile:
    """A file of a release record, only when the manifest lists it and its SHA-256 still
    matches: RECORD_NOT_FOUND when not listed or leading outside the folder, RECORD_TAMPERED
    when it differs from the manifest or is gone."""
    folder = _release_folder(roots, version)
    expected = _manifest(folder, version).files.get(relative)
    parts = relative.split("/")
    if expected is None or not _plain(parts):
        raise not_found("this release record has no file of that name")
    path = contained(folder, *parts)
    if path is None:
        if os.path.lexists(folder.joinpath(*parts)):  # there, but leading out of the folder
            raise not_found("this release record has no file of that name")
        raise RecordFileError("RECORD_TAMPERED", f"{relative} is listed in the manifest of "
                              f"release {version} but missing; the record is not served")
    if not path.is_file():
        raise RecordFileError("RECORD_TAMPERED", f"{relative} is not a file")
    handle = path.open("rb")
    try:
        size = os.fstat(handle.fileno()).st_size
        actual = sha256_of(handle)
    except BaseException:
        handle.close()
        raise
    if actual != expected:
        handle.close()
        raise RecordFileError("RECORD_TAMPERED", f"{relative} no longer matches the SHA-256 in the "
                              f"manifest of release {version}; it is not served")
    return VerifiedFile(handle=handle, name=parts[-1], size=size)
