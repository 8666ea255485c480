"""A source folder for ingest tests: the phantom NCCT and arterial series (or `phases`), a series
refused for burned-in text on one instance, a file that is not DICOM and a date pydicom warns
about (its warning quotes the value: a scrubbed log must not)."""

import shutil
from pathlib import Path

from pydicom import dcmread

UNREADABLE_DATE = "15.03.2024"


def ingest_source(phantom_series: dict, root: Path,
                  phases: tuple[str, ...] = ("ncct", "arterial")) -> Path:
    for phase in phases:
        shutil.copytree(phantom_series[phase], root / phase)
    burned = root / "burned"
    burned.mkdir()
    for index, path in enumerate(sorted((root / "ncct").glob("*.dcm"))[:3]):
        ds = dcmread(path)
        ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".9"
        ds.SOPInstanceUID = ds.SOPInstanceUID + ".9"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.BurnedInAnnotation = "YES" if index == 1 else "NO"
        ds.save_as(burned / path.name)
    (root / "README.txt").write_text("not an image")
    quirky = sorted((root / "ncct").glob("*.dcm"))[0]
    ds = dcmread(quirky)
    ds.AcquisitionDate = UNREADABLE_DATE
    ds.save_as(quirky)
    return root


def identifying_values(root: Path) -> set[str]:
    """What must never reach a log or a report: the source's paths, UIDs and patient names."""
    values = {str(root), UNREADABLE_DATE}
    for path in root.rglob("*.dcm"):
        ds = dcmread(path, stop_before_pixels=True)
        values |= {str(ds.PatientName), str(ds.PatientID), str(ds.StudyInstanceUID),
                   str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)}
    return {v for v in values if v}


def tree(root: Path) -> dict[Path, bytes]:
    """Every file under root, by its path relative to root."""
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
