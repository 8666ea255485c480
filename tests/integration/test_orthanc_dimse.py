"""Orthanc (Debian orthanc) as the PACS, over DIMSE: it echoes and pushes a study to our listener
with its own C-STORE SCU (a job of its own), as a hospital PACS forwards to a node; the same
study sent again by its STOW-RS client is the same instances, not a conflict; a study it
pushes runs by itself and its result comes back to it by C-STORE."""

import io
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from digital_contrast.dimse import StorageSCP
from digital_contrast.phantom.export import Phase
from digital_contrast.store import Instance
from digital_contrast.store.destinations import add_destination
from digital_contrast.store.dicom_senders import add_sender
from tests.support.orthanc import AE_TITLE as ORTHANC_AE
from tests.support.orthanc import running_orthanc
from tests.support.service import live_server, make_settings, running_service

OUR_AE = "DC_TEST"


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    root = tmp_path_factory.mktemp("orthanc-dimse")
    settings = make_settings(root / "service", empty_registry_db, dimse_ae_title=OUR_AE,
                             max_upload_bytes=60_000_000, auto_run_use_cases=["aaa-cta"],
                             auto_run_stable_s=0)
    with running_service(settings) as service, live_server(service.app) as base:
        with service.state.sessions() as db:
            add_sender(db, ORTHANC_AE, settings.site, host="127.0.0.1",
                       description="the PACS")
            db.commit()
        scp = StorageSCP(service.state)
        port = scp.start("127.0.0.1", 0)
        try:
            modalities = {"dc": [OUR_AE, "127.0.0.1", port]}
            servers = {"dc": {"Url": f"{base}/dicomweb/", "HttpHeaders": service.headers()}}
            with running_orthanc(root / "orthanc", modalities=modalities,
                                 dicomweb_servers=servers) as orthanc:
                with service.state.sessions() as db:  # results go back to the PACS
                    add_destination(db, settings.site, "pacs", "dimse",
                                    ae_title=orthanc.ae_title, host="127.0.0.1",
                                    port=orthanc.dicom_port, auto=True)
                    db.commit()
                yield service, orthanc
        finally:
            scp.stop()


@pytest.mark.req("SRS-DIMSE-001")
def test_orthanc_echoes_our_listener(peers) -> None:
    _, orthanc = peers
    assert orthanc.post("/modalities/dc/echo", {}) == {}


@pytest.mark.req("SRS-DIMSE-001", "SRS-DIMSE-002")
def test_orthanc_pushes_a_study_by_c_store_and_every_instance_is_stored(
        peers, phantom_series) -> None:
    service, orthanc = peers
    files = sorted(phantom_series[Phase.NCCT].iterdir())
    (study,) = orthanc.upload(files)
    answer = orthanc.post("/modalities/dc/store", {"Resources": [study], "Synchronous": True})
    assert answer.get("FailedInstancesCount", 0) == 0, answer
    series = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    sent = orthanc.files(series)
    with service.state.sessions() as db:
        stored = {i.sop_instance_uid: i for i in db.scalars(select(Instance))}
    assert set(sent) <= set(stored) and len(sent) == len(files)
    for uid, data in sent.items():  # the data set Orthanc holds, element for element
        row = stored[uid]
        kept = pydicom.dcmread(io.BytesIO(service.state.instances.read(row.file_path,
                                                                        row.sha256)))
        assert kept == pydicom.dcmread(io.BytesIO(data)) and row.site == service.settings.site


@pytest.mark.req("SRS-DIMSE-001", "SRS-STORE-003")
def test_the_same_study_again_by_stow_rs_is_the_same_instances(peers, phantom_series) -> None:
    """C-STORE gives each file our File Meta, STOW-RS brings Orthanc's: other bytes, the same
    data sets. The second sending is harmless; its files are removed at once."""
    service, orthanc = peers
    files = sorted(phantom_series[Phase.NCCT].iterdir())
    (study,) = orthanc.upload(files)
    orthanc.post("/modalities/dc/store", {"Resources": [study], "Synchronous": True})
    with service.state.sessions() as db:
        before = {i.sop_instance_uid: i.sha256 for i in db.scalars(select(Instance))}
    orthanc.post("/dicom-web/servers/dc/stow", {"Resources": [study], "Synchronous": True})
    with service.state.sessions() as db:
        assert {i.sop_instance_uid: i.sha256 for i in db.scalars(select(Instance))} == before
        claimed = {i.file_path for i in db.scalars(select(Instance))}
    on_disk = {p.relative_to(service.state.instances.root).as_posix()
               for p in service.state.instances.root.glob("*/*/*.dcm")}
    assert on_disk == claimed


@pytest.mark.req("SRS-DIMSE-001", "SRS-DLV-001", "SRS-JOB-005")
def test_a_study_pushed_by_the_pacs_runs_by_itself_and_its_result_returns(
        peers, phantom_series) -> None:
    """The whole loop with the PACS: C-STORE in, auto-run on the stable series, the job, the
    result pushed back by C-STORE to the PACS's own DICOM server."""
    from digital_contrast.delivery import DeliveryWorker
    from digital_contrast.jobs.auto_run import auto_submit

    service, orthanc = peers
    (study,) = orthanc.upload(sorted(phantom_series[Phase.NCCT].iterdir()))
    orthanc.post("/modalities/dc/store", {"Resources": [study], "Synchronous": True})
    state, settings = service.state, service.settings
    submitted = auto_submit(state.sessions, state.instances, settings.mlflow_uri,
                            settings.auto_run_use_cases, settings.auto_run_stable_s)
    assert len(submitted) == 1
    assert service.run_jobs() == 1
    job = service.client.get(f"/v1/jobs/{submitted[0]}", headers=service.headers()).json()
    assert job["state"] == "succeeded" and job["deliveries"][0]["state"] == "pending"
    assert DeliveryWorker(state).run_once()
    output = job["output_series_uid"]
    with state.sessions() as db:
        produced = {i.sop_instance_uid for i in db.scalars(select(Instance).join(
            Instance.series).where(Instance.series.has(series_instance_uid=output)))}
    assert orthanc.sop_instance_uids(output) == produced and produced
