"""De-identification of one DICOM instance at the site, by the research profile and the site's
key (`pseudonyms.SiteKey`).

Every element, in nested sequences too, is treated by its rule (`profile`): removed, emptied,
given a dummy value, a keyed UID, a date moved back by the patient's offset, cleaned text, or
kept. Private elements go unless their creator and element are on the safe-list. What was done
is recorded in the instance itself: PatientIdentityRemoved, DeidentificationMethod and its code
sequence (CID 7050), LongitudinalTemporalInformationModified. Instances whose pixels may show
text are refused, never cleaned: there is no OCR here.

The input dataset is never changed: the result is a new dataset.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian

from digital_contrast.repository.deid.clean import clean_text, identifier_words
from digital_contrast.repository.deid.profile import (
    BASIC_PROFILE_CODE,
    BASIC_TABLE_EDITION,
    CODE_MEANINGS,
    SAFE_PRIVATE_CODE,
    Action,
    Option,
    Profile,
    research_profile,
)
from digital_contrast.repository.deid.pseudonyms import SiteKey
from digital_contrast.repository.errors import RepositoryError

SECONDARY_CAPTURE_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4",
})
_TEXT_LIMITS = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "UT": 1 << 20, "UC": 1 << 20}
_DUMMY = {"PN": "DEIDENTIFIED", "AE": "DEIDENTIFIED", "CS": "DEIDENTIFIED",
          "SH": "DEIDENTIFIED", "LO": "DEIDENTIFIED", "ST": "DEIDENTIFIED",
          "LT": "DEIDENTIFIED", "UT": "DEIDENTIFIED", "UC": "DEIDENTIFIED",
          "UR": "https://deidentified.invalid",
          "DA": "19000101", "TM": "000000", "DT": "19000101000000", "AS": "000Y",
          "DS": "0", "IS": "0", "US": 0, "SS": 0, "UL": 0, "SL": 0, "FL": 0.0, "FD": 0.0,
          "UV": 0, "SV": 0}
# Identifiers whose words are dropped from any cleaned text of the same instance.
_IDENTIFYING = ("PatientName", "PatientID", "OtherPatientNames", "PatientBirthName",
                "PatientMotherBirthName", "AccessionNumber", "InstitutionName",
                "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
                "OperatorsName", "PatientAddress", "PatientTelephoneNumbers",
                "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "StudyID",
                "RequestingPhysician", "IssuerOfPatientID", "InstitutionalDepartmentName")


@dataclass(frozen=True)
class SafePrivate:
    """A private element allowed through: its creator, group and element within the block."""

    creator: str
    group: int
    element: int  # the low byte (xx of gggg,00xx's block)


def refusal(dataset: Dataset) -> RepositoryError | None:
    """Why an instance cannot be de-identified here, or None."""
    sop_class = str(dataset.get("SOPClassUID", ""))
    image_type = [str(v).upper() for v in (dataset.get("ImageType") or [])]
    if sop_class in SECONDARY_CAPTURE_CLASSES or "SCREEN SAVE" in image_type:
        return RepositoryError("DEID_SECONDARY_CAPTURE",
                               "secondary captures may show text in their pixels; the "
                               "repository takes no screen captures (no OCR)")
    if str(dataset.get("BurnedInAnnotation", "NO")).strip().upper() != "NO":
        return RepositoryError("DEID_BURNED_IN",
                               "BurnedInAnnotation is not NO: text in the pixels cannot be "
                               "removed here")
    if "PixelData" not in dataset and "FloatPixelData" not in dataset:
        return RepositoryError("DEID_NOT_IMAGE",
                               "only images are taken (no pixel data in this instance)")
    return None


class Deidentifier:
    """De-identifies instances with one site key, profile and private safe-list."""

    def __init__(self, key: SiteKey, profile: Profile | None = None,
                 safe_private: frozenset[SafePrivate] = frozenset()) -> None:
        self.key = key
        self.profile = profile or research_profile()
        self.safe_private = safe_private

    def deidentify(self, dataset: Dataset) -> Dataset:
        """A de-identified copy; RepositoryError (see `refusal`) for what must not be taken."""
        refused = refusal(dataset)
        if refused is not None:
            raise refused
        patient_id, issuer = _patient_key(dataset)
        context = _Context(
            offset=self._offset(dataset),
            identifiers=identifier_words([str(dataset.get(k, "")) for k in _IDENTIFYING]),
        )
        out = copy.deepcopy(dataset)
        out.file_meta = FileMetaDataset()
        self._walk(out, context)
        pseudonym = self.key.patient(patient_id, issuer)
        out.PatientID = pseudonym
        out.PatientName = pseudonym
        self._record_method(out)
        self._file_meta(out, dataset)
        return out

    def _offset(self, dataset: Dataset) -> dt.timedelta:
        """The patient's date offset: one per patient id and issuer at this site."""
        return dt.timedelta(days=self.key.date_offset_days(*_patient_key(dataset)))

    # --- the walk ------------------------------------------------------------------------
    def _walk(self, dataset: Dataset, context: _Context) -> None:
        creators = self._safe_creator_blocks(dataset)
        for element in list(dataset):
            tag = element.tag
            if tag.is_private:
                if not self._safe(tag, creators):
                    del dataset[tag]
                continue
            if tag.element == 0:  # group lengths: retired, and wrong once values change
                del dataset[tag]
                continue
            action = self.profile.action(tag)
            # K on a sequence keeps it and cleans its items (Table E.1-1's legend)
            if action in (None, Action.WALK, Action.KEEP):
                if element.VR == "SQ":
                    self._items(element, context)
                continue
            self._apply(dataset, element, action, context)

    def _items(self, element: DataElement, context: _Context) -> None:
        for item in element.value:
            self._walk(item, context)

    def _apply(self, dataset: Dataset, element: DataElement, action: Action,
               context: _Context) -> None:
        tag, vr = element.tag, element.VR
        if action is Action.KEEP:
            return
        if action is Action.REMOVE or (action is Action.CLEAN and vr == "SQ"):
            del dataset[tag]
        elif action is Action.EMPTY:
            element.value = Sequence() if vr == "SQ" else None
        elif action is Action.DUMMY and vr == "SQ":  # items kept, each cleaned by its rules
            self._items(element, context)
        elif action is Action.DUMMY and vr != "UI":
            element.value = _DUMMY.get(vr, b"\0\0")  # bytes for OB, OW, UN and the like
        elif action in (Action.UID, Action.DUMMY):  # a dummy UID is a keyed one
            element.value = [self.key.uid(str(v)) for v in _values(element)] or None
        elif action is Action.CLEAN:
            self._clean(dataset, element, context)

    def _clean(self, dataset: Dataset, element: DataElement, context: _Context) -> None:
        vr = element.VR
        if vr == "TM":  # dates move by whole days: the time of day is kept
            return
        if vr in ("DA", "DT"):
            shifted = [_shift(str(v), vr, context.offset) for v in _values(element)]
            if any(v is None for v in shifted):  # not a date we can read: it goes
                del dataset[element.tag]
            else:
                element.value = shifted or None
            return
        if vr not in _TEXT_LIMITS and vr not in ("PN", "CS", "AE"):  # no text to clean
            del dataset[element.tag]
            return
        limit = _TEXT_LIMITS.get(vr, 16 if vr in ("CS", "AE") else 64)
        element.value = [clean_text(str(v), context.identifiers, limit)
                         for v in _values(element)] or None

    def _safe_creator_blocks(self, dataset: Dataset) -> dict[tuple[int, int], str]:
        """(group, block) -> creator, for the blocks whose creator has safe elements."""
        creators = {entry.creator for entry in self.safe_private}
        blocks = {}
        for element in dataset:
            tag = element.tag
            if tag.is_private and 0x10 <= tag.element <= 0xFF and str(element.value) in creators:
                blocks[(tag.group, tag.element)] = str(element.value)
        return blocks

    def _safe(self, tag: BaseTag, blocks: dict[tuple[int, int], str]) -> bool:
        if 0x10 <= tag.element <= 0xFF:  # a creator: kept while its block keeps elements
            return (tag.group, tag.element) in blocks
        creator = blocks.get((tag.group, tag.element >> 8))
        return creator is not None and \
            SafePrivate(creator, tag.group, tag.element & 0xFF) in self.safe_private

    # --- what was done, in the instance --------------------------------------------------
    def _record_method(self, dataset: Dataset) -> None:
        codes = [BASIC_PROFILE_CODE, *sorted(self.profile.options)]
        if self.safe_private:
            codes.append(SAFE_PRIVATE_CODE)
        items = []
        for code in codes:
            item = Dataset()
            item.CodeValue = str(code)
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = CODE_MEANINGS[code]
            items.append(item)
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = (f"Digital Contrast repository, PS3.15 E.1-1 "
                                          f"{BASIC_TABLE_EDITION} and options")[:64]
        dataset.DeidentificationMethodCodeSequence = Sequence(items)
        if Option.MODIFIED_DATES in self.profile.options:
            dataset.LongitudinalTemporalInformationModified = "MODIFIED"

    @staticmethod
    def _file_meta(out: Dataset, original: Dataset) -> None:
        meta = out.file_meta
        meta.MediaStorageSOPClassUID = out.SOPClassUID
        meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
        source = getattr(original, "file_meta", None)
        syntax = getattr(source, "TransferSyntaxUID", None) if source is not None else None
        meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian


@dataclass(frozen=True)
class _Context:
    offset: dt.timedelta
    identifiers: frozenset[str]


def _patient_key(dataset: Dataset) -> tuple[str, str]:
    """(patient id, issuer) the pseudonym and date offset are keyed on. Without a patient id
    each study stands for its own patient: one pseudonym for every patient without an id
    would link strangers."""
    patient_id = str(dataset.get("PatientID", "") or "").strip()
    if not patient_id:
        return f"study:{dataset.get('StudyInstanceUID', '')}", "no patient id"
    return patient_id, str(dataset.get("IssuerOfPatientID", "") or "")


def _values(element: DataElement) -> list:
    value = element.value
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [v for v in value if v not in (None, "")]
    return [value]


def _shift(value: str, vr: str, offset: dt.timedelta) -> str | None:
    """`value` moved back by `offset`, in its own precision; None when unreadable."""
    text = value.strip()
    try:
        if vr == "DA" or len(text) >= 8:
            day = dt.datetime.strptime(text[:8], "%Y%m%d").date() - offset
            return day.strftime("%Y%m%d") + (text[8:] if vr == "DT" else "")
        if len(text) in (4, 6):  # DT of year or year-month only
            day = dt.datetime.strptime(text + "0101"[: 8 - len(text)], "%Y%m%d").date() - offset
            return day.strftime("%Y%m%d")[: len(text)]
    except ValueError:
        return None
    return None
