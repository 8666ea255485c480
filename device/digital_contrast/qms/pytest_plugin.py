"""pytest plugin: every test names the requirements it verifies (`@pytest.mark.req("SRS-...")`).

Collection fails on a test without the marker or with an unknown ID. The run writes a JSON map
(node id -> requirements -> outcome) for the traceability generators, and puts the IDs into the
junit properties (xunit1 keeps them).
"""

import json
from pathlib import Path

import pytest

from digital_contrast.qms.requirements import load_requirements

MARKER = "req"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--req-map", default=None, metavar="PATH",
                     help="write the test -> requirement map (JSON) to PATH")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RequirementTrace(config.getoption("--req-map")),
                                  "requirement-trace")


def requirement_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers(MARKER):
        ids += [i for i in mark.args if i not in ids]
    return ids


class RequirementTrace:
    def __init__(self, map_path: str | None) -> None:
        self.map_path = Path(map_path) if map_path else None
        self.tests: dict[str, dict] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        known = load_requirements().requirements
        problems = []
        for item in items:
            ids = requirement_ids(item)
            if not ids:
                problems.append(f"{item.nodeid}: no @pytest.mark.{MARKER}(...) for a requirement")
            problems += [f"{item.nodeid}: unknown requirement {rid!r}"
                         for rid in ids if not isinstance(rid, str) or rid not in known]
            item.user_properties.append(("requirements", ",".join(map(str, ids))))
            item.user_properties.append(("nodeid", item.nodeid))  # junit alone traces
            self.tests[item.nodeid] = {"requirements": ids, "outcome": "not run"}
        if problems:
            raise pytest.UsageError("requirement markers:\n  " + "\n  ".join(problems))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.get(report.nodeid)
        if entry is None:
            return
        # The call decides, but a failed or skipped setup/teardown overrides a pass.
        decisive = report.when == "call" or report.outcome != "passed"
        if decisive and entry["outcome"] != "failed":
            entry["outcome"] = report.outcome

    def pytest_sessionfinish(self) -> None:
        if self.map_path is None or not self.tests:
            return
        self.map_path.parent.mkdir(parents=True, exist_ok=True)
        self.map_path.write_text(json.dumps({"tests": self.tests}, indent=2, sort_keys=True)
                                 + "\n", encoding="utf-8")
