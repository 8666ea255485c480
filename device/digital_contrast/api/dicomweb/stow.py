"""STOW-RS instances: each part checked by the intake (PS3.18 10.5), and one request's outcome.

`StowRequest` applies the per-request rules (part media type, study in the URL, one occurrence
per SOP Instance UID) and builds the response once the route has stored what passed.
"""

import logging
from collections.abc import Collection
from typing import Any

from digital_contrast.api.dicomweb.multipart import Part
from digital_contrast.api.dicomweb.store_response import (
    StoredInstance,
    store_instances_response,
    stow_status,
)
from digital_contrast.api.dicomweb.urls import instance_url, require_uid, study_url
from digital_contrast.intake.instance import (
    DEFAULT_ACCEPTED_SOP_CLASSES,
    ParsedInstance,
    validate_instance,
)
from digital_contrast.intake.statuses import FailedInstance, FailureReason, WarningReason

log = logging.getLogger(__name__)


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
        # Checked and not reported yet, by SOP Instance UID: never the instances themselves,
        # whose bytes intake drops once written (a request's memory stays bounded).
        self._pending: set[str] = set()
        self._studies: set[str] = set()

    def check(self, part: Part) -> ParsedInstance | None:
        """The instance to store, or None when the part failed (recorded in `failures`)."""
        if not part.is_dicom:
            return self._fail(FailedInstance(
                None, None, FailureReason.CANNOT_UNDERSTAND,
                f"part {part.index + 1}: it is {part.media_type or 'of no stated type'}, "
                "not application/dicom"))
        outcome = validate_instance(part.body, study_instance_uid=self.study_instance_uid,
                                accepted_sop_classes=self.accepted_sop_classes,
                                accepted_transfer_syntaxes=self.accepted_transfer_syntaxes)
        if isinstance(outcome, FailedInstance):
            # The response carries only the DICOM status: the code and detail go to the log
            # (written for people, they name no patient data).
            log.warning("STOW-RS part %d refused with 0x%04X %s: %s", part.index + 1,
                        int(outcome.failure_reason), outcome.code, outcome.detail)
            return self._fail(outcome._replace(detail=f"part {part.index + 1}: "
                                                      f"{outcome.detail}"))
        if outcome.sop_instance_uid in self._seen:
            return self._fail(FailedInstance(
                outcome.sop_class_uid, outcome.sop_instance_uid,
                FailureReason.DUPLICATE_SOP_INSTANCE,
                f"part {part.index + 1}: it repeats a SOP Instance UID already sent in this "
                "request"))
        self._seen.add(outcome.sop_instance_uid)
        self._pending.add(outcome.sop_instance_uid)
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
    def unreported(self) -> list[str]:
        """SOP Instance UIDs of checked instances with neither `stored()` nor `failed()` yet."""
        return sorted(self._pending)

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
        if instance.sop_instance_uid not in self._pending:
            raise ValueError("the instance was not returned by check() of this request, or "
                             "was already reported")
        self._pending.remove(instance.sop_instance_uid)
