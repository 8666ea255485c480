"""Whether a risk control is verified: the tests of a run that verify it and their outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from digital_contrast.qms.risk.schema import Control


def matching_tests(ref: str, test_outcomes: dict[str, str]) -> list[str]:
    """Node ids that `ref` names: itself, or the tests of a file, class or parametrised test."""
    return sorted(node for node in test_outcomes
                  if node == ref or node.startswith((ref + "::", ref + "[")))


class ControlVerification(StrEnum):
    """Where a control's verification stands in a test run."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_VERIFIED = "not verified"


@dataclass(frozen=True)
class ControlEvidence:
    """The tests that verify one control, grouped by where they come from."""

    by_requirement: dict[str, dict[str, str]]  # requirement -> node id -> outcome
    explicit: dict[str, dict[str, str]]  # verified_by entry -> node id -> outcome
    # Skipped/xfailed tests that document an open known anomaly (qms/anomalies.yaml): their
    # not passing is evaluated there (IEC 62304 5.8.3), so it does not leave a control open.
    accepted: frozenset[str] = frozenset()

    @property
    def tests(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for group in (*self.by_requirement.values(), *self.explicit.values()):
            merged.update(group)
        return merged

    @property
    def status(self) -> ControlVerification:
        outcomes = list(self.tests.values())
        if "failed" in outcomes:
            return ControlVerification.FAILED
        # Every implementing requirement and every named entry must have a test, all passed.
        covered = all(self.by_requirement.values()) and all(self.explicit.values())
        if covered and outcomes and all(o == "passed" or n in self.accepted
                                        for n, o in self.tests.items()):
            return ControlVerification.PASSED
        return ControlVerification.NOT_VERIFIED


def control_evidence(control: Control, test_outcomes: dict[str, str],
                     requirement_tests: dict[str, list[str]],
                     accepted: frozenset[str] = frozenset()) -> ControlEvidence:
    return ControlEvidence(
        {rid: {node: test_outcomes.get(node, "not run")
               for node in requirement_tests.get(rid, [])} for rid in control.implemented_by},
        {ref: {node: test_outcomes[node] for node in matching_tests(ref, test_outcomes)}
         for ref in control.verified_by}, accepted)
