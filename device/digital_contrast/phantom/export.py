"""Phantom cases on disk: one study per case with non-contrast, arterial and portal-venous
series (DICOM with scanner-like headers, or NIfTI), the label map, and a manifest.

The headers look acquired (ORIGINAL\\PRIMARY), because the product must treat phantom input like
scanner input; every case still says plainly that it is a digital phantom, not patient data.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from digital_contrast import __version__
from digital_contrast.imaging.ct_image import (
    HU_MIN,
    add_image_plane,
    add_pixels,
    dicom_date_time,
    file_meta,
    write_series_atomically,
)
from digital_contrast.imaging.nifti import write_nifti
from digital_contrast.imaging.uids import uid_from
from digital_contrast.imaging.volume import Volume
from digital_contrast.phantom import OutputFormat
from digital_contrast.phantom.case import PhantomCase, generate_case
from digital_contrast.phantom.extensions import BASE_USE_CASE, get_extension

PHANTOM_NOTICE = "Procedural digital phantom - not patient data"
_EPOCH = datetime(2026, 1, 5, 9, 0, 0)


class Phase(StrEnum):
    NCCT = "ncct"
    ARTERIAL = "arterial"
    PORTAL_VENOUS = "portal_venous"


@dataclass(frozen=True)
class _SeriesStyle:
    number: int
    description: str
    delay_s: int | None  # scan delay after injection; None = no contrast


_STYLES = {
    Phase.NCCT: _SeriesStyle(2, "ABD NON-CONTRAST", None),
    Phase.ARTERIAL: _SeriesStyle(3, "CTA AORTA ARTERIAL", 25),
    Phase.PORTAL_VENOUS: _SeriesStyle(4, "ABD PORTAL VENOUS", 70),
}


def case_id(seed: int, use_case: str | None = None) -> str:
    """PH<seed> for a base case; an extension's prefix (e.g. PV<seed> for abdomen-pv)."""
    if use_case is None:
        return f"PH{seed:06d}"
    return f"{get_extension(use_case).case_prefix}{seed:06d}"


def _case_id(case: PhantomCase) -> str:
    return case_id(case.parameters.seed, case.parameters.use_case)


def _uid_parts(case: PhantomCase) -> tuple[str, ...]:
    """Seed and size name a base case's UIDs (as always); an extension's case adds its use case,
    so that its study never shares a UID with the base case of the same seed."""
    p = case.parameters
    return (str(p.seed), p.size) if p.use_case is None else (str(p.seed), p.size, p.use_case)


def _style(case: PhantomCase, phase: Phase) -> _SeriesStyle:
    style = _STYLES[phase]
    if case.parameters.use_case is None:
        return style
    description, delay = get_extension(case.parameters.use_case).series_descriptions[phase.value]
    return _SeriesStyle(style.number, description, delay)


def _study_header(case: PhantomCase) -> Dataset:
    p = case.parameters
    acquired = _EPOCH + timedelta(days=p.seed % 3650)
    date, time = dicom_date_time(acquired)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = f"PHANTOM^{_case_id(case)}"
    ds.PatientID = _case_id(case)
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientAge = "070Y"
    ds.StudyInstanceUID = uid_from("phantom-study", *_uid_parts(case))
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = date
    ds.StudyTime = time
    ds.ReferringPhysicianName = ""
    ds.StudyID = _case_id(case)
    ds.AccessionNumber = f"A{p.seed:08d}"
    ds.StudyDescription = ("CT ABDOMEN AORTA" if p.use_case is None
                           else get_extension(p.use_case).study_description)
    ds.FrameOfReferenceUID = uid_from("phantom-for", *_uid_parts(case))
    ds.PositionReferenceIndicator = ""
    ds.Modality = "CT"
    ds.BodyPartExamined = "ABDOMEN"
    ds.PatientPosition = "HFS"
    ds.Manufacturer = "Digital Contrast"
    ds.ManufacturerModelName = "Procedural Abdominal Phantom"
    ds.DeviceSerialNumber = "PHANTOM"
    ds.SoftwareVersions = __version__
    ds.InstitutionName = "Digital phantom"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = f"{p.scanner.kvp:g}"
    ds.ConvolutionKernel = "STANDARD"
    ds.GantryDetectorTilt = "0"
    ds.ScanOptions = "HELICAL MODE"
    ds.AcquisitionNumber = 1
    ds.ImageComments = PHANTOM_NOTICE
    ds.BurnedInAnnotation = "NO"
    return ds


def _contrast_bolus(ds: Dataset, delay_s: int) -> None:
    ds.ContrastBolusAgent = "Iohexol 350 mgI/mL"
    ds.ContrastBolusRoute = "IV"
    ds.ContrastBolusVolume = "90"
    ds.ContrastBolusIngredient = "IODINE"
    ds.ContrastBolusIngredientConcentration = "350"
    ds.ContrastFlowRate = ["4"]
    ds.ContrastBolusStartTime = "090000"
    ds.ContrastBolusStopTime = f"0900{min(delay_s, 59):02d}"


def write_phase_dicom(case: PhantomCase, phase: Phase, folder: Path) -> str:
    """Write one phase as a CT series under `folder`; returns its SeriesInstanceUID."""
    p = case.parameters
    style = _style(case, phase)
    series_uid = uid_from("phantom-series", *_uid_parts(case), phase.value)
    shared = _study_header(case)
    shared.SeriesInstanceUID = series_uid
    shared.SeriesNumber = style.number
    shared.SeriesDescription = f"{style.description} {p.acquisition.slice_thickness_mm:g}mm"
    shared.SeriesTime = shared.ContentTime = dicom_date_time(
        _EPOCH + timedelta(seconds=style.number * 60))[1]
    shared.SOPClassUID = CTImageStorage
    if style.delay_s is not None:
        _contrast_bolus(shared, style.delay_s)
    image = case.phase(phase.value)
    n = image.shape[0]

    def write(tmp: Path) -> None:
        for k in range(n):
            ds = Dataset()
            ds.update(shared)
            ds.SOPInstanceUID = uid_from(series_uid, str(k))
            ds.InstanceNumber = n - k  # scanners number head to foot
            add_image_plane(ds, case.affine, k, p.acquisition.slice_thickness_mm)
            add_pixels(ds, image[k], rescale_intercept=HU_MIN)
            ds.WindowCenter, ds.WindowWidth = ("150", "700") if style.delay_s else ("40", "400")
            ds.file_meta = file_meta(ds.SOPInstanceUID)
            ds.save_as(tmp / f"{n - k:04d}.dcm", enforce_file_format=True)

    write_series_atomically(folder, write)
    return series_uid


def _sha256_of_tree(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.relative_to(path.parent).as_posix().encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def write_case(case: PhantomCase, out_dir: Path, fmt: OutputFormat) -> dict:
    """Write every phase and the label map of a case; return its manifest entry."""
    folder = Path(out_dir) / _case_id(case)
    folder.mkdir(parents=True, exist_ok=True)
    series: dict[str, dict] = {}
    for phase in Phase:
        if fmt is OutputFormat.DICOM:
            target = folder / phase.value
            uid = write_phase_dicom(case, phase, target)
            entry = {"series_instance_uid": str(uid), "files": len(list(target.iterdir()))}
        else:
            target = write_nifti(Volume(case.phase(phase.value), case.affine),
                                 folder / f"{phase.value}.nii.gz")
            entry = {}
        series[phase.value] = {"path": target.relative_to(out_dir).as_posix(),
                               "sha256": _sha256_of_tree(target), **entry}
    labels = write_nifti(Volume(case.labels.astype(np.float32), case.affine),
                         folder / "labels.nii.gz", dtype=np.uint8)
    return {
        "case_id": _case_id(case),
        "seed": case.parameters.seed,
        "use_case": case.parameters.use_case or BASE_USE_CASE,
        "shape": list(case.labels.shape),
        "spacing_mm": list(case.spacing),
        "parameters": case.parameters.to_dict(),
        "series": series,
        "labels": {"path": labels.relative_to(out_dir).as_posix(),
                   "sha256": _sha256_of_tree(labels)},
    }


def generate_study(n: int, out_dir: Path, *, seed: int = 0, size: str = "small",
                   fmt: OutputFormat = OutputFormat.DICOM,
                   progress: Callable[[int, str], None] | None = None,
                   use_case: str = BASE_USE_CASE) -> dict:
    """Generate cases with seeds seed .. seed+n-1 under `out_dir` and write manifest.json;
    `use_case` other than the base one generates that use case's extended cases."""
    extension = None if use_case == BASE_USE_CASE else get_extension(use_case).use_case
    if n < 1:
        raise ValueError("n must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = []
    for index in range(n):
        case = generate_case(seed + index, size, extension)
        cases.append(write_case(case, out_dir, fmt))
        if progress:
            progress(index + 1, _case_id(case))
    manifest = {
        "generator": "digital-contrast phantom generate",
        "software_version": __version__,
        "notice": PHANTOM_NOTICE,
        "size": size,
        "use_case": use_case,
        "format": fmt.value,
        "cases": cases,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                           encoding="utf-8")
    return manifest
