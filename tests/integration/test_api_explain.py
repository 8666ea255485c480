"""Explainability through the API: confidence and uncertainty map on every job, attribution at
submission or afterwards, maps listed, fetched and retrievable by WADO-RS, names checked.

The service's tiny model has explain evidence here: a calibration whose threshold no voxel
exceeds (never LOW CONFIDENCE) and sanity checks that integrated-gradients and saliency passed
and occlusion failed."""

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from digital_contrast.phantom.export import Phase
from digital_contrast.store import Job, Role, Series
from digital_contrast.store.api_keys import create_api_key
from tests.support.models import explain_evidence
from tests.support.service import live_server, make_settings, running_service, upload

PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
FAR_AWAY = [[5000.0, 5000.0, 5000.0], [5001.0, 5001.0, 5001.0]]  # no voxel of the scan


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("explain"), empty_registry_db,
                             explain=explain_evidence(), max_upload_bytes=60_000_000)
    with running_service(settings) as running:
        yield running


@pytest.fixture(scope="module")
def ncct_uid(service, phantom_series) -> str:
    return upload(service, phantom_series[Phase.NCCT])


def _post(service, path: str, body: dict, headers: dict | None = None):
    return service.client.post(path, json=body, headers=headers or service.headers())


def _get(service, path: str, **kwargs):
    return service.client.get(path, headers=service.headers(), **kwargs)


def _job_count(service) -> int:
    with service.state.sessions() as db:
        return db.query(Job).count()


@pytest.fixture(scope="module")
def plain_job(service, ncct_uid: str) -> dict:
    """A job without explain, run to success."""
    job_id = _post(service, "/v1/jobs", {"series_uid": ncct_uid, "use_case": "aaa-cta"}
                   ).json()["id"]
    service.run_jobs()
    return _get(service, f"/v1/jobs/{job_id}").json()


@pytest.mark.req("SRS-EXP-020", "SRS-EXP-021")
def test_every_job_has_its_confidence_and_uncertainty_map(service, plain_job: dict) -> None:
    job = plain_job
    assert job["state"] == "succeeded", job["error"]
    confidence = job["confidence"]
    assert confidence["calibrated"] is True and confidence["low_confidence"] is False
    assert confidence["uncertain_lumen_fraction"] == 0.0 and confidence["samples"] >= 8
    assert not any(w.startswith("LOW_CONFIDENCE") for w in job["warnings"])
    assert job["timings_s"]["uncertainty"] >= 0
    (entry,) = job["maps"]
    assert (entry["kind"], entry["method"], entry["slug"]) == ("uncertainty", "tta",
                                                              "uncertainty-tta")
    assert job["explain"] is None and job["explain_of"] is None
    # A calibrated, confident result does not say LOW CONFIDENCE.
    with service.state.sessions() as db:
        output = db.query(Series).filter_by(series_instance_uid=job["output_series_uid"]).one()
        assert "LOW CONFIDENCE" not in (output.series_description or "")
        assert output.series_description.startswith("SYNTH CONTRAST (AI)")
        # The map's DICOM objects are produced series of the same study.
        for uid in (entry["parametric_map_series_uid"], entry["secondary_capture_series_uid"]):
            series = db.query(Series).filter_by(series_instance_uid=uid).one()
            assert series.origin == "produced" and series.study_id == output.study_id
    folder = service.state.artifacts.maps_folder(job["id"]) / "uncertainty-tta"
    assert sorted(p.name for p in folder.iterdir()) == [
        "preview_axial.png", "preview_coronal.png", "preview_sagittal.png",
        "uncertainty-tta.nii.gz"]
    assert not [p for p in folder.parent.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.req("SRS-EXP-025", "SRS-EXP-021")
def test_maps_are_listed_fetched_zipped_and_retrievable_by_wado(service, plain_job: dict
                                                                ) -> None:
    listed = _get(service, f"/v1/jobs/{plain_job['id']}/maps")
    assert listed.status_code == 200
    (entry,) = listed.json()
    assert entry["slug"] == "uncertainty-tta" and entry["unit"] == "[hnsf'U]"
    names = {f["name"]: f for f in entry["files"]}
    assert set(names) == {"preview_axial.png", "preview_coronal.png", "preview_sagittal.png",
                          "uncertainty-tta.nii.gz"}
    for name, file in names.items():
        response = _get(service, file["href"])
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == file["media_type"]
        if name.endswith(".png"):
            assert file["media_type"] == "image/png"
            image = Image.open(io.BytesIO(response.content))
            assert image.format == "PNG" and image.width > 100 and image.height > 100
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # not blank
        else:
            assert file["media_type"] == "application/gzip"
            assert len(gzip.decompress(response.content)) > 348  # a NIfTI-1 header and data
    archive = zipfile.ZipFile(io.BytesIO(_get(
        service, f"/v1/jobs/{plain_job['id']}/result.zip").content))
    in_zip = {n for n in archive.namelist() if n.startswith("maps/uncertainty-tta/")}
    assert {f"maps/uncertainty-tta/{n}" for n in names} <= in_zip
    dicoms = sorted(n for n in in_zip if n.endswith(".dcm"))
    assert len(dicoms) == 4  # the Parametric Map and three Secondary Captures
    pm = pydicom.dcmread(io.BytesIO(archive.read(
        "maps/uncertainty-tta/parametric_map_00001.dcm")))
    assert pm.SOPClassUID == PARAMETRIC_MAP and pm.SyntheticData == "YES"
    # WADO-RS: the map is part of the study like the synthetic series.
    with live_server(service.app) as base:
        client = DICOMwebClient(f"{base}/dicomweb", headers=service.headers())
        study = str(pm.StudyInstanceUID)
        one = client.retrieve_instance(study, entry["parametric_map_series_uid"],
                                       str(pm.SOPInstanceUID))
        assert one.SOPClassUID == PARAMETRIC_MAP and int(one.NumberOfFrames) > 1
        captures = client.retrieve_series(study, entry["secondary_capture_series_uid"])
        assert len(captures) == 3 and {c.SOPClassUID for c in captures} == {SECONDARY_CAPTURE}
        series = {pydicom.Dataset.from_json(s).SeriesInstanceUID
                  for s in client.search_for_series(study)}
        assert {entry["parametric_map_series_uid"],
                entry["secondary_capture_series_uid"]} <= series


@pytest.mark.req("SRS-EXP-025")
@pytest.mark.parametrize("path", [
    "uncertainty-tta/..%2F..%2F..%2Fdigital_contrast.db",
    "..%2F..%2Finstances/preview_axial.png",
    "uncertainty-tta/%2E%2E",
    "uncertainty-tta/parametric_map.dcm",
    "uncertainty-tta/secondary_capture%2Faxial.dcm",
    "attribution-occlusion/preview_axial.png",
    "uncertainty-tta/preview_axial.PNG",
    "UNCERTAINTY-TTA/preview_axial.png",
])
def test_map_files_outside_the_listed_names_are_refused(service, plain_job: dict,
                                                        path: str) -> None:
    response = _get(service, f"/v1/jobs/{plain_job['id']}/maps/{path}")
    assert response.status_code in (404, 422), (path, response.status_code)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.req("SRS-EXP-025")
def test_maps_of_unknown_or_unfinished_jobs_are_refused(service, phantom_series) -> None:
    assert _get(service, "/v1/jobs/nope/maps").json()["code"] == "JOB_NOT_FOUND"
    uid = upload(service, phantom_series[Phase.ARTERIAL])
    job_id = _post(service, "/v1/jobs", {"series_uid": uid, "use_case": "aaa-cta"}).json()["id"]
    queued = _get(service, f"/v1/jobs/{job_id}/maps")
    assert (queued.status_code, queued.json()["code"]) == (409, "RESULT_NOT_READY")
    refused = _post(service, f"/v1/jobs/{job_id}/explain", {"method": "saliency"})
    assert (refused.status_code, refused.json()["code"]) == (409, "RESULT_NOT_READY")


@pytest.mark.req("SRS-EXP-022")
def test_explain_at_submission_checks_the_method_then_adds_the_attribution_map(
        service, ncct_uid: str) -> None:
    before = _job_count(service)
    for body, status, code in (
            ({"explain": True, "method": "occlusion"}, 409, "EXPLAIN_METHOD_REFUSED"),
            ({"explain": True, "method": "nonsense"}, 422, "REQUEST_INVALID"),
            ({"method": "saliency"}, 422, "REQUEST_INVALID"),
            ({"explain": True, "region_box_mm": [[0, 0, 0]]}, 422, "REQUEST_INVALID")):
        response = _post(service, "/v1/jobs", {"series_uid": ncct_uid, "use_case": "aaa-cta",
                                               **body})
        assert (response.status_code, response.json()["code"]) == (status, code), body
        assert response.headers["content-type"] == "application/problem+json"
    assert "sanity" in _post(service, "/v1/jobs", {
        "series_uid": ncct_uid, "use_case": "aaa-cta", "explain": True,
        "method": "occlusion"}).json()["detail"]
    assert _job_count(service) == before  # nothing queued
    submitted = _post(service, "/v1/jobs", {"series_uid": ncct_uid, "use_case": "aaa-cta",
                                            "explain": True, "method": "saliency"})
    assert submitted.status_code == 202
    assert submitted.json()["options"] == {"explain": True, "method": "saliency",
                                           "region_box_mm": None}
    service.run_jobs()
    job = _get(service, f"/v1/jobs/{submitted.json()['id']}").json()
    assert job["state"] == "succeeded", job["error"]
    assert [m["slug"] for m in job["maps"]] == ["uncertainty-tta", "attribution-saliency"]
    assert job["explain"]["method"] == "saliency" and job["explain"]["target_voxels"] > 0
    assert "error" not in job["explain"] and "explain" in job["timings_s"]
    png = _get(service, f"/v1/jobs/{job['id']}/maps/attribution-saliency/preview_axial.png")
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).format == "PNG"


@pytest.mark.req("SRS-EXP-023", "SRS-EXP-021")
def test_an_attribution_that_cannot_be_made_leaves_the_synthesis_standing(
        service, ncct_uid: str, plain_job: dict) -> None:
    job_id = _post(service, "/v1/jobs", {"series_uid": ncct_uid, "use_case": "aaa-cta",
                                         "explain": True, "method": "saliency",
                                         "region_box_mm": FAR_AWAY}).json()["id"]
    service.run_jobs()
    job = _get(service, f"/v1/jobs/{job_id}").json()
    assert job["state"] == "succeeded" and job["error"] is None
    assert job["explain"]["error"]["code"] == "EXPLAIN_REGION_EMPTY"
    assert job["explain"]["region_box_mm"] == FAR_AWAY
    assert any(w.startswith("EXPLAIN_REGION_EMPTY") for w in job["warnings"])
    assert [m["slug"] for m in job["maps"]] == ["uncertainty-tta"]
    # The same derivation as the plain job: its series is referenced, not published again.
    assert job["output_series_uid"] == plain_job["output_series_uid"]
    assert job["maps"][0]["parametric_map_series_uid"] == \
        plain_job["maps"][0]["parametric_map_series_uid"]


@pytest.mark.req("SRS-EXP-024")
def test_a_finished_job_is_explained_afterwards(service, plain_job: dict) -> None:
    path = f"/v1/jobs/{plain_job['id']}/explain"
    refused = _post(service, path, {"method": "occlusion"})
    assert (refused.status_code, refused.json()["code"]) == (409, "EXPLAIN_METHOD_REFUSED")
    missing = _post(service, "/v1/jobs/no-such-job/explain", {})
    assert (missing.status_code, missing.json()["code"]) == (404, "JOB_NOT_FOUND")
    with service.state.sessions() as db:
        other = create_api_key(db, "another-site", "other", Role.CLINICIAN)[1]
        db.commit()
    elsewhere = _post(service, path, {"method": "saliency"}, headers={"X-API-Key": other})
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "JOB_NOT_FOUND")
    with service.state.sessions() as db:
        series_before = db.query(Series).count()
    submitted = _post(service, path, {"method": "saliency"})
    assert submitted.status_code == 202 and submitted.headers["Location"].endswith(
        submitted.json()["id"])
    assert _post(service, path, {"method": "saliency"}).json()["id"] == submitted.json()["id"]
    assert submitted.json()["explain_of"] == plain_job["id"]
    assert submitted.json()["options"]["explain_of"] == plain_job["id"]
    service.run_jobs()
    job = _get(service, f"/v1/jobs/{submitted.json()['id']}").json()
    assert job["state"] == "succeeded", job["error"]
    assert job["explain_of"] == plain_job["id"]
    assert job["output_series_uid"] == plain_job["output_series_uid"]
    assert job["explain"]["method"] == "saliency" and job["explain"]["reproduced"] is True
    assert [m["slug"] for m in job["maps"]] == ["attribution-saliency"]  # only the attribution
    assert job["confidence"] == plain_job["confidence"]
    with service.state.sessions() as db:
        new = db.query(Series).count() - series_before
    assert new in (0, 2)  # at most the attribution's Parametric Map and Secondary Captures
    files = {f["name"] for f in _get(service, f"/v1/jobs/{job['id']}/maps").json()[0]["files"]}
    assert "attribution-saliency.nii.gz" in files


@pytest.mark.req("SRS-EXP-021", "SRS-EXP-022")
def test_a_rerun_replaces_the_maps_an_interrupted_run_left(service, ncct_uid: str) -> None:
    submitted = _post(service, "/v1/jobs", {"series_uid": ncct_uid, "use_case": "aaa-cta",
                                            "explain": True})  # default method
    assert submitted.json()["options"]["method"] == "integrated-gradients"
    job_id = submitted.json()["id"]
    stale = service.state.artifacts.maps_folder(job_id) / "uncertainty-tta"
    stale.mkdir(parents=True)  # as if a worker died after publishing, before the commit
    (stale / "preview_axial.png").write_bytes(b"stale")
    service.run_jobs()
    job = _get(service, f"/v1/jobs/{job_id}").json()
    assert job["state"] == "succeeded", job["error"]
    assert job["explain"]["convergence_delta"] is not None  # integrated gradients
    assert [m["slug"] for m in job["maps"]] == ["uncertainty-tta",
                                                "attribution-integrated-gradients"]
    png = stale / "preview_axial.png"
    assert png.read_bytes() != b"stale" and Image.open(png).format == "PNG"
