"""pytest plugin: every test names the requirements it verifies (`@pytest.mark.req("SRS-...")`).

Collection fails on a test without the marker or with an unknown ID. The run writes a JSON map
(node id -> requirements -> outcome) for the traceability generators, and puts the IDs into the
junit properties (xunit1 keeps them). A run that writes a junit report also binds it to the
working tree it ran on (testsuite properties `tree` at the start and `tree_at_end`, see
qms/tree.py) and records the package's run-time imports (`imports`, qms/import_audit.py).
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.import_audit import PROPERTY as IMPORTS
from digital_contrast.qms.import_audit import ImportAudit
from digital_contrast.qms.requirements import load_requirements
from digital_contrast.qms.tree import working_tree_hash

TREE, TREE_AT_END = "tree", "tree_at_end"

MARKER = "req"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--req-map", default=None, metavar="PATH",
                     help="write the test -> requirement map (JSON) to PATH")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RequirementTrace(config.getoption("--req-map")),
                                  "requirement-trace")
    if config.getoption("xmlpath", None):  # installed before any test module is imported
        audit = ImportAudit()
        audit.install()
        config.stash[_AUDIT] = audit


def pytest_unconfigure(config: pytest.Config) -> None:
    audit = config.stash.get(_AUDIT, None)
    if audit is not None:
        audit.uninstall()


_AUDIT = pytest.StashKey[ImportAudit]()


@pytest.fixture(scope="session", autouse=True)
def _bind_the_report_to_its_tree(request: pytest.FixtureRequest,
                                 record_testsuite_property: Callable[[str, object], None]
                                 ) -> Iterator[None]:
    """The tree before the first test and after the last: a report is evidence only for the
    sources it ran on, and only if no test changed them on the way."""
    audit = request.config.stash.get(_AUDIT, None)
    if audit is None:
        yield
        return
    record_testsuite_property(TREE, working_tree_hash(REPO_ROOT))
    yield
    record_testsuite_property(TREE_AT_END, working_tree_hash(REPO_ROOT))
    record_testsuite_property(IMPORTS, audit.serialise())


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
