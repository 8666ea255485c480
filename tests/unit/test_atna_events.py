"""The DICOM event each audit action is exported as (PS3.15 A.5, IHE ATNA)."""

import pytest

from digital_contrast.atna.message import dicom_event


@pytest.mark.req("SRS-AUD-007", "SRS-REPO-011")
@pytest.mark.parametrize(("action", "code", "verb"), [
    ("repository.search", "110112", "E"),  # Query
    ("repository.cohort_read", "110112", "E"),
    ("result.download", "110103", "R"),  # DICOM Instances Accessed
    ("purge.study", "110105", "D"),
    ("something.new", "110100", "E"),  # Application Activity
])
def test_each_action_is_its_dicom_event(action: str, code: str, verb: str) -> None:
    event = dicom_event(action)
    assert (event.code, event.action) == (code, verb)
