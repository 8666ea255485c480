"""`usecase new`: a new use case's records, copied from a base with every gap marked."""

import shutil
from pathlib import Path

import pytest
import yaml

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.placeholders import check_placeholders
from digital_contrast.qms.use_case_scaffold import (
    DEFINITIONS,
    DEVICE,
    PROTOCOLS,
    TRAINING,
    ScaffoldError,
    scaffold_use_case,
)
from digital_contrast.qms.use_cases import IFU, RISK_REVIEWS, ifu_sections
from digital_contrast.usecases import Phase, UseCase

BASE = "aaa-cta"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for relative in (DEFINITIONS / f"{BASE}.yaml", PROTOCOLS / f"{BASE}.yaml",
                     TRAINING / BASE / "training.yaml", RISK_REVIEWS / f"{BASE}.yaml", IFU,
                     DEVICE):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / relative, tmp_path / relative)
    return tmp_path


@pytest.mark.req("SRS-UC-004")
def test_a_new_use_case_gets_every_record_with_its_gaps_marked(repo: Path) -> None:
    done = scaffold_use_case(repo, "liver-arterial", "Liver - synthetic arterial phase",
                             Phase.ARTERIAL, base=BASE)
    assert set(done.written) == {DEFINITIONS / "liver-arterial.yaml",
                                 PROTOCOLS / "liver-arterial.yaml",
                                 TRAINING / "liver-arterial" / "training.yaml",
                                 RISK_REVIEWS / "liver-arterial.yaml"}
    definition = UseCase.model_validate(
        yaml.safe_load((repo / DEFINITIONS / "liver-arterial.yaml").read_text()))
    assert definition.id == definition.model_name == "liver-arterial"
    assert definition.validation_protocol == "validation/protocols/liver-arterial.yaml"
    protocol = yaml.safe_load((repo / PROTOCOLS / "liver-arterial.yaml").read_text())
    assert (protocol["use_case"], protocol["version"]) == ("liver-arterial", 1)
    training = yaml.safe_load((repo / TRAINING / "liver-arterial" / "training.yaml").read_text())
    assert training["use_case"] == "liver-arterial" and "reference" in training["presets"]
    review = yaml.safe_load((repo / RISK_REVIEWS / "liver-arterial.yaml").read_text())
    assert "RISK-001" not in review["risks"] and "RISK-003" in review["risks"]  # system risks
    assert "liver-arterial" in ifu_sections((repo / IFU).read_text())
    assert "use_cases: [aaa-cta, abdomen-pv, liver-arterial]" in (repo / DEVICE).read_text()
    # qms check refuses the tree until every gap is written.
    gaps = {Path(p.file).relative_to(repo) for p in check_placeholders(repo)}
    assert gaps == {DEFINITIONS / "liver-arterial.yaml", PROTOCOLS / "liver-arterial.yaml",
                    RISK_REVIEWS / "liver-arterial.yaml", IFU}


@pytest.mark.req("SRS-UC-004")
@pytest.mark.parametrize(("use_case", "title", "code"), [
    ("aaa-cta", "Again", "USECASE_EXISTS"),
    ("Liver Arterial", "Liver", "USECASE_INVALID"),
    ("liver-arterial", " ", "USECASE_INVALID"),
])
def test_an_existing_or_invalid_use_case_writes_nothing(repo: Path, use_case: str, title: str,
                                                        code: str) -> None:
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    with pytest.raises(ScaffoldError) as info:
        scaffold_use_case(repo, use_case, title, Phase.ARTERIAL, base=BASE)
    assert info.value.code == code
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
