"""Every problem a client can meet names the guide section that says what to do next, and the
refusals that only the operators can remedy are server errors."""

import re
from pathlib import Path

import pytest

from digital_contrast.api.problems import (
    GUIDE_BY_CODE,
    GUIDE_BY_PREFIX,
    GUIDE_DEFAULT,
    guide_for,
    problem,
    status_for,
)
from digital_contrast.config import REPO_ROOT


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.req("SRS-API-011")
def test_every_guide_pointer_names_an_existing_section() -> None:
    for pointer in {*GUIDE_BY_CODE.values(), *GUIDE_BY_PREFIX.values(), GUIDE_DEFAULT}:
        file, _, anchor = pointer.partition("#")
        assert (REPO_ROOT / file).is_file(), pointer
        assert anchor in _anchors(REPO_ROOT / file), pointer


@pytest.mark.req("SRS-API-011")
@pytest.mark.parametrize("code", ["PROTOCOL_OUTDATED", "REGISTRY_CHANGED_OUTSIDE",
                                  "RECORD_UNSIGNED", "SIGNER_UNTRUSTED", "SIGNATURE_INVALID",
                                  "KEYS_DIR_INVALID", "KEY_PERMISSIONS", "TRUSTED_KEY_INVALID",
                                  "BUNDLE_FORMAT_UNSUPPORTED"])
def test_refusals_of_the_installation_are_server_errors_with_their_guide(code: str) -> None:
    assert status_for(code) == 503
    assert guide_for(code).startswith(("docs/operations.md#", "docs/regulatory.md#"))


@pytest.mark.req("SRS-API-011")
def test_a_problem_body_carries_its_guide() -> None:
    body = problem(422, "CONF_SLICE_THICKNESS", "slice thickness 7 mm is outside 0.5-3 mm").body
    assert b'"see":"docs/clinical-integration.md#intended-use-envelope-conformity"' in body
    assert guide_for("SOMETHING_NEW") == GUIDE_DEFAULT


@pytest.mark.req("SRS-API-011", "SRS-INF-013")
@pytest.mark.parametrize("code", ["AORTA_NOT_FOUND", "BLOOD_REFERENCE_UNAVAILABLE"])
def test_a_series_the_cascade_cannot_read_is_an_input_refusal(code: str) -> None:
    assert status_for(code) == 422
    assert guide_for(code) == "docs/clinical-integration.md#input-refusals"
