"""`qms design`: the detailed design read from the code, and its imports held against the
architecture's `may_use` rules, each problem at its file and line."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.check import run_checks
from digital_contrast.qms.design import (
    DetailedDesign,
    check_design,
    read_detailed_design,
    write_design,
)
from digital_contrast.qms.junit_report import TestRun
from digital_contrast.qms.requirements import Records, load_records
from tests.support.documents import assert_controlled_document

PACKAGE = "device/digital_contrast"
# Imports the check reports on main, kept visible until the design or the code is changed:
# the API "never runs the core" (docs/architecture.md), yet the readiness probe loads the locked
# model and the request schemas take the attribution method enum from the explain item.


@pytest.fixture(scope="module")
def real() -> tuple[Records, DetailedDesign]:
    records, problems = load_records(REPO_ROOT / "qms")
    assert problems == []
    return records, read_detailed_design(records)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and the quality records to break."""
    shutil.copytree(REPO_ROOT / PACKAGE, tmp_path / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "qms", tmp_path / "qms")
    return tmp_path


def _append(path: Path, text: str) -> int:
    """Append `text` to the module; the 1-based line where it starts."""
    old = path.read_text()
    path.write_text(old + text)
    return old.count("\n") + 1


def _edges(problems: list) -> set[tuple[str, str, str]]:
    """(file, importing item, imported item) of each may_use problem."""
    found = set()
    for p in problems:
        if "may_use" in p.message:
            head, imported = p.message.split(" is not in ")[0].rsplit(": ", 1)
            found.add((p.file, head.split("(")[1].split(")")[0], imported))
    return found


@pytest.mark.req("SRS-QMS-011")
def test_the_code_has_no_design_problem(real) -> None:
    records, model = real
    assert check_design(model, records) == []


@pytest.mark.req("SRS-QMS-011")
def test_forbidden_imports_are_reported_at_their_file_and_line(tree: Path) -> None:
    records, _ = load_records(tree / "qms")
    package = tree / PACKAGE
    module = package / "inference" / "synthesize.py"
    top = _append(module, "from digital_contrast.api import deps\n")
    lazy = _append(module, "\ndef late() -> None:\n    from digital_contrast.jobs import runner\n")
    relative = _append(package / "inference" / "tissue_gate.py", "from ..store import tables\n")
    typed = _append(module, "if TYPE_CHECKING:\n    from digital_contrast.store import jobs\n")
    cli = _append(package / "imaging" / "uids.py", "from digital_contrast import cli\n")
    shared = _append(package / "config.py", "from digital_contrast.store import tables\n")
    model = read_detailed_design(records, tree)
    found = {(p.file, p.line): p.message for p in check_design(model, records)}
    where = f"{PACKAGE}/inference/synthesize.py"
    assert "(SI-INFERENCE) imports digital_contrast.api.deps (SI-API): SI-API is not in " \
           "SI-INFERENCE's may_use" in found[(where, top)]
    assert "lazily imports digital_contrast.jobs.runner (SI-JOBS)" in found[(where, lazy + 2)]
    assert "imports digital_contrast.store.tables (SI-STORE)" in \
        found[(f"{PACKAGE}/inference/tissue_gate.py", relative)]
    assert (where, typed + 1) not in found  # type-only: listed, exempt
    unit = next(u for u in model.units if u.module == "digital_contrast.inference.synthesize")
    assert [i.type_checking for i in unit.imports if i.module.endswith("store.jobs")] == [True]
    assert "only digital_contrast.__main__ may import the command line" in \
        found[(f"{PACKAGE}/imaging/uids.py", cli)]
    assert "a shared module of SI-SYSTEM imports no other item" in \
        found[(f"{PACKAGE}/config.py", shared)]
    assert len(found) == 5
    # `qms check` runs the same check.
    result = run_checks(TestRun("junit.xml", None, {}), commands=set(), repo=tree, closure={})
    assert {(p.file, p.line) for p in result.problems} >= set(found)


@pytest.mark.req("SRS-QMS-011")
def test_a_module_without_docstring_is_reported(tree: Path) -> None:
    records, _ = load_records(tree / "qms")
    (tree / PACKAGE / "carbon" / "extra.py").write_text("LIMIT = 1\n")
    (tree / PACKAGE / "carbon" / "broken.py").write_text('"""Broken."""\ndef (\n')
    problems = check_design(read_detailed_design(records, tree), records)
    assert [(p.line, "has no module docstring" in p.message) for p in problems
            if p.file == f"{PACKAGE}/carbon/extra.py"] == [(1, True)]
    assert ["cannot be parsed" in p.message for p in problems
            if p.file == f"{PACKAGE}/carbon/broken.py"] == [True]  # reported, not raised


@pytest.mark.req("SRS-QMS-011")
def test_may_use_naming_an_unknown_item_is_reported(tree: Path) -> None:
    path = tree / "qms" / "software_items.yaml"
    text = path.read_text()
    at = text.index("    may_use: [SI-SYSTEM]\n")
    path.write_text(text[:at] + "    may_use: [SI-SYSTEM, SI-NOPE]\n"
                    + text[at + len("    may_use: [SI-SYSTEM]\n"):])
    records, problems = load_records(tree / "qms")
    assert problems == []
    found = [p for p in check_design(read_detailed_design(records, tree), records)
             if "SI-NOPE" in p.message]
    assert [(p.file.endswith("software_items.yaml"), p.line) for p in found] == \
        [(True, text[:at].count("\n") + 1)]
    assert "may_use names unknown item SI-NOPE" in found[0].message


@pytest.mark.req("SRS-QMS-010")
def test_the_document_has_its_title_block_every_item_and_every_module(real, tmp_path: Path
                                                                      ) -> None:
    records, model = real
    paths = write_design(tmp_path, model, check_design(model, records))
    assert [p.name for p in paths] == ["design.html", "design.pdf", "design.md",
                                      "design_architecture.svg", "design.json"]
    data = json.loads((tmp_path / "design.json").read_text())
    assert_controlled_document(tmp_path / "design.html", "DC-SDD", data["document"]["date"],
                               ("Development lead", "Quality", "Regulatory affairs"))
    html, md = (tmp_path / "design.html").read_text(), (tmp_path / "design.md").read_text()
    for text in (html, md):
        assert "Software detailed design" in text and "DC-SDD" in text and "Approvals" in text
        assert all(item_id in text for item_id in records.items)
        assert "digital_contrast.qms.design" in text
    assert "<script" not in html  # docstrings are escaped
    modules = {u["module"] for item in data["items"] for u in item["units"]}
    files = {p for p in (REPO_ROOT / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts}
    assert len(modules) == len(files) and data["unowned"] == []
    assert data["document"]["id"] == "DC-SDD" and data["verification"] == []
    units = {u["module"]: u for item in data["items"] for u in item["units"]}
    api = {a["name"]: a for a in units["digital_contrast.qms.design"]["api"]}
    assert api["read_detailed_design"]["signature"].startswith("(records: Records, repo: Path")
    assert {"SI-STORE", "SI-INFERENCE"} <= set(units["digital_contrast.jobs.runner"]["uses"])
    assert next(i for i in data["items"] if i["id"] == "SI-USECASES")["may_use"] == ["SI-SYSTEM"]


@pytest.mark.req("SRS-QMS-010")
def test_the_command_writes_the_design(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test above renders and checks the PDF; doing it again would only cost seconds.
    monkeypatch.setattr("digital_contrast.qms.design.write_pdf", _placeholder_pdf)
    result = CliRunner().invoke(app, ["qms", "design", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"design.html", "design.pdf", "design.md",
                                                     "design_architecture.svg",
                                                     "design.json"}


def _placeholder_pdf(html: Path) -> Path:
    pdf = html.with_suffix(".pdf")
    pdf.write_bytes(b"%PDF-")
    return pdf


@pytest.mark.req("SRS-QMS-011")
def test_import_circles_and_two_way_edges_are_reported(tree: Path) -> None:
    package = tree / PACKAGE
    lazy = _append(package / "qms" / "sources.py",
                   "\n\ndef late() -> None:\n    from digital_contrast.qms import check\n")
    items = tree / "qms" / "software_items.yaml"
    text = items.read_text()
    store = text.index("  - id: SI-STORE")
    at = text.index("    may_use: [SI-SYSTEM]\n", store)
    items.write_text(text[:at] + "    may_use: [SI-SYSTEM, SI-API]\n"
                     + text[at + len("    may_use: [SI-SYSTEM]\n"):])
    records, problems = load_records(tree / "qms")
    assert problems == []
    found = check_design(read_detailed_design(records, tree), records)
    circles = [p for p in found if "cycle" in p.message or "two-way" in p.message]
    (cycle,) = [p for p in circles if "cycle" in p.message]
    assert cycle.file == f"{PACKAGE}/qms/check.py" and cycle.line is not None
    assert "digital_contrast.qms.check" in cycle.message
    assert "digital_contrast.qms.sources" in cycle.message
    (two_way,) = [p for p in circles if "two-way" in p.message]
    assert two_way.file.endswith("software_items.yaml") and "SI-API and SI-STORE" in \
        two_way.message
    # Without the late import, the package has no circle: the check is not always on.
    sources = package / "qms" / "sources.py"
    sources.write_text("".join(sources.read_text().splitlines(keepends=True)[:lazy - 1]))
    assert not [p for p in check_design(read_detailed_design(records, tree), records)
                if "cycle" in p.message]
