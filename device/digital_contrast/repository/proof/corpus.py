"""The planted-PHI corpus: CT instances carrying every attribute of the checker's Table E.1-1,
each with a value that names its own tag (`PHI` + 8 hex digits), at the top level and two
sequence items deep, beside private blocks, in several character sets; two patients, two
studies each, two series each, so that UIDs, pseudonyms and date offsets can be checked for
consistency. Every instance is written and read back before use, so that the character sets
are really encoded.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass

import numpy as np
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from digital_contrast.repository.deid.deidentify import SafePrivate
from digital_contrast.repository.proof.table import Row, load_table

TOKEN = re.compile(r"PHI([0-9A-F]{8})")
NESTED = ("AnatomicRegionSequence", "AnatomicRegionModifierSequence")  # kept, not in the table
ROOT = "1.2.826.0.1.3680043.10.1087"  # planted UIDs (test data, never issued to a device)
# Private blocks: one whose elements are all identifying, one on the safe-list.
PHI_CREATOR = ("PHI CORP 1", 0x0009)
SAFE_CREATOR = ("DC SAFE 1", 0x0011)
SAFE_ELEMENT = 0x01  # (0011,xx01): safe; (0011,xx02) is not
SAFE_LIST = frozenset({SafePrivate(SAFE_CREATOR[0], SAFE_CREATOR[1], SAFE_ELEMENT)})
CHARSETS = {  # character set -> (surname, given name, PN with ideographic group)
    "ISO_IR 100": ("Müller", "Jörg", None),
    "ISO_IR 192": ("山田", "太郎", None),
    "ISO 2022 IR 6\\ISO 2022 IR 87": ("Yamada", "Tarou", "山田^太郎"),
}
_BASE_DATES = (dt.date(2023, 3, 14), dt.date(2019, 11, 2))  # per patient


def token(tag: int) -> str:
    return f"PHI{tag:08X}"


@dataclass(frozen=True)
class Planted:
    """One planted attribute: where (`placement`), its row and the value written."""

    row: Row
    tag: int
    vr: str
    placement: str  # "top" or "nested"


@dataclass(frozen=True)
class CorpusInstance:
    dataset: Dataset  # as read back from its bytes
    patient: int
    study: int
    series: int
    charset: str
    planted: tuple[Planted, ...]
    surnames: tuple[str, ...]  # the names written in this instance's character set


def _vr(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr.split(" or ")[0]


def plantable(row: Row) -> tuple[int, str] | None:
    """(tag, VR) of the row as planted; None for a command-group row or a tag unknown to
    pydicom's dictionary (no VR to write it with)."""
    if row.private:
        return None
    tag = row.concrete_tag()
    if tag >> 16 in (0x0000, 0x0002):  # command and file meta groups: not in a data set
        return None
    vr = _vr(tag)
    return None if vr is None else (tag, vr)


def _value(tag: int, vr: str, patient: int, study: int, series: int, charset: str):
    name = CHARSETS[charset]
    mark = token(tag)
    date = _BASE_DATES[patient] + dt.timedelta(days=study * 200 + (tag % 97))
    if vr == "PN":
        ideographic = name[2]
        return f"{mark}^{name[1]}" + (f"={ideographic}" if ideographic else "")
    if vr in ("LO", "LT", "ST", "UT", "UC"):
        return f"ABDOMEN {mark} {name[0]}"
    if vr in ("SH", "CS", "AE"):
        return mark
    if vr == "DA":
        return date.strftime("%Y%m%d")
    if vr == "TM":
        return "101530.125"
    if vr == "DT":
        return date.strftime("%Y%m%d") + "101530"
    if vr == "UI":
        unique = {0x0020000D: (study,), 0x0020000E: (study, series),
                  0x00080018: (study, series)}.get(tag, (study,))
        return ".".join([ROOT, str(patient), *map(str, unique), str(tag)])
    if vr == "AS":
        return "045Y"
    if vr in ("DS", "FL", "FD"):
        return "72.5" if vr == "DS" else 72.5
    if vr in ("IS", "US", "SS", "UL", "SL", "UV", "SV"):
        return "42" if vr == "IS" else 42
    if vr == "AT":
        return 0x00100010
    if vr == "UR":
        return f"http://example.invalid/{mark}"
    if vr == "SQ":
        item = Dataset()
        item.PersonName = f"{mark}^{name[1]}"
        return Sequence([item])
    return mark.encode() * 2  # OB, OW, OF, OD, OL, OV, UN: an even length


def ct_image(series: int, charset: str) -> Dataset:
    """A 16 x 16 CT image without identity: the carrier of the planted attributes."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset.split("\\")
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.BurnedInAnnotation = "NO"
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.KVP = "120"
    ds.SliceThickness = "1.0"
    ds.PixelData = np.full((16, 16), 1040 + 10 * series, dtype=np.int16).tobytes()
    region = Dataset()
    region.CodeValue = "818981001"
    region.CodingSchemeDesignator = "SCT"
    region.CodeMeaning = "Abdomen"
    modifier = Dataset()
    region.AnatomicRegionModifierSequence = Sequence([modifier])
    ds.AnatomicRegionSequence = Sequence([region])
    return ds


def file_bytes(ds: Dataset) -> bytes:
    """The CT instance as a PS3.10 file (Explicit VR Little Endian)."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _private(ds: Dataset, patient: int, charset: str) -> None:
    surname = CHARSETS[charset][0]
    phi = ds.private_block(PHI_CREATOR[1], PHI_CREATOR[0], create=True)
    phi.add_new(0x01, "LO", f"{token(0x00091001)} {surname}")
    phi.add_new(0x02, "PN", f"{token(0x00091002)}^{surname}")
    safe = ds.private_block(SAFE_CREATOR[1], SAFE_CREATOR[0], create=True)
    safe.add_new(SAFE_ELEMENT, "DS", "1.5")
    safe.add_new(0x02, "LO", f"{token(0x00111002)} {surname}")


def _instance(patient: int, study: int, series: int, charset: str,
              rows: list[tuple[Row, int, str]]) -> CorpusInstance:
    ds = ct_image(series, charset)
    nested = ds.AnatomicRegionSequence[0].AnatomicRegionModifierSequence[0]
    planted = []
    for row, tag, vr in rows:
        for placement, target in (("top", ds), ("nested", nested)):
            target.add_new(tag, vr, _value(tag, vr, patient, study, series, charset))
            planted.append(Planted(row, tag, vr, placement))
    # the instance's identity, planted as rows above, must still make one coherent study
    ds.PatientID = f"{token(0x00100020)}-{patient}"
    ds.IssuerOfPatientID = f"{token(0x00100021)}"
    _private(ds, patient, charset)
    read = dcmread(io.BytesIO(file_bytes(ds)))
    surname, given, ideographic = CHARSETS[charset]
    names = (surname, given, *(ideographic.split("^") if ideographic else ()))
    return CorpusInstance(read, patient, study, series, charset, tuple(planted), names)


def planted_corpus() -> list[CorpusInstance]:
    """Eight instances: 2 patients x 2 studies x 2 series, character sets in turn."""
    rows = [(row, *found) for row in load_table().rows if (found := plantable(row))]
    charsets = list(CHARSETS)
    out = []
    for patient in range(2):
        for study in range(2):
            for series in range(2):
                charset = charsets[(patient * 4 + study * 2 + series) % len(charsets)]
                out.append(_instance(patient, study, series, charset, rows))
    return out
