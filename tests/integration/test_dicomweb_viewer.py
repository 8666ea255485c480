"""The DICOMweb a viewer reads (OHIF v3 as the reference client): all-series and instance
QIDO, metadata at three levels, frames, CORS; with dicomweb-client and by replaying the
requests OHIF's DICOMweb data source makes, from a browser origin."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from digital_contrast.phantom.export import Phase
from tests.support.service import live_server, make_settings, running_service, upload

VIEWER = "http://viewer.hospital.test:3000"
DICOM_JSON = "application/dicom+json"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path, phantom_series):
    settings = make_settings(tmp_path_factory.mktemp("viewer"), empty_registry_db,
                             max_upload_bytes=60_000_000, cors_origins=[VIEWER])
    with running_service(settings) as running:
        upload(running, phantom_series[Phase.NCCT])
        yield running


def _sent(phantom_series) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(phantom_series[Phase.NCCT].iterdir())]


@pytest.mark.req("SRS-DCMW-008")
def test_dicomweb_client_searches_and_reads_metadata_and_frames(service, phantom_series) -> None:
    sent = _sent(phantom_series)
    study, series = str(sent[0].StudyInstanceUID), str(sent[0].SeriesInstanceUID)
    with live_server(service.app) as base:
        client = DICOMwebClient(f"{base}/dicomweb", headers=service.headers())
        found = client.search_for_series()
        assert [pydicom.Dataset.from_json(s).SeriesInstanceUID for s in found] == [series]
        assert pydicom.Dataset.from_json(found[0]).StudyInstanceUID == study
        assert client.search_for_series(search_filters={"PatientID": "nobody"}) == []
        instances = client.search_for_instances(study, series)
        assert {pydicom.Dataset.from_json(i).SOPInstanceUID for i in instances} == \
            {str(d.SOPInstanceUID) for d in sent}
        metadata = client.retrieve_series_metadata(study, series)
        assert len(metadata) == len(sent) and len(client.retrieve_study_metadata(study)) == \
            len(sent)
        one = pydicom.Dataset.from_json(
            client.retrieve_instance_metadata(study, series, str(sent[3].SOPInstanceUID)))
        assert one.PatientID == sent[3].PatientID and "PixelData" not in one
        assert one.ImagePositionPatient == sent[3].ImagePositionPatient
        (frame,) = client.retrieve_instance_frames(study, series, str(sent[3].SOPInstanceUID),
                                                   frame_numbers=[1],
                                                   media_types=("application/octet-stream",))
        pixels = np.frombuffer(frame, dtype=sent[3].pixel_array.dtype).reshape(
            sent[3].Rows, sent[3].Columns)
        assert np.array_equal(pixels, sent[3].pixel_array)


@pytest.mark.req("SRS-DCMW-008", "SRS-DCMW-009")
def test_the_requests_of_ohif_are_answered_from_its_origin(service, phantom_series) -> None:
    sent = _sent(phantom_series)
    study, series = str(sent[0].StudyInstanceUID), str(sent[0].SeriesInstanceUID)
    client = service.client
    origin = {"Origin": VIEWER}
    preflight = client.options("/dicomweb/studies", headers=origin | {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,accept"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == VIEWER
    auth = {"Authorization": f"Bearer {service.headers()['X-API-Key']}"} | origin
    # OHIF's study list, series list, series metadata, then frames for the viewport.
    studies = client.get("/dicomweb/studies", headers=auth | {"Accept": DICOM_JSON}, params={
        "limit": "101", "offset": "0", "fuzzymatching": "false",
        "includefield": "00081030,00080060"})
    assert studies.status_code == 200 and studies.headers["access-control-allow-origin"] == \
        VIEWER
    assert studies.json()[0]["0020000D"]["Value"] == [study]
    listed = client.get(f"/dicomweb/studies/{study}/series", headers=auth |
                        {"Accept": DICOM_JSON})
    assert listed.status_code == 200 and len(listed.json()) == 1
    metadata = client.get(f"/dicomweb/studies/{study}/series/{series}/metadata",
                          headers=auth | {"Accept": DICOM_JSON})
    assert metadata.status_code == 200 and len(metadata.json()) == len(sent)
    sop = str(sent[0].SOPInstanceUID)
    frames = client.get(f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/1",
                        headers=auth | {"Accept": "multipart/related; "
                                        "type=application/octet-stream; transfer-syntax=*"})
    assert frames.status_code == 200
    assert frames.headers["content-type"].startswith("multipart/related")
    assert sent[0].PixelData in frames.content
    stranger = client.options("/dicomweb/studies", headers={
        "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in stranger.headers


@pytest.mark.req("SRS-DCMW-008")
@pytest.mark.parametrize(("path", "accept", "status", "code"), [
    ("frames/0", "*/*", 400, "DICOMWEB_BAD_FRAMES"),
    ("frames/1,x", "*/*", 400, "DICOMWEB_BAD_FRAMES"),
    ("frames/2", "*/*", 404, "FRAME_NOT_FOUND"),
    ("frames/1", "text/html", 406, "DICOMWEB_NOT_ACCEPTABLE"),
])
def test_bad_frame_requests_are_problems(service, phantom_series, path: str, accept: str,
                                         status: int, code: str) -> None:
    ds = _sent(phantom_series)[0]
    response = service.client.get(
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
        f"{ds.SOPInstanceUID}/{path}", headers=service.headers() | {"Accept": accept})
    assert (response.status_code, response.json()["code"]) == (status, code)
    missing = service.client.get(f"/dicomweb/studies/{ds.StudyInstanceUID}/series/1.2.3/"
                                 "metadata", headers=service.headers())
    assert missing.status_code == 404


@pytest.mark.req("SRS-DCMW-010")
def test_includefield_returns_attributes_the_index_does_not_hold(service, phantom_series) -> None:
    sent = _sent(phantom_series)[0]
    headers = service.headers() | {"Accept": DICOM_JSON}
    series = service.client.get("/dicomweb/series", headers=headers,
                                params={"includefield": "00180050,KVP"}).json()[0]
    assert series["00180050"]["Value"] == [float(sent.SliceThickness)]  # Slice Thickness
    assert series["00180060"]["Value"] == [float(sent.KVP)]
    studies = service.client.get("/dicomweb/studies", headers=headers,
                                 params={"includefield": "InstitutionName"}).json()
    assert studies[0]["00080080"].get("Value") == (
        [sent.InstitutionName] if sent.get("InstitutionName") else None)
    everything = service.client.get("/dicomweb/series", headers=headers,
                                    params={"includefield": "all"}).json()[0]
    assert "00200032" in everything and "7FE00010" not in everything  # a position, no pixels
    plain = service.client.get("/dicomweb/series", headers=headers).json()[0]
    assert "00180050" not in plain
