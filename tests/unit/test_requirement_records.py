"""Requirement records: the real ones load; malformed ones are refused with every problem named."""

from pathlib import Path

import pytest
import yaml

from digital_contrast.qms.records import QmsRecordError
from digital_contrast.qms.requirements import Category, load_requirements

GOOD_REQ = {
    "id": "SRS-IMG-001", "title": "Read a series", "statement": "Reads a CT series.",
    "category": "inputs-outputs", "parents": ["UN-001"], "software_items": ["SI-IMAGING"],
    "risk_control": False, "verification": "test",
}


def _records(tmp_path: Path, requirements: list[dict]) -> Path:
    (tmp_path / "requirements").mkdir(parents=True)
    need = {"id": "UN-001", "title": "A need", "statement": "Users need it.",
            "users": ["radiologist"]}
    (tmp_path / "requirements" / "user_needs.yaml").write_text(
        yaml.safe_dump({"user_needs": [need]}))
    (tmp_path / "requirements" / "software_requirements.yaml").write_text(
        yaml.safe_dump({"requirements": requirements}))
    (tmp_path / "software_items.yaml").write_text(yaml.safe_dump({"software_items": [
        {"id": "SI-IMAGING", "name": "Imaging", "package": "digital_contrast.imaging",
         "safety_class": "C", "safety_class_rationale": "It writes the images.",
         "sources": ["device/digital_contrast/imaging/**/*.py"],
         "interfaces": ["DICOM files"]}]}))
    return tmp_path


@pytest.mark.req("SRS-QMS-001")
def test_the_repository_records_are_valid_and_traced() -> None:
    records = load_requirements()
    assert len(records.requirements) >= 20
    for req in records.requirements.values():
        assert req.derived or req.parents
        assert isinstance(req.category, Category)
    assert {"SI-IMAGING", "SI-QMS", "SI-SYSTEM"} <= set(records.software_items)


@pytest.mark.req("SRS-QMS-001")
def test_a_valid_minimal_set_loads(tmp_path: Path) -> None:
    records = load_requirements(_records(tmp_path, [GOOD_REQ]))
    assert records.requirements["SRS-IMG-001"].parents == ["UN-001"]


@pytest.mark.req("SRS-QMS-001")
@pytest.mark.parametrize(("change", "message"), [
    ({"id": "SRS-1"}, "String should match pattern"),
    ({"parents": []}, "parent user needs"),
    ({"parents": [], "derived": True}, "rationale"),
    ({"parents": ["UN-999"]}, "unknown parent UN-999"),
    ({"software_items": ["SI-NOPE"]}, "unknown software item SI-NOPE"),
    ({"category": "vibes"}, "Input should be"),
    ({"verification": "hope"}, "Input should be"),
    ({"surprise": 1}, "Extra inputs are not permitted"),
])
def test_malformed_requirements_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(QmsRecordError) as info:
        load_requirements(_records(tmp_path, [GOOD_REQ | change]))
    assert message in info.value.detail
    assert info.value.code == "QMS_RECORD_INVALID"


@pytest.mark.req("SRS-QMS-001")
def test_derived_requirement_with_rationale_is_accepted(tmp_path: Path) -> None:
    derived = GOOD_REQ | {"parents": [], "derived": True, "rationale": "Needed by design."}
    assert load_requirements(_records(tmp_path, [derived])).requirements["SRS-IMG-001"].derived


@pytest.mark.req("SRS-QMS-001")
def test_duplicates_and_every_problem_are_reported(tmp_path: Path) -> None:
    with pytest.raises(QmsRecordError, match="duplicate requirement id SRS-IMG-001"):
        load_requirements(_records(tmp_path / "a", [GOOD_REQ, GOOD_REQ]))
    bad = [GOOD_REQ | {"id": "SRS-IMG-002", "parents": ["UN-998"]},
           GOOD_REQ | {"id": "SRS-IMG-003", "parents": ["UN-997"]}]
    with pytest.raises(QmsRecordError) as info:
        load_requirements(_records(tmp_path / "b", bad))
    assert "UN-998" in info.value.detail and "UN-997" in info.value.detail
