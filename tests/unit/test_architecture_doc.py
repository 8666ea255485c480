"""docs/architecture.md stays true: its diagram is generated from qms/software_items.yaml and
every module it names (the clinical path table included) exists."""

import re
from pathlib import Path

import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.architecture import ARCHITECTURE, check_architecture, write_diagram
from digital_contrast.qms.requirements import Records, load_records


@pytest.fixture(scope="module")
def records() -> Records:
    loaded, problems = load_records(REPO_ROOT / "qms")
    assert problems == []
    return loaded


@pytest.mark.req("SRS-QMS-014")
def test_the_architecture_document_is_current(records: Records) -> None:
    assert check_architecture(records) == []
    text = (REPO_ROOT / ARCHITECTURE).read_text()
    table = text.split("| step of the clinical path | module |")[1].split("\n\n")[0]
    steps = re.findall(r"^\| [^|]+ \| `(digital_contrast[.\w]*)` \|$", table, re.MULTILINE)
    assert len(steps) >= 12 and "digital_contrast.pipeline.clinical_path" in steps
    assert "../shared" not in text


@pytest.mark.req("SRS-QMS-014")
def test_a_stale_diagram_or_a_missing_module_is_reported(records: Records,
                                                        tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "device").symlink_to(REPO_ROOT / "device")
    doc = tmp_path / ARCHITECTURE
    text = (REPO_ROOT / ARCHITECTURE).read_text()
    doc.write_text(text.replace("SI_PIPELINE --> SI_INFERENCE\n", "").replace(
        "`digital_contrast.jobs.runner`", "`digital_contrast.jobs.gone`"))
    problems = check_architecture(records, tmp_path)
    assert [p.message.split(":")[0] for p in problems if p.line is None] == [
        "the dependency diagram is not the one generated from qms/software_items.yaml"]
    (missing,) = [p for p in problems if p.line is not None]
    assert "digital_contrast.jobs.gone" in missing.message
    assert "jobs.gone" in doc.read_text().splitlines()[missing.line - 1]
    assert write_diagram(records, tmp_path) is True
    assert [p.line is None for p in check_architecture(records, tmp_path)] == [False]
