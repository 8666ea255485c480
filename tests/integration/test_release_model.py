"""Reference model releases: only a validated bundle, complete or not at all, with its card."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.config import get_settings
from digital_contrast.errors import DigitalContrastError
from digital_contrast.model.reference import register_reference_model
from digital_contrast.model.registry import ModelRegistry
from digital_contrast.release.model_release import (
    MODEL_CARD,
    QUALITY_REPORT,
    file_candidate,
    release_model,
)
from digital_contrast.usecases import load_use_case
from tests.support.models import record_for, tiny_bundle, write_record

AAA = load_use_case("aaa-cta")


@pytest.fixture
def candidate(tmp_path: Path):
    bundle = tiny_bundle(tmp_path / "bundle", AAA, seed=1, model_version="2.0.0")
    record = write_record(record_for(bundle), tmp_path / "record.json")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"bundle_sha256": bundle.sha256, "medians": [
        {"method": "model", "stratum": "primary", "n": 3, "lumen_dice": 0.93}]}))
    return bundle, record, report


@pytest.mark.req("SRS-REL-001")
def test_release_holds_bundle_record_report_and_an_honest_card(
        candidate, tmp_path: Path, registry_uri_factory) -> None:
    bundle, record, report = candidate
    released = release_model(bundle.folder, record, report, tmp_path / "releases")
    assert released.folder == tmp_path / "releases" / "models" / "aaa-cta" / "2.0.0"
    assert released.bundle.sha256 == bundle.sha256
    assert sorted(p.name for p in released.folder.iterdir()) == sorted(
        ["bundle", "validation_record.json", QUALITY_REPORT, MODEL_CARD])
    card = (released.folder / MODEL_CARD).read_text()
    for text in (bundle.sha256, "not clinically validated", "procedural digital phantom",
                 "aortic dissection", "Limitations", "| primary | model | 3 | 0.930 |"):
        assert text in card, text
    # The release is what a fresh installation registers and promotes through the gate.
    registry = ModelRegistry(registry_uri_factory(tmp_path / "registry"))
    promoted = register_reference_model(registry, AAA, tmp_path / "releases")
    assert promoted is not None and promoted.sha256 == bundle.sha256
    assert "production" in promoted.aliases


@pytest.mark.req("SRS-REL-001")
@pytest.mark.parametrize("problem, code", [
    ("other bundle", "MODEL_INTEGRITY"), ("failing", "MODEL_NOT_VALIDATED"),
    ("report for other bundle", "RELEASE_INVALID"), ("exists", "RELEASE_EXISTS")])
def test_refused_release_writes_nothing(candidate, tmp_path: Path, problem: str,
                                        code: str) -> None:
    bundle, record, report = candidate
    releases = tmp_path / "releases"
    target = releases / "models" / "aaa-cta" / "2.0.0"
    if problem == "other bundle":
        other = tiny_bundle(tmp_path / "other", AAA, seed=2)
        record = write_record(record_for(other), tmp_path / "other.json")
    elif problem == "failing":
        record = write_record(record_for(bundle, passing=False), tmp_path / "failing.json")
    elif problem == "report for other bundle":
        report.write_text(json.dumps({"bundle_sha256": "0" * 64, "medians": []}))
    else:
        target.mkdir(parents=True)
        (target / "keep.txt").write_text("earlier release")
    with pytest.raises(DigitalContrastError) as info:
        release_model(bundle.folder, record, report, releases)
    assert info.value.code == code
    if problem == "exists":
        assert [p.name for p in target.iterdir()] == ["keep.txt"]
    else:
        assert not target.exists()
    leftovers = list((releases / "models" / "aaa-cta").glob(".incomplete-*")) \
        if (releases / "models" / "aaa-cta").exists() else []
    assert leftovers == []


@pytest.mark.req("SRS-REL-001", "SRS-MOD-006")
def test_release_command_reports_success_and_refusal(candidate, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bundle, record, report = candidate
    monkeypatch.setenv("DC_RELEASES_DIR", str(tmp_path / "releases"))
    monkeypatch.setenv("DC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = ["release", "model", str(bundle.folder), "--record", str(record),
                "--report", str(report)]
        ok = runner.invoke(app, args)
        assert ok.exit_code == 0, ok.output
        assert "released aaa-cta 2.0.0" in ok.output
        again = runner.invoke(app, args)
        assert again.exit_code == 2 and "RELEASE_EXISTS" in again.output
        assert "Traceback" not in again.output
    finally:
        get_settings.cache_clear()
    shutil.rmtree(tmp_path / "releases")


@pytest.mark.req("SRS-REL-002")
def test_a_failed_candidate_is_filed_as_evidence_never_released(
        candidate, tmp_path: Path, registry_uri_factory) -> None:
    bundle, _, report = candidate
    failing = write_record(record_for(bundle, passing=False), tmp_path / "failing.json")
    filed = file_candidate(bundle.folder, failing, report, tmp_path / "reports")
    assert filed.folder == tmp_path / "reports" / "models" / "aaa-cta" / "2.0.0"
    assert filed.bundle.sha256 == bundle.sha256 and not filed.record.passed
    card = (filed.folder / MODEL_CARD).read_text()
    assert "| Validation | FAILED" in card
    assert "Misses its acceptance criterion median lumen_dice" in card
    # Not a release: no reference model appears, and even pointed at it, the gate holds.
    registry = ModelRegistry(registry_uri_factory(tmp_path / "registry"))
    assert register_reference_model(registry, AAA, tmp_path / "releases") is None
    with pytest.raises(DigitalContrastError) as refused:
        register_reference_model(registry, AAA, tmp_path / "reports")
    assert refused.value.code == "MODEL_NOT_VALIDATED"
    with pytest.raises(DigitalContrastError) as info:
        file_candidate(bundle.folder, failing, report, tmp_path / "reports")
    assert info.value.code == "RELEASE_EXISTS"
