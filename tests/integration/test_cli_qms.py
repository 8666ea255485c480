"""The regulatory commands on the repository's own records: `qms check`, `trace`, `risk`,
`soup`, driven by a junit report written by a real (small) pytest run."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app, command_names


def _cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


@pytest.mark.req("SRS-QMS-006", "SRS-QMS-008", "SRS-RISK-005")
def test_check_lists_every_gap_and_exits_non_zero(small_junit: Path) -> None:
    result = _cli("qms", "check", "--junit", str(small_junit))
    assert result.exit_code == 1, result.output
    assert "QMS_GAPS" in result.output
    # A run of one test file leaves most requirements without a passing test...
    assert "SRS-IMG-001 is verified by test but no test names it" in result.output
    # ...and a clause satisfied by the manufacturer's evidence is named, with its status.
    assert "clause 4.1 (Quality management system) is satisfied outside this repository" in \
        result.output and "not established yet" in result.output
    assert "requirements" in result.output.splitlines()[0]  # the counts come first
    # Residual risks computed unacceptable are listed apart, as release blockers...
    assert "release blockers (" in result.output and "the overall residual risk is NOT " \
        "acceptable" in result.output
    assert "  blocker: RISK-001 (Hallucinated or misshapen lumen in the synthetic image): " \
        "residual S5/" in result.output
    # ...while a claim the evidence of this small run cannot support is a gap.
    assert "RISK-001 claims P2 but its evidence supports" in result.output


@pytest.mark.req("SRS-QMS-006")
def test_check_without_a_test_run_is_a_clear_error(tmp_path: Path) -> None:
    result = _cli("qms", "check", "--junit", str(tmp_path / "missing.xml"))
    assert result.exit_code == 2 and "QMS_NO_TEST_RUN" in result.output


@pytest.mark.req("SRS-QMS-009", "SRS-RISK-006", "SRS-SOUP-007")
def test_trace_risk_and_soup_write_their_documents(small_junit: Path, tmp_path: Path) -> None:
    for verb in (("trace", "--junit", str(small_junit)), ("risk", "--junit", str(small_junit)),
                 ("soup", "--no-audit")):
        result = _cli("qms", *verb, "--out", str(tmp_path))
        assert result.exit_code == 0, result.output
    names = {p.name for p in tmp_path.iterdir()}
    assert {"trace.html", "trace.pdf", "trace.md", "trace.csv", "trace.json",
            "risk_management_report.html", "risk_management_report.pdf",
            "risk_management_report.md", "soup_list.html", "soup_list.pdf", "soup_list.md",
            "soup_list.csv", "sbom.cdx.json"} <= names
    trace = json.loads((tmp_path / "trace.json").read_text())
    verified = {r["id"] for r in trace["requirements"] if r["verified"]}
    assert verified == {"SRS-IMG-010"}  # the only requirement the NIfTI tests verify
    assert json.loads((tmp_path / "sbom.cdx.json").read_text())["bomFormat"] == "CycloneDX"


@pytest.mark.req("SRS-QMS-008")
def test_the_clause_map_names_real_commands() -> None:
    assert {"qms check", "qms trace", "qms design", "qms risk", "qms soup"} <= command_names()
