"""`repository ingest SRC --site S`: de-identify a folder of DICOM files at the site into the
site's repository folder.

Two passes. The first reads headers (the pixels deferred, not read) and groups instances by
series, so that a series with one instance that must be refused (burned-in text, a screen
capture, no pixels) is refused whole: half a series is worse than none. The second
de-identifies the accepted series, each file written to a temporary name and renamed, so a
crash leaves no half-written file, and a second run over the same source writes the same files
again (same keyed UIDs), never duplicates. Nothing identifying is logged or reported: counts,
codes and pseudonymous UIDs only.

    <out>/<pseudonymous patient>/<study UID>/<series UID>/<SOP instance UID>.dcm

Each written series gets its row in the series index: labels read from the source's headers
at the site (only the labels leave it), UIDs, pseudonym and dates from the de-identified copy.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.repository.deid.deidentify import Deidentifier, refusal
from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.index.classify import labels_of
from digital_contrast.repository.index.records import record_series, series_row

log = logging.getLogger(__name__)
SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


def site_secret_name(site: str) -> str:
    """The keys folder's secret of a site (secrets/<name>.key); DEID_SITE_INVALID for an id
    that is not 2-40 lower-case letters, digits and hyphens."""
    if not SITE_ID.match(site):
        raise RepositoryError("DEID_SITE_INVALID",
                              "a site id is 2-40 lower-case letters, digits and hyphens, "
                              "starting with a letter or digit")
    return f"deid-site-{site}"


@dataclass
class IngestReport:
    written: int = 0
    series_written: int = 0
    refused_series: Counter = field(default_factory=Counter)  # code -> series
    not_dicom: int = 0
    seconds: float = 0.0

    @property
    def ms_per_instance(self) -> float:
        return 1000.0 * self.seconds / self.written if self.written else 0.0


def _files(source: Path) -> Iterator[Path]:
    if source.is_file():
        yield source
        return
    for root, _, names in os.walk(source):
        for name in sorted(names):
            yield Path(root) / name


def series_of(source: Path, report: IngestReport) -> dict[str, list[tuple[Path, str | None]]]:
    """Series UID -> [(file, refusal code or None)], from headers only."""
    series: dict[str, list[tuple[Path, str | None]]] = {}
    for path in _files(source):
        try:  # values over 1 KB (the pixels) are deferred: seen to be there, never read
            header = dcmread(path, defer_size=1024)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            report.not_dicom += 1
            continue
        if "SOPInstanceUID" not in header or "SeriesInstanceUID" not in header:
            report.not_dicom += 1
            continue
        refused = refusal(header)
        series.setdefault(str(header.SeriesInstanceUID), []).append(
            (path, refused.code if refused else None))
    return series


def _write(dataset: Dataset, out: Path) -> tuple[Path, str]:
    """The file written (under a temporary name, then renamed) and its SHA-256."""
    target = (out / str(dataset.PatientID) / str(dataset.StudyInstanceUID)
              / str(dataset.SeriesInstanceUID) / f"{dataset.SOPInstanceUID}.dcm")
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target, hashlib.sha256(data).hexdigest()


def _position(dataset: Dataset) -> float | None:
    try:
        return float(dataset.ImagePositionPatient[2])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def _refused(report: IngestReport, code: str, instances: int) -> None:
    report.refused_series[code] += 1
    log.info("series refused: %s (%d instances)", code, instances)


@dataclass(frozen=True)
class WrittenSeries:
    """One series as pass 2 wrote it: its files (path, SHA-256) and its index row."""

    files: list[tuple[Path, str]]
    row: dict[str, Any]


def _source(path: Path) -> Dataset:
    try:
        return dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError):  # the message names the path
        raise RepositoryError("INGEST_SOURCE_CHANGED", "a source file of the series can no "
                                                       "longer be read as DICOM") from None


def deidentify_series(paths: Sequence[Path], out: Path,
                      deidentifier: Deidentifier) -> WrittenSeries:
    """Pass 2 for one series that pass 1 accepted: every instance de-identified and written.
    RepositoryError, with nothing of the series left written, when an instance must be refused
    now (a file changed or vanished between the two passes)."""
    written: list[tuple[Path, str]] = []
    positions: list[float] = []
    labels = deidentified = None
    try:
        for path in paths:
            original = _source(path)
            labels = labels or labels_of(original)  # at the site, before de-identifying
            deidentified = deidentifier.deidentify(original)
            written.append(_write(deidentified, out))
            if (z := _position(deidentified)) is not None:
                positions.append(z)
    except RepositoryError:
        for path, _ in written:
            path.unlink(missing_ok=True)
        raise
    if labels is None or deidentified is None:
        raise RepositoryError("INGEST_SOURCE_CHANGED", "the series has no instance left")
    return WrittenSeries(written, series_row(
        deidentifier.key.site, labels, deidentified, positions=positions,
        files=[(path.stem, digest) for path, digest in written]))


def ingest(source: Path, out: Path, deidentifier: Deidentifier,
           index: sessionmaker[Session] | None = None) -> IngestReport:
    """De-identify every accepted series under `source` into `out`, and record each in the
    series `index` when given (a row replaced when the series comes again)."""
    report = IngestReport()
    started = time.perf_counter()
    # the source's series UIDs are identifying: grouped by, never logged
    for members in series_of(Path(source), report).values():
        codes = {code for _, code in members if code}
        if codes:
            _refused(report, sorted(codes)[0], len(members))
            continue
        try:
            series = deidentify_series([path for path, _ in members], Path(out), deidentifier)
        except RepositoryError as exc:
            _refused(report, exc.code, len(members))
            continue
        if index is not None:
            with index.begin() as session:
                record_series(session, [series.row])
        report.written += len(series.files)
        report.series_written += 1
    report.seconds = time.perf_counter() - started
    log.info("ingest: %d instances of %d series written, %d series refused",
             report.written, report.series_written, sum(report.refused_series.values()))
    return report
