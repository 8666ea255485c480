"""The req marker: collection fails without it or with an unknown ID; the run writes the map."""

import json
import xml.etree.ElementTree as ET

import pytest

from digital_contrast.qms.junit_report import read_junit

PASSING = """
import pytest

@pytest.mark.req("SRS-IMG-001")
def test_ok():
    assert True

@pytest.mark.req("SRS-IMG-004", "SRS-IMG-001")
def test_fails():
    assert False

@pytest.fixture
def helper():  # fixtures need no marker
    return 1

@pytest.mark.req("SRS-IMG-002")
def test_uses_fixture(helper):
    assert helper == 1
"""


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest('pytest_plugins = ["digital_contrast.qms.pytest_plugin"]')
    pytester.makeini("[pytest]\nmarkers =\n    req: requirement\njunit_family = xunit1\n")
    pytester.makepyfile(test_sample=source)
    return pytester.runpytest_subprocess(*args)


@pytest.mark.req("SRS-QMS-002")
def test_collection_fails_for_a_test_without_marker(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "def test_unmarked():\n    assert True\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_unmarked: no @pytest.mark.req*"])
    assert "1 passed" not in result.stdout.str()


@pytest.mark.req("SRS-QMS-002")
def test_collection_fails_for_an_unknown_requirement(pytester: pytest.Pytester) -> None:
    result = _run(pytester, 'import pytest\n\n@pytest.mark.req("SRS-NOPE-001")\n'
                            "def test_x():\n    assert True\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown requirement 'SRS-NOPE-001'*"])


@pytest.mark.req("SRS-QMS-003")
def test_run_writes_the_map_and_junit_properties(pytester: pytest.Pytester) -> None:
    result = _run(pytester, PASSING, "--req-map=out/map.json", "--junitxml=out/junit.xml")
    result.assert_outcomes(passed=2, failed=1)
    trace = json.loads((pytester.path / "out" / "map.json").read_text())["tests"]
    assert trace["test_sample.py::test_ok"] == {"requirements": ["SRS-IMG-001"],
                                                "outcome": "passed"}
    assert trace["test_sample.py::test_fails"] == {
        "requirements": ["SRS-IMG-004", "SRS-IMG-001"], "outcome": "failed"}
    assert trace["test_sample.py::test_uses_fixture"]["outcome"] == "passed"
    junit = ET.parse(pytester.path / "out" / "junit.xml")
    properties = {(case.get("name"), prop.get("name")): prop.get("value")
                  for case in junit.iter("testcase") for prop in case.iter("property")}
    assert properties["test_fails", "requirements"] == "SRS-IMG-004,SRS-IMG-001"
    assert properties["test_fails", "nodeid"] == "test_sample.py::test_fails"
    run = read_junit(pytester.path / "out" / "junit.xml")  # what `qms check` reads
    assert run.cases["test_sample.py::test_fails"].outcome == "failed"
    assert run.cases["test_sample.py::test_fails"].requirements == ("SRS-IMG-004",
                                                                   "SRS-IMG-001")
    assert "test_sample.py::test_fails" in run.requirement_tests()["SRS-IMG-001"]
