"""The latest test run, read from the junit report `make test` writes: for each test, the
requirements it verifies and its outcome. The pytest plugin puts both into each test case's
properties (`nodeid`, `requirements`), and the suite's properties bind the run to the working
tree it ran on (`tree`, `tree_at_end`) and carry its run-time imports (`imports`), so the report
alone is the evidence."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.import_audit import PROPERTY as IMPORTS
from digital_contrast.qms.import_audit import parse_edges

DEFAULT_JUNIT = REPO_ROOT / "var" / "test-reports" / "junit.xml"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # a record of a test, not a test (pytest would try to collect it)

    node_id: str
    requirements: tuple[str, ...]
    outcome: str  # passed | failed | skipped (xfail included)
    seconds: float
    message: str = ""


@dataclass(frozen=True)
class TestRun:
    __test__ = False

    source: str
    timestamp: str
    cases: dict[str, TestCase] = field(default_factory=dict)
    tree: str | None = None  # git tree id of the sources at the start of the run
    tree_at_end: str | None = None  # and after its last test
    imports: tuple[tuple[str, str], ...] = ()  # (importer, imported) seen at run time

    @property
    def outcomes(self) -> dict[str, str]:
        return {node: case.outcome for node, case in self.cases.items()}

    def requirement_tests(self) -> dict[str, list[str]]:
        """Requirement id -> the node ids of the tests that verify it."""
        tests: dict[str, list[str]] = defaultdict(list)
        for case in self.cases.values():
            for rid in case.requirements:
                tests[rid].append(case.node_id)
        return dict(tests)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for case in self.cases.values():
            counts[case.outcome] += 1
        return dict(counts)


class JunitError(ValueError):
    """The report is missing, unreadable or not one the plugin wrote."""


def read_junit(path: Path = DEFAULT_JUNIT) -> TestRun:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise JunitError(f"{path}: no readable junit report ({exc}); run `make test` first") \
            from None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        raise JunitError(f"{path}: no <testsuite> element")
    suite_properties = {p.get("name"): p.get("value") or ""
                        for p in suite.iterfind("properties/property")}
    cases: dict[str, TestCase] = {}
    for element in suite.iter("testcase"):
        properties = {p.get("name"): p.get("value") or ""
                      for p in element.iterfind("properties/property")}
        node = properties.get("nodeid")
        if not node:
            raise JunitError(f"{path}: test case {element.get('name')} has no nodeid property "
                             "(not written by the requirement plugin)")
        outcome = PASSED
        message = ""
        for tag, result in (("failure", FAILED), ("error", FAILED), ("skipped", SKIPPED)):
            found = element.find(tag)
            if found is not None:
                outcome, message = result, found.get("message") or ""
                break
        requirements = tuple(r for r in properties.get("requirements", "").split(",") if r)
        if node in cases and cases[node].outcome == FAILED:
            continue  # a teardown error reported apart never turns a failure into a pass
        cases[node] = TestCase(node, requirements, outcome, float(element.get("time") or 0),
                               message)
    return TestRun(str(path), suite.get("timestamp", ""), cases,
                   tree=suite_properties.get("tree") or None,
                   tree_at_end=suite_properties.get("tree_at_end") or None,
                   imports=tuple(parse_edges(suite_properties.get(IMPORTS, ""))))
