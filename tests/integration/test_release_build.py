"""`release build VERSION`: the release record of a software version, its refusals (each writing
nothing) and its manifest, on a junit report written by a real (small) pytest run. The git
state and `qms check` are replaced where a test needs a clean tree or a run without gaps: a one
file run never covers every requirement, and the working copy under test is rarely clean."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app, command_names
from digital_contrast.config import REPO_ROOT, get_settings
from digital_contrast.errors import DigitalContrastError
from digital_contrast.model.validation_record import Criterion, ValidationRecord
from digital_contrast.qms.anomalies import load_anomalies
from digital_contrast.qms.check import CheckResult, check_clauses
from digital_contrast.qms.junit_report import read_junit
from digital_contrast.qms.yaml_records import Problem
from digital_contrast.release import record
from digital_contrast.release.record import build_release
from tests.support.signing import site_signer

COUNTS = {"requirements": 3, "tests": 2, "risks": 1, "risk controls": 1}


def _validation_run(build: Path, protocol_sha256: str, run_id: str,
                    use_case: str = "aaa-cta") -> Path:
    """A completed `validate` run as the runner files it (its content is the runner's test)."""
    folder = build / "validation" / run_id
    folder.mkdir(parents=True)
    ValidationRecord(
        bundle_sha256="b" * 64, use_case=use_case, model_name=use_case, model_version="1.0.0",
        protocol=f"validation/protocols/{use_case}.yaml", protocol_sha256=protocol_sha256,
        dataset="phantom seeds 9000-9023 (held out), small size", evidence="phantom only",
        criteria=[Criterion(metric="lumen_dice", op=">=", threshold=0.92, value=0.8)],
    ).save_signed(folder / "validation_record.json", site_signer())
    (folder / "report.html").write_text("<html>report</html>")
    return folder


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean tree at a known commit, a `qms check` without problems, and a run of the
    current aaa-cta protocol in the build folder (returned), beside one of every other
    protocol (a release needs a run of each)."""
    monkeypatch.setattr(record, "git_status", lambda repo: "")
    monkeypatch.setattr(record, "git_commit", lambda repo: "0123abcd" * 5)
    outside = check_clauses(REPO_ROOT / "qms" / "clause_map.yaml", command_names())[1]
    monkeypatch.setattr(record, "run_checks",
                        lambda run, **_: CheckResult([], dict(COUNTS), outside))
    monkeypatch.setenv("DC_BUILD_DIR", str(tmp_path / "build"))
    get_settings.cache_clear()
    protocol = REPO_ROOT / "validation" / "protocols" / "aaa-cta.yaml"
    _validation_run(tmp_path / "build", "0" * 64, "aaa-cta-20261101T000000Z-bbbbbbbbbbbb")
    current = _validation_run(tmp_path / "build", hashlib.sha256(
        protocol.read_bytes()).hexdigest(), "aaa-cta-20261102T000000Z-bbbbbbbbbbbb")
    for other in sorted(protocol.parent.glob("*.yaml")):
        if other != protocol:
            _validation_run(tmp_path / "build", hashlib.sha256(other.read_bytes()).hexdigest(),
                            f"{other.stem}-20261102T000000Z-bbbbbbbbbbbb", other.stem)
    yield current
    get_settings.cache_clear()


def _build(out: Path, junit: Path, version: str = "1.0.0") -> Path:
    return build_release(version, commands=command_names(), out_root=out, junit=junit)


def _refused(out: Path, junit: Path, code: str, version: str = "1.0.0") -> str:
    before = sorted(out.rglob("*")) if out.exists() else []
    with pytest.raises(DigitalContrastError) as caught:
        _build(out, junit, version)
    assert caught.value.code == code, caught.value
    assert (sorted(out.rglob("*")) if out.exists() else []) == before  # nothing written
    return caught.value.detail


@pytest.mark.req("SRS-REL-003")
@pytest.mark.parametrize("version", ["one", "1.0.0 rc1", "01.0"])
def test_an_invalid_version_is_refused(clean: None, small_junit: Path, tmp_path: Path,
                                       version: str) -> None:
    _refused(tmp_path / "releases", small_junit, "RELEASE_VERSION_INVALID", version)


@pytest.mark.req("SRS-REL-003")
def test_a_dirty_tree_is_refused(clean: None, small_junit: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record, "git_status", lambda repo: "?? notes.txt\n M device/x.py\n")
    detail = _refused(tmp_path / "releases", small_junit, "RELEASE_DIRTY_TREE")
    assert "2 uncommitted change(s)" in detail and "notes.txt" in detail


@pytest.mark.req("SRS-REL-003")
def test_the_real_git_status_lists_untracked_files(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert record.git_status(tmp_path) == ""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new.txt").write_text("x")
    assert record.git_status(tmp_path).strip() == "?? sub/new.txt"


@pytest.mark.req("SRS-REL-003")
def test_gaps_are_refused_naming_the_first_problems(clean: None, small_junit: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gap = Problem("risk/controls.yaml", 143, "RC-013 not verified")
    monkeypatch.setattr(record, "run_checks", lambda run, **_: CheckResult([gap], COUNTS))
    detail = _refused(tmp_path / "releases", small_junit, "RELEASE_GAPS")
    assert "risk/controls.yaml:143: RC-013 not verified" in detail


@pytest.mark.req("SRS-REL-003")
def test_the_real_gap_check_refuses_a_partial_run(small_junit: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record, "git_status", lambda repo: "")
    detail = _refused(tmp_path / "releases", small_junit, "RELEASE_GAPS")
    assert "is verified by test but no test names it" in detail


@pytest.mark.req("SRS-QMS-015", "SRS-REL-003")
def test_a_test_run_of_other_sources_is_refused(clean: None, small_junit: Path,
                                                tmp_path: Path) -> None:
    tree = read_junit(small_junit).tree
    assert tree is not None
    other = tmp_path / "junit.xml"
    other.write_text(small_junit.read_text().replace(tree, "0" * 40))  # before a change
    detail = _refused(tmp_path / "releases", other, "RELEASE_TEST_RUN_STALE")
    assert f"the junit report ran on tree 000000000000, but the working tree is " \
           f"{tree[:12]}" in detail


@pytest.mark.req("SRS-REL-006")
def test_a_failed_build_leaves_no_folder(clean: None, small_junit: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(repo: Path, out: Path) -> Path:
        raise record.ReleaseRecordError("RELEASE_WHEEL_FAILED", "no backend")

    monkeypatch.setattr(record, "build_wheel", broken)
    out = tmp_path / "releases"
    with pytest.raises(DigitalContrastError, match="RELEASE_WHEEL_FAILED"):
        _build(out, small_junit)
    assert list(out.iterdir()) == []  # neither 1.0.0 nor the scratch folder


@pytest.mark.req("SRS-REL-004", "SRS-REL-005", "SRS-REL-006", "SRS-REL-003", "SRS-RISK-012",
                  "SRS-SOUP-013")
def test_a_release_record_is_complete_hashed_and_never_overwritten(
        clean: None, small_junit: Path, tmp_path: Path) -> None:
    out = tmp_path / "releases"
    folder = _build(out, small_junit)
    assert folder == out / "1.0.0" and [p.name for p in out.iterdir()] == ["1.0.0"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] == "1.0.0" and manifest["product"] == "Digital Contrast"
    assert manifest["git_commit"] == "0123abcd" * 5 and manifest["built_at"]
    env = manifest["build_environment"]
    assert env["python"] == sys.version.split()[0] and env["torch"] and \
        env["installed_distributions"] > 10
    # Every file of the folder but the manifest is listed with its true SHA-256.
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    wheel = manifest["wheel"]
    assert wheel["file"].endswith(".whl") and (folder / wheel["file"]).is_file()
    assert wheel["sha256"] == manifest["files"][wheel["file"]]
    assert manifest["junit"]["sha256"] == hashlib.sha256(small_junit.read_bytes()).hexdigest()
    assert manifest["junit"]["tree"] == read_junit(small_junit).tree
    filed = [a.id for a in load_anomalies(REPO_ROOT / "qms" / "anomalies.yaml")[0]]
    assert manifest["known_anomalies"] == filed and "ANOM-001" in filed
    assert [c["clause"] for c in manifest["clauses_outside_repository"]] == ["4.1"]
    assert any(m["kind"] == "candidate" and len(m["bundle_sha256"]) == 64
               for m in manifest["models"])
    assert manifest["validation"]["runs"][0] == {
        "run_id": "aaa-cta-20261102T000000Z-bbbbbbbbbbbb",
        "protocol": "validation/protocols/aaa-cta.yaml",
        "protocol_sha256": hashlib.sha256(
            (REPO_ROOT / "validation/protocols/aaa-cta.yaml").read_bytes()).hexdigest(),
        "bundle_sha256": "b" * 64, "passed": False}  # the current protocol's run, not the old
    assert [run["protocol"] for run in manifest["validation"]["runs"]] == [
        f"validation/protocols/{p.name}"
        for p in sorted((REPO_ROOT / "validation/protocols").glob("*.yaml"))]
    assert "validation/runs/aaa-cta-20261102T000000Z-bbbbbbbbbbbb/report.html" in on_disk
    assert any(f.endswith("validation_record.json") for f in manifest["validation"]["records"])
    # The generated documents, by the qms writers, and the release's own reports.
    assert {"trace/trace.md", "trace/trace.json", "risk/risk_management_report.md",
            "soup/soup_list.md", "soup/sbom.cdx.json", "design/design.md", "test_report.md",
            "anomalies.md", "RELEASE_NOTES.md"} <= on_disk
    assert "soup/vulnerability_audit.json" not in on_disk  # no network unless asked
    notes = (folder / "RELEASE_NOTES.md").read_text()
    assert "Digital Contrast 1.0.0" in notes and "3 requirements" in notes
    assert "ANOM-001" in notes and "not clinically validated" in notes
    assert "## IEC 62304 clauses satisfied outside this repository" in notes and \
        "4.1 Quality management system" in notes
    # The open licence finding of soup.yaml (a GPL-3.0 decoder) is not hidden by the notes.
    assert "pylibjpeg-libjpeg: licence GPL-3.0" in notes
    assert "orthanc: licence" not in notes  # a test peer (GPL), never distributed
    assert "## Validation" in notes and "FAILED" in notes and "aaa-cta-20261102T000000Z" in notes
    # The overall residual risk, computed from the risk file and this run, is not hidden.
    assert manifest["overall_residual_risk"] == "not acceptable"
    assert any(r.startswith("RISK-001 (Hallucinated or misshapen lumen in the synthetic image)")
               for r in manifest["overall_residual_risk_reasons"])
    assert "Overall residual risk: **not acceptable**" in notes
    assert "This build is for research use only: it supports no clinical claim." in notes
    assert "phantom-only evidence supports no clinical benefit claim" in notes
    assert notes.index("## Overall residual risk") < notes.index("## Contents")
    # No audit without --audit: notes and manifest say what must be attached before submission.
    vigilance = manifest["soup_vigilance"]
    assert vigilance["vulnerability_audit"]["status"] == "not run"
    assert vigilance["before_submission"][0] == record.AUDIT_REQUIRED
    assert "cpython" in vigilance["anomaly_reviews_incomplete"]
    assert f"- **Before any submission:** {record.AUDIT_REQUIRED}" in notes
    report = (folder / "test_report.md").read_text()
    assert "| passed |" in report and "| SRS-IMG-010 |" in report and "verified" in report
    anomalies = (folder / "anomalies.md").read_text()
    assert "ANOM-001" in anomalies and "Evaluation:" in anomalies
    # A released version is never overwritten.
    _refused(out, small_junit, "RELEASE_EXISTS")


@pytest.mark.req("SRS-REL-003", "SRS-VAL-005")
def test_a_release_without_a_run_of_the_current_protocol_is_refused(
        clean: Path, small_junit: Path, tmp_path: Path) -> None:
    (clean / "validation_record.json").unlink()  # leaves only a run of an older protocol
    detail = _refused(tmp_path / "releases", small_junit, "RELEASE_NO_VALIDATION")
    assert "validation/protocols/aaa-cta.yaml" in detail and "digital-contrast validate" in detail


@pytest.mark.req("SRS-REL-005")
@pytest.mark.parametrize(("licence", "finding"), [
    ("GPL-3.0", True), ("AGPL-3.0-only", True), ("GNU GPL v2", True), ("unknown", True),
    ("LGPL-3.0-only (dynamically linked, unmodified)", False), ("MIT", False),
    ("BSD-3-Clause", False), ("Apache-2.0", False)])
def test_strong_copyleft_and_unknown_licences_are_release_findings(licence: str,
                                                                   finding: bool) -> None:
    assert record.licence_needs_decision(licence) is finding


@pytest.mark.req("SRS-REL-003")
def test_the_command_reports_a_refusal_as_a_code(tmp_path: Path) -> None:
    assert "release build" in command_names()
    result = CliRunner().invoke(app, ["release", "build", "not a version", "--junit",
                                      str(tmp_path / "junit.xml")])
    assert result.exit_code == 2 and "RELEASE_VERSION_INVALID" in result.output
    assert "Traceback" not in result.output
