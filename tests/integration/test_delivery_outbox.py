"""The outbox without a willing peer: retries with backoff, failure for good, re-queueing, a
worker's lease taken over after it stopped, and credentials kept in the keys folder."""

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.cli.output import console
from digital_contrast.config import get_settings
from digital_contrast.delivery import DeliveryWorker, credential_headers
from digital_contrast.keys.folder import keys_folder
from digital_contrast.phantom.export import Phase
from digital_contrast.store import AuditEvent, Instance, Job, Series
from digital_contrast.store.columns import utcnow
from digital_contrast.store.destinations import add_destination, get_destination
from digital_contrast.store.enums import DeliveryState
from digital_contrast.store.outbox import (
    claim_next_delivery,
    enqueue,
    mark_delivered,
    result_series_uids,
    retry_delay_s,
)
from digital_contrast.store.tables import Delivery, Destination
from tests.support.orthanc import free_port
from tests.support.service import live_server, make_settings, running_service, upload


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path, phantom_series):
    settings = make_settings(tmp_path_factory.mktemp("outbox"), empty_registry_db,
                             max_upload_bytes=60_000_000, delivery_max_attempts=2,
                             dimse_timeout_s=5)
    with running_service(settings) as running:
        series_uid = upload(running, phantom_series[Phase.NCCT])
        running.client.post("/v1/jobs", json={"series_uid": series_uid, "use_case": "aaa-cta"},
                            headers=running.headers())
        assert running.run_jobs() == 1
        yield running


def _queue(service, name: str, **address) -> str:
    with service.state.sessions() as db:
        destination = db.scalar(select(Destination).where(Destination.name == name)) or \
            add_destination(db, service.settings.site, name, **address)
        job = db.scalars(select(Job)).one()
        delivery = enqueue(db, job, destination, result_series_uids(job), "test")
        db.commit()
        return delivery.id


def _delivery(service, delivery_id: str) -> Delivery:
    with service.state.sessions() as db:
        return db.get(Delivery, delivery_id)


def _make_due(service, delivery_id: str) -> None:
    with service.state.sessions() as db:
        db.get(Delivery, delivery_id).next_attempt_at = utcnow() - timedelta(seconds=1)
        db.commit()


@pytest.mark.req("SRS-DLV-004")
def test_retry_waits_double_up_to_an_hour() -> None:
    assert [retry_delay_s(n) for n in (1, 2, 3, 4, 8, 20)] == [30, 60, 120, 240, 3600, 3600]


@pytest.mark.req("SRS-DLV-004", "SRS-DLV-001")
def test_an_unreachable_peer_is_retried_with_backoff_then_failed_then_requeued(
        service, monkeypatch: pytest.MonkeyPatch) -> None:
    delivery_id = _queue(service, "gone", protocol="dimse", ae_title="GONE",
                         host="127.0.0.1", port=free_port())
    started = utcnow()
    assert DeliveryWorker(service.state).run_once()
    first = _delivery(service, delivery_id)
    assert (first.state, first.attempts) == (DeliveryState.PENDING, 1)
    assert "no association" in first.last_error
    assert timedelta(seconds=29) <= first.next_attempt_at - started <= timedelta(seconds=60)
    assert not DeliveryWorker(service.state).run_once()  # not due yet
    _make_due(service, delivery_id)
    assert DeliveryWorker(service.state).run_once()
    assert _delivery(service, delivery_id).state is DeliveryState.FAILED  # 2 attempts
    with service.state.sessions() as db:
        actions = [e.action for e in db.scalars(select(AuditEvent).where(
            AuditEvent.object_id == delivery_id).order_by(AuditEvent.id))]
    assert actions == ["delivery.retry", "delivery.failed"]
    monkeypatch.setenv("DC_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("DC_RELEASES_DIR", str(service.settings.releases_dir))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["deliveries", "retry", delivery_id])
    assert result.exit_code == 0, result.output
    again = _delivery(service, delivery_id)
    assert (again.state, again.attempts) == (DeliveryState.PENDING, 0)
    refused = CliRunner().invoke(app, ["deliveries", "retry", delivery_id])
    assert refused.exit_code == 2 and "DELIVERY_INVALID_STATE" in refused.output
    listed = CliRunner().invoke(app, ["deliveries", "list"]).output
    assert delivery_id in listed
    with service.state.sessions() as db:  # out of the way of the other tests
        db.get(Delivery, delivery_id).state = DeliveryState.FAILED
        db.commit()


@pytest.mark.req("SRS-DLV-004", "SRS-DLV-003")
def test_a_refusal_that_cannot_heal_fails_at_once(service) -> None:
    with live_server(service.app) as base:  # our own STOW-RS, without a key: 401
        delivery_id = _queue(service, "no-key", protocol="stow-rs", url=f"{base}/dicomweb")
        assert DeliveryWorker(service.state).run_once()
    failed = _delivery(service, delivery_id)
    assert (failed.state, failed.attempts) == (DeliveryState.FAILED, 1)
    assert failed.last_error.endswith("HTTP 401 from the STOW-RS service")


@pytest.mark.req("SRS-DLV-004")
def test_a_stopped_workers_delivery_is_taken_over_after_its_lease(service) -> None:
    delivery_id = _queue(service, "later", protocol="dimse", ae_title="LATER",
                         host="127.0.0.1", port=free_port())
    now = utcnow()
    with service.state.sessions() as db:  # worker A claims, then stops without a word
        assert claim_next_delivery(db, "worker-a", 60, now=now).id == delivery_id
        db.commit()
    with service.state.sessions() as db:
        assert claim_next_delivery(db, "worker-b", 60, now=now + timedelta(seconds=30)) is None
        taken = claim_next_delivery(db, "worker-b", 60, now=now + timedelta(seconds=61))
        assert (taken.id, taken.lease_owner, taken.attempts) == (delivery_id, "worker-b", 2)
        db.commit()
    with service.state.sessions() as db:  # A comes back: its outcome no longer counts
        assert mark_delivered(db, delivery_id, "worker-a", 10) is None
        assert mark_delivered(db, delivery_id, "worker-b", 68).state is DeliveryState.DELIVERED
        db.commit()


@pytest.mark.req("SRS-DLV-005", "SRS-DLV-003")
def test_destinations_are_managed_and_credentials_kept_in_the_keys_folder(
        service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DC_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("DC_RELEASES_DIR", str(service.settings.releases_dir))
    monkeypatch.setattr(console, "width", 200)  # the tables on one line each
    get_settings.cache_clear()

    def cli(*args: str, stdin: str | None = None):
        result = CliRunner().invoke(app, list(args), input=stdin)
        assert "Traceback" not in result.output
        return result

    secret = "Bearer s3cr3t-t0ken"
    added = cli("destinations", "add", "archive", "--url", "https://pacs.example/dicom-web",
                "--auth-header", "Authorization", stdin=secret + "\n")
    assert added.exit_code == 0 and secret not in added.output
    assert cli("destinations", "add", "modality-pacs", "--ae-title", "PACS", "--host",
               "10.0.0.9", "--port", "104", "--transfer-syntax", "1.2.840.10008.1.2.4.80",
               "--auto").exit_code == 0
    listed = cli("destinations", "list").output
    assert "archive" in listed and "PACS@10.0.0.9:104" in listed and secret not in listed
    site = service.settings.site
    assert credential_headers(keys_folder(), site, "archive") == {"Authorization": secret}
    files = list((keys_folder().path / "destinations").iterdir())
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    with service.state.sessions() as db:
        assert secret not in str([vars(d) for d in db.scalars(select(Destination))])
        assert secret not in str([e.detail for e in db.scalars(select(AuditEvent))])
    refused = {
        ("destinations", "add", "archive", "--url", "https://other.example"):
            "DESTINATION_EXISTS",
        ("destinations", "add", "x", "--ae-title", "A"): "DESTINATION_INVALID",  # no host
        ("destinations", "add", "x", "--url", "ftp://pacs"): "DESTINATION_INVALID",
        ("destinations", "add", "x", "--url", "https://u:p@pacs"): "DESTINATION_INVALID",
        ("destinations", "add", "x", "--ae-title", "A", "--host", "h", "--port", "70000"):
            "DESTINATION_INVALID",
        ("destinations", "add", "x", "--ae-title", "A", "--host", "h", "--port", "104",
         "--transfer-syntax", "1.2.3"): "DESTINATION_INVALID",
        ("destinations", "add", "x", "--ae-title", "A", "--host", "h", "--port", "104",
         "--transfer-syntax", "1.2.840.10008.1.2.4.50"): "DESTINATION_INVALID",  # lossy
        ("destinations", "add", "x", "--ae-title", "A", "--host", "h", "--port", "104",
         "--auth-header", "Authorization"): "DESTINATION_INVALID",
        ("destinations", "add", "bad name", "--url", "https://pacs"): "DESTINATION_INVALID",
        ("destinations", "disable", "nowhere"): "DESTINATION_NOT_FOUND",
    }
    for args, code in refused.items():
        result = cli(*args)
        assert result.exit_code == 2 and code in result.output, (args, result.output)
    with service.state.sessions() as db:
        assert {d.name for d in db.scalars(select(Destination))} >= {"archive", "modality-pacs"}
        assert db.scalar(select(Destination).where(Destination.name == "x")) is None
    rotated = cli("destinations", "credential", "archive", "--auth-header", "Authorization",
                  stdin="Bearer n3w\n")
    assert rotated.exit_code == 0
    assert credential_headers(keys_folder(), site, "archive") == {"Authorization": "Bearer n3w"}
    assert "DESTINATION_INVALID" in cli("destinations", "credential", "modality-pacs",
                                        "--auth-header", "X", stdin="v\n").output
    assert cli("destinations", "disable", "archive").exit_code == 0
    with service.state.sessions() as db, pytest.raises(Exception, match="DESTINATION_NOT_FOUND"):
        get_destination(db, site, "archive")
    assert cli("destinations", "enable", "archive").exit_code == 0


@pytest.mark.req("SRS-DLV-006")
def test_a_result_file_that_no_longer_matches_its_hash_is_never_sent(service) -> None:
    with service.state.sessions() as db:
        job = db.scalars(select(Job)).one()
        (first,) = db.scalars(select(Instance).join(Series).where(
            Series.series_instance_uid == job.output_series_uid).limit(1))
        path = service.state.instances.path(first.file_path)
    kept = path.read_bytes()
    try:
        path.write_bytes(kept[:-10] + b"tampered!!")
        delivery_id = _queue(service, "integrity", protocol="dimse", ae_title="ANY",
                             host="127.0.0.1", port=free_port())
        assert DeliveryWorker(service.state).run_once()
        failed = _delivery(service, delivery_id)
        assert (failed.state, failed.attempts, failed.instances_sent) == \
            (DeliveryState.FAILED, 1, 0)
        assert failed.last_error.endswith("INSTANCE_CORRUPT")
    finally:
        path.write_bytes(kept)
