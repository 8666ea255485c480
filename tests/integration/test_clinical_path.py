"""The clinical path is composed once: a job, the `synthesize` command and a validation case
give the same synthetic series and confidence for the same input and bundle."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.config import get_settings
from digital_contrast.imaging.conformity import ConformityError, check_conformity
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.inference import LockedModel, synthesize
from digital_contrast.phantom.export import Phase
from digital_contrast.pipeline import run_clinical_path
from digital_contrast.store import Job, JobState
from digital_contrast.usecases import UseCase, load_use_case
from digital_contrast.validation import protocol_run
from digital_contrast.validation.cases import ValidationCase
from tests.support.models import tiny_bundle
from tests.support.service import make_settings, running_service, upload


def _same(confidence: dict) -> dict:
    return {k: v for k, v in confidence.items() if k != "seconds"}


@pytest.mark.req("SRS-INF-011")
def test_job_command_and_validation_case_give_the_same_series(
        tmp_path: Path, empty_registry_db: Path, phantom_series,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path / "site", empty_registry_db)
    ncct = phantom_series[Phase.NCCT]
    with running_service(settings) as service:
        uid = upload(service, ncct)
        job_id = service.client.post("/v1/jobs", json={"series_uid": uid, "use_case": "aaa-cta"},
                                     headers=service.headers()).json()["id"]
        assert service.run_jobs() == 1
        with service.state.sessions() as db:
            job = db.get(Job, job_id)
            assert job is not None and job.state is JobState.SUCCEEDED
            output_uid, record = job.output_series_uid, dict(job.result)

    monkeypatch.setenv("DC_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DC_RELEASES_DIR", str(settings.releases_dir))
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["synthesize", str(ncct), "--out", str(tmp_path / "cli")])
        assert done.exit_code == 0, done.output
        command = json.loads((tmp_path / "cli" / "result.json").read_text())
        model = LockedModel.load("aaa-cta")
    finally:
        get_settings.cache_clear()
    case = ValidationCase("PH", 0, "primary", ncct, score=lambda ncct, synthetic: {})
    validated = protocol_run._run_case(case, model, tmp_path / "validation")

    assert command["output_series_instance_uid"] == output_uid == validated.output_series_uid
    assert record["output_sha256"] == command["output_sha256"] == validated.output_sha256
    assert _same(record["confidence"]) == _same(command["confidence"])
    assert validated.low_confidence == command["confidence"]["low_confidence"]


@pytest.mark.req("SRS-INF-011")
def test_an_input_refused_by_conformity_never_loads_the_model(phantom_series,
                                                             tmp_path: Path) -> None:
    loaded: list[UseCase] = []

    def loader(use_case: UseCase) -> LockedModel:
        loaded.append(use_case)
        raise AssertionError("the model must not be loaded for a refused input")

    with pytest.raises(ConformityError) as refused:
        run_clinical_path(phantom_series[Phase.ARTERIAL], load_use_case("aaa-cta"), loader,
                          tmp_path / "out")
    assert refused.value.code.startswith("CONF_") and loaded == []
    assert not (tmp_path / "out").exists()


@pytest.mark.req("SRS-INF-004")
def test_synthesis_takes_only_a_passed_verdict_of_its_use_case(phantom_series,
                                                              tmp_path: Path) -> None:
    aaa = load_use_case("aaa-cta")
    model = LockedModel.under_validation(tiny_bundle(tmp_path / "bundle", aaa), aaa)
    ncct, cta = (read_series(phantom_series[p]) for p in (Phase.NCCT, Phase.ARTERIAL))
    failed = check_conformity(cta, aaa)
    assert not failed.passed
    with pytest.raises(ValueError, match="a passed verdict for aaa-cta is required"):
        synthesize(cta, aaa, model, verdict=failed)
    other = replace(check_conformity(ncct, aaa), use_case="abdomen-pv")
    with pytest.raises(ValueError, match="got one for abdomen-pv"):
        synthesize(ncct, aaa, model, verdict=other)
    checked = synthesize(ncct, aaa, model, verdict=check_conformity(ncct, aaa))
    assert "conformity" not in checked.timings_s  # not run twice
    assert checked.output_sha256 == synthesize(ncct, aaa, model).output_sha256
