"""Known residual anomalies (qms/anomalies.yaml): schema, references, documenting tests, and
their acceptance by the risk check."""

import shutil
from pathlib import Path

import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.anomalies import (
    accepted_tests,
    check_anomalies,
    documented_tests,
    load_anomalies,
)
from digital_contrast.qms.junit_report import TestCase, TestRun
from digital_contrast.qms.requirements import load_records
from digital_contrast.qms.risk import check_risk_file, load_risk_file
from tests.support.risk_file import GENEROUS, passing_run

SHIPPED = REPO_ROOT / "qms" / "anomalies.yaml"
NODE = ("tests/integration/test_explain_trained.py::"
        "test_uncertainty_rises_for_a_non_aneurysmal_aorta")
NOISE_NODE = ("tests/integration/test_explain_trained.py::"
              "test_uncertainty_rises_with_noise_far_above_the_training_range[8200]")


def _run(outcomes: dict[str, str], requirements: dict[str, tuple[str, ...]] | None = None
         ) -> TestRun:
    requirements = requirements or {}
    return TestRun("junit.xml", "2026-11-29T00:00:00", {
        node: TestCase(node, requirements.get(node, ()), outcome, 0.1)
        for node, outcome in outcomes.items()})


def _known() -> dict[str, set[str]]:
    records, _ = load_records(REPO_ROOT / "qms")
    risk_file, _ = load_risk_file()
    assert risk_file is not None
    return {"requirements": set(records.requirements), "items": set(records.items),
            "risks": set(risk_file.risks)}


def _check(path: Path, outcome: str | None = "skipped") -> list[str]:
    anomalies, doc, problems = load_anomalies(path)
    assert doc is not None and problems == []
    run = _run({NOISE_NODE: "skipped", **({NODE: outcome} if outcome else {})})
    return [f"{p.line}: {p.message}" for p in check_anomalies(anomalies, doc, run, **_known())]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copyfile(SHIPPED, tmp_path / "anomalies.yaml")
    return tmp_path / "anomalies.yaml"


def _line(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.req("SRS-QMS-012")
def test_the_shipped_anomaly_list_is_valid_and_documents_the_xfail() -> None:
    anomalies, doc, problems = load_anomalies(SHIPPED)
    assert problems == [] and doc is not None
    assert [a.id for a in anomalies] == ["ANOM-001", "ANOM-002"]
    assert "SRS-EXP-005" in anomalies[0].affected and "RISK-014" in anomalies[0].risk
    assert documented_tests(anomalies) == {NODE, NOISE_NODE}
    assert _check(SHIPPED) == []  # skipped (strict xfail) in the run: as documented


@pytest.mark.req("SRS-QMS-012")
@pytest.mark.parametrize("old, new, expected", [
    ("id: ANOM-001", "id: ANOM-1", "id: String should match pattern"),
    ("status: open", "status: closed", "status: Input should be 'open'"),
    ("    evaluation: >-", "    evalution: >-", "evalution: Extra inputs are not permitted"),
])
def test_schema_errors_are_reported_at_their_line(copy: Path, old: str, new: str,
                                                  expected: str) -> None:
    copy.write_text(copy.read_text().replace(old, new, 1))
    line = _line(copy, new.strip())
    _, _, problems = load_anomalies(copy)
    assert any(p.line == line and expected in p.message and p.file.endswith("anomalies.yaml")
               for p in problems), problems


@pytest.mark.req("SRS-QMS-012")
def test_unknown_references_are_reported_at_their_line(copy: Path) -> None:
    copy.write_text(copy.read_text().replace("affected: [SRS-EXP-005, SI-EXPLAIN]",
                                             "affected: [SRS-EXP-999, SI-NOPE]")
                    .replace("risk: [RISK-014, RISK-001]", "risk: [RISK-999]"))
    found = _check(copy)
    assert f"{_line(copy, 'affected:')}: ANOM-001: unknown requirement SRS-EXP-999" in found
    assert f"{_line(copy, 'affected:')}: ANOM-001: unknown software item SI-NOPE" in found
    assert f"{_line(copy, 'risk:')}: ANOM-001: unknown risk RISK-999" in found


@pytest.mark.req("SRS-QMS-012")
@pytest.mark.parametrize("outcome, expected", [
    (None, "is not in the test run"), ("passed", "the anomaly is stale"),
    ("failed", "a strict xfail that passed, or a new failure")])
def test_a_documenting_test_missing_passing_or_failing_is_reported(outcome: str | None,
                                                                   expected: str) -> None:
    found = _check(SHIPPED, outcome)
    line = _line(SHIPPED, "  - tests/integration/test_explain_trained.py")
    assert len(found) == 1 and found[0].startswith(f"{line}: ANOM-001: {NODE}") \
        and expected in found[0], found


def _risk_run(extra: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every requirement of every control verified by passing tests (enough of them for the
    controls' evidence to support the shipped residual claims), plus `extra`."""
    risk_file, _ = load_risk_file()
    assert risk_file is not None
    outcomes, tests = passing_run(risk_file, GENEROUS)
    for node, outcome in extra.items():
        outcomes[node] = outcome
        tests.setdefault("SRS-EXP-005", []).append(node)
    return outcomes, tests


def _risk_problems(extra: dict[str, str], accepted: frozenset[str]) -> list[str]:
    risk_file, _ = load_risk_file()
    assert risk_file is not None
    outcomes, tests = _risk_run(extra)
    records, _ = load_records(REPO_ROOT / "qms")
    return [p.message for p in check_risk_file(risk_file, records, outcomes, tests,
                                               accepted=accepted)]


@pytest.mark.req("SRS-QMS-013")
def test_a_control_left_open_only_by_a_documented_anomaly_is_verified() -> None:
    anomalies, _, _ = load_anomalies(SHIPPED)
    accepted = frozenset(accepted_tests(anomalies, _run({NODE: "skipped"})))
    assert accepted == {NODE}
    assert any("RC-013 not verified" in m for m in _risk_problems({NODE: "skipped"},
                                                                  frozenset()))
    assert _risk_problems({NODE: "skipped"}, accepted) == []


@pytest.mark.req("SRS-QMS-013")
def test_other_non_passing_tests_and_failed_documented_tests_are_still_gaps() -> None:
    anomalies, _, _ = load_anomalies(SHIPPED)
    other = "tests/integration/test_explain_trained.py::test_something_else"
    found = _risk_problems({NODE: "skipped", other: "skipped"}, frozenset({NODE}))
    assert len(found) == 1 and other in found[0] and NODE not in found[0]
    # A documented test that failed is no longer what the anomaly describes: not accepted.
    assert accepted_tests(anomalies, _run({NODE: "failed"})) == set()
    assert any("RC-013" in m for m in _risk_problems({NODE: "failed"}, frozenset()))
