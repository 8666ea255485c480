"""The ISO 14971 risk file as data: shipped records, computed levels, gaps at their line, report."""

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

import digital_contrast
from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.records import QMS_DIR
from digital_contrast.qms.requirements import load_records
from digital_contrast.qms.risk import (
    RISK_DIR,
    RiskFile,
    check_risk_file,
    load_risk_file,
    risk_blockers,
    write_risk_report,
)
from digital_contrast.qms.risk.evidence import matching_tests
from digital_contrast.qms.risk.report import render_risk_report
from tests.support.documents import assert_controlled_document
from tests.support.risk_file import GENEROUS, copy_risk_file, passing_run
from tests.support.risk_file import all_acceptable as _all_acceptable
from tests.support.risk_file import at as _at
from tests.support.risk_file import check as _check
from tests.support.risk_file import edit as _edit
from tests.support.risk_file import line as _line
from tests.support.risk_file import load as _load
from tests.support.risk_file import node as _node

_passing_run = passing_run


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return copy_risk_file(tmp_path)


# --- The shipped risk file ----------------------------------------------------------------------

@pytest.mark.req("SRS-RISK-001")
def test_the_shipped_risk_file_loads_without_problems() -> None:
    rf, problems = load_risk_file()
    assert problems == [] and rf is not None
    assert len(rf.risks) >= 16 and len(rf.controls) >= 20
    assert rf.policy.software_safety_class == "C"
    assert any("ISO 14971:2019" in b for b in rf.policy.basis)
    assert any("ISO/TR 24971:2020" in b for b in rf.policy.basis)
    causes = " ".join(c for r in rf.risks.values() for c in r.causes)
    assert "Model generalisation failure" in causes and "SOUP failure" in causes
    assert {t for r in rf.risks.values() for t in r.threats} >= {
        "spoofing", "tampering", "information-disclosure", "denial-of-service"}
    assert {c.type for c in rf.controls.values()} == {
        "inherent-safety-by-design", "protective-measure", "information-for-safety"}


@pytest.mark.req("SRS-RISK-003", "SRS-RISK-004", "SRS-RISK-005")
def test_the_shipped_risk_file_has_no_gap_when_every_test_passed() -> None:
    rf, _ = load_risk_file()
    assert rf is not None
    outcomes, requirement_tests = _passing_run(rf, GENEROUS)
    assert check_risk_file(rf, load_records(QMS_DIR)[0], outcomes, requirement_tests) == []


@pytest.mark.req("SRS-RISK-004")
def test_every_named_test_exists_in_the_repository() -> None:
    rf, _ = load_risk_file()
    assert rf is not None
    for control in rf.controls.values():
        for ref in control.verified_by:
            file, _, name = ref.partition("::")
            assert (REPO_ROOT / file).is_file(), f"{control.id}: {file} does not exist"
            if name:
                source = (REPO_ROOT / file).read_text(encoding="utf-8")
                assert re.search(rf"^def {re.escape(name)}\(", source, re.M), \
                    f"{control.id}: {ref} does not exist"


# --- Levels -----------------------------------------------------------------------------------

@pytest.mark.req("SRS-RISK-002")
def test_levels_are_computed_from_the_matrix() -> None:
    rf, _ = load_risk_file()
    assert rf is not None
    expected = {("S1", "P5"): "alarp", ("S2", "P3"): "acceptable", ("S2", "P4"): "alarp",
                ("S3", "P4"): "unacceptable", ("S4", "P1"): "acceptable",
                ("S4", "P2"): "alarp", ("S5", "P1"): "alarp", ("S5", "P2"): "unacceptable",
                ("S9", "P1"): "undefined"}
    assert {pair: rf.level(*pair) for pair in expected} == expected
    one, thirteen = rf.risks["RISK-001"], rf.risks["RISK-013"]  # levels of the claims
    assert (one.initial_level, one.residual_level) == ("unacceptable", "unacceptable")
    assert (thirteen.initial_level, thirteen.residual_level) == ("alarp", "acceptable")
    for path in [*RISK_DIR.rglob("*.yaml")]:
        assert not re.search(r"^\s*level:", path.read_text("utf-8"), re.M), path


@pytest.mark.req("SRS-RISK-001", "SRS-RISK-002")
def test_a_typed_level_is_refused_at_its_line(copy: Path) -> None:
    path = copy / "risk" / "risks" / "RISK-003.yaml"
    _edit(path, "residual: {severity: S4, probability: P3}",
          "residual: {severity: S4, probability: P3, level: unacceptable}")
    _, problems = load_risk_file(copy / "risk")
    _at(problems, path, _line(path, "residual:"), "residual.level: Extra inputs")


@pytest.mark.req("SRS-RISK-002")
def test_matrix_gaps_and_estimates_off_the_scales(copy: Path) -> None:
    policy = copy / "risk" / "policy.yaml"
    _edit(policy, "P3: acceptable, P4: alarp, P5: unacceptable}", "P3: acceptable, P4: alarp}")
    _edit(policy, "S3: {P1: acceptable, P2: acceptable,", "S3: {P1: acceptable, P2: unacceptable,")
    _edit(policy, "  S5: {", "  S9: {P1: alarp}\n  S5: {")
    risk = copy / "risk" / "risks" / "RISK-004.yaml"
    _edit(risk, "initial: {severity: S4, probability: P3}",
          "initial:\n  severity: S7\n  probability: P3")
    rf, problems = load_risk_file(copy / "risk")
    assert rf is not None and problems == []
    found = _check(copy, rf)
    _at(found, policy, _line(policy, "  S2: {"), "does not define (S2, P5)")
    _at(found, policy, _line(policy, "  S9: {"), "matrix row S9 is not on the severity scale")
    # A worse pair may never be more acceptable than a lesser one.
    _at(found, policy, _line(policy, "  S3: {"),
        "(S3, P3) is alarp but the lesser (S3, P2) is unacceptable")
    _at(found, policy, _line(policy, "  S4: {"),
        "(S4, P2) is alarp but the lesser (S3, P2) is unacceptable")
    _at(found, risk, _line(risk, "severity: S7"), "severity S7 is not on the policy's scale")


# --- Schema problems at their line ------------------------------------------------------------

@pytest.mark.req("SRS-RISK-001")
def test_a_wrong_field_and_a_wrong_type_are_refused_at_their_lines(copy: Path) -> None:
    risk = copy / "risk" / "risks" / "RISK-006.yaml"
    _edit(risk, "hazard: Synthesis run", "hazzard: Synthesis run")
    controls = copy / "risk" / "controls.yaml"
    _edit(controls, "    title: Metal in the aortic region refused\n",
          "    title: Metal in the aortic region refused\n    priority: high\n")
    _edit(controls, "    implemented_by: [SRS-CONF-003]\n", "    implemented_by: SRS-CONF-003\n")
    _edit(controls, "    type: inherent-safety-by-design\n    description: >-\n"
          "      Each slice's", "    type: warning\n    description: >-\n      Each slice's")
    rf, problems = load_risk_file(copy / "risk")
    assert rf is not None
    _at(problems, risk, _line(risk, "hazzard:"), "hazzard: Extra inputs are not permitted")
    _at(problems, risk, 1, "hazard: Field required")
    _at(problems, controls, _line(controls, "priority: high"), "priority: Extra inputs")
    _at(problems, controls, _line(controls, "implemented_by: SRS-CONF-003"),
        "implemented_by: Input should be a valid list")
    _at(problems, controls, _line(controls, "type: warning"), "type: Input should be")
    assert "RISK-006" not in rf.risks and "RC-003" not in rf.controls


@pytest.mark.req("SRS-RISK-001")
def test_malformed_misnamed_and_duplicate_ids(copy: Path) -> None:
    risks = copy / "risk" / "risks"
    shutil.copy(risks / "RISK-002.yaml", risks / "RISK-020.yaml")
    bad = risks / "RISK-007.yaml"
    _edit(bad, "id: RISK-007", "id: RISK-7")
    controls = copy / "risk" / "controls.yaml"
    _edit(controls, "  - id: RC-009\n", "  - id: RC-008\n")
    rf, problems = load_risk_file(copy / "risk")
    assert rf is not None
    _at(problems, bad, 1, "id: String should match pattern")
    copied = risks / "RISK-020.yaml"
    _at(problems, copied, 1, "RISK-002 is in RISK-020.yaml")
    _at(problems, copied, 1, "duplicate risk id RISK-002")
    _at(problems, controls, _line(controls, "title: Per-slice rescale") - 1,
        "duplicate control id RC-008")


@pytest.mark.req("SRS-RISK-001")
def test_a_file_that_is_not_yaml_is_reported_with_its_line(copy: Path) -> None:
    path = copy / "risk" / "risks" / "RISK-009.yaml"
    path.write_text("id: RISK-009\ntitle: [unclosed\n", encoding="utf-8")
    _, problems = load_risk_file(copy / "risk")
    assert any(p.file.endswith("RISK-009.yaml") and p.line and "not valid YAML" in p.message
               for p in problems)


# --- Links between risks, controls and requirements ---------------------------------------------

@pytest.mark.req("SRS-RISK-003")
def test_a_risk_without_a_control(copy: Path) -> None:
    empty = copy / "risk" / "risks" / "RISK-017.yaml"
    _edit(empty, "controls: [RC-008, RC-002]", "controls: []")
    missing = copy / "risk" / "risks" / "RISK-016.yaml"
    _edit(missing, "controls: [RC-009, RC-004, RC-029]\n", "")
    rf = _load(copy)
    found = _check(copy, rf)
    _at(found, empty, _line(empty, "controls: []"), "RISK-017 has no risk control")
    _at(found, missing, _line(missing, "id: RISK-016"), "RISK-016 has no risk control")
    # RC-009 is now used by no risk.
    controls = copy / "risk" / "controls.yaml"
    _at(found, controls, _line(controls, "- id: RC-009"), "RC-009 controls no risk")


@pytest.mark.req("SRS-RISK-003")
def test_an_undefined_control_and_an_unknown_requirement(copy: Path) -> None:
    risk = copy / "risk" / "risks" / "RISK-015.yaml"
    _edit(risk, "controls: [RC-028]", "controls:\n  - RC-028\n  - RC-999")
    controls = copy / "risk" / "controls.yaml"
    _edit(controls, "implemented_by: [SRS-CONF-007]",
          "implemented_by:\n      - SRS-CONF-007\n      - SRS-NOPE-001")
    rf = _load(copy)
    found = _check(copy, rf)
    _at(found, risk, _line(risk, "- RC-999"), "RC-999 is not defined")
    _at(found, controls, _line(controls, "- SRS-NOPE-001"), "unknown requirement SRS-NOPE-001")


@pytest.mark.req("SRS-RISK-003")
def test_risk_control_requirements_and_controls_agree(copy: Path) -> None:
    controls = copy / "risk" / "controls.yaml"
    _edit(controls, "implemented_by: [SRS-IMG-005, SRS-IMG-006, SRS-IMG-007]",
          "implemented_by: [SRS-IMG-005, SRS-IMG-006]")
    _edit(controls, "implemented_by: [SRS-CONF-003]", "implemented_by:\n"
          "      - SRS-CONF-003\n      - SRS-PKG-002")
    rf = _load(copy)
    found = _check(copy, rf)
    srs = copy / "qms" / "requirements" / "software_requirements.yaml"
    _at(found, srs, _line(srs, "- id: SRS-IMG-007"),
        "SRS-IMG-007 is a risk control (risk_control: true) but implements no control")
    _at(found, controls, _line(controls, "- SRS-PKG-002"),
        "SRS-PKG-002 implements RC-003 but is not marked risk_control: true")


# --- Verification from the test run -----------------------------------------------------------

@pytest.mark.req("SRS-RISK-004")
def test_test_references_match_files_tests_and_parameters() -> None:
    outcomes = {"tests/unit/test_a.py::test_b[1]": "passed",
                "tests/unit/test_a.py::test_b[2]": "passed",
                "tests/unit/test_a.py::test_bc": "passed",
                "tests/unit/test_a.py::TestX::test_y": "passed"}
    assert matching_tests("tests/unit/test_a.py::test_b", outcomes) == [
        "tests/unit/test_a.py::test_b[1]", "tests/unit/test_a.py::test_b[2]"]
    assert len(matching_tests("tests/unit/test_a.py", outcomes)) == 4
    assert matching_tests("tests/unit/test_a.py::TestX", outcomes) == [
        "tests/unit/test_a.py::TestX::test_y"]
    assert matching_tests("tests/unit/test_a.py::test_", outcomes) == []


@pytest.mark.req("SRS-RISK-004")
def test_a_control_without_any_verifying_test(copy: Path) -> None:
    rf = _load(copy)
    outcomes, requirement_tests = _passing_run(rf)
    for rid in rf.controls["RC-006"].implemented_by:  # RC-006 names no test of its own
        outcomes.pop(requirement_tests.pop(rid)[0])
    found = _check(copy, rf, (outcomes, requirement_tests))
    controls = copy / "risk" / "controls.yaml"
    _at(found, controls, _line(controls, "- id: RC-006"), "RC-006 has no verifying test")
    report = render_risk_report(rf, outcomes, requirement_tests)
    assert next(c for c in report["controls"] if c["id"] == "RC-006")["status"] == \
        "not verified"


@pytest.mark.req("SRS-RISK-004")
def test_a_failed_test_leaves_its_control_unverified(copy: Path) -> None:
    rf = _load(copy)
    outcomes, requirement_tests = _passing_run(rf)
    outcomes[_node("SRS-CONF-007")] = "failed"
    outcomes["tests/unit/test_lock.py::test_case[1]"] = "skipped"
    found = _check(copy, rf, (outcomes, requirement_tests))
    controls = copy / "risk" / "controls.yaml"
    _at(found, controls, _line(controls, "implemented_by: [SRS-CONF-007]"),
        f"RC-006 not verified: tests of SRS-CONF-007 did not all pass: {_node('SRS-CONF-007')}"
        " (failed)")
    _at(found, controls, _line(controls, "- tests/unit/test_lock.py"),
        "RC-029 not verified: tests/unit/test_lock.py::test_case[1] (skipped)")
    report = render_risk_report(rf, outcomes, requirement_tests)
    status = {c["id"]: c["status"] for c in report["controls"]}
    assert (status["RC-006"], status["RC-029"], status["RC-001"]) == \
        ("failed", "not verified", "passed")
    assert not report["overall"]["acceptable"]
    assert any(item.startswith("RC-006") and "failed" in item
               for item in report["overall"]["open_items"])


@pytest.mark.req("SRS-RISK-004")
def test_a_named_test_that_is_not_in_the_run(copy: Path) -> None:
    run = _passing_run(_load(copy))  # the run before the control names one more test
    controls = copy / "risk" / "controls.yaml"
    _edit(controls, "      - tests/unit/test_tissue_gate.py\n",
          "      - tests/unit/test_tissue_gate.py\n      - tests/unit/test_nowhere.py::test_x\n")
    found = _check(copy, _load(copy), run)
    _at(found, controls, _line(controls, "test_nowhere.py"),
        "RC-010: tests/unit/test_nowhere.py::test_x matches no test in the run")


# --- Residual risk -------------------------------------------------------------------------------

def _blockers(root: Path, rf: RiskFile) -> list[str]:
    return risk_blockers(rf, *_passing_run(rf, GENEROUS))


@pytest.mark.req("SRS-RISK-005")
def test_an_unacceptable_or_worse_residual_risk(copy: Path) -> None:
    risk = copy / "risk" / "risks" / "RISK-019.yaml"
    _edit(risk, "residual: {severity: S5, probability: P3}",
          "residual: {severity: S5, probability: P4}")
    rf = _load(copy)
    found = _check(copy, rf)
    _at(found, risk, _line(risk, "residual:"),
        "residual probability P4 is worse than the initial P3")
    # Unacceptable is not an inconsistency of the file: a release blocker, listed apart.
    assert not any("unacceptable" in p.message for p in found)
    assert any(b.startswith("RISK-019 (Use in an excluded clinical condition): residual S5/P4 "
                            "is unacceptable") for b in _blockers(copy, rf))


@pytest.mark.req("SRS-RISK-005")
def test_alarp_without_a_benefit_risk_analysis_or_without_a_demonstrated_benefit(
        copy: Path) -> None:
    rf = _load(copy)
    assert "RISK-011 (Tampered records or images): residual S4/P2 is ALARP without a " \
        "benefit-risk analysis" in _blockers(copy, rf)
    assert not any("ALARP" in p.message for p in _check(copy, rf))
    risk = copy / "risk" / "risks" / "RISK-011.yaml"
    risk.write_text(risk.read_text("utf-8") + "benefit_risk: Benefit as for RISK-001.\n",
                    encoding="utf-8")
    # Phantom-only records demonstrate no clinical benefit: the analysis cannot justify it.
    assert "RISK-011 (Tampered records or images): residual S4/P2 is ALARP and its " \
        "benefit-risk analysis rests on a clinical benefit no validated model demonstrates" \
        in _blockers(copy, _load(copy))


# --- The report -----------------------------------------------------------------------------------

@pytest.mark.req("SRS-RISK-006")
def test_the_report_has_title_block_tables_and_statement(tmp_path: Path) -> None:
    rf, _ = load_risk_file()
    assert rf is not None
    outcomes, requirement_tests = _passing_run(rf, GENEROUS)
    paths = write_risk_report(tmp_path, rf, outcomes, requirement_tests,
                              date=dt.date(2026, 12, 1))
    assert [p.name for p in paths] == ["risk_management_report.md",
                                       "risk_management_report.html",
                                       "risk_management_report.pdf"]
    assert_controlled_document(paths[1], "DC-RMR", "2026-12-01",
                               ("Risk manager", "Quality", "Clinical"))
    md, html = (p.read_text("utf-8") for p in paths[:2])
    version = digital_contrast.__version__
    assert f"| DC-RMR | {version} | 2026-12-01 | {digital_contrast.PRODUCT_NAME} {version} |" in md
    for role in ("Risk manager", "Quality", "Clinical"):
        assert f"| {role} | | | |" in md and f"<td>{role}</td>" in html
    assert "| S5 | ALARP | unacceptable | unacceptable | unacceptable | unacceptable |" in md
    assert "| P2 | remote | 1 in 1 000 000 to 1 in 10 000 uses (1e-6 to < 1e-4) | " \
        "[1e-06, 0.0001) |" in md
    row = next(line for line in md.splitlines() if line.startswith("| RISK-001 "))
    assert "S5/P4 unacceptable" in row and "| P2 |" in row and "S5/P2 unacceptable" in row
    assert "RC-013" in row and "product over the independent RC-001, RC-010, RC-012" in row
    control = next(line for line in md.splitlines() if line.startswith("| RC-014 "))
    assert "information-for-safety" in control and "SRS-DER-001" in control
    assert control.endswith("| 1 | passed |")  # verified, but no credit: bound 1
    assert "- RC-014: no credit: The tests show" in md
    assert "### RISK-008: Tampered, corrupted or unvalidated model used" in md
    assert "The overall residual risk is NOT acceptable" in md
    assert "phantom-only evidence supports no clinical benefit claim" in md
    assert "The overall residual risk is NOT acceptable" in html
    assert '<td class="unacceptable">S5/P2 unacceptable</td>' in html
    # Self-contained: no external stylesheet, script, image or font.
    assert not re.search(r"""(src|href)=["'](https?:)?//|<link|<script|@import""", html)


@pytest.mark.req("SRS-RISK-006")
def test_an_acceptable_file_and_a_control_excused_by_a_known_anomaly(copy: Path) -> None:
    _all_acceptable(copy)
    rf = _load(copy)
    outcomes, requirement_tests = _passing_run(rf, GENEROUS)
    overall = render_risk_report(rf, outcomes, requirement_tests)["overall"]
    assert overall["acceptable"] and overall["open_items"] == []
    assert "The overall residual risk is acceptable" in overall["statement"]
    assert "known residual anomaly" not in overall["statement"]  # nothing excused
    # A control verified only because an anomaly excuses its skipped test says so.
    skipped = next(iter(requirement_tests["SRS-EXP-005"]))
    outcomes = outcomes | {skipped: "skipped"}
    data = render_risk_report(rf, outcomes, requirement_tests, accepted=frozenset({skipped}))
    assert "RC-013 with a test that documents a known residual anomaly" in \
        data["overall"]["statement"]


@pytest.mark.req("SRS-RISK-006")
def test_an_unacceptable_residual_risk_changes_the_statement(copy: Path) -> None:
    _all_acceptable(copy)
    risk = copy / "risk" / "risks" / "RISK-005.yaml"
    _edit(risk, "residual: {severity: S1, probability: P4}",
          "residual: {severity: S4, probability: P3}")
    rf = _load(copy)
    outcomes, requirement_tests = _passing_run(rf, GENEROUS)
    overall = render_risk_report(rf, outcomes, requirement_tests)["overall"]
    assert not overall["acceptable"] and overall["conclusion"] == "not acceptable"
    assert overall["statement"].startswith("The overall residual risk is NOT acceptable: "
                                           "RISK-005 computed unacceptable from the evidence.")
    assert len(overall["open_items"]) == 1 and overall["open_items"][0].startswith(
        "RISK-005 (Synthetic image mistaken for an acquired contrast CT): residual S4/P3 is "
        "unacceptable")
    md = write_risk_report(copy / "out", rf, outcomes, requirement_tests)[0].read_text("utf-8")
    assert "NOT acceptable" in md and "- RISK-005 (Synthetic image mistaken" in md
