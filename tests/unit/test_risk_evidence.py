"""Computed risk: control failure bounds from evidence (tests, signed validation records, field
data), residual probabilities from them, claims checked against them, the overall conclusion."""

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.keys.signing import Signer
from digital_contrast.qms.risk import RiskFile, load_risk_file, risk_blockers
from digital_contrast.qms.risk.bounds import (
    clopper_pearson_upper,
    control_bound,
    count_from_tests,
    per_case_failures,
)
from digital_contrast.qms.risk.report import render_risk_report, write_risk_report
from digital_contrast.qms.risk.residual import compute_bounds, compute_residual, model_evidence
from digital_contrast.qms.risk.schema import Control
from tests.support.risk_file import GENEROUS, copy_risk_file
from tests.support.risk_file import all_acceptable as _all_acceptable
from tests.support.risk_file import at as _at
from tests.support.risk_file import check as _check
from tests.support.risk_file import edit as _edit
from tests.support.risk_file import line as _line
from tests.support.risk_file import load as _load
from tests.support.risk_file import passing_run as _passing_run
from tests.support.signing import site_signer, untrusted_signer

RECORD = "validation/reports/models/aaa-cta/2.1.0/validation_record.json"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return copy_risk_file(tmp_path)


# --- Clopper-Pearson ------------------------------------------------------------------------

@pytest.mark.req("SRS-RISK-007")
def test_clopper_pearson_upper_bounds() -> None:
    assert round(clopper_pearson_upper(0, 100), 4) == 0.0295
    # beta.ppf(0.95, 6, 95): 0.1023 (the two-sided 95 % interval's upper end would be 0.1128)
    assert round(clopper_pearson_upper(5, 100), 4) == 0.1023
    for n in (1, 7, 39, 1000):  # x = 0 has the closed form 1 - 0.05^(1/n)
        assert math.isclose(clopper_pearson_upper(0, n), 1 - 0.05 ** (1 / n), rel_tol=1e-9)
    assert clopper_pearson_upper(0, 0) == 1.0 and clopper_pearson_upper(20, 20) == 1.0
    assert clopper_pearson_upper(1, 100) > clopper_pearson_upper(0, 100)
    with pytest.raises(ValueError):
        clopper_pearson_upper(3, 2)


def _control(**evidence: object) -> Control:
    return Control.model_validate({"id": "RC-900", "title": "A control",
                                   "type": "protective-measure", "description": "Does it.",
                                   "implemented_by": ["SRS-ABC-001"], **evidence})


@pytest.mark.req("SRS-RISK-007")
def test_tests_evidence_counts_runs_and_failures_and_a_known_anomaly_as_failed() -> None:
    control = _control(evidence=[{"kind": "tests"}])
    nodes = [f"tests/unit/test_a.py::test_{k}" for k in range(5)]
    outcomes = dict(zip(nodes, ["passed", "passed", "failed", "skipped", "skipped"],
                        strict=True))
    count = count_from_tests(control, outcomes, {"SRS-ABC-001": nodes}, frozenset({nodes[3]}))
    # The documented xfail counts as a failure; the other skip did not run: no trial.
    assert (count.trials, count.failures) == (4, 2) and count.note == "1 not run"
    assert count.bound == clopper_pearson_upper(2, 4)
    # Two pieces of evidence bound two ways to fail: their sum, at most 1.
    bound = control_bound(_control(evidence=[{"kind": "tests"}, {"kind": "tests"}]),
                          {n: "passed" for n in nodes}, {"SRS-ABC-001": nodes}, REPO_ROOT)
    assert math.isclose(bound.bound, 2 * clopper_pearson_upper(0, 5))
    none = control_bound(_control(no_credit="Labelling without a usability study."), {}, {},
                         REPO_ROOT)
    assert none.bound == 1.0 and "no credit (bound 1): Labelling" in none.describe()


@pytest.mark.req("SRS-RISK-007", "SRS-RISK-001")
def test_a_control_needs_evidence_or_a_reason_for_no_credit(copy: Path) -> None:
    controls = copy / "risk" / "controls.yaml"
    _edit(controls, "    implemented_by: [SRS-CONF-007]\n    verified_by: []\n    evidence:\n"
          "      - kind: tests\n", "    implemented_by: [SRS-CONF-007]\n    verified_by: []\n")
    _, problems = load_risk_file(copy / "risk")
    _at(problems, controls, _line(controls, "- id: RC-006"), "give either evidence")


# --- Residual probability ----------------------------------------------------------------------

@pytest.mark.req("SRS-RISK-008")
def test_bands_have_numeric_edges() -> None:
    rf, _ = load_risk_file()
    assert rf is not None
    policy = rf.policy
    assert [(p.id, p.lower, p.upper) for p in policy.probability] == [
        ("P1", 0.0, 1e-6), ("P2", 1e-6, 1e-4), ("P3", 1e-4, 1e-3), ("P4", 1e-3, 1e-2),
        ("P5", 1e-2, 1.0)]
    assert [policy.band(p) for p in (0.0, 9.99e-7, 1e-6, 2.3e-5, 1e-4, 0.0099, 0.5, 1.0)] == \
        ["P1", "P1", "P2", "P2", "P3", "P4", "P5", "P5"]
    assert policy.upper_edge("P4") == 1e-2


@pytest.mark.req("SRS-RISK-008")
def test_bands_with_a_gap_or_not_covering_zero_to_one(copy: Path) -> None:
    policy = copy / "risk" / "policy.yaml"
    _edit(policy, "    lower: 1.0e-4\n    upper: 1.0e-3\n",
          "    lower: 2.0e-4\n    upper: 1.0e-3\n")
    _edit(policy, "    lower: 1.0e-2\n    upper: 1.0\n", "    lower: 1.0e-2\n    upper: 0.5\n")
    found = _check(copy, _load(copy))
    _at(found, policy, _line(policy, "lower: 2.0e-4"),
        "probability band P3 [0.0002, 0.001) does not follow P2, which ends at 0.0001")
    _at(found, policy, _line(policy, "upper: 0.5"), "probability band P5 ends at 0.5, not 1")
    # RISK-006 computes 1.2e-4 here: in the gap left between P2 and P3.
    risk = copy / "risk" / "risks" / "RISK-006.yaml"
    _at(found, risk, _line(risk, "residual:"),
        "RISK-006: the computed residual probability 0.00012 is in no probability band")


@pytest.mark.req("SRS-RISK-008")
def test_product_only_over_the_argued_controls_else_the_best_single_bound(copy: Path) -> None:
    rf = _load(copy)
    outcomes, requirement_tests = _passing_run(rf, 10)
    bounds = compute_bounds(rf, outcomes, requirement_tests)
    one = compute_residual(rf, rf.risks["RISK-001"], bounds)
    argued = [bounds[c].bound for c in ("RC-001", "RC-010", "RC-012")]
    assert one.edge == 1e-2 and math.isclose(one.factor, math.prod(argued))
    assert one.method == "product over the independent RC-001, RC-010, RC-012"
    assert math.isclose(one.probability, 1e-2 * math.prod(argued)) and one.computed == "P2"
    # Without an argument: the best single bound (Frechet), never a product.
    two = compute_residual(rf, rf.risks["RISK-002"], bounds)
    best = min(bounds[c].bound for c in rf.risks["RISK-002"].controls)
    assert two.factor == best and two.method.startswith("best single control")
    # Removing the argument raises RISK-001 to its best single bound.
    risk = copy / "risk" / "risks" / "RISK-001.yaml"
    text = risk.read_text("utf-8")
    start = text.index("independence:")
    risk.write_text(text[:start] + text[text.index("residual:"):], encoding="utf-8")
    rf2 = _load(copy)
    alone = compute_residual(rf2, rf2.risks["RISK-001"], compute_bounds(rf2, outcomes,
                                                                        requirement_tests))
    assert alone.factor == min(bounds[c].bound for c in rf.risks["RISK-001"].controls)
    assert alone.computed == "P3"


@pytest.mark.req("SRS-RISK-008")
def test_an_independence_argument_over_a_control_the_risk_lacks(copy: Path) -> None:
    risk = copy / "risk" / "risks" / "RISK-001.yaml"
    _edit(risk, "  controls: [RC-001, RC-010, RC-012]", "  controls: [RC-001, RC-010, RC-030]")
    found = _check(copy, _load(copy))
    _at(found, risk, _line(risk, "controls: [RC-001, RC-010, RC-030]"),
        "RISK-001: the independence argument names RC-030, which is not one of its controls")


# --- Claims -------------------------------------------------------------------------------------

@pytest.mark.req("SRS-RISK-009")
def test_controls_cut_to_one_with_the_residual_unchanged_is_a_claim_below_evidence(
        copy: Path) -> None:
    risk = copy / "risk" / "risks" / "RISK-001.yaml"
    run = _passing_run(_load(copy), 10)
    assert not [p for p in _check(copy, _load(copy), run) if "RISK-001 claims" in p.message]
    _edit(risk, "controls: [RC-001, RC-004, RC-010, RC-012, RC-013, RC-014, RC-017]",
          "controls: [RC-012]")
    found = _check(copy, _load(copy), run)
    problem = _at(found, risk, _line(risk, "residual:"),
                  "RISK-001 claims P2 but its evidence supports P3 at best")
    assert "x 0.0245 (best single control RC-012)" in problem.message


@pytest.mark.req("SRS-RISK-009")
def test_a_p1_claim_without_evidence_is_refused(copy: Path) -> None:
    risk = copy / "risk" / "risks" / "RISK-004.yaml"
    _edit(risk, "residual: {severity: S4, probability: P3}",
          "residual: {severity: S4, probability: P1}")
    found = _check(copy, _load(copy))
    _at(found, risk, _line(risk, "residual:"), "RISK-004 claims P1 but its evidence supports P2 "
        "at best")


@pytest.mark.req("SRS-RISK-006", "SRS-RISK-009")
def test_a_p1_claim_shows_its_supporting_evidence_in_the_report(copy: Path) -> None:
    risk = copy / "risk" / "risks" / "RISK-001.yaml"
    _edit(risk, "residual: {severity: S5, probability: P2}",
          "residual: {severity: S5, probability: P1}")
    rf = _load(copy)
    run = _passing_run(rf, 300)  # enough tests for the product to reach P1
    assert not [p for p in _check(copy, rf, run) if "RISK-001 claims" in p.message]
    md = write_risk_report(copy / "out", rf, *run)[0].read_text("utf-8")
    assert "P1 (improbable) claims and the evidence that supports them:" in md
    line = next(x for x in md.splitlines() if x.startswith("- RISK-001: "))
    assert "product over the independent RC-001, RC-010, RC-012" in line
    assert "RC-012: bound" in line and "tests in the test run: 0 of 3601 failed" in line


# --- Validation and field evidence ----------------------------------------------------------------

@pytest.mark.req("SRS-RISK-010")
def test_validation_evidence_is_read_from_the_signed_record() -> None:
    rf, _ = load_risk_file()
    assert rf is not None
    bound = control_bound(rf.controls["RC-013"], {}, {}, REPO_ROOT)
    tests, count = bound.counts
    # 2.1.0 labels 15 % of iso-ilt and 35 % of iso-ilt-high-noise sacs LOW CONFIDENCE (signed
    # values): 17 + 13 of 2 x 20 cases fail.
    assert (count.kind, count.trials, count.failures) == ("validation", 40, 30)
    assert count.source == f"aaa-cta 2.1.0 ({RECORD})"
    assert round(count.bound, 3) == 0.858
    # No test in this (empty) run: no trial, so the tests evidence alone gives no credit.
    assert (tests.kind, tests.trials, tests.bound, bound.bound) == ("tests", 0, 1.0, 1.0)


def _signed_fixture(root: Path, criteria: list[dict], *, sign: bool = True,
                    signer: Signer | None = None) -> str:
    """A signed record of model m 9.0.0; the site's key is the repository's release key."""
    keys = root / "releases" / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "release-site.pub").write_text(site_signer().public_line)
    protocol = root / "validation" / "protocols" / "p.yaml"
    protocol.parent.mkdir(parents=True, exist_ok=True)
    protocol.write_text("id: p\ndataset: {cases_per_stratum: 20}\n", encoding="utf-8")
    payload = {"model_name": "m", "model_version": "9.0.0", "protocol": "validation/protocols/"
               "p.yaml", "protocol_sha256": hashlib.sha256(protocol.read_bytes()).hexdigest(),
               "evidence": "procedural digital phantom only; not clinically validated",
               "criteria": criteria}
    path = root / "validation" / "reports" / "models" / "m" / "9.0.0" / "validation_record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((signer or site_signer()).sign_document("validation-record", payload)
                     if sign else json.dumps(payload).encode())
    return str(path.relative_to(root))


def _criterion(metric: str, stratum: str, statistic: str, op: str, threshold: float,
               value: float | None) -> dict:
    return {"metric": metric, "stratum": stratum, "statistic": statistic, "op": op,
            "threshold": threshold, "value": value}


@pytest.mark.req("SRS-RISK-010")
def test_per_case_failures_from_signed_values(tmp_path: Path) -> None:
    worst_ok = _criterion("spurious", "a", "worst", "<=", 1, 0.4)
    worst_bad = _criterion("spurious", "b", "worst", "<=", 1, 7.0)
    every = _criterion("low_confidence", "b", "mean", ">=", 1, 0.75)
    record = _signed_fixture(tmp_path, [worst_ok, worst_bad, every,
                                        _criterion("dice", "a", "median", ">=", 0.9, 0.95)])
    assert per_case_failures(worst_ok, 20) == (0, "")
    assert per_case_failures(worst_bad, 20)[0] == 20
    assert per_case_failures(every, 20) == (5, "")
    assert per_case_failures(_criterion("x", "a", "mean", "<=", 0, 0.1), 20) == (2, "")
    assert per_case_failures(_criterion("x", "a", "mean", ">=", 1, None), 20)[0] == 20

    def bound(*refs: tuple[str, str]) -> object:
        control = _control(evidence=[{"kind": "validation", "record": record, "criteria": [
            {"metric": m, "stratum": s} for m, s in refs]}])
        return control_bound(control, {}, {}, tmp_path)

    ok = bound(("spurious", "a"))
    assert (ok.counts[0].trials, ok.counts[0].failures) == (20, 0)
    assert math.isclose(ok.bound, 1 - 0.05 ** (1 / 20))
    both = bound(("spurious", "a"), ("low_confidence", "b"))
    assert (both.counts[0].trials, both.counts[0].failures) == (40, 5)
    # Two criteria on one stratum: a case is counted once, at most the stratum's cases.
    same = bound(("spurious", "b"), ("low_confidence", "b"))
    assert (same.counts[0].trials, same.counts[0].failures) == (20, 20) and same.bound == 1.0
    median = bound(("dice", "a"))
    assert median.bound == 1.0 and median.problems[0][0] == ("evidence", 0)
    assert "median dice (a) is not required of every case" in median.problems[0][1]
    unknown = bound(("nope", "a"))
    assert f"{record} has no criterion nope (a)" in unknown.problems[0][1]


@pytest.mark.req("SRS-RISK-010")
def test_unsigned_records_and_changed_protocols_give_no_credit(tmp_path: Path) -> None:
    record = _signed_fixture(tmp_path, [_criterion("s", "a", "worst", "<=", 1, 0.0)],
                             sign=False)
    control = _control(evidence=[{"kind": "validation", "record": record,
                                  "criteria": [{"metric": "s", "stratum": "a"}]}])
    found = control_bound(control, {}, {}, tmp_path)
    assert found.bound == 1.0
    assert found.problems[0][1].startswith(f"RC-900: evidence not usable: {record} is not "
                                           "accepted as a signed validation record "
                                           "(RECORD_UNSIGNED)")
    _signed_fixture(tmp_path, [_criterion("s", "a", "worst", "<=", 1, 0.0)],
                    signer=untrusted_signer())
    untrusted = control_bound(control, {}, {}, tmp_path)
    assert untrusted.bound == 1.0 and "(SIGNER_UNTRUSTED)" in untrusted.problems[0][1]
    _signed_fixture(tmp_path, [_criterion("s", "a", "worst", "<=", 1, 0.0)])
    assert control_bound(control, {}, {}, tmp_path).problems == ()
    (tmp_path / "validation" / "protocols" / "p.yaml").write_text(
        "id: p\ndataset: {cases_per_stratum: 200}\n", encoding="utf-8")
    changed = control_bound(control, {}, {}, tmp_path)
    assert "its protocol validation/protocols/p.yaml changed since the record" in \
        changed.problems[0][1]


@pytest.mark.req("SRS-RISK-010")
def test_an_unknown_criterion_is_reported_at_the_evidence_line(copy: Path) -> None:
    controls = copy / "risk" / "controls.yaml"
    _edit(controls, "          - {metric: low_confidence, stratum: iso-ilt}\n",
          "          - {metric: low_confidence, stratum: iso-ilt}\n"
          "          - {metric: lumen_dice, stratum: nowhere}\n")
    found = _check(copy, _load(copy))
    _at(found, controls, _line(controls, "- kind: validation"),
        f"RC-013: evidence not usable: {RECORD} has no criterion lumen_dice (nowhere)")


@pytest.mark.req("SRS-RISK-010")
def test_field_evidence(copy: Path) -> None:
    field = copy / "risk" / "field" / "RC-006.yaml"
    field.parent.mkdir()
    field.write_text("control: RC-006\nsource: vigilance reports of 3 sites\n"
                     "period: 2027-01 to 2027-12\nuses: 1000\nfailures: 0\n", encoding="utf-8")
    controls = copy / "risk" / "controls.yaml"
    _edit(controls, "    implemented_by: [SRS-CONF-007]\n    verified_by: []\n    evidence:\n"
          "      - kind: tests\n", "    implemented_by: [SRS-CONF-007]\n    verified_by: []\n"
          "    evidence:\n      - kind: tests\n      - kind: field\n"
          "        record: risk/field/RC-006.yaml\n")
    rf = _load(copy)
    outcomes, requirement_tests = _passing_run(rf, GENEROUS)
    bound = compute_bounds(rf, outcomes, requirement_tests)["RC-006"]
    tests, field_count = bound.counts
    assert (field_count.kind, field_count.trials, field_count.failures) == ("field", 1000, 0)
    assert "vigilance reports of 3 sites, 2027-01 to 2027-12" in field_count.source
    assert math.isclose(bound.bound, tests.bound + (1 - 0.05 ** (1 / 1000)))
    assert _check(copy, rf) == []
    field.write_text("control: RC-005\nsource: vigilance\nperiod: year 2027\n"
                     "uses: 10\nfailures: 11\n", encoding="utf-8")
    _at(_check(copy, _load(copy)), controls, _line(controls, "- kind: field"),
        "RC-006: evidence not usable: risk/field/RC-006.yaml is not a field-data record")
    field.write_text("control: RC-005\nsource: vigilance\nperiod: year 2027\n"
                     "uses: 10\nfailures: 1\n", encoding="utf-8")
    _at(_check(copy, _load(copy)), controls, _line(controls, "- kind: field"),
        "risk/field/RC-006.yaml is field data of RC-005, not RC-006")


# --- Overall conclusion --------------------------------------------------------------------------

@pytest.mark.req("SRS-RISK-011")
def test_the_overall_conclusion_is_not_acceptable_and_says_why() -> None:
    rf, _ = load_risk_file()
    assert rf is not None
    outcomes, requirement_tests = _passing_run(rf, GENEROUS)
    overall = render_risk_report(rf, outcomes, requirement_tests)["overall"]
    assert overall["conclusion"] == "not acceptable" and not overall["acceptable"]
    statement = overall["statement"]
    assert statement.startswith("The overall residual risk is NOT acceptable: RISK-001, ")
    assert "No model has passed its validation protocol (3 signed records: aaa-cta 1.0.0, " \
        "aaa-cta 2.0.0, aaa-cta 2.1.0, all failed)" in statement
    assert "phantom-only evidence supports no clinical benefit claim" in statement
    assert any(item.startswith("RISK-001 (Hallucinated or misshapen lumen in the synthetic "
                               "image): residual S5/P2 is unacceptable")
               for item in overall["open_items"])
    assert risk_blockers(rf, outcomes, requirement_tests) == overall["open_items"]


@pytest.mark.req("SRS-RISK-011")
def test_a_model_that_passed_on_the_phantom_demonstrates_no_benefit(tmp_path: Path) -> None:
    _signed_fixture(tmp_path, [_criterion("s", "a", "worst", "<=", 1, 0.0)])
    found = model_evidence(tmp_path)
    assert found.passed == ("m 9.0.0",) and not found.benefit_demonstrated
    assert "m 9.0.0 passed its protocol on phantom-only evidence" in found.describe()
    assert "supports no clinical benefit claim" in found.describe()


@pytest.mark.req("SRS-RISK-011", "SRS-RISK-005")
def test_an_acceptable_alarp_needs_a_demonstrated_benefit(copy: Path) -> None:
    _all_acceptable(copy)
    risk = copy / "risk" / "risks" / "RISK-013.yaml"
    _edit(risk, "residual: {severity: S1, probability: P4}",
          "residual: {severity: S2, probability: P4}\nbenefit_risk: Benefit as for RISK-001.")
    rf: RiskFile = _load(copy)
    outcomes, requirement_tests = _passing_run(rf, GENEROUS)
    overall = render_risk_report(rf, outcomes, requirement_tests)["overall"]
    assert overall["open_items"] == [
        "RISK-013 (Outage during clinical use): residual S2/P4 is ALARP and its benefit-risk "
        "analysis rests on a clinical benefit no validated model demonstrates"]
    shutil.rmtree(copy / "validation" / "reports")
    assert "No signed validation record of any model" in \
        render_risk_report(_load(copy), outcomes, requirement_tests)["overall"]["benefit"]
