"""Known residual anomalies (IEC 62304 5.8.2, 5.8.3): `qms/anomalies.yaml` as data and its check.

Each anomaly names the requirements and software items it affects, the strict-xfail or skipped
tests that document it, the risks it concerns and the evaluation of why it does not contribute
to an unacceptable risk. The check resolves every reference against the records and the latest
test run: a documenting test that is absent from the run is unverified, and one that passed
means the anomaly is gone (stale) and must be closed. The tests of open anomalies are what the
risk check accepts as not passing (`documented_tests`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.qms.junit_report import FAILED, PASSED, SKIPPED, TestRun
from digital_contrast.qms.records import QMS_DIR
from digital_contrast.qms.requirements import Text
from digital_contrast.qms.yaml_records import Problem, YamlDocument, duplicates

ANOMALIES_FILE = QMS_DIR / "anomalies.yaml"

AnomalyId = Annotated[str, StringConstraints(pattern=r"^ANOM-\d{3}$")]
# A whole pytest node id: an anomaly is documented by one test, not by a file of them.
NodeId = Annotated[str, StringConstraints(pattern=r"^tests/[\w/.-]+\.py::\S+$")]
AffectedId = Annotated[str, StringConstraints(pattern=r"^(SRS-[A-Z]+-\d{3}|SI-[A-Z]+)$")]
RiskRef = Annotated[str, StringConstraints(pattern=r"^RISK-\d{3}$")]


class ResidualAnomaly(FrozenSchema):
    """One known residual anomaly."""

    id: AnomalyId
    title: Text
    description: Text
    affected: list[AffectedId] = Field(min_length=1)
    tests: list[NodeId] = Field(min_length=1)
    risk: list[RiskRef] = Field(min_length=1)
    evaluation: Text
    # Only open anomalies are listed; a fixed one leaves the file (git keeps its history).
    status: Literal["open"]


def load_anomalies(path: Path = ANOMALIES_FILE
                   ) -> tuple[list[ResidualAnomaly], YamlDocument | None, list[Problem]]:
    """The valid anomalies, the document (for line numbers) and every schema problem."""
    doc, problems = YamlDocument.load(path)
    if doc is None:
        return [], None, problems
    anomalies, problems = doc.validate_list("anomalies", ResidualAnomaly)
    problems += duplicates(doc, "anomalies", [r.get("id") for r in doc.data.get("anomalies", [])
                                              if isinstance(r, dict)], "anomaly")
    return anomalies, doc, problems


def documented_tests(anomalies: list[ResidualAnomaly]) -> set[str]:
    """Node ids of the tests that document an open anomaly."""
    return {node for a in anomalies if a.status == "open" for node in a.tests}


def check_anomalies(anomalies: list[ResidualAnomaly], doc: YamlDocument, run: TestRun, *,
                    requirements: set[str], items: set[str], risks: set[str]) -> list[Problem]:
    """Unknown references, and documenting tests that are absent from the run or do not show
    the anomaly any more."""
    index = {row.get("id"): i for i, row in enumerate(doc.data.get("anomalies", []))
             if isinstance(row, dict)}
    problems: list[Problem] = []
    for anomaly in anomalies:
        at = ("anomalies", index[anomaly.id])
        for n, ref in enumerate(anomaly.affected):
            known, what = ((requirements, "requirement") if ref.startswith("SRS-")
                           else (items, "software item"))
            if ref not in known:
                problems.append(doc.problem((*at, "affected", n),
                                            f"{anomaly.id}: unknown {what} {ref}"))
        problems += [doc.problem((*at, "risk", n), f"{anomaly.id}: unknown risk {ref}")
                     for n, ref in enumerate(anomaly.risk) if ref not in risks]
        for n, node in enumerate(anomaly.tests):
            case = run.cases.get(node)
            if case is None:
                message = f"{anomaly.id}: {node} is not in the test run ({run.source})"
            elif case.outcome == PASSED:
                message = (f"{anomaly.id}: {node} passed: the anomaly is stale, close it (and "
                           "drop the xfail or skip)")
            elif case.outcome == FAILED:
                # A strict xfail that passes is reported as failed; so is a new failure. Either
                # way the test no longer documents this anomaly as written.
                message = (f"{anomaly.id}: {node} failed (a strict xfail that passed, or a new "
                           "failure): review the anomaly")
            else:
                continue
            problems.append(doc.problem((*at, "tests", n), message))
    return problems


def accepted_tests(anomalies: list[ResidualAnomaly], run: TestRun) -> set[str]:
    """The documented tests the risk check may accept as not passing: only those skipped or
    xfailed in the run, so that a real failure of a documented test is still a gap."""
    return {node for node in documented_tests(anomalies)
            if node in run.cases and run.cases[node].outcome == SKIPPED}


__all__ = ["ANOMALIES_FILE", "ResidualAnomaly", "accepted_tests", "check_anomalies",
           "documented_tests", "load_anomalies"]
