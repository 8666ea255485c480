"""The batch manifest, version 1: which series a cohort synthesis runs on, how to check they are
the ones meant, and where they came from (docs/batch-synthesis.md).

JSON Lines, UTF-8: a header line, then one line per case. The header names the format and its
version, the use case, a name and the provenance of the cohort; a case names the series (its
Series Instance UID), the hash of exactly its instances (`instance_set_sha256`, as the store
computes it: SHA-256 over the sorted "SOP Instance UID<TAB>file SHA-256<LF>" lines) and, for a
series that is not in the store yet, the folder its files are in (relative to the manifest).
A case may also name its `reference`: the contrast series of the same study and frame of
reference that training and validation compare the synthesis with (a repository cohort of
pairs); batch synthesis reads the case's own series only. A manifest is checked whole before
anything is submitted; each error names its line.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import pydicom
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from digital_contrast.errors import DigitalContrastError

FORMAT = "digital-contrast/batch-manifest"
VERSION = 1
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
Provenance = dict[str, str | int | float | bool | None]


class ManifestError(DigitalContrastError):
    """MANIFEST_UNREADABLE, MANIFEST_INVALID, MANIFEST_VERSION_UNSUPPORTED,
    MANIFEST_DUPLICATE_CASE, MANIFEST_EMPTY."""


class ManifestHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["digital-contrast/batch-manifest"]
    version: int
    name: str = Field(min_length=1, max_length=128)
    use_case: str = Field(min_length=1, max_length=64)
    created: str = Field(min_length=1, max_length=64, description="ISO 8601, UTC")
    provenance: Provenance = Field(default_factory=dict)


def _relative_folder(value: str | None) -> str | None:
    if value is None:
        return None
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\\" in value or not path.parts:
        raise ValueError("a relative folder inside the manifest's folder, '/' separated")
    return value


def _dicom_uid(value: str) -> str:
    if not _UID.fullmatch(value):
        raise ValueError("a DICOM UID: digits and dots")
    return value


class ManifestReference(BaseModel):
    """The contrast series a case's synthesis is compared with (training, validation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    series_instance_uid: str = Field(max_length=64)
    instance_set_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    phase: str = Field(min_length=1, max_length=32, description="e.g. arterial, portal_venous")
    folder: str | None = Field(None, max_length=1024, description="Relative to the manifest")

    _uid = field_validator("series_instance_uid")(_dicom_uid)
    _folder = field_validator("folder")(_relative_folder)


class ManifestCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str = Field(description="Unique in the manifest; no patient identifier")
    series_instance_uid: str = Field(max_length=64)
    instance_set_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    folder: str | None = Field(None, max_length=1024, description="Relative to the manifest")
    provenance: Provenance = Field(default_factory=dict)
    reference: ManifestReference | None = None

    _uid = field_validator("series_instance_uid")(_dicom_uid)
    _folder = field_validator("folder")(_relative_folder)

    @field_validator("case_id")
    @classmethod
    def _case_id(cls, value: str) -> str:
        if not _CASE_ID.fullmatch(value):
            raise ValueError("1-128 letters, digits, '.', '_' or '-', starting with a letter "
                             "or digit")
        return value


@dataclass(frozen=True)
class Manifest:
    header: ManifestHeader
    cases: list[ManifestCase]
    sha256: str  # of the file's bytes: the same manifest is the same batch
    root: Path  # the folder case folders are relative to


def _invalid(line: int, exc: ValidationError) -> ManifestError:
    where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}"
                      for e in exc.errors(include_url=False, include_input=False))
    return ManifestError("MANIFEST_INVALID", f"line {line}: {where}")


def _json(line: int, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ManifestError("MANIFEST_INVALID", f"line {line}: not a JSON object") from None


def read_manifest(path: Path) -> Manifest:
    """Read and check a whole manifest (typed error naming the first bad line)."""
    try:
        data = path.read_bytes()
        lines = data.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError("MANIFEST_UNREADABLE", f"cannot read the manifest "
                            f"({type(exc).__name__})") from None
    if not lines:
        raise ManifestError("MANIFEST_EMPTY", "the manifest has no header line")
    first = _json(1, lines[0])
    if isinstance(first, dict) and first.get("format") == FORMAT and \
            first.get("version") != VERSION:
        raise ManifestError("MANIFEST_VERSION_UNSUPPORTED", f"manifest version "
                            f"{first.get('version')!r}; this release reads version {VERSION}")
    try:
        header = ManifestHeader.model_validate(first)
    except ValidationError as exc:
        raise _invalid(1, exc) from None
    cases: list[ManifestCase] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        try:
            case = ManifestCase.model_validate(_json(number, text))
        except ValidationError as exc:
            raise _invalid(number, exc) from None
        if case.case_id in seen:
            raise ManifestError("MANIFEST_DUPLICATE_CASE", f"line {number}: case "
                                f"{case.case_id} is already on line {seen[case.case_id]}")
        if case.folder is None and case.instance_set_sha256 is None:
            raise ManifestError("MANIFEST_INVALID", f"line {number}: a case names its folder, "
                                "its instance_set_sha256, or both")
        seen[case.case_id] = number
        cases.append(case)
    if not cases:
        raise ManifestError("MANIFEST_EMPTY", "the manifest lists no case")
    return Manifest(header, cases, hashlib.sha256(data).hexdigest(), path.parent.resolve())


def write_manifest(path: Path, header: ManifestHeader, cases: Iterable[ManifestCase]) -> int:
    """Write a manifest (header first, one case per line); returns the number of cases."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(header.model_dump_json() + "\n")
        for case in cases:
            out.write(case.model_dump_json(exclude_none=True) + "\n")
            count += 1
    return count


def case_files(folder: Path) -> list[Path]:
    """The files of a case folder, in name order; hidden files are not part of it."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def folder_instance_set(folder: Path) -> tuple[str, str] | None:
    """(Series Instance UID, instance_set_sha256) of a folder holding one series' DICOM files;
    None when it holds no DICOM file or files of several series."""
    pairs, series = [], set()
    for file in case_files(folder):
        data = file.read_bytes()
        try:
            header = pydicom.dcmread(BytesIO(data), stop_before_pixels=True)
        except Exception:  # not DICOM: not part of the series
            continue
        series.add(str(header.SeriesInstanceUID))
        pairs.append(f"{header.SOPInstanceUID}\t{hashlib.sha256(data).hexdigest()}\n")
    if len(series) != 1:
        return None
    return series.pop(), hashlib.sha256("".join(sorted(pairs)).encode()).hexdigest()


def cases_from_folder_tree(root: Path) -> Iterator[ManifestCase]:
    """One case per folder under `root` that holds exactly one series (case id: its path)."""
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        found = folder_instance_set(folder)
        if found is None:
            continue
        relative = folder.relative_to(root).as_posix()
        case_id = re.sub(r"[^A-Za-z0-9._-]", "_", relative).lstrip("._-") or "case"
        yield ManifestCase(case_id=case_id[:128], series_instance_uid=found[0],
                           instance_set_sha256=found[1], folder=relative,
                           provenance={"source": "folder"})
