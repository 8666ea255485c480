"""STOW-RS instances: validate each part (PS3.18 10.5) and account for one request's outcome.

`validate_part` reads one part with pydicom and either returns the parsed instance (raw bytes
for storage, header for the database) or the failure to report, with its PS3.18 I.2.2 reason.
`StowRequest` applies the per-request rules (part media type, study in the URL, one occurrence
per SOP Instance UID) and builds the response once the route has stored what passed.
"""

import io
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    LegacyConvertedEnhancedCTImageStorage,
    SecondaryCaptureImageStorage,
)

from digital_contrast.api.dicomweb.multipart import Part
from digital_contrast.api.dicomweb.store_response import (
    FailedInstance,
    FailureReason,
    StoredInstance,
    WarningReason,
    store_instances_response,
    stow_status,
)
from digital_contrast.api.dicomweb.urls import instance_url, is_uid, require_uid, study_url

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


def validate_part(body: bytes, *, study_instance_uid: str | None = None,
                  accepted_sop_classes: Collection[str] = DEFAULT_ACCEPTED_SOP_CLASSES,
                  accepted_transfer_syntaxes: Collection[str] | None = None,
                  ) -> ParsedInstance | FailedInstance:
    """Read one STOW-RS part; a failure names the single most appropriate reason.

    A PS3.10 file is expected; one that starts directly with its File Meta (no preamble) is
    accepted and given the 128-byte preamble and DICM prefix, nothing else changed.

    Not a DICOM file, no File Meta, no SOP Class UID -> CANNOT_UNDERSTAND (0xC000); SOP class
    not accepted -> 0x0122; transfer syntax not accepted -> 0xC122; a missing or invalid
    instance, study or series UID, file meta that contradicts the data set, or an image without
    complete pixel data -> 0xA900; another study than `study_instance_uid` -> 0xA901.
    """
    if body[_PREAMBLE:_PREAMBLE + 4] != b"DICM" and body[:2] == _FILE_META_GROUP:
        # File Meta without the preamble: what dicomweb-client sends for a data set built in
        # memory. The preamble is added so that what is stored is a conformant PS3.10 file.
        body = bytes(_PREAMBLE) + b"DICM" + body
    try:
        ds = pydicom.dcmread(io.BytesIO(body), force=False)
    except InvalidDicomError:
        return _cannot_understand("it is not a DICOM file (no DICM prefix, no File Meta)")
    except Exception:  # any parse error of untrusted bytes fails this part, not the request
        return _cannot_understand("it is damaged and cannot be read as DICOM")
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if not syntax:
        return _cannot_understand("it has no File Meta Information with a Transfer Syntax UID")
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if not is_uid(sop_class):
        return _cannot_understand("it has no valid SOP Class UID")
    sop_instance = str(ds.get("SOPInstanceUID", "") or "")

    def failed(reason: FailureReason, detail: str) -> FailedInstance:
        return FailedInstance(sop_class, sop_instance if is_uid(sop_instance) else None,
                              reason, detail)

    if sop_class not in accepted_sop_classes:
        return failed(FailureReason.SOP_CLASS_NOT_SUPPORTED,
                      f"{UID(sop_class).name or 'its SOP class'} is not accepted")
    if accepted_transfer_syntaxes is not None and syntax not in accepted_transfer_syntaxes:
        return failed(FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
                      f"its transfer syntax {UID(syntax).name or syntax} is not accepted")
    for keyword, label in _INSTANCE_UIDS:
        if not is_uid(str(ds.get(keyword, "") or "")):
            return failed(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                          f"its {label} is missing or not a valid UID")
    for keyword, label in (("MediaStorageSOPClassUID", sop_class),
                           ("MediaStorageSOPInstanceUID", sop_instance)):
        if ds.file_meta.get(keyword, label) != label:
            return failed(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                          f"its File Meta {keyword} contradicts the data set")
    if study_instance_uid is not None and ds.StudyInstanceUID != study_instance_uid:
        return failed(FailureReason.STUDY_INSTANCE_UID_MISMATCH,
                      "it belongs to another study than the one in the request URL")
    problem = _pixel_problem(ds, UID(syntax))
    if problem:
        return failed(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, problem)
    for keyword in _BULK:
        if keyword in ds:
            del ds[keyword]
    return ParsedInstance(data=body, header=ds, sop_class_uid=sop_class,
                          sop_instance_uid=sop_instance,
                          study_instance_uid=str(ds.StudyInstanceUID),
                          series_instance_uid=str(ds.SeriesInstanceUID),
                          transfer_syntax_uid=str(syntax))


def _cannot_understand(detail: str) -> FailedInstance:
    return FailedInstance(None, None, FailureReason.CANNOT_UNDERSTAND, detail)


def _pixel_problem(ds: Dataset, syntax: UID) -> str | None:
    """An image whose pixel data is absent or, when native, shorter than its geometry needs:
    pydicom stops quietly where a file is cut, so the cut shows up here."""
    if "Rows" not in ds or "Columns" not in ds:
        return None  # not an image
    if not any(keyword in ds for keyword in _BULK):
        return "it is an image without pixel data (the file may be truncated)"
    if "PixelData" not in ds or syntax.is_compressed:
        return None
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
        bits = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel") or 1) * frames \
            * int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return "its image pixel description is incomplete"
    if len(ds.PixelData) < (bits + 7) // 8:
        return "its pixel data is shorter than its rows, columns and bits need (truncated)"
    return None


class StowRequest:
    """The outcome of one STOW-RS request, part by part.

    The route parses the body, calls `check(part)` for each part, stores what it returns and
    reports each result with `stored()` or, when storage itself refuses, `failed()`; then
    `status` and `response()` give the HTTP status and the DICOM JSON body. A SOP Instance UID
    repeated within the request fails as DUPLICATE_SOP_INSTANCE (0x0111) whatever its content:
    only the first occurrence is offered to storage, so one request never holds two versions
    of one instance.
    """

    def __init__(self, base_url: str, *, study_instance_uid: str | None = None,
                 accepted_sop_classes: Collection[str] = DEFAULT_ACCEPTED_SOP_CLASSES,
                 accepted_transfer_syntaxes: Collection[str] | None = None) -> None:
        self.base_url = base_url
        self.study_instance_uid = (None if study_instance_uid is None else
                                   require_uid(study_instance_uid, "Study Instance UID"))
        self.accepted_sop_classes = accepted_sop_classes
        self.accepted_transfer_syntaxes = accepted_transfer_syntaxes
        self.referenced: list[StoredInstance] = []
        self.failures: list[FailedInstance] = []
        self._seen: set[str] = set()
        self._pending: dict[str, ParsedInstance] = {}
        self._studies: set[str] = set()

    def check(self, part: Part) -> ParsedInstance | None:
        """The instance to store, or None when the part failed (recorded in `failures`)."""
        if not part.is_dicom:
            return self._fail(FailedInstance(
                None, None, FailureReason.CANNOT_UNDERSTAND,
                f"part {part.index + 1}: it is {part.media_type or 'of no stated type'}, "
                "not application/dicom"))
        outcome = validate_part(part.body, study_instance_uid=self.study_instance_uid,
                                accepted_sop_classes=self.accepted_sop_classes,
                                accepted_transfer_syntaxes=self.accepted_transfer_syntaxes)
        if isinstance(outcome, FailedInstance):
            return self._fail(outcome._replace(detail=f"part {part.index + 1}: "
                                                      f"{outcome.detail}"))
        if outcome.sop_instance_uid in self._seen:
            return self._fail(FailedInstance(
                outcome.sop_class_uid, outcome.sop_instance_uid,
                FailureReason.DUPLICATE_SOP_INSTANCE,
                f"part {part.index + 1}: it repeats a SOP Instance UID already sent in this "
                "request"))
        self._seen.add(outcome.sop_instance_uid)
        self._pending[outcome.sop_instance_uid] = outcome
        return outcome

    def stored(self, instance: ParsedInstance, warning: WarningReason | None = None) -> None:
        """Storage kept `instance` (with a warning when it coerced or discarded elements)."""
        self._take(instance)
        self._studies.add(instance.study_instance_uid)
        self.referenced.append(StoredInstance(
            instance.sop_class_uid, instance.sop_instance_uid,
            instance_url(self.base_url, instance.study_instance_uid,
                         instance.series_instance_uid, instance.sop_instance_uid),
            warning))

    def failed(self, instance: ParsedInstance, reason: FailureReason, detail: str = "") -> None:
        """Storage refused a checked instance (e.g. OUT_OF_RESOURCES, PROCESSING_FAILURE)."""
        self._take(instance)
        self.failures.append(FailedInstance(instance.sop_class_uid, instance.sop_instance_uid,
                                            reason, detail))

    @property
    def unreported(self) -> list[ParsedInstance]:
        """Checked instances with neither `stored()` nor `failed()` yet."""
        return list(self._pending.values())

    @property
    def status(self) -> int:
        return stow_status(self.referenced, self.failures)

    def response(self) -> dict[str, Any]:
        """The Store Instances Response; every checked instance must have been reported."""
        if self._pending:
            raise ValueError(f"{len(self._pending)} checked instance(s) were never reported "
                             "as stored or failed")
        study = self.study_instance_uid or (next(iter(self._studies))
                                            if len(self._studies) == 1 else None)
        return store_instances_response(study_url(self.base_url, study) if study else None,
                                        self.referenced, self.failures)

    def _fail(self, failure: FailedInstance) -> None:
        self.failures.append(failure)
        return None

    def _take(self, instance: ParsedInstance) -> None:
        if self._pending.pop(instance.sop_instance_uid, None) is not instance:
            raise ValueError("the instance was not returned by check() of this request, or "
                             "was already reported")
