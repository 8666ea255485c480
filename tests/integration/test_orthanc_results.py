"""Results pushed back to the PACS: a job's synthetic series and maps delivered to a real
Orthanc by our C-STORE SCU (automatically, in the transfer syntax negotiated) and by our
STOW-RS client (on request), through the durable outbox, shown in the job record; and pulled
by Orthanc's own WADO-RS client."""

import io
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import JPEGLSLossless
from sqlalchemy import select

from digital_contrast.delivery import DeliveryWorker
from digital_contrast.phantom.export import Phase
from digital_contrast.store import Instance, Origin, Series
from digital_contrast.store.destinations import add_destination
from tests.support.orthanc import running_orthanc
from tests.support.service import live_server, make_settings, running_service, upload


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path, phantom_series):
    root = tmp_path_factory.mktemp("orthanc-results")
    settings = make_settings(root / "service", empty_registry_db, max_upload_bytes=60_000_000)
    with running_service(settings) as service, live_server(service.app) as base, \
            running_orthanc(root / "orthanc", dicomweb_servers={"dc": {
                "Url": f"{base}/dicomweb/", "HttpHeaders": service.headers()}}) as orthanc:
        with service.state.sessions() as db:
            add_destination(db, settings.site, "pacs", "dimse", ae_title=orthanc.ae_title,
                            host="127.0.0.1", port=orthanc.dicom_port,
                            transfer_syntaxes=[JPEGLSLossless], auto=True)
            add_destination(db, settings.site, "pacs-web", "stow-rs", url=orthanc.dicomweb)
            db.commit()
        series_uid = upload(service, phantom_series[Phase.NCCT])
        job = service.client.post("/v1/jobs", json={"series_uid": series_uid,
                                                    "use_case": "aaa-cta"},
                                  headers=service.headers()).json()
        assert service.run_jobs() == 1
        yield service, orthanc, job["id"]


def _produced(service) -> dict[str, set[str]]:
    with service.state.sessions() as db:
        rows = db.execute(select(Series.series_instance_uid, Instance.sop_instance_uid)
                          .join(Instance).where(Series.origin == Origin.PRODUCED)).all()
    produced: dict[str, set[str]] = {}
    for series, sop in rows:
        produced.setdefault(series, set()).add(sop)
    return produced


def _job(service, job_id: str) -> dict:
    return service.client.get(f"/v1/jobs/{job_id}", headers=service.headers()).json()


@pytest.mark.req("SRS-DLV-001", "SRS-DLV-002")
def test_a_succeeded_job_is_pushed_by_c_store_in_the_negotiated_syntax(peers) -> None:
    service, orthanc, job_id = peers
    (queued,) = _job(service, job_id)["deliveries"]
    assert (queued["destination"], queued["state"], queued["requested_by"]) == \
        ("pacs", "pending", "auto")
    assert DeliveryWorker(service.state).run_once()
    (done,) = _job(service, job_id)["deliveries"]
    produced = _produced(service)
    assert done["state"] == "delivered" and done["last_error"] is None
    assert done["instances_sent"] == sum(len(s) for s in produced.values())
    for series, sops in produced.items():  # the synthetic series and both maps' series
        assert orthanc.sop_instance_uids(series) == sops
    output = _job(service, job_id)["output_series_uid"]
    synthetic = orthanc.files(output)
    first = pydicom.dcmread(io.BytesIO(next(iter(synthetic.values()))))
    assert first.SyntheticData == "YES"
    assert first.file_meta.TransferSyntaxUID == JPEGLSLossless  # what the PACS accepted
    original = pydicom.dcmread(service.state.instances.path(_row(service, first).file_path))
    assert (first.pixel_array == original.pixel_array).all()  # lossless, as negotiated


def _row(service, ds: pydicom.Dataset) -> Instance:
    with service.state.sessions() as db:
        return db.scalars(select(Instance).where(
            Instance.sop_instance_uid == ds.SOPInstanceUID)).one()


@pytest.mark.req("SRS-DLV-001", "SRS-DLV-003")
def test_a_result_is_pushed_by_stow_rs_on_request(peers) -> None:
    service, orthanc, job_id = peers
    response = service.client.post(f"/v1/jobs/{job_id}/deliveries",
                                    json={"destination": "pacs-web"}, headers=service.headers())
    assert response.status_code == 202 and response.json()["state"] == "pending"
    before = requests.get(f"{orthanc.rest}/statistics", timeout=10).json()["CountInstances"]
    assert DeliveryWorker(service.state).run_once()
    web = next(d for d in _job(service, job_id)["deliveries"] if d["destination"] == "pacs-web")
    assert web["state"] == "delivered" and web["instances_sent"] == \
        sum(len(s) for s in _produced(service).values())
    # The same instances again: Orthanc keeps one copy of each.
    assert requests.get(f"{orthanc.rest}/statistics", timeout=10).json()["CountInstances"] \
        == before
    unknown = service.client.post(f"/v1/jobs/{job_id}/deliveries",
                                  json={"destination": "nowhere"}, headers=service.headers())
    assert unknown.status_code == 404 and unknown.json()["code"] == "DESTINATION_NOT_FOUND"


@pytest.mark.req("SRS-DCMW-007")
def test_orthanc_pulls_the_result_by_wado_rs(peers) -> None:
    service, orthanc, job_id = peers
    job = _job(service, job_id)
    output = job["output_series_uid"]
    for orthanc_series in orthanc.post("/tools/find", {"Level": "Series", "Query": {
            "SeriesInstanceUID": output}}):  # what the pushes left there goes first
        requests.delete(f"{orthanc.rest}/series/{orthanc_series}", timeout=30).raise_for_status()
    assert orthanc.sop_instance_uids(output) == set()
    with service.state.sessions() as db:
        study = db.scalars(select(Series).where(Series.series_instance_uid == output)
                           ).one().study.study_instance_uid
    orthanc.post("/dicom-web/servers/dc/retrieve", {"Resources": [
        {"Study": study, "Series": output}]})
    assert orthanc.sop_instance_uids(output) == _produced(service)[output]
