"""Audit export to Debian's rsyslog on loopback: every event arrives as an RFC 5424 message
rsyslog itself parsed (version 1, facility 10, MSGID IHE+RFC-3881) carrying a DICOM audit
message and the trail's proof, in order, over TCP, TLS and UDP; a repository that is down or
restarts loses nothing; the cursor never sends an event twice in normal running."""

import base64
import os
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from digital_contrast.atna import AuditExporter, audit_sender
from digital_contrast.atna.syslog import SyslogError, SyslogSender, SyslogTarget
from digital_contrast.cli import app
from digital_contrast.config import Settings, get_settings
from digital_contrast.store.audit import append_audit
from digital_contrast.store.audit_exports import exported_up_to
from digital_contrast.store.tables import AuditEvent
from tests.support.rsyslog import Rsyslog
from tests.support.tls import ThrowawayCA

EVENTS = [("key:7", "job.submit", "job", "j-1", "success"),
          ("key:7", "result.retrieve", "job", "j-1", "success"),
          ("web:3", "dashboard.login", "api_key", "3", "success"),
          ("key:2", "key.create", "api_key", "8", "refused"),
          ("retention", "purge", "store", None, "success")]


@pytest.fixture(scope="module")
def ca() -> ThrowawayCA:
    return ThrowawayCA()


@pytest.fixture
def rsyslog(tmp_path: Path, ca: ThrowawayCA):
    server = Rsyslog(tmp_path / "rsyslog", ca).start()
    yield server
    server.stop()


def _append(sessions, events=EVENTS) -> list[AuditEvent]:
    appended = []
    with sessions() as db:
        for actor, action, object_type, object_id, outcome in events:
            appended.append(append_audit(db, "site-a", actor, action, object_type, object_id,
                                         outcome, {"n": len(appended)}))
        db.commit()
    return appended


def _sd(field: str) -> dict[str, str]:
    body = field.strip("[]").split(" ", 1)[1]
    return dict(part.split("=", 1) for part in body.replace('"', "").split(" "))


@pytest.mark.req("SRS-AUD-007")
def test_events_reach_rsyslog_as_atna_messages_in_order(store_sessions, rsyslog: Rsyslog) -> None:
    events = _append(store_sessions)
    sender = SyslogSender(SyslogTarget.parse(f"tcp://127.0.0.1:{rsyslog.tcp}"))
    exporter = AuditExporter(store_sessions, sender, batch=2, hostname="ct-node-1")
    assert exporter.drain() == 3  # 5 events in batches of 2
    received = rsyslog.received(5)
    assert len(received) == 5
    for event, message in zip(events, received, strict=True):
        assert (message["version"], message["facility"], message["app"], message["msgid"]) == (
            "1", "10", "digital-contrast", "IHE+RFC-3881")
        assert message["severity"] == ("5" if event.outcome == "success" else "4")
        proof = _sd(message["sd"])
        assert (proof["seq"], proof["hash"], proof["mac"], proof["key"]) == (
            str(event.seq), event.hash, event.mac, event.key_id)
        xml = ElementTree.fromstring(message["msg"])
        assert xml.tag == "AuditMessage"
        assert xml.find("AuditSourceIdentification").get("AuditEnterpriseSiteID") == "site-a"
        assert xml.find("ActiveParticipant").get("UserID") == event.actor
        target = xml.find("ParticipantObjectIdentification")
        assert target.get("ParticipantObjectID") == f"{event.object_type}/{event.object_id or ''}"
        assert base64.b64decode(target.find("ParticipantObjectDetail").get("value")).decode() \
            == event.action
    codes = [ElementTree.fromstring(m["msg"]).find("EventIdentification/EventID")
             .get("csd-code") for m in received]
    assert codes == ["110100", "110103", "110114", "110113", "110105"]
    outcomes = [ElementTree.fromstring(m["msg"]).find("EventIdentification")
                .get("EventOutcomeIndicator") for m in received]
    assert outcomes == ["0", "0", "0", "4", "0"]
    assert exporter.drain() == 0 and len(rsyslog.received(5, timeout_s=0.5)) == 5
    with store_sessions() as db:
        assert exported_up_to(db, exporter.target) == events[-1].id


@pytest.mark.req("SRS-AUD-007")
def test_a_repository_down_or_restarted_loses_nothing(store_sessions, rsyslog: Rsyslog) -> None:
    sender = SyslogSender(SyslogTarget.parse(f"tcp://127.0.0.1:{rsyslog.tcp}"))
    exporter = AuditExporter(store_sessions, sender)
    sent = _append(store_sessions, EVENTS[:2])
    exporter.drain()
    rsyslog.stop()  # the connection stays open on our side
    _append(store_sessions, EVENTS[2:3])
    with pytest.raises(SyslogError) as info:
        exporter.drain()
    assert info.value.code == "AUDIT_SYSLOG_UNREACHABLE"
    with store_sessions() as db:
        # not moved past what was not sent
        assert exported_up_to(db, exporter.target) == sent[-1].id
    rsyslog.start()
    _append(store_sessions, EVENTS[3:])
    exporter.drain()
    rsyslog.stop()  # restarted again, while our connection was idle
    rsyslog.start()
    _append(store_sessions, EVENTS[:1])
    exporter.drain()
    seqs = [int(_sd(m["sd"])["seq"]) for m in rsyslog.received(6)]
    assert seqs == [1, 2, 3, 4, 5, 6]


@pytest.mark.req("SRS-AUD-007")
def test_udp_and_tls_transports(store_sessions, rsyslog: Rsyslog, ca: ThrowawayCA,
                                tmp_path: Path) -> None:
    _append(store_sessions, EVENTS[:2])
    udp = AuditExporter(store_sessions, SyslogSender(SyslogTarget.parse(
        f"udp://127.0.0.1:{rsyslog.udp}")))
    assert udp.drain() == 1
    keys = tmp_path / "keys"
    ca.install(keys, clients_ca=False)  # our node certificate, and the CA we trust
    settings = Settings(data_dir=tmp_path / "data", keys_dir=keys,
                        audit_syslog=f"tls://127.0.0.1:{rsyslog.tls}")
    tls = AuditExporter(store_sessions, audit_sender(settings))
    assert tls.drain() == 1
    received = rsyslog.received(4)
    assert sorted(int(_sd(m["sd"])["seq"]) for m in received) == [1, 1, 2, 2]
    assert {m["msgid"] for m in received} == {"IHE+RFC-3881"}


@pytest.mark.req("SRS-AUD-007")
@pytest.mark.parametrize("url", ["http://h:514", "tcp://h", "tcp://:514", "tcp://u:p@h:514",
                                 "tcp://h:99999", "udp://h:514/x", ""])
def test_an_unusable_repository_address_is_refused(url: str) -> None:
    with pytest.raises(SyslogError) as info:
        SyslogTarget.parse(url)
    assert info.value.code == "AUDIT_SYSLOG_INVALID"


@pytest.mark.req("SRS-AUD-003", "SRS-AUD-006", "SRS-AUD-007")
def test_the_operator_commands_verify_rotate_and_export(
        operator_env: Path, monkeypatch: pytest.MonkeyPatch, rsyslog: Rsyslog) -> None:
    monkeypatch.setenv("DC_AUDIT_SYSLOG", f"tcp://127.0.0.1:{rsyslog.tcp}")
    monkeypatch.setenv("DC_KEYS_DIR", str(operator_env / "keys"))
    get_settings.cache_clear()
    runner = CliRunner()
    rotated = runner.invoke(app, ["audit", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    assert "audit key rotated" in rotated.output
    assert len(os.listdir(operator_env / "keys" / "secrets" / "retired")) == 1
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0 and "audit chain intact: 1 events" in verified.output
    exported = runner.invoke(app, ["audit", "export"])
    assert exported.exit_code == 0, exported.output
    assert "exported up to event 1" in exported.output
    assert [_sd(m["sd"])["seq"] for m in rsyslog.received(1)] == ["1"]
    get_settings().audit_anchor_file.unlink()  # the anchor taken away: verification says so
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "ANCHOR_MISSING" in broken.output
    assert "Traceback" not in broken.output
