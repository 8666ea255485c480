"""The STOW-RS Store Instances Response (PS3.18 Annex I) as DICOM JSON, and its HTTP status.

The response is built as a pydicom Dataset and serialised with `Dataset.to_json_dict()`, so the
JSON follows PS3.18 Annex F. Reason codes are those of PS3.18 I.2; the implementation-specific
ones (marked below) belong in the conformance statement.
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from digital_contrast.api.dicomweb.urls import is_uid
from digital_contrast.intake.statuses import FailedInstance

DICOM_JSON = "application/dicom+json"


class StoredInstance(NamedTuple):
    """An instance that was stored: an item of Referenced SOP Sequence (0008,1199)."""

    sop_class_uid: str
    sop_instance_uid: str
    retrieve_url: str
    warning_reason: int | None = None


def store_instances_response(retrieve_url: str | None,
                             referenced: Iterable[StoredInstance | tuple[Any, ...]],
                             failed: Iterable[FailedInstance | tuple[Any, ...]]) -> dict[str, Any]:
    """The Store Instances Response Module as a DICOM JSON object.

    `retrieve_url` is the study's URL: Retrieve URL (0008,1190) is Type 2, so it is present and
    empty when unknown (e.g. the stored instances span several studies).
    """
    stored = [StoredInstance(*item) for item in referenced]
    failures = [FailedInstance(*item) for item in failed]
    ds = Dataset()
    ds.RetrieveURL = retrieve_url or ""
    if failures:
        ds.FailedSOPSequence = Sequence([_failed_item(item) for item in failures])
    if stored:
        ds.ReferencedSOPSequence = Sequence([_referenced_item(item) for item in stored])
    return ds.to_json_dict()


def stow_status(referenced: Iterable[StoredInstance | tuple[Any, ...]],
                failed: Iterable[FailedInstance | tuple[Any, ...]]) -> int:
    """HTTP status of a Store transaction (PS3.18 Table 10.5.3-1): 200 all stored without
    warnings, 202 stored some but warnings or failures exist, 409 stored none."""
    stored = [StoredInstance(*item) for item in referenced]
    failures = list(failed)
    if not stored and not failures:
        raise ValueError("a Store transaction has at least one instance, stored or failed")
    if not stored:
        return 409
    if failures or any(item.warning_reason is not None for item in stored):
        return 202
    return 200


def _referenced_item(item: StoredInstance) -> Dataset:
    for label, uid in (("SOP Class UID", item.sop_class_uid),
                       ("SOP Instance UID", item.sop_instance_uid)):
        if not is_uid(uid):
            raise ValueError(f"stored instance: {label} {uid!r} is not a UID")
    if not item.retrieve_url:
        raise ValueError("stored instance: a stored instance is retrievable, give its URL")
    entry = Dataset()
    entry.ReferencedSOPClassUID = item.sop_class_uid
    entry.ReferencedSOPInstanceUID = item.sop_instance_uid
    entry.RetrieveURL = item.retrieve_url
    if item.warning_reason is not None:
        if not 0xB000 <= item.warning_reason <= 0xBFFF:
            raise ValueError(f"warning reason {item.warning_reason:#06x} is not a Bxxx warning")
        entry.WarningReason = int(item.warning_reason)
    return entry


def _failed_item(item: FailedInstance) -> Dataset:
    for label, uid in (("SOP Class UID", item.sop_class_uid),
                       ("SOP Instance UID", item.sop_instance_uid)):
        if uid is not None and not is_uid(uid):
            raise ValueError(f"failed instance: {label} {uid!r} is not a UID (give None)")
    reason = int(item.failure_reason)
    if not 0 < reason <= 0xFFFF or 0xB000 <= reason <= 0xBFFF:
        raise ValueError(f"failure reason {reason:#06x} is not a failure status")
    entry = Dataset()
    # Type 1 in the SOP Instance Reference Macro; present and empty when the part was not
    # readable, so that clients reading the item find the attributes.
    entry.ReferencedSOPClassUID = item.sop_class_uid or ""
    entry.ReferencedSOPInstanceUID = item.sop_instance_uid or ""
    entry.FailureReason = reason
    return entry
