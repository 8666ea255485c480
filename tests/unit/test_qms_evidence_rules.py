"""The rules that make the technical file's evidence able to fail: a test report bound to its
tree, imports seen at run time, signed records of verification other than by test, clause
evidence that holds its content, placeholders refused."""

import dataclasses
import datetime as dt
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app, command_names
from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.check import check_binding, check_clauses
from digital_contrast.qms.design import check_observed_imports, read_detailed_design
from digital_contrast.qms.import_audit import ImportAudit, parse_edges
from digital_contrast.qms.junit_report import TestRun, read_junit
from digital_contrast.qms.placeholders import check_placeholders, placeholder
from digital_contrast.qms.requirements import Records, load_records
from digital_contrast.qms.tree import TreeHashError, working_tree_hash
from digital_contrast.qms.verification_records import check_verification_records, write_record
from tests.support.signing import site_signer, untrusted_signer


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def work_tree(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("var/\n")
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return repo


@pytest.mark.req("SRS-QMS-015")
def test_the_tree_hash_is_gits_tree_of_the_working_tree_and_leaves_the_index_alone(
        work_tree: Path) -> None:
    committed = working_tree_hash(work_tree)
    assert committed == _git(work_tree, "rev-parse", "HEAD^{tree}")
    (work_tree / "var").mkdir()
    (work_tree / "var" / "junit.xml").write_text("ignored")
    assert working_tree_hash(work_tree) == committed  # ignored output is not the sources
    (work_tree / "a.txt").write_text("two\n")
    (work_tree / "b.txt").write_text("new\n")
    edited = working_tree_hash(work_tree)
    assert edited != committed
    assert _git(work_tree, "status", "--porcelain") == "M a.txt\n?? b.txt"  # index untouched
    (work_tree / "a.txt").write_text("one\n")
    (work_tree / "b.txt").unlink()
    assert working_tree_hash(work_tree) == committed


@pytest.mark.req("SRS-QMS-015")
def test_a_folder_outside_git_has_no_tree(tmp_path: Path) -> None:
    with pytest.raises(TreeHashError):
        working_tree_hash(tmp_path)


@pytest.mark.req("SRS-QMS-015")
def test_a_report_is_evidence_only_for_the_tree_it_ran_on(work_tree: Path) -> None:
    tree = working_tree_hash(work_tree)
    run = TestRun(str(work_tree / "junit.xml"), "", {}, tree=tree, tree_at_end=tree)
    assert check_binding(run, work_tree) == []
    unbound = check_binding(dataclasses.replace(run, tree=None), work_tree)
    assert "names no tree it ran on" in unbound[0].message
    changed = check_binding(dataclasses.replace(run, tree_at_end="f" * 40), work_tree)
    assert "the sources changed during the test run" in changed[0].message
    (work_tree / "a.txt").write_text("edited after the run\n")
    stale = check_binding(run, work_tree)
    assert f"ran on tree {tree[:12]}, but the working tree is" in stale[0].message


@pytest.mark.req("SRS-QMS-015", "SRS-QMS-016")
def test_the_plugin_binds_a_real_run_and_records_its_imports(small_junit: Path) -> None:
    run = read_junit(small_junit)
    assert run.tree == run.tree_at_end == working_tree_hash(REPO_ROOT)
    assert check_binding(run, REPO_ROOT) == []
    # The NIfTI tests import the imaging item, which imports the shared base.
    assert any(a.startswith("digital_contrast.imaging") for a, _ in run.imports)


@pytest.mark.req("SRS-QMS-016")
def test_the_import_audit_sees_names_computed_at_run_time() -> None:
    outer, audit = ImportAudit(), ImportAudit()  # as under the test run's own audit
    module_globals = {"__name__": "digital_contrast.phantom.fake",
                      "__package__": "digital_contrast.phantom"}
    outer.install()
    audit.install()
    try:
        exec("import importlib\n"  # code standing for a module of the package
             "name = 'digital_contrast.' + 'store.tables'\n"
             "importlib.import_module(name)\n"
             "from . import noise\n"
             "from digital_contrast.config import get_settings\n"
             "import json\n", module_globals)
    finally:
        audit.uninstall()
        outer.uninstall()
    ours = {edge for edge in audit.edges if edge[0] == "digital_contrast.phantom.fake"}
    # Each audit names the module that imported, never the audit wrapped inside it.
    assert ("digital_contrast.phantom.fake", "digital_contrast.store.tables") in outer.edges
    assert not {e for e in outer.edges | audit.edges if e[0].endswith("import_audit")}
    assert ours == {("digital_contrast.phantom.fake", "digital_contrast.store.tables"),
                    ("digital_contrast.phantom.fake", "digital_contrast.phantom.noise"),
                    ("digital_contrast.phantom.fake", "digital_contrast.config")}
    assert parse_edges(audit.serialise()) == sorted(audit.edges)
    assert parse_edges("json>os,digital_contrast.a>,>digital_contrast.b") == []


@pytest.mark.req("SRS-QMS-016")
def test_an_import_seen_at_run_time_is_held_to_may_use() -> None:
    records, _ = load_records(REPO_ROOT / "qms")
    design = read_detailed_design(records)
    allowed = ("digital_contrast.phantom.noise", "digital_contrast.config")
    forbidden = ("digital_contrast.phantom.noise", "digital_contrast.store.tables")
    assert check_observed_imports(design, records, (allowed,)) == []
    [problem] = check_observed_imports(design, records, (allowed, forbidden))
    assert problem.file == "device/digital_contrast/phantom/noise.py" and problem.line is None
    assert "(SI-PHANTOM) imports at run time (import audit of the test run) " \
           "digital_contrast.store.tables (SI-STORE): SI-STORE is not in SI-PHANTOM's " \
           "may_use" in problem.message


# --- Verification other than by test ----------------------------------------------------------

@pytest.fixture
def inspected(tmp_path: Path) -> tuple[Path, Records]:
    """A repository whose SRS-QMS-001 is verified by inspection, trusting the site's key."""
    repo = tmp_path / "repo"
    (repo / "releases" / "keys").mkdir(parents=True)
    (repo / "releases" / "keys" / "release-test.pub").write_text(site_signer().public_line)
    (repo / "docs").mkdir()
    (repo / "docs" / "loader.md").write_text("The loader reports every problem.\n")
    records, _ = load_records(REPO_ROOT / "qms")
    requirement = records.requirements["SRS-QMS-001"]
    records.requirements["SRS-QMS-001"] = requirement.model_copy(
        update={"verification": "inspection"})
    return repo, records


def _record(repo: Path, signer=None, **changes) -> Path:
    fields = dict(requirement="SRS-QMS-001", method="inspection",
                  performed_by="Quality engineer, A. Reviewer",
                  procedure="Read the loader against the requirement statement.",
                  examined=[repo / "docs" / "loader.md"], result="pass",
                  findings="Every listed problem is reported.") | changes
    return write_record(repo, signer or site_signer(), **fields)


def _messages(repo: Path, records: Records) -> list[str]:
    return [p.message for p in check_verification_records(records, repo)]


@pytest.mark.req("SRS-QMS-017")
def test_an_inspection_stands_on_a_signed_current_passing_record(
        inspected: tuple[Path, Records]) -> None:
    repo, records = inspected
    assert _messages(repo, records) == [
        "SRS-QMS-001 is verified by inspection but has no signed verification record "
        "(qms/verification/SRS-QMS-001.json; `digital-contrast qms verify-record`)"]
    _record(repo)
    assert _messages(repo, records) == []
    (repo / "docs" / "loader.md").write_text("The loader stops at the first problem.\n")
    assert _messages(repo, records) == [
        f"SRS-QMS-001: docs/loader.md changed after its inspection ({dt.date.today()}): the "
        "record is stale, verify again"]
    (repo / "docs" / "loader.md").unlink()
    assert _messages(repo, records) == [
        "SRS-QMS-001: docs/loader.md, examined by its inspection, no longer exists"]


@pytest.mark.req("SRS-QMS-017")
def test_an_untrusted_altered_failed_or_misdirected_record_is_refused(
        inspected: tuple[Path, Records]) -> None:
    repo, records = inspected
    _record(repo, untrusted_signer())
    assert "verification record refused (SIGNER_UNTRUSTED)" in _messages(repo, records)[0]
    path = _record(repo)
    path.write_text(path.read_text().replace('"result": "pass"', '"result": "fail"'))
    assert "verification record refused (SIGNATURE_INVALID)" in _messages(repo, records)[0]
    _record(repo, result="fail", findings="Stops at the first problem.")
    assert _messages(repo, records) == [
        "SRS-QMS-001: its inspection did not pass: Stops at the first problem."]
    _record(repo, method="analysis")
    assert _messages(repo, records) == ["SRS-QMS-001: the verification record is for "
                                        "SRS-QMS-001 by analysis, not SRS-QMS-001 by inspection"]
    _record(repo, requirement="SRS-QMS-002")
    assert "SRS-QMS-002 needs no verification record" in " ".join(_messages(repo, records))


@pytest.mark.req("SRS-QMS-017")
def test_a_record_cannot_examine_a_file_outside_the_repository(
        inspected: tuple[Path, Records], tmp_path: Path) -> None:
    repo, _ = inspected
    outside = tmp_path / "elsewhere.md"
    outside.write_text("not ours")
    with pytest.raises(ValueError, match="not a file of the repository"):
        _record(repo, examined=[outside])
    assert not (repo / "qms" / "verification").exists()


@pytest.mark.req("SRS-QMS-017")
def test_verify_record_refuses_a_requirement_not_verified_that_way() -> None:
    result = CliRunner().invoke(app, [
        "qms", "verify-record", "SRS-QMS-001", "--method", "inspection", "--by", "QA",
        "--procedure", "Read it.", "--examined", "README.md", "--result", "pass",
        "--findings", "Fine."])
    assert result.exit_code == 2 and "QMS_RECORD_INVALID" in result.output
    assert "SRS-QMS-001 is not a requirement verified by inspection" in result.output
    assert not (REPO_ROOT / "qms" / "verification").exists()


# --- Clause evidence and placeholders ---------------------------------------------------------

@pytest.mark.req("SRS-QMS-018")
def test_clause_evidence_must_hold_the_content_it_is_cited_for(tmp_path: Path) -> None:
    clause_map = tmp_path / "clause_map.yaml"
    text = (REPO_ROOT / "qms" / "clause_map.yaml").read_text()
    assert check_clauses(REPO_ROOT / "qms" / "clause_map.yaml", command_names())[0] == []
    swapped = text.replace('{clause: "5.1.2", title: Keep software development plan updated, '
                           'satisfied_by: [{doc: docs/qms/software-development-plan.md',
                           '{clause: "5.1.2", title: Keep software development plan updated, '
                           'satisfied_by: [{doc: README.md', 1)
    unstated = swapped.replace('{doc: docs/qms/configuration-and-change-control.md, holds: '
                               '["## 3. Change control (8.2)"]}',
                               '{doc: docs/qms/configuration-and-change-control.md}', 1)
    assert unstated != swapped != text
    clause_map.write_text(unstated)
    messages = [p.message for p in check_clauses(clause_map, command_names())[0]]
    assert messages == [
        "clause 5.1.2: README.md does not hold '## 11. Keeping this plan current (5.1.2)', the "
        "content it is cited for",
        "clause 8.2: docs/qms/configuration-and-change-control.md: no `holds` names the content "
        "that makes it evidence"]


@pytest.mark.req("SRS-QMS-019")
@pytest.mark.parametrize(("value", "why"), [
    ("TBD", "holds the placeholder TBD"), ("", "is empty"), ("  ", "is empty"),
    ("n/a", "is a placeholder ('n/a')"), ("To be confirmed.", "is a placeholder"),
    ("...", "is a placeholder ('...')"),
    ("The benefit is TODO until the study.", "holds the placeholder TODO"),
    ("FIXME: cite the table", "holds the placeholder FIXME")])
def test_placeholders_are_named(value: str, why: str) -> None:
    assert why in (placeholder(value) or "")


@pytest.mark.req("SRS-QMS-019")
@pytest.mark.parametrize("value", [
    "A residual risk of N/A severity is not in the scale.", "todo lists are not records",
    "TBDX", "none", "Not applicable: no legacy software."])
def test_content_is_not_taken_for_a_placeholder(value: str) -> None:
    assert placeholder(value) is None


@pytest.mark.req("SRS-QMS-019")
def test_every_placeholder_of_the_records_and_guides_is_reported_at_its_line(
        tmp_path: Path) -> None:
    (tmp_path / "risk" / "risks").mkdir(parents=True)
    (tmp_path / "risk" / "risks" / "RISK-001.yaml").write_text(
        "id: RISK-001\nharm: Death\nbenefit_risk: TBD\nnotes:\n")
    (tmp_path / "qms").mkdir()
    (tmp_path / "qms" / "soup.yaml").write_text(
        "direct:\n  - name: numpy\n    purpose: n/a\n  - name: scipy\n    purpose: arrays\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\nStep two: TODO.\n")
    (tmp_path / "README.md").write_text("fine\n")
    found = sorted((Path(p.file).name, p.line, p.message) for p in check_placeholders(tmp_path))
    assert found == [("RISK-001.yaml", 3, "benefit_risk holds the placeholder TBD"),
                     ("RISK-001.yaml", 4, "notes is empty"),
                     ("guide.md", 3, "holds the placeholder TODO"),
                     ("soup.yaml", 3, "numpy.purpose is a placeholder ('n/a')")]
    assert check_placeholders(REPO_ROOT) == []
