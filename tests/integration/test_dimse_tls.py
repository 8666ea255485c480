"""DIMSE over TLS (PS3.15 B.1): the listener speaks TLS only and requires client certificates
signed by the site's CA; a delivery reaches a TLS destination, verifying its certificate."""

import ssl
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from sqlalchemy import select

from digital_contrast.delivery import DeliveryWorker
from digital_contrast.dimse import StorageSCP
from digital_contrast.jobs.submit import submit
from digital_contrast.phantom.export import Phase
from digital_contrast.store.destinations import add_destination
from digital_contrast.store.dicom_senders import add_sender
from digital_contrast.store.enums import DeliveryState
from digital_contrast.store.outbox import enqueue
from digital_contrast.store.tables import Delivery
from tests.support.service import make_settings, running_service, upload
from tests.support.tls import ThrowawayCA

OUR_AE, MODALITY = "DC_TLS", "TLS_SCU"
CT, VERIFICATION = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.1"


@pytest.fixture(scope="module")
def tls_service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path,
                phantom_series):
    root = tmp_path_factory.mktemp("dimse-tls")
    keys = root / "keys"
    keys.mkdir(mode=0o700)
    ca = ThrowawayCA()
    ca.install(keys)
    settings = make_settings(root, empty_registry_db, keys_dir=keys, dimse_tls=True,
                             dimse_ae_title=OUR_AE, max_upload_bytes=60_000_000)
    with running_service(settings) as service:
        with service.state.sessions() as db:
            add_sender(db, MODALITY, settings.site)
            add_sender(db, OUR_AE, settings.site, host="127.0.0.1")  # our own deliveries
            db.commit()
        scp = StorageSCP(service.state)
        port = scp.start("127.0.0.1", 0)
        try:
            yield service, port, ca, upload(service, phantom_series[Phase.NCCT])
        finally:
            scp.stop()


def _client(ca: ThrowawayCA, tmp_path: Path, *, certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    (tmp_path / "ca.pem").write_bytes(ca.pem())
    context.load_verify_locations(cafile=str(tmp_path / "ca.pem"))
    if certificate:
        cert, key = ca.issue("ct-scanner", server=False)
        (tmp_path / "c.pem").write_bytes(cert)
        (tmp_path / "c.key").write_bytes(key)
        context.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "c.key"))
    return context


def _associate(port: int, tls: ssl.SSLContext | None):
    ae = AE(ae_title=MODALITY)
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT)
    return ae.associate("127.0.0.1", port, ae_title=OUR_AE,
                        tls_args=(tls, "127.0.0.1") if tls else None)


@pytest.mark.req("SRS-DIMSE-006")
def test_a_client_with_a_certificate_of_the_site_ca_echoes_and_stores(
        tls_service, phantom_series, tmp_path: Path) -> None:
    _, port, ca, _ = tls_service
    assoc = _associate(port, _client(ca, tmp_path, certificate=True))
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    ds = pydicom.dcmread(sorted(phantom_series[Phase.NCCT].iterdir())[0])
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()


@pytest.mark.req("SRS-DIMSE-006")
@pytest.mark.parametrize("how", ["plain TCP", "TLS without a client certificate"])
def test_a_client_without_tls_or_certificate_gets_no_association(
        tls_service, tmp_path: Path, how: str) -> None:
    _, port, ca, _ = tls_service
    tls = None if how == "plain TCP" else _client(ca, tmp_path, certificate=False)
    assoc = _associate(port, tls)
    assert not assoc.is_established


@pytest.mark.req("SRS-DIMSE-006", "SRS-DLV-002")
def test_a_delivery_reaches_a_tls_destination(tls_service) -> None:
    service, port, _, series_uid = tls_service
    with service.state.sessions() as db:
        job = submit(db, service.settings.mlflow_uri, site=service.settings.site,
                     series_uid=series_uid, use_case="aaa-cta").job
        secure = add_destination(db, service.settings.site, "secure-pacs", "dimse",
                                 ae_title=OUR_AE, host="127.0.0.1", port=port, tls=True)
        plain = add_destination(db, service.settings.site, "plain", "dimse", ae_title=OUR_AE,
                                host="127.0.0.1", port=port)
        # The series goes back to the same store: the same instances, stored again harmlessly.
        ids = [enqueue(db, job, d, [series_uid], "test").id for d in (secure, plain)]
        db.commit()
    worker = DeliveryWorker(service.state)
    assert worker.run_once() and worker.run_once()
    with service.state.sessions() as db:
        states = {d.id: d for d in db.scalars(select(Delivery).where(Delivery.id.in_(ids)))}
    assert states[ids[0]].state is DeliveryState.DELIVERED and states[ids[0]].instances_sent > 0
    assert states[ids[1]].state is DeliveryState.PENDING  # plain TCP: no association
    assert "no association" in states[ids[1]].last_error
