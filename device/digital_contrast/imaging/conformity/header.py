"""Envelope checks that read the DICOM header and the volume geometry."""

import re
from collections.abc import Callable
from datetime import date

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from digital_contrast.imaging.conformity.verdict import CheckResult, Outcome
from digital_contrast.imaging.volume import Volume
from digital_contrast.usecases.schema import Envelope

Check = Callable[[Volume, Dataset, Envelope], CheckResult]
_AGE = re.compile(r"^(\d{3})([DWMY])$")
_DAYS = {"D": 1, "W": 7, "M": 30.44, "Y": 365.25}


def result(code: str, check: str, ok: bool, measured: object, expected: str, message: str,
           *, warn: bool = False) -> CheckResult:
    outcome = Outcome.PASSED if ok else (Outcome.WARNING if warn else Outcome.FAILED)
    return CheckResult(code, check, outcome, str(measured), expected, "" if ok else message)


def _text(header: Dataset, keyword: str) -> str:
    value = header.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(map(str, value))
    return str(value)


def modality(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    value = _text(header, "Modality")
    return result("CONF_MODALITY", "modality", value == "CT", value or "missing", "CT",
                  f"the series modality is {value or 'missing'}, not CT")


def not_synthetic(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    value = _text(header, "SyntheticData").upper()
    return result("CONF_SYNTHETIC_INPUT", "synthetic data", value != "YES",
                  value or "absent", "not YES",
                  "the series is itself synthetic (SyntheticData YES); only acquired images "
                  "can be processed")


def not_derived(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    image_type = _text(header, "ImageType").upper()
    ok = image_type.startswith("ORIGINAL\\")
    return result("CONF_DERIVED_INPUT", "original image", ok, image_type or "missing",
                  "ORIGINAL\\...",
                  f"the series is derived or reformatted (ImageType {image_type or 'missing'}); "
                  "send the original axial series")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[-_\\/]", " ", text.upper()).split())


def not_virtual_non_contrast(volume: Volume, header: Dataset,
                             envelope: Envelope) -> CheckResult:
    text = _words(" ".join(_text(header, k) for k in ("ImageType", "SeriesDescription",
                                                      "ImageComments", "DerivationDescription")))
    found = [m for m in envelope.vnc_markers
             if re.search(rf"\b{re.escape(_words(m))}\b", text)]
    return result("CONF_VIRTUAL_NON_CONTRAST", "not virtual non-contrast", not found,
                  ", ".join(found) or "no marker", "no VNC marker",
                  "the series is a dual-energy virtual non-contrast reconstruction "
                  f"({', '.join(found)}): contrast was given and VNC values differ from a true "
                  "non-contrast scan")


def patient_age_years(header: Dataset) -> float | None:
    match = _AGE.match(_text(header, "PatientAge"))
    if match:
        return int(match[1]) * _DAYS[match[2]] / 365.25
    born, seen = _text(header, "PatientBirthDate"), (_text(header, "StudyDate")
                                                     or _text(header, "AcquisitionDate"))
    try:
        birth = date(int(born[:4]), int(born[4:6]), int(born[6:8]))
        study = date(int(seen[:4]), int(seen[4:6]), int(seen[6:8]))
    except ValueError:
        return None
    return (study - birth).days / 365.25


def adult(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    age = patient_age_years(header)
    ok = age is not None and age >= envelope.min_age_years
    return result("CONF_PATIENT_AGE", "adult patient", ok,
                  "unknown" if age is None else f"{age:.1f} years",
                  f">= {envelope.min_age_years} years",
                  "the patient's age is not in the header; it must be known to be "
                  f"{envelope.min_age_years} or over" if age is None else
                  f"the patient is {age:.1f} years old; the device is for adults "
                  f"({envelope.min_age_years} years or over)")


def body_part(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    value = re.sub(r"[\s_-]", "", _text(header, "BodyPartExamined").upper())
    accepted = [re.sub(r"[\s_-]", "", p.upper()) for p in envelope.body_parts]
    return result("CONF_BODY_PART", "body part", value in accepted, value or "missing",
                  " | ".join(envelope.body_parts),
                  f"body part {value or 'not stated'} is not an abdominal examination")


def coverage(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    extent = (volume.shape[0] - 1) * volume.spacing[0]
    return result("CONF_COVERAGE", "z coverage", extent >= envelope.min_coverage_mm,
                  f"{extent:.0f} mm", f">= {envelope.min_coverage_mm:.0f} mm",
                  f"the series covers {extent:.0f} mm; at least "
                  f"{envelope.min_coverage_mm:.0f} mm of the abdomen is needed")


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] - 1e-6 <= value <= bounds[1] + 1e-6


def slice_thickness(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    stated = _text(header, "SliceThickness")
    value = float(stated) if stated else volume.spacing[0]
    lo, hi = envelope.slice_thickness_mm
    return result("CONF_SLICE_THICKNESS", "slice thickness",
                  _within(value, envelope.slice_thickness_mm),
                  f"{value:.2f} mm" + ("" if stated else " (from spacing)"),
                  f"{lo:g}-{hi:g} mm",
                  f"slice thickness {value:.2f} mm is outside {lo:g}-{hi:g} mm")


def pixel_spacing(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    row, col = volume.spacing[1:]
    lo, hi = envelope.pixel_spacing_mm
    ok = _within(row, envelope.pixel_spacing_mm) and _within(col, envelope.pixel_spacing_mm)
    return result("CONF_PIXEL_SPACING", "pixel spacing", ok, f"{row:.3f} x {col:.3f} mm",
                  f"{lo:g}-{hi:g} mm",
                  f"pixel spacing {row:.3f} x {col:.3f} mm is outside {lo:g}-{hi:g} mm")


def kvp(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    stated = _text(header, "KVP")
    lo, hi = envelope.kvp
    value = float(stated) if stated else None
    return result("CONF_KVP", "tube voltage", value is not None and _within(value, envelope.kvp),
                  f"{value:g} kV" if value is not None else "missing", f"{lo:g}-{hi:g} kV",
                  f"tube voltage {stated or 'not stated'} kV is outside {lo:g}-{hi:g} kV")


def kernel(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    value = _text(header, "ConvolutionKernel")
    ok = any(re.fullmatch(pattern, value, re.IGNORECASE) for pattern in envelope.kernels)
    return result("CONF_KERNEL", "reconstruction kernel", ok, value or "missing",
                  "a soft-tissue kernel",
                  f"reconstruction kernel {value or 'not stated'} is not a soft-tissue kernel")


def lossless(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    lossy = volume.source is None or volume.source.lossy
    return result("CONF_LOSSY", "lossless pixels", not lossy,
                  "lossy" if lossy else "lossless", "lossless",
                  "the images have been lossy compressed; send the original lossless series")


def contrast_agent(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    """Type 2 ContrastBolusAgent is often empty, so every Contrast/Bolus attribute counts; an
    oral-only agent is flagged (it does not enhance vessels) rather than refused."""
    stated = {e.keyword: _text(header, e.keyword) for e in header
              if e.keyword.startswith("ContrastBolus") or e.keyword == "ContrastFlowRate"}
    stated = {k: v for k, v in stated.items() if v.strip()}
    if "ContrastBolusAgentSequence" in header and len(header.ContrastBolusAgentSequence):
        stated["ContrastBolusAgentSequence"] = "present"
    route = stated.get("ContrastBolusRoute", "").upper()
    oral_only = bool(stated) and route in {"ORAL", "PO", "PER OS"}
    summary = "; ".join(f"{k}={v}" for k, v in sorted(stated.items())) or "none stated"
    if oral_only:
        return result("CONF_CONTRAST_AGENT", "no intravenous contrast in header", False,
                      summary, "no contrast attributes",
                      "oral contrast is stated in the header; vessels are unaffected but bowel "
                      "content may be bright", warn=True)
    return result("CONF_CONTRAST_AGENT", "no intravenous contrast in header", not stated,
                  summary, "no contrast attributes",
                  f"the header states that contrast was given ({summary})")


def axial(volume: Volume, header: Dataset, envelope: Envelope) -> CheckResult:
    cosines = volume.direction
    axis_aligned = all(abs(abs(cosines[:, c]).max() - 1.0) < 1e-3 for c in range(3))
    normal_z = abs(cosines[2, 0])
    ok = axis_aligned and normal_z > 0.999
    return result("CONF_ORIENTATION", "axial slices", ok, f"|normal . z| = {normal_z:.3f}",
                  "axial, axis-aligned",
                  "the slices are not axial and axis-aligned; send the axial series")


HEADER_CHECKS: tuple[Check, ...] = (
    modality, not_synthetic, not_derived, not_virtual_non_contrast, contrast_agent, adult,
    body_part, coverage, axial, slice_thickness, pixel_spacing, kvp, kernel, lossless,
)
