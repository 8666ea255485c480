"""`qms check`: every use case has its protocol, a risk review and its section in the
instructions for use."""

import shutil
from pathlib import Path

import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.use_cases import IFU, RISK_REVIEWS, check_use_cases, ifu_sections
from digital_contrast.usecases import use_cases

RISKS = {p.stem for p in (REPO_ROOT / "risk" / "risks").glob("RISK-*.yaml")}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The use cases' records as the repository holds them."""
    for relative in (IFU, RISK_REVIEWS):
        source = REPO_ROOT / relative
        if source.is_dir():
            shutil.copytree(source, tmp_path / relative)
        else:
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tmp_path / relative)
    for use_case in use_cases().values():
        protocol = tmp_path / use_case.validation_protocol
        protocol.parent.mkdir(parents=True, exist_ok=True)
        protocol.write_text(f"id: {use_case.id}\nuse_case: {use_case.id}\n")
    return tmp_path


def _messages(repo: Path) -> list[str]:
    return [str(p) for p in check_use_cases(repo, RISKS)]


@pytest.mark.req("SRS-QMS-034")
def test_complete_use_cases_pass(repo: Path) -> None:
    assert _messages(repo) == []
    assert set(ifu_sections((REPO_ROOT / IFU).read_text())) == set(use_cases())


@pytest.mark.req("SRS-QMS-034")
def test_a_missing_protocol_or_one_for_another_use_case_is_reported(repo: Path) -> None:
    (repo / "validation" / "protocols" / "abdomen-pv.yaml").unlink()
    (repo / "validation" / "protocols" / "aaa-cta.yaml").write_text("use_case: abdomen-pv\n")
    messages = _messages(repo)
    assert any("use case abdomen-pv has no validation protocol" in m for m in messages)
    assert any("aaa-cta.yaml) is for use case abdomen-pv" in m for m in messages)


@pytest.mark.req("SRS-QMS-034")
def test_risk_reviews_are_checked(repo: Path) -> None:
    reviews = repo / RISK_REVIEWS
    (reviews / "aaa-cta.yaml").unlink()
    text = (reviews / "abdomen-pv.yaml").read_text()
    (reviews / "abdomen-pv.yaml").write_text(text.replace("RISK-022]", "RISK-099]", 1))
    (reviews / "liver-arterial.yaml").write_text(text)
    messages = _messages(repo)
    assert any("use case aaa-cta has no risk review (risk/usecases/aaa-cta.yaml)" in m
               for m in messages)
    assert any("abdomen-pv.yaml:" in m and "unknown risk RISK-099" in m for m in messages)
    assert any("RISK-022 is added but not among the risks that apply" in m for m in messages)
    assert any("risk review of unknown use case liver-arterial" in m for m in messages)
    (reviews / "liver-arterial.yaml").unlink()
    (reviews / "abdomen-pv.yaml").write_text(text.replace("use_case: abdomen-pv",
                                                          "use_case: aaa-cta"))
    assert any("is for use case aaa-cta" in m for m in _messages(repo))
    (reviews / "abdomen-pv.yaml").write_text(text.replace("reviewed: 2026-12-07\n", ""))
    assert any("abdomen-pv.yaml" in m and "reviewed" in m for m in _messages(repo))


@pytest.mark.req("SRS-QMS-034")
def test_the_instructions_for_use_need_a_section_stating_the_notice(repo: Path) -> None:
    ifu = repo / IFU
    text = ifu.read_text()
    ifu.write_text(text.replace("## abdomen-pv:", "## Abdomen, portal-venous:"))
    assert any("use case abdomen-pv has no section in the instructions for use" in m
               for m in _messages(repo))
    ifu.write_text(text.replace("NOT FOR LESION DETECTION", "NOT FOR LESION FINDING"))
    assert any("do not state its notice" in m and "abdomen-pv" in m for m in _messages(repo))
    # The notice may wrap over lines differently from the definition.
    ifu.write_text(text.replace("NOT FOR LESION DETECTION OR CHARACTERISATION:",
                                "NOT FOR LESION DETECTION\nOR CHARACTERISATION:"))
    assert _messages(repo) == []
    ifu.unlink()
    assert sum("has no section in the instructions for use" in m
               for m in _messages(repo)) == len(use_cases())
