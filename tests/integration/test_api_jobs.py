"""Uploads and jobs through the API: lifecycle, idempotency, refusals, pinned inputs, auto-run."""

import io
import json
import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest

from digital_contrast.jobs.auto_run import auto_submit
from digital_contrast.phantom.export import Phase
from digital_contrast.store import Instance, Job, JobState, Series
from digital_contrast.store.jobs import job_events
from digital_contrast.usecases import load_use_case
from tests.support.service import make_settings, running_service, upload, zip_of


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("jobs"), empty_registry_db,
                             max_upload_bytes=60_000_000)
    with running_service(settings) as running:
        yield running


@pytest.fixture(scope="module")
def ncct_uid(service, phantom_series) -> str:
    return upload(service, phantom_series[Phase.NCCT])


def _submit(service, series_uid: str, **extra: object):
    return service.client.post("/v1/jobs", json={"series_uid": series_uid,
                                                 "use_case": "aaa-cta", **extra},
                               headers=service.headers())


@pytest.mark.req("SRS-API-005", "SRS-JOB-001", "SRS-JOB-003", "SRS-EXP-020", "SRS-UC-003")
def test_job_runs_and_its_result_is_complete(service, ncct_uid: str, phantom_series) -> None:
    submitted = _submit(service, ncct_uid)
    assert submitted.status_code == 202 and submitted.json()["state"] == "queued"
    job_id = submitted.json()["id"]
    assert _submit(service, ncct_uid).json()["id"] == job_id  # idempotent
    assert service.run_jobs() == 1
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()
    assert job["state"] == "succeeded" and job["error"] is None
    assert job["conformity"]["passed"] is True
    assert job["model"]["name"] == "aaa-cta" and len(job["model"]["bundle_sha256"]) == 64
    assert {"conformity", "inference"} <= set(job["timings_s"])
    assert "phantom" in job["evidence"] and "not clinically validated" in job["evidence"]
    listed = service.client.get("/v1/jobs", params={"state": "succeeded"},
                                headers=service.headers()).json()
    assert [j["id"] for j in listed] == [job_id]
    result = service.client.get(f"/v1/jobs/{job_id}/result.zip", headers=service.headers())
    assert result.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(result.content))
    files = [n for n in archive.namelist() if n.endswith(".dcm") and not n.startswith("maps/")]
    assert len(files) == len(list(phantom_series[Phase.NCCT].iterdir()))
    first = pydicom.dcmread(io.BytesIO(archive.read(files[0])))
    assert first.SyntheticData == "YES" and first.SeriesInstanceUID == job["output_series_uid"]
    # The tiny model has no uncertainty calibration: its results are low confidence, and say so.
    assert first.SeriesDescription.startswith("SYNTH CONTRAST (AI) LOW CONFIDENCE")
    assert job["confidence"]["calibrated"] is False and job["confidence"]["low_confidence"]
    assert any(w.startswith("LOW_CONFIDENCE") for w in job["warnings"])
    assert [m["slug"] for m in job["maps"]] == ["uncertainty-tta"] and "uncertainty" in \
        job["timings_s"]
    assert json.loads(archive.read("result.json"))["model"]["bundle_sha256"] == \
        job["model"]["bundle_sha256"]
    # The use case's notice: in the job, the result record, every image and every map.
    notice = load_use_case("aaa-cta").notice
    assert notice and job["notice"] == notice
    assert json.loads(archive.read("result.json"))["notice"] == notice
    assert first.ImageComments.endswith(notice)
    maps = [n for n in archive.namelist() if n.startswith("maps/") and n.endswith(".dcm")]
    assert maps and all(pydicom.dcmread(io.BytesIO(archive.read(n))).ImageComments.endswith(
        notice) for n in maps)
    with service.state.sessions() as db:
        states = [e.to_state for e in job_events(db, job_id)]
        produced = db.query(Series).filter_by(series_instance_uid=job["output_series_uid"]).one()
    assert states == [JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED]
    assert produced.origin == "produced" and produced.synthetic
    # Our own output is never an input.
    again = _submit(service, job["output_series_uid"])
    assert again.status_code == 422 and again.json()["code"] == "SERIES_SYNTHETIC"


@pytest.mark.req("SRS-API-005", "SRS-API-002", "SRS-EXP-022")
@pytest.mark.parametrize(("body", "status", "code"), [
    ({"series_uid": "1.2.3.4.5", "use_case": "aaa-cta"}, 404, "SERIES_NOT_FOUND"),
    ({"series_uid": "NCCT", "use_case": "no-such-case"}, 422, "USECASE_UNKNOWN"),
    ({"series_uid": "NCCT", "use_case": "abdomen-pv"}, 409, "USECASE_NO_MODEL"),
    # This service's model has no explain evidence: no attribution method is offered.
    ({"series_uid": "NCCT", "use_case": "aaa-cta", "explain": True}, 409,
     "EXPLAIN_METHOD_REFUSED"),
    ({"series_uid": "NCCT", "use_case": "aaa-cta", "method": "saliency"}, 422,
     "REQUEST_INVALID"),
    ({"series_uid": "NCCT", "use_case": "aaa-cta", "explain": True, "method": "magic"}, 422,
     "REQUEST_INVALID"),
    ({"series_uid": "not a uid", "use_case": "aaa-cta"}, 422, "REQUEST_INVALID"),
    ({"use_case": "aaa-cta"}, 422, "REQUEST_INVALID"),
])
def test_bad_job_requests_are_problems(service, ncct_uid: str, body: dict, status: int,
                                       code: str) -> None:
    body = {k: ncct_uid if v == "NCCT" else v for k, v in body.items()}
    with service.state.sessions() as db:
        before = db.query(Job).count()
    response = service.client.post("/v1/jobs", json=body, headers=service.headers())
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.headers["content-type"] == "application/problem+json"
    with service.state.sessions() as db:
        assert db.query(Job).count() == before


@pytest.mark.req("SRS-API-002")
def test_malformed_json_and_unknown_job(service) -> None:
    response = service.client.post("/v1/jobs", content=b"{not json",
                                   headers=service.headers() | {"Content-Type":
                                                                "application/json"})
    assert response.status_code == 422 and response.json()["code"] == "REQUEST_INVALID"
    missing = service.client.get("/v1/jobs/nope", headers=service.headers())
    assert missing.status_code == 404 and missing.json()["code"] == "JOB_NOT_FOUND"
    early = service.client.get("/v1/jobs/nope/result.zip", headers=service.headers())
    assert early.status_code == 404


@pytest.mark.req("SRS-API-005", "SRS-CONF-001")
def test_contrast_enhanced_series_is_rejected_with_reasons(service, phantom_series) -> None:
    uid = upload(service, phantom_series[Phase.ARTERIAL])
    job_id = _submit(service, uid).json()["id"]
    service.run_jobs()
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()
    assert job["state"] == "rejected" and job["error"]["code"].startswith("CONF_")
    assert job["conformity"]["passed"] is False and job["output_series_uid"] is None
    refused = service.client.get(f"/v1/jobs/{job_id}/result.zip", headers=service.headers())
    assert refused.status_code == 409 and refused.json()["code"] == "RESULT_NOT_READY"


@pytest.mark.req("SRS-JOB-002")
def test_job_is_refused_when_its_series_changed(service, phantom_series, tmp_path: Path) -> None:
    files = sorted(phantom_series[Phase.NCCT].iterdir())
    folder = tmp_path / "changing"
    folder.mkdir()
    series_uid = pydicom.uid.generate_uid()
    for path in files[:-1]:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, pydicom.uid.generate_uid()
        ds.save_as(folder / path.name, enforce_file_format=True)
    uid = upload(service, folder)
    job_id = _submit(service, uid).json()["id"]
    late = pydicom.dcmread(files[-1])
    late.SeriesInstanceUID, late.SOPInstanceUID = series_uid, pydicom.uid.generate_uid()
    (folder / "late").mkdir()
    late.save_as(folder / "late" / "x.dcm", enforce_file_format=True)
    upload(service, folder / "late")
    service.run_jobs()
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()
    assert job["state"] == "rejected" and job["error"]["code"] == "SERIES_CHANGED"


@pytest.mark.req("SRS-API-004", "SRS-API-002")
def test_upload_limits_and_bad_archives(service, phantom_series) -> None:
    def post(body: bytes, content_type: str = "application/zip"):
        return service.client.post("/v1/uploads", content=body,
                                   headers=service.headers() | {"Content-Type": content_type})

    with service.state.sessions() as db:
        before = db.query(Instance).count()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.dcm", b"\0" * 200_000_000)
    assert (post(bomb.getvalue()).status_code, post(bomb.getvalue()).json()["code"]) == \
        (413, "ZIP_TOO_LARGE")
    too_big = post(b"x" * 60_000_001)
    assert (too_big.status_code, too_big.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
    assert post(b"not a zip").json()["code"] == "ZIP_INVALID"
    assert post(zip_of(phantom_series[Phase.NCCT]), "application/json").json()["code"] == \
        "UPLOAD_MEDIA_TYPE"
    text_only = io.BytesIO()
    with zipfile.ZipFile(text_only, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert post(text_only.getvalue()).json()["code"] == "UPLOAD_NO_DICOM"
    with service.state.sessions() as db:
        assert db.query(Instance).count() == before


@pytest.mark.req("SRS-JOB-005")
def test_auto_run_starts_a_job_for_a_fitting_series_only(tmp_path: Path, empty_registry_db,
                                                         phantom_series) -> None:
    settings = make_settings(tmp_path, empty_registry_db)
    with running_service(settings) as service:
        ncct = upload(service, phantom_series[Phase.NCCT])
        arterial = upload(service, phantom_series[Phase.ARTERIAL])
        state = service.state

        def run() -> list[str]:
            return auto_submit(state.sessions, state.instances, settings.mlflow_uri,
                               ["aaa-cta"], stable_s=0.0)

        (job_id,) = run()
        assert run() == []  # one automatic job per series and use case
        with state.sessions() as db:
            job = db.get(Job, job_id)
            assert db.get(Series, job.series_id).series_instance_uid == ncct
            assert db.query(Job).count() == 1  # not for the contrast series
        assert arterial
        service.run_jobs()
        assert run() == []  # nor for the synthetic series it produced


@pytest.mark.req("SRS-API-006")
def test_no_patient_identifier_reaches_a_log_line(tmp_path: Path, empty_registry_db,
                                                  phantom_series,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    header = pydicom.dcmread(next(phantom_series[Phase.NCCT].iterdir()), stop_before_pixels=True)
    identifiers = {str(header.PatientName), str(header.PatientID), header.StudyInstanceUID,
                   header.SeriesInstanceUID}
    caplog.set_level("DEBUG")
    with running_service(make_settings(tmp_path, empty_registry_db)) as service:
        uid = upload(service, phantom_series[Phase.NCCT])
        job_id = _submit(service, uid).json()["id"]
        service.run_jobs()
        service.client.get(f"/v1/jobs/{job_id}/result.zip", headers=service.headers())
        service.client.get("/dicomweb/studies", params={"PatientID": str(header.PatientID)},
                           headers=service.headers())
    # Everything the service side logged (the test's own HTTP client logs its URLs).
    text = "\n".join(record.getMessage() for record in caplog.records
                     if not record.name.startswith(("httpx", "httpcore")))
    assert "job" in text  # the service did log
    for identifier in identifiers:
        assert identifier not in text


@pytest.mark.req("SRS-API-007")
def test_readiness_names_what_is_not_ready(service, tmp_path: Path,
                                           empty_registry_db: Path) -> None:
    assert service.client.get("/healthz").json() == {"status": "ok"}
    ready = service.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] and checks["models"]["aaa-cta"]["ok"]
    assert checks["models"]["abdomen-pv"] == {"ok": True, "code": "USECASE_NO_MODEL"}
    shutil.copy(empty_registry_db, tmp_path / "empty.db")  # a registry without any model
    unready_settings = service.settings.model_copy(update={
        "data_dir": tmp_path, "database_url": f"sqlite:///{tmp_path}/dc.db",
        "mlflow_uri": f"sqlite:///{tmp_path}/empty.db"})
    with running_service(unready_settings) as unready:
        response = unready.client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["models"]["aaa-cta"]["code"] == "USECASE_NO_MODEL"
    assert response.json()["detail"] == "no use case has a validated production model"


@pytest.mark.req("SRS-API-005", "SRS-INF-004")
@pytest.mark.parametrize(("change", "codes"), [
    ("mr", {"IMG_NOT_CT", "CONF_MODALITY"}), ("missing slice", {"IMG_MISSING_SLICES"})])
def test_series_the_core_cannot_take_end_rejected(service, phantom_series, tmp_path: Path,
                                                  change: str, codes: set[str]) -> None:
    files = sorted(phantom_series[Phase.NCCT].iterdir())
    if change == "missing slice":
        files = files[:10] + files[11:]
    series_uid = pydicom.uid.generate_uid()
    for path in files:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if change == "mr":
            ds.Modality = "MR"
        ds.save_as(tmp_path / path.name, enforce_file_format=True)
    job_id = _submit(service, upload(service, tmp_path)).json()["id"]
    service.run_jobs()
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()
    assert job["state"] == "rejected" and job["error"]["code"] in codes, job["error"]
    assert job["output_series_uid"] is None
