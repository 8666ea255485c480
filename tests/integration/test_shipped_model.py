"""A fresh installation synthesizes: the committed reference model (releases/models/aaa-cta/) is
registered and promoted through the gate on first use, and serves the API and the command line.
"""

import io
import json
import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.config import REPO_ROOT, Settings, get_settings
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.reference import BUNDLE_DIR, reference_release
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import Phase, write_phase_dicom
from digital_contrast.usecases import load_use_case
from tests.support.service import running_service, upload

AAA = load_use_case("aaa-cta")
RELEASES = REPO_ROOT / "releases"


@pytest.fixture(scope="module")
def release() -> Path:
    found = reference_release(AAA, RELEASES)
    assert found is not None, "a validated aaa-cta reference model is released"
    return found


@pytest.fixture(scope="module")
def ncct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shipped") / "ncct"
    write_phase_dicom(generate_case(5000, "small"), Phase.NCCT, folder)  # the demo's case
    return folder


@pytest.mark.req("SRS-INF-008", "SRS-REL-001", "SRS-INF-013")
def test_a_fresh_site_serves_the_reference_model_through_the_api(
        tmp_path: Path, empty_registry_db: Path, release: Path, ncct: Path) -> None:
    (tmp_path / "data").mkdir()
    shutil.copy(empty_registry_db, tmp_path / "data" / "mlflow.db")  # nothing registered
    settings = Settings(data_dir=tmp_path / "data", releases_dir=RELEASES, workers=0)
    with running_service(settings) as service:
        ready = service.client.get("/readyz").json()
        assert ready["checks"]["models"]["aaa-cta"]["ok"] is True
        series = upload(service, ncct)
        job_id = service.client.post("/v1/jobs", json={"series_uid": series,
                                                       "use_case": "aaa-cta"},
                                     headers=service.headers()).json()["id"]
        assert service.run_jobs() == 1
        job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()
        assert job["state"] == "succeeded", job["error"]
        shipped = read_bundle(release / BUNDLE_DIR)
        assert job["model"]["bundle_sha256"] == shipped.sha256
        assert job["confidence"]["calibrated"] is True
        result = service.client.get(f"/v1/jobs/{job_id}/result.zip", headers=service.headers())
        archive = zipfile.ZipFile(io.BytesIO(result.content))
        first = next(n for n in archive.namelist() if n.endswith(".dcm")
                     and not n.startswith("maps/"))
        image = pydicom.dcmread(io.BytesIO(archive.read(first)))
        assert image.SyntheticData == "YES"
        assert image.SeriesDescription.startswith("SYNTH CONTRAST (AI)")
        assert shipped.manifest.model_version in str(image.DerivationDescription)


@pytest.mark.req("SRS-INF-008", "SRS-INF-009")
def test_a_fresh_site_synthesizes_from_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_registry_db: Path,
        release: Path, ncct: Path) -> None:
    (tmp_path / "data").mkdir()
    shutil.copy(empty_registry_db, tmp_path / "data" / "mlflow.db")
    monkeypatch.setenv("DC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DC_RELEASES_DIR", str(RELEASES))
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["synthesize", str(ncct), "--use-case", "aaa-cta",
                                        "--out", str(tmp_path / "out")])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["model"]["version"] == read_bundle(release / BUNDLE_DIR
                                                     ).manifest.model_version
    assert "not clinically validated" in result["evidence"]
    assert len(list(Path(result["output_folder"]).iterdir())) == len(list(ncct.iterdir()))
