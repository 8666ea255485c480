"""One received DICOM instance checked before it is stored, whatever the channel (STOW-RS,
zip upload, DIMSE C-STORE): `validate_instance` either returns the parsed instance (raw bytes
for storage, header for the database) or the failure to report, with its DICOM status."""

import io
import re
from collections.abc import Collection
from dataclasses import dataclass, field

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    LegacyConvertedEnhancedCTImageStorage,
    SecondaryCaptureImageStorage,
)

from digital_contrast.intake.pixel_module import pixel_problem
from digital_contrast.intake.statuses import FailedInstance, FailureReason, IntakeCode

# Digits and dots, at most 64 characters (PS3.5 9.1). Leading zeros in a component break the
# letter of the rule but are common from real scanners; what matters here is that a UID can never
# carry a path separator, a query or an encoded character into a URL or a file name.
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def is_uid(value: object) -> bool:
    """Whether `value` is a UID that is safe to put in a URL or a path."""
    return isinstance(value, str) and len(value) <= 64 and _UID.fullmatch(value) is not None


DEFAULT_ACCEPTED_SOP_CLASSES = frozenset({
    CTImageStorage, EnhancedCTImageStorage, LegacyConvertedEnhancedCTImageStorage,
    SecondaryCaptureImageStorage,
})
_INSTANCE_UIDS = (("SOPInstanceUID", "SOP Instance UID"),
                  ("StudyInstanceUID", "Study Instance UID"),
                  ("SeriesInstanceUID", "Series Instance UID"))
_PREAMBLE = 128
_FILE_META_GROUP = b"\x02\x00"  # group 0002, little endian: a File Meta element comes first
# Bulk values left out of the header kept for the database (the raw bytes keep everything).
_BULK = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Large binary values are read but not base64-encoded when checking the header.
_JSON_BULK_THRESHOLD = 1024
# Raw elements already shown to convert and serialise, by the hash of everything that decides
# it (tag, VR, value bytes, encoding, character set): most elements of a series repeat in every
# instance, and checking each costs more than storing the file. Hashes, not values: no patient
# data outlives its request. Bounded: emptied when full.
_SERIALISABLE: set[int] = set()
_SERIALISABLE_MAX = 1 << 16


def _skip_bulk(_element: object) -> str:
    return ""


@dataclass(frozen=True)
class ParsedInstance:
    """A part that passed validation: `data` is stored as received (with a preamble added where
    it had none); `header` is the file meta and data set without pixel data."""

    data: bytes = field(repr=False)
    header: Dataset = field(repr=False)
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str


def validate_instance(body: bytes, *, study_instance_uid: str | None = None,
                  accepted_sop_classes: Collection[str] = DEFAULT_ACCEPTED_SOP_CLASSES,
                  accepted_transfer_syntaxes: Collection[str] | None = None,
                  ) -> ParsedInstance | FailedInstance:
    """Read one received file; a failure names the single most appropriate reason.

    A PS3.10 file is expected; one that starts directly with its File Meta (no preamble) is
    accepted and given the 128-byte preamble and DICM prefix, nothing else changed.

    Not a DICOM file, no File Meta, no SOP Class UID, an element that cannot be read (e.g. an
    unknown VR) -> CANNOT_UNDERSTAND (0xC000); SOP class not accepted -> 0x0122; transfer
    syntax not accepted -> 0xC122; a missing or invalid instance, study or series UID, file
    meta that contradicts the data set, or an image pixel module that is incomplete, out of
    range or inconsistent with its pixel data (`pixel_module`) -> 0xA900; another study than
    `study_instance_uid` -> 0xA901. Each failure also carries its `IntakeCode`; no detail
    quotes an element's value (patient data).
    """
    if body[_PREAMBLE:_PREAMBLE + 4] != b"DICM" and body[:2] == _FILE_META_GROUP:
        # File Meta without the preamble: what dicomweb-client sends for a data set built in
        # memory. The preamble is added so that what is stored is a conformant PS3.10 file.
        body = bytes(_PREAMBLE) + b"DICM" + body
    try:
        ds = pydicom.dcmread(io.BytesIO(body), force=False)
    except InvalidDicomError:
        return _cannot_understand("it is not a DICOM file (no DICM prefix, no File Meta)",
                                  IntakeCode.NOT_DICOM)
    except Exception:  # any parse error of untrusted bytes fails this part, not the request
        return _cannot_understand("it is damaged and cannot be read as DICOM",
                                  IntakeCode.UNREADABLE)
    try:
        return _checked(ds, body, study_instance_uid, accepted_sop_classes,
                        accepted_transfer_syntaxes)
    except Exception as exc:  # an element that only fails when its value is read
        return _cannot_understand(f"it cannot be read as DICOM ({type(exc).__name__})",
                                  IntakeCode.UNREADABLE)


def _checked(ds: Dataset, body: bytes, study_instance_uid: str | None,
             accepted_sop_classes: Collection[str],
             accepted_transfer_syntaxes: Collection[str] | None,
             ) -> ParsedInstance | FailedInstance:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if not syntax:
        return _cannot_understand("it has no File Meta Information with a Transfer Syntax UID",
                                  IntakeCode.NO_FILE_META)
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if not is_uid(sop_class):
        return _cannot_understand("it has no valid SOP Class UID", IntakeCode.NO_SOP_CLASS)
    sop_instance = str(ds.get("SOPInstanceUID", "") or "")

    def failed(reason: FailureReason, detail: str, code: IntakeCode) -> FailedInstance:
        return FailedInstance(sop_class, sop_instance if is_uid(sop_instance) else None,
                              reason, detail, code.value)

    if sop_class not in accepted_sop_classes:
        return failed(FailureReason.SOP_CLASS_NOT_SUPPORTED,
                      f"{UID(sop_class).name or 'its SOP class'} is not accepted",
                      IntakeCode.SOP_CLASS)
    if accepted_transfer_syntaxes is not None and syntax not in accepted_transfer_syntaxes:
        return failed(FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
                      f"its transfer syntax {UID(syntax).name or syntax} is not accepted",
                      IntakeCode.TRANSFER_SYNTAX)
    for keyword, label in _INSTANCE_UIDS:
        if not is_uid(str(ds.get(keyword, "") or "")):
            return failed(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                          f"its {label} is missing or not a valid UID", IntakeCode.UID_INVALID)
    for keyword, label in (("MediaStorageSOPClassUID", sop_class),
                           ("MediaStorageSOPInstanceUID", sop_instance)):
        if ds.file_meta.get(keyword, label) != label:
            return failed(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                          f"its File Meta {keyword} contradicts the data set",
                          IntakeCode.FILE_META_MISMATCH)
    if study_instance_uid is not None and ds.StudyInstanceUID != study_instance_uid:
        return failed(FailureReason.STUDY_INSTANCE_UID_MISMATCH,
                      "it belongs to another study than the one in the request URL",
                      IntakeCode.STUDY_MISMATCH)
    problem = pixel_problem(ds, sop_class, UID(syntax))
    if problem:
        return failed(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, problem.detail,
                      problem.code)
    for keyword in _BULK:
        if keyword in ds:
            del ds[keyword]
    # pydicom 3 keeps the buffer a data set was read from: without this, every header would
    # hold its whole file (pixel data included) for as long as the request runs.
    ds.buffer = None
    tag = unserialisable_element(ds)
    if tag is not None:
        return failed(FailureReason.CANNOT_UNDERSTAND, f"its element {tag} cannot be read "
                      "(unknown or invalid value representation or value)",
                      IntakeCode.ELEMENT_UNREADABLE)
    return ParsedInstance(data=body, header=ds, sop_class_uid=sop_class,
                          sop_instance_uid=sop_instance,
                          study_instance_uid=str(ds.StudyInstanceUID),
                          series_instance_uid=str(ds.SeriesInstanceUID),
                          transfer_syntax_uid=str(syntax))


def _cannot_understand(detail: str, code: IntakeCode) -> FailedInstance:
    return FailedInstance(None, None, FailureReason.CANNOT_UNDERSTAND, detail, code.value)


def unserialisable_element(header: Dataset) -> BaseTag | None:
    """The first element of `header` that cannot be given as DICOM JSON (WADO-RS metadata,
    QIDO includefield), sequences included: a stored instance must never make a later read
    fail. pydicom converts raw elements lazily, so an unknown VR only shows up here."""
    charset = header.get("SpecificCharacterSet")
    context = tuple(charset) if isinstance(charset, MultiValue) else charset
    for tag in list(header.keys()):
        key = _raw_key(header.get_item(tag), context)
        if key in _SERIALISABLE:
            continue
        try:
            header[tag].to_json_dict(_skip_bulk, _JSON_BULK_THRESHOLD)
        except Exception:  # its message may quote the value: only the tag is reported
            return BaseTag(tag)
        if key is not None:
            if len(_SERIALISABLE) >= _SERIALISABLE_MAX:
                _SERIALISABLE.clear()
            _SERIALISABLE.add(key)
    return None


def _raw_key(element: object, charset: object) -> int | None:
    """What decides whether a raw element converts, hashed; None where it is not raw (a
    sequence, already parsed), large, or of a VR that depends on other elements."""
    if not isinstance(element, RawDataElement) or element.value is None \
            or len(element.value) > _JSON_BULK_THRESHOLD or " or " in (element.VR or ""):
        return None
    return hash((element.tag, element.VR, element.value, element.is_implicit_VR,
                 element.is_little_endian, charset))
