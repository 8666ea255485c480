"""`repository ingest SRC --site S`: de-identify a folder of DICOM files at the site into the
site's repository folder.

Two passes. The first reads headers only and groups instances by series, so that a series with
one instance that must be refused (burned-in text, a screen capture, no pixels) is refused
whole: half a series is worse than none. The second de-identifies the accepted series, each
file written to a temporary name and renamed, so a crash leaves no half-written file, and a
second run over the same source writes the same files again (same keyed UIDs), never
duplicates. Nothing identifying is logged or reported: counts, codes and pseudonymous UIDs only.

    <out>/<pseudonymous patient>/<study UID>/<series UID>/<SOP instance UID>.dcm
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from digital_contrast.repository.deid.deidentify import Deidentifier, refusal
from digital_contrast.repository.errors import RepositoryError

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
    refused_instances: int = 0
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


def _series_of(source: Path, report: IngestReport) -> dict[str, list[tuple[Path, str | None]]]:
    """Series UID -> [(file, refusal code or None)], from headers only."""
    series: dict[str, list[tuple[Path, str | None]]] = {}
    for path in _files(source):
        try:
            header = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            report.not_dicom += 1
            continue
        if "SOPInstanceUID" not in header or "SeriesInstanceUID" not in header:
            report.not_dicom += 1
            continue
        # stop_before_pixels hides the pixel data: judge the rest, and pixels on the full read
        header.PixelData = b""
        refused = refusal(header)
        series.setdefault(str(header.SeriesInstanceUID), []).append(
            (path, refused.code if refused else None))
    return series


def _write(dataset, out: Path) -> Path:
    target = (out / str(dataset.PatientID) / str(dataset.StudyInstanceUID)
              / str(dataset.SeriesInstanceUID) / f"{dataset.SOPInstanceUID}.dcm")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            dataset.save_as(stream, enforce_file_format=True)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def ingest(source: Path, out: Path, deidentifier: Deidentifier) -> IngestReport:
    """De-identify every accepted series under `source` into `out`."""
    report = IngestReport()
    started = time.perf_counter()
    # the source's series UIDs are identifying: grouped by, never logged
    for members in _series_of(Path(source), report).values():
        codes = {code for _, code in members if code}
        if codes:
            code = sorted(codes)[0]
            report.refused_series[code] += 1
            report.refused_instances += len(members)
            log.info("series refused: %s (%d instances)", code, len(members))
            continue
        written = []
        try:
            for path, _ in members:
                written.append(_write(deidentifier.deidentify(dcmread(path)), Path(out)))
        except RepositoryError as exc:  # pixel data missing on the full read
            for path in written:
                path.unlink(missing_ok=True)
            report.refused_series[exc.code] += 1
            report.refused_instances += len(members)
            log.info("series refused: %s (%d instances)", exc.code, len(members))
            continue
        report.written += len(written)
        report.series_written += 1
    report.seconds = time.perf_counter() - started
    log.info("ingest: %d instances of %d series written, %d series refused",
             report.written, report.series_written, sum(report.refused_series.values()))
    return report
