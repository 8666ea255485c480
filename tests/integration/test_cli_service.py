"""Operator commands of the service: keys, audit verification, purge."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from digital_contrast.config import get_settings
from digital_contrast.phantom.export import Phase
from digital_contrast.store import AuditEvent, Instance, Job, Role, Series, Study
from digital_contrast.store.audit import verify_audit_chain
from tests.support.cli import run_cli, site_environment
from tests.support.service import running_service, upload


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_registry_db: Path):
    yield from site_environment(tmp_path, empty_registry_db, monkeypatch)



@pytest.mark.req("SRS-KEY-003")
def test_keys_are_created_listed_and_revoked(env) -> None:
    created = run_cli("keys", "create", "--role", "clinician", "--name", "pacs")
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("dc_")
    listed = run_cli("keys", "list")
    assert "pacs" in listed.output and key not in listed.output
    assert run_cli("keys", "create", "--role", "root", "--name", "x").exit_code == 2
    with running_service(env) as service:
        assert service.client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 200
        key_id = re.search(r"^key (\d+) ", created.output, re.MULTILINE)[1]
        assert run_cli("keys", "revoke", key_id).exit_code == 0
        assert service.client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 401


@pytest.mark.req("SRS-DIMSE-004")
def test_senders_are_added_listed_disabled_and_bad_ones_refused(env) -> None:
    assert run_cli("senders", "add", "CT_1", "--host", "10.0.0.7",
                "--description", "scanner").exit_code == 0
    listed = run_cli("senders", "list").output
    assert "CT_1" in listed and "10.0.0.7" in listed and env.site in listed
    refused = {
        ("senders", "add", "CT_1"): "SENDER_EXISTS",  # unique across sites
        ("senders", "add", "BAD\\AE"): "SENDER_INVALID",
        ("senders", "add", "X" * 17): "SENDER_INVALID",
        ("senders", "add", "PACS", "--host", "pacs.example"): "SENDER_INVALID",
        ("senders", "disable", "NOBODY"): "SENDER_NOT_FOUND",
    }
    for args, code in refused.items():
        result = run_cli(*args)
        assert result.exit_code == 2 and code in result.output, (args, result.output)
    assert run_cli("senders", "disable", "CT_1").exit_code == 0
    assert run_cli("senders", "enable", "CT_1").exit_code == 0
    with running_service(env) as service, service.state.sessions() as db:
        actions = [e.action for e in db.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions == ["sender.add", "sender.disable", "sender.enable"]


@pytest.mark.req("SRS-DIMSE-001")
def test_the_listener_command_needs_a_port(env) -> None:
    result = run_cli("dimse")
    assert result.exit_code == 2 and "DIMSE_PORT_MISSING" in result.output


@pytest.mark.req("SRS-AUD-003")
def test_audit_verify_names_the_first_tampered_event(env) -> None:
    with running_service(env) as service:
        for name in ("a", "b", "c"):
            service.client.post("/v1/keys", json={"name": name, "role": "regulatory"},
                                headers=service.headers(Role.ADMIN))
        with service.state.sessions() as db:
            ok = verify_audit_chain(db)
            assert ok.ok and ok.checked >= 3
            victim = ok.checked - 1
            db.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            db.execute(text("UPDATE audit_events SET outcome = 'forged' WHERE id = :id"),
                       {"id": victim})
            db.commit()
    verified = run_cli("audit", "verify")
    assert verified.exit_code == 1
    assert f"AUDIT_CHAIN_BROKEN: first broken link is event {victim}" in " ".join(
        verified.output.split())


@pytest.mark.req("SRS-RET-002", "SRS-EXP-026")
def test_purge_removes_expired_data_and_keeps_the_audit_trail(env, phantom_series,
                                                               monkeypatch) -> None:
    with running_service(env) as service:
        uid = upload(service, phantom_series[Phase.NCCT])
        job_id = service.client.post("/v1/jobs", json={"series_uid": uid,
                                                       "use_case": "aaa-cta"},
                                     headers=service.headers()).json()["id"]
        service.run_jobs()
        job_folder = service.state.artifacts.job_folder(job_id)
        assert (job_folder / "maps" / "uncertainty-tta" / "preview_axial.png").is_file()
        with service.state.sessions() as db:
            audit_before = verify_audit_chain(db).checked
            long_ago = datetime(2000, 1, 1, tzinfo=UTC)
            for model in (Study, Series, Instance, Job):
                db.query(model).update({"created_at": long_ago})
            db.query(Series).update({"updated_at": long_ago})
            db.commit()
    instance_files = list((Path(env.data_dir) / "instances").rglob("*.dcm"))
    assert instance_files
    purged = run_cli("purge")
    assert purged.exit_code == 0, purged.output
    with running_service(env) as service, service.state.sessions() as db:
        assert db.query(Study).count() == db.query(Instance).count() == 0
        (job,) = db.query(Job).all()
        assert job.series_id is None and job.state == "succeeded"  # de-identified, kept
        chain = verify_audit_chain(db)
        assert chain.ok and chain.checked > audit_before
    assert not [p for p in instance_files if p.exists()]
    assert not job_folder.exists()  # the job's map previews and NIfTI went with it
    # A purge interrupted before it removed a folder: the next one finishes the work.
    (job_folder / "maps").mkdir(parents=True)
    assert run_cli("purge").exit_code == 0 and not job_folder.exists()


@pytest.mark.req("SRS-JOB-006")
def test_worker_options_that_do_not_fit_the_executor_are_refused(
        env, monkeypatch: pytest.MonkeyPatch) -> None:
    embedded = run_cli("worker", "--concurrency", "2")
    assert embedded.exit_code != 0 and "WORKER_CONCURRENCY_CELERY_ONLY" in embedded.output
    monkeypatch.setenv("DC_EXECUTOR", "celery")
    get_settings.cache_clear()
    once = run_cli("worker", "--once")
    assert once.exit_code != 0 and "WORKER_ONCE_EMBEDDED_ONLY" in once.output
    monkeypatch.setenv("DC_BROKER_URL", "redis://127.0.0.1:6379/0")
    get_settings.cache_clear()
    refused = run_cli("worker")
    assert refused.exit_code != 0 and "DC_BROKER_URL" in refused.output.replace("\n", "")
