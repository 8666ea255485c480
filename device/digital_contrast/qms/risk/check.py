"""Gap checks of the risk file against the requirement records, the latest test run and the
evidence of its controls: inconsistencies are problems (they fail `qms check`); a residual risk
honestly computed unacceptable is a release blocker (`qms.risk.residual.release_blockers`)."""

from __future__ import annotations

from itertools import pairwise

from digital_contrast.qms.requirements import Records, SoftwareRequirement
from digital_contrast.qms.risk.bounds import ControlBound
from digital_contrast.qms.risk.evidence import control_evidence
from digital_contrast.qms.risk.load import RiskFile
from digital_contrast.qms.risk.residual import compute_bounds, compute_residual
from digital_contrast.qms.risk.schema import UNDEFINED, Control, Estimate, Level, Risk
from digital_contrast.qms.yaml_records import Problem, duplicates


def _not_passed(tests: dict[str, str], accepted: frozenset[str] = frozenset()) -> str:
    bad = [f"{node} ({outcome})" for node, outcome in sorted(tests.items())
           if outcome != "passed" and node not in accepted]
    return ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")


def _check_policy(rf: RiskFile) -> list[Problem]:
    policy, doc = rf.policy, rf.policy_doc
    problems: list[Problem] = []
    for key, scale in (("severity", policy.severity), ("probability", policy.probability)):
        problems += duplicates(doc, key, [level.id for level in scale], f"{key} level")
    severities = [s.id for s in policy.severity]
    probabilities = [p.id for p in policy.probability]
    for sid, row in policy.acceptability.items():
        if sid not in severities:
            problems.append(doc.problem(("acceptability", sid),
                                        f"matrix row {sid} is not on the severity scale"))
        problems += [doc.problem(("acceptability", sid, pid),
                                 f"matrix column {pid} is not on the probability scale")
                     for pid in row if pid not in probabilities]
    bands = policy.probability
    if bands and bands[0].lower != 0.0:
        problems.append(doc.problem(("probability", 0, "lower"), f"probability band "
                                    f"{bands[0].id} starts at {bands[0].lower:g}, not 0"))
    if bands and bands[-1].upper != 1.0:
        problems.append(doc.problem(("probability", len(bands) - 1, "upper"), f"probability "
                                    f"band {bands[-1].id} ends at {bands[-1].upper:g}, not 1"))
    for n, (lesser, band) in enumerate(pairwise(bands), 1):
        if band.lower != lesser.upper or band.lower >= band.upper:
            problems.append(doc.problem(("probability", n, "lower"), f"probability band "
                                        f"{band.id} [{band.lower:g}, {band.upper:g}) does not "
                                        f"follow {lesser.id}, which ends at {lesser.upper:g}"))
    # Scales are listed from least to worst: a worse severity or a higher probability never
    # makes a risk more acceptable.
    rank = {Level.ACCEPTABLE: 0, Level.ALARP: 1, Level.UNACCEPTABLE: 2}
    for i, sid in enumerate(severities):
        for j, pid in enumerate(probabilities):
            level = policy.level(sid, pid)
            if level == UNDEFINED:
                problems.append(doc.problem(("acceptability", sid),
                                            f"the matrix does not define ({sid}, {pid})"))
                continue
            lesser = ([(severities[i - 1], pid)] if i else []) + \
                ([(sid, probabilities[j - 1])] if j else [])
            for sid2, pid2 in lesser:
                other = policy.level(sid2, pid2)
                if other != UNDEFINED and rank[Level(other)] > rank[Level(level)]:
                    problems.append(doc.problem(
                        ("acceptability", sid, pid),
                        f"({sid}, {pid}) is {level} but the lesser ({sid2}, {pid2}) is {other}"))
    return problems


def _check_risk(rf: RiskFile, risk: Risk) -> list[Problem]:
    problems: list[Problem] = []
    severities = {s.id: n for n, s in enumerate(rf.policy.severity)}
    probabilities = {p.id: n for n, p in enumerate(rf.policy.probability)}
    for stage in ("initial", "residual"):
        estimate: Estimate = getattr(risk, stage)
        if estimate.severity not in severities:
            problems.append(rf.risk_problem(risk.id, (stage, "severity"),
                                            f"severity {estimate.severity} is not on the "
                                            f"policy's scale ({', '.join(severities)})"))
        if estimate.probability not in probabilities:
            problems.append(rf.risk_problem(risk.id, (stage, "probability"),
                                            f"probability {estimate.probability} is not on the "
                                            f"policy's scale ({', '.join(probabilities)})"))
    if not risk.controls:
        where = ("controls",) if "controls" in (rf.risk_docs[risk.id].data or {}) else ("id",)
        problems.append(rf.risk_problem(risk.id, where, f"{risk.id} has no risk control"))
    problems += [rf.risk_problem(risk.id, ("controls", n),
                                 f"{cid} is not defined in risk/controls.yaml")
                 for n, cid in enumerate(risk.controls) if cid not in rf.controls]
    problems += duplicates(rf.risk_docs[risk.id], "controls", list(risk.controls), "control")

    initial, residual = risk.initial, risk.residual
    for key, scale in (("severity", severities), ("probability", probabilities)):
        before, after = getattr(initial, key), getattr(residual, key)
        if before in scale and after in scale and scale[after] > scale[before]:
            problems.append(rf.risk_problem(risk.id, ("residual", key),
                                            f"residual {key} {after} is worse than the "
                                            f"initial {before}"))
    if risk.independence is not None:
        problems += [rf.risk_problem(risk.id, ("independence", "controls", n),
                                     f"{risk.id}: the independence argument names {cid}, which "
                                     "is not one of its controls")
                     for n, cid in enumerate(risk.independence.controls)
                     if cid not in risk.controls]
    return problems


def _check_claim(rf: RiskFile, risk: Risk, bounds: dict[str, ControlBound]) -> list[Problem]:
    """The residual probability in the record is a claim; a claim better than the evidence
    supports is an inconsistency of the file."""
    residual = compute_residual(rf, risk, bounds)
    if residual.computed == UNDEFINED:
        return [rf.risk_problem(risk.id, ("residual", "probability"),
                                f"{risk.id}: the computed residual probability "
                                f"{residual.probability:.2g} is in no probability band of the "
                                "policy")]
    if not residual.claim_below_evidence:
        return []
    return [rf.risk_problem(risk.id, ("residual", "probability"),
                            f"{risk.id} claims {residual.claim} but its evidence supports "
                            f"{residual.computed} at best ({residual.describe()})")]


def _check_control(rf: RiskFile, control: Control, bound: ControlBound, used: set[str],
                   requirements: dict[str, SoftwareRequirement],
                   test_outcomes: dict[str, str], requirement_tests: dict[str, list[str]],
                   accepted: frozenset[str]) -> list[Problem]:
    cid = control.id
    problems: list[Problem] = []
    if cid not in used:
        problems.append(rf.control_problem(cid, ("id",), f"{cid} controls no risk"))
    if not control.implemented_by:
        problems.append(rf.control_problem(cid, ("id",),
                                           f"{cid} is implemented by no requirement"))
    for n, rid in enumerate(control.implemented_by):
        if rid not in requirements:
            problems.append(rf.control_problem(cid, ("implemented_by", n),
                                               f"{cid}: unknown requirement {rid}"))
        elif not requirements[rid].risk_control:
            problems.append(rf.control_problem(cid, ("implemented_by", n),
                                               f"{rid} implements {cid} but is not marked "
                                               "risk_control: true"))
    problems += [rf.control_problem(cid, loc, message) for loc, message in bound.problems]
    evidence = control_evidence(control, test_outcomes, requirement_tests, accepted)
    if not evidence.tests:
        where = ("verified_by",) if control.verified_by else ("id",)
        problems.append(rf.control_problem(cid, where, f"{cid} has no verifying test: no test "
                                           "in the run verifies its requirements and it names "
                                           "none"))
        return problems
    for n, rid in enumerate(control.implemented_by):
        tests = evidence.by_requirement[rid]
        if rid in requirements and not tests:
            problems.append(rf.control_problem(cid, ("implemented_by", n),
                                               f"{cid}: no test in the run verifies {rid}"))
        elif _not_passed(tests, accepted):
            problems.append(rf.control_problem(cid, ("implemented_by", n),
                                               f"{cid} not verified: tests of {rid} did not "
                                               f"all pass: {_not_passed(tests, accepted)}"))
    for n, ref in enumerate(control.verified_by):
        tests = evidence.explicit[ref]
        if not tests:
            problems.append(rf.control_problem(cid, ("verified_by", n),
                                               f"{cid}: {ref} matches no test in the run"))
        elif _not_passed(tests, accepted):
            problems.append(rf.control_problem(cid, ("verified_by", n),
                                               f"{cid} not verified: "
                                               f"{_not_passed(tests, accepted)}"))
    return problems


def check_risk_file(risk_file: RiskFile, records: Records, test_outcomes: dict[str, str],
                    requirement_tests: dict[str, list[str]], *,
                    accepted: frozenset[str] = frozenset()) -> list[Problem]:
    """Every gap in the risk file against the requirement records and the latest test run.

    `test_outcomes` maps pytest node ids to passed / failed / skipped / not run and
    `requirement_tests` requirement ids to the node ids that verify them (see
    `qms.junit_report.TestRun`).
    Requirements flagged `risk_control: true` must implement a control. A residual probability
    claimed below what the controls' evidence supports, and evidence that cannot be read, are
    problems; a residual risk computed unacceptable is not (see `release_blockers`).
    `accepted`: node ids of skipped tests that document an open known anomaly; a control whose
    only non-passing tests are these is verified (every other outcome is still reported).
    """
    rf = risk_file
    problems = _check_policy(rf)
    bounds = compute_bounds(rf, test_outcomes, requirement_tests, accepted)
    for risk in rf.risks.values():
        problems += _check_risk(rf, risk)
        problems += _check_claim(rf, risk, bounds)
    used = {cid for risk in rf.risks.values() for cid in risk.controls}
    for control in rf.controls.values():
        problems += _check_control(rf, control, bounds[control.id], used, records.requirements,
                                   test_outcomes, requirement_tests, accepted)
    implemented = {rid for c in rf.controls.values() for rid in c.implemented_by}
    problems += [records.requirement_problem(rid, ("id",), f"{rid} is a risk control "
                                             "(risk_control: true) but implements no control "
                                             "in risk/controls.yaml")
                 for rid, requirement in records.requirements.items()
                 if requirement.risk_control and rid not in implemented]
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))
