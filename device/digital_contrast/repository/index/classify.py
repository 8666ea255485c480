"""What the index records of a series, read from its headers at the site, before
de-identification: the phase and region from the original descriptions (only the label leaves
the site), flagged as unverified header labels; kVp, thickness, kernel; the age band, never the
age.

Phase from words of the series description and protocol name (TotalSegmentator's predictor
reads organ HU instead; that comes with image-based classification): a contrast agent named
with no phase word gives "unknown", never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

HEADER = "header"  # the source of a label nobody has verified
_WORD = re.compile(r"[A-Z0-9]+")
_PHASE_WORDS = (  # first match wins: the most specific phrases first
    ("native", {"NATIVE", "NC", "NCCT", "PLAIN", "UNENHANCED", "NONCONTRAST", "NONCON",
                "WO", "PRECONTRAST", "PRE"}),
    ("portal_venous", {"PV", "PORTAL", "PORTOVENOUS", "PORTALVENOUS", "VENOUS"}),
    ("arterial", {"ARTERIAL", "ART", "CTA", "ANGIO", "ANGIOGRAPHY", "EARLY"}),
    ("delayed", {"DELAY", "DELAYED", "LATE", "EQUILIBRIUM", "EXCRETORY", "UROGRAPHY"}),
)
_NATIVE_PHRASES = ("NON CONTRAST", "WITHOUT CONTRAST", "W O CONTRAST", "NO CONTRAST")
_REGIONS = (  # (words that must all appear, region): the widest first
    ({"CHEST", "ABDOMEN", "PELVIS"}, "chest_abdomen_pelvis"),
    ({"THORAX", "ABDOMEN", "PELVIS"}, "chest_abdomen_pelvis"),
    ({"CAP"}, "chest_abdomen_pelvis"),
    ({"ABDOMEN", "PELVIS"}, "abdomen_pelvis"), ({"ABD", "PELVIS"}, "abdomen_pelvis"),
    ({"ABDOMENPELVIS"}, "abdomen_pelvis"),
    ({"WHOLEBODY"}, "whole_body"),
    ({"ABDOMEN"}, "abdomen"), ({"ABD"}, "abdomen"), ({"LIVER"}, "abdomen"),
    ({"KIDNEY"}, "abdomen"), ({"PANCREAS"}, "abdomen"),
    ({"CHEST"}, "chest"), ({"THORAX"}, "chest"), ({"LUNG"}, "chest"),
    ({"PELVIS"}, "pelvis"), ({"HEAD"}, "head"), ({"BRAIN"}, "head"), ({"NECK"}, "neck"),
    ({"EXTREMITY"}, "extremity"), ({"LEG"}, "extremity"), ({"ARM"}, "extremity"),
)


@dataclass(frozen=True)
class SeriesLabels:
    modality: str
    phase: str
    region: str
    kvp: float | None
    thickness_mm: float | None
    kernel: str | None
    manufacturer: str | None
    age_band: str | None
    sex: str | None


def _text(ds: Dataset, *keywords: str) -> str:
    parts = []
    for keyword in keywords:
        value = ds.get(keyword)
        if value is not None:
            parts.append(" ".join(map(str, value)) if isinstance(value, MultiValue | list | tuple)
                         else str(value))
    return " ".join(parts).upper()


def phase_of(ds: Dataset) -> str:
    return phase_from_text(_text(ds, "SeriesDescription", "ProtocolName"))


def phase_from_text(text: str) -> str:
    """The phase named by a description's words, or "unknown"."""
    normalised = " ".join(_WORD.findall(text.upper()))
    if any(phrase in normalised for phrase in _NATIVE_PHRASES):
        return "native"
    words = set(normalised.split())
    for phase, vocabulary in _PHASE_WORDS:
        if words & vocabulary:
            return phase
    return "unknown"


def region_of(ds: Dataset) -> str:
    return region_from_text(_text(ds, "BodyPartExamined"),
                            _text(ds, "StudyDescription", "SeriesDescription"))


def region_from_text(body_part: str, descriptions: str) -> str:
    """The region of the body part's words, else of the descriptions', or "unknown"."""
    words = set(_WORD.findall(body_part.upper())) or set(_WORD.findall(descriptions.upper()))
    for required, region in _REGIONS:
        if required <= words:
            return region
    return "unknown"


def age_band(age: str | None) -> str | None:
    """"074Y" -> "70-79"; ages in months, weeks or days -> "0-9"; 90 and over -> "90+"."""
    match = re.fullmatch(r"(\d{3})([DWMY])", (age or "").strip())
    if match is None:
        return None
    years = int(match.group(1)) if match.group(2) == "Y" else 0
    return "90+" if years >= 90 else f"{years // 10 * 10}-{years // 10 * 10 + 9}"


def _number(ds: Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def labels_of(ds: Dataset) -> SeriesLabels:
    sex = str(ds.get("PatientSex", "") or "").strip().upper()
    kernel = _text(ds, "ConvolutionKernel").strip()
    return SeriesLabels(
        modality=str(ds.get("Modality", "") or "").strip().upper() or "unknown",
        phase=phase_of(ds), region=region_of(ds),
        kvp=_number(ds, "KVP"), thickness_mm=_number(ds, "SliceThickness"),
        kernel=kernel[:64] or None,
        manufacturer=str(ds.get("Manufacturer", "") or "").strip()[:64] or None,
        age_band=age_band(str(ds.get("PatientAge", "") or "")),
        sex=sex if sex in ("M", "F", "O") else None,
    )
