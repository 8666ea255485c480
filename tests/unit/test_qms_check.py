"""`qms check` and `qms trace`: each kind of gap reported with its file and line."""

import shutil
from pathlib import Path

import pytest
import yaml

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.check import (
    check_clauses,
    check_device,
    check_items,
    check_references,
    check_verification,
)
from digital_contrast.qms.junit_report import TestCase, TestRun
from digital_contrast.qms.requirements import load_records
from digital_contrast.qms.trace import write_trace
from tests.support.documents import assert_controlled_document


@pytest.fixture
def qms_dir(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "qms", tmp_path / "qms")
    return tmp_path / "qms"


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old` in the file; the 1-based line where it was."""
    text = path.read_text()
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old):])
    return text[:at].count("\n") + 1


def _run(cases: dict[str, tuple[tuple[str, ...], str]]) -> TestRun:
    return TestRun("junit.xml", "2026-11-29T00:00:00", {
        node: TestCase(node, reqs, outcome, 0.1) for node, (reqs, outcome) in cases.items()})


@pytest.mark.req("SRS-QMS-004")
def test_the_repository_records_load_without_problems() -> None:
    records, problems = load_records(REPO_ROOT / "qms")
    assert problems == [] and check_references(records) == []
    assert check_items(records) == []
    assert check_device(REPO_ROOT / "qms" / "device.yaml", records) == []
    assert len(records.requirements) >= 100 and len(records.items) >= 12


@pytest.mark.req("SRS-QMS-004")
def test_a_duplicated_requirement_id_is_reported_at_its_line(qms_dir: Path) -> None:
    path = qms_dir / "requirements" / "software_requirements.yaml"
    line = _edit(path, "  - id: SRS-IMG-002", "  - id: SRS-IMG-001")
    _, problems = load_records(qms_dir)
    assert [(p.file.endswith("software_requirements.yaml"), p.line) for p in problems
            if "duplicate requirement id SRS-IMG-001" in p.message] == [(True, line)]


@pytest.mark.req("SRS-QMS-004")
@pytest.mark.parametrize("old, new, expected", [
    ("    category: inputs-outputs\n", "    category: inputs-outputs\n    colour: red\n",
     "Extra inputs are not permitted"),
    ("    risk_control: true\n", "    risk_control: [yes]\n", "valid boolean"),
])
def test_a_wrong_field_or_type_is_reported_at_its_line(qms_dir: Path, old: str, new: str,
                                                       expected: str) -> None:
    path = qms_dir / "requirements" / "software_requirements.yaml"
    line = _edit(path, old, new)
    _, problems = load_records(qms_dir)
    assert len(problems) == 1 and expected in problems[0].message
    assert problems[0].line in (line, line + 1)


@pytest.mark.req("SRS-QMS-005")
def test_unknown_references_and_needs_without_requirements(qms_dir: Path) -> None:
    path = qms_dir / "requirements" / "software_requirements.yaml"
    line = _edit(path, "parents: [UN-004]", "parents: [UN-999]")
    _edit(path, "software_items: [SI-IMAGING]", "software_items: [SI-NOPE]")
    records, _ = load_records(qms_dir)
    found = {(p.message.split(": ", 1)[1], p.line) for p in check_references(records)}
    assert ("unknown user need UN-999", line) in found
    assert any(m == "unknown software item SI-NOPE" for m, _ in found)


@pytest.mark.req("SRS-QMS-006")
def test_requirements_need_a_passing_test_and_tests_known_requirements() -> None:
    records, _ = load_records(REPO_ROOT / "qms")
    everything_passed = {f"t.py::test_{rid}": ((rid,), "passed") for rid in records.requirements}
    assert check_verification(records, _run(everything_passed)) == []
    cases = dict(everything_passed)
    cases["t.py::test_SRS-IMG-001"] = (("SRS-IMG-001",), "failed")
    cases["t.py::test_SRS-IMG-002"] = (("SRS-IMG-002",), "skipped")
    del cases["t.py::test_SRS-IMG-003"]
    cases["u.py::test_ghost"] = (("SRS-NOPE-001",), "passed")
    messages = {p.message for p in check_verification(records, _run(cases))}
    assert any(m.startswith("SRS-IMG-001: none of its 1 test(s) passed") for m in messages)
    assert any(m.startswith("SRS-IMG-002: none of its 1 test(s) passed") for m in messages)
    assert "SRS-IMG-003 is verified by test but no test names it" in messages
    assert "u.py::test_ghost names unknown requirement SRS-NOPE-001" in messages


@pytest.mark.req("SRS-QMS-007")
def test_items_cover_every_module_and_every_glob_matches(qms_dir: Path, tmp_path: Path) -> None:
    package = tmp_path / "device" / "digital_contrast"
    shutil.copytree(REPO_ROOT / "device" / "digital_contrast", package,
                    ignore=shutil.ignore_patterns("__pycache__", "static", "*.pt"))
    (package / "stray.py").write_text("")  # a module no item claims
    (package / "newpkg").mkdir()
    (package / "newpkg" / "__init__.py").write_text("")
    items = qms_dir / "software_items.yaml"
    line = _edit(items, "sources: [device/digital_contrast/jobs/**/*.py]",
                 "sources: [device/digital_contrast/jobs/**/*.py, device/nothing/*.py]")
    records, _ = load_records(qms_dir)
    problems = check_items(records, tmp_path, package)
    messages = {(p.file, p.message) for p in problems}
    assert ("device/digital_contrast/stray.py", "source module belongs to no software item "
            "(qms/software_items.yaml sources)") in {(m[0].replace(str(tmp_path) + "/", ""),
                                                       m[1]) for m in messages}
    assert any("subpackage digital_contrast.newpkg has no software item" in m for _, m in
               messages)
    glob_problem = [p for p in problems if "device/nothing/*.py" in p.message]
    assert len(glob_problem) == 1 and glob_problem[0].line == line


@pytest.mark.req("SRS-QMS-007")
def test_an_item_below_the_system_class_without_segregation_is_refused(qms_dir: Path) -> None:
    items = qms_dir / "software_items.yaml"
    line = _edit(items, "safety_class: C", "safety_class: B") + 0
    records, _ = load_records(qms_dir)
    problems = check_device(qms_dir / "device.yaml", records)
    assert [p.line for p in problems] == [line]
    assert "no segregation is documented" in problems[0].message


@pytest.mark.req("SRS-QMS-008")
def test_clause_map_gaps_unknown_commands_and_missing_records(tmp_path: Path) -> None:
    path = tmp_path / "clause_map.yaml"
    data = yaml.safe_load((REPO_ROOT / "qms" / "clause_map.yaml").read_text())
    data["clauses"] = [c for c in data["clauses"] if c["clause"] != "8.1"]
    data["clauses"][1]["satisfied_by"].append({"command": "qms nonsense"})
    data["clauses"][2]["satisfied_by"].append({"record": "qms/nothing.yaml"})
    data["clauses"][3] = {"clause": data["clauses"][3]["clause"], "title": "t",
                          "gap": "nothing satisfies it yet"}
    outside_entry = next(c for c in data["clauses"] if c.get("outside_repository"))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    problems, outside = check_clauses(path, {"qms check", "qms trace", "qms soup", "qms risk"})
    assert [c.clause for c in outside] == [outside_entry["clause"]]
    messages = [p.message for p in problems]
    assert "clause 8.1 is missing from the map" in messages
    assert f"clause {data['clauses'][1]['clause']}: no command 'qms nonsense'" in messages
    assert f"clause {data['clauses'][2]['clause']}: qms/nothing.yaml does not exist" in messages
    assert f"clause {data['clauses'][3]['clause']} (t) is not satisfied: nothing satisfies it " \
           "yet" in messages
    # Evidence held outside the repository is not a gap when it names holder, evidence, status.
    assert not any(f"clause {outside_entry['clause']} " in m for m in messages)
    assert all(p.line for p in problems)
    del outside_entry["outside_repository"]["status"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert any("outside_repository.status: Field required" in p.message
               for p in check_clauses(path, set())[0])


@pytest.mark.req("SRS-QMS-009")
def test_trace_writes_every_format_from_records_and_run(tmp_path: Path) -> None:
    records, _ = load_records(REPO_ROOT / "qms")
    run = _run({"t.py::test_a": (("SRS-IMG-001",), "passed"),
                "t.py::test_b": (("SRS-IMG-001", "SRS-IMG-002"), "failed")})
    paths = write_trace(tmp_path, records, run, {"SRS-IMG-001": ["RC-001"]})
    assert [p.name for p in paths] == ["trace.html", "trace.pdf", "trace.md", "trace.csv",
                                       "trace.json"]
    import json

    trace = json.loads((tmp_path / "trace.json").read_text())
    assert_controlled_document(tmp_path / "trace.html", "DC-TRACE", trace["document"]["date"],
                               ("Regulatory affairs", "Quality", "Development lead"))
    rows = {r["id"]: r for r in trace["requirements"]}
    assert rows["SRS-IMG-001"]["verified"] is False  # one of its tests failed
    assert rows["SRS-IMG-001"]["risk_controls"] == ["RC-001"]
    assert rows["SRS-IMG-003"]["tests"] == [] and not rows["SRS-IMG-003"]["verified"]
    assert trace["summary"]["requirements"] == len(records.requirements)
    html = (tmp_path / "trace.html").read_text()
    assert "DC-TRACE" in html and "Approvals" in html and "t.py::test_b" in html
    assert (tmp_path / "trace.csv").read_text().count("SRS-IMG-001") == 2
