"""The audit seal: an insider with full database rights but without the audit key cannot
recompute the chain after an edit, append a well-formed forged event, or remove the newest
events unnoticed; the anchor file cannot be edited without the key either; rotated keys still
verify what they sealed; a crash between commit and anchor leaves a trail that verifies."""

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from digital_contrast.store import StoreError
from digital_contrast.store.audit import (
    BreakReason,
    append_audit,
    chain_hash,
    row_hash,
    verify_audit_chain,
)
from digital_contrast.store.audit_seal import AuditSeal
from digital_contrast.store.database import session_factory
from digital_contrast.store.tables import AuditEvent
from tests.support.databases import audit_triggers_bypassed


def _append_events(sessions, n: int, start: int = 0) -> list[AuditEvent]:
    events = []
    for k in range(start, start + n):  # one commit each: the anchor follows every commit
        with sessions() as session:
            events.append(append_audit(session, "site-a", "key:1", "job.submit", "job",
                                       f"job-{k}", "success", {"n": k}))
            session.commit()
    return events


def _fields(row: dict) -> dict:
    return {"at": row["at"], "site": row["site"], "actor": row["actor"],
            "action": row["action"], "object_type": row["object_type"],
            "object_id": row["object_id"], "outcome": row["outcome"], "detail": row["detail"]}


def _verify(sessions):
    with sessions() as session:
        return verify_audit_chain(session)


@pytest.mark.req("SRS-AUD-005")
def test_a_sealed_trail_verifies_and_is_anchored(store_sessions, audit_seal: AuditSeal) -> None:
    events = _append_events(store_sessions, 4)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert {e.key_id for e in events} == {audit_seal.key_id}
    result = _verify(store_sessions)
    assert (result.ok, result.checked, result.anchored_seq) == (True, 4, 4)
    lines = audit_seal.anchor_path.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4]
    assert oct(audit_seal.anchor_path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.req("SRS-AUD-005")
def test_an_edit_with_the_chain_recomputed_is_caught_by_the_seal(
        store_sessions, store_engine: Engine) -> None:
    events = _append_events(store_sessions, 5)
    with audit_triggers_bypassed(store_engine) as connection:
        rows = [dict(r._mapping) for r in connection.execute(text(
            "SELECT * FROM audit_events ORDER BY id"))]
        with store_sessions() as session:  # the fields as the chain hashes them
            stored = {e.id: e for e in session.query(AuditEvent)}
        prev = rows[1]["hash"]
        for row in rows[2:]:  # event 3 edited, the chain recomputed from there on
            event = stored[row["id"]]
            if row["id"] == events[2].id:
                event.outcome = "failure"
            new_hash = chain_hash(prev, {**_fields(row), "at": event.at.isoformat(
                timespec="microseconds"), "outcome": event.outcome, "detail": event.detail})
            connection.execute(text("UPDATE audit_events SET outcome = :o, prev_hash = :p, "
                                    "hash = :h WHERE id = :id"),
                               {"o": event.outcome, "p": prev, "h": new_hash,
                                "id": row["id"]})
            prev = new_hash
    result = _verify(store_sessions)
    assert (result.ok, result.first_broken_id, result.reason) == (
        False, events[2].id, BreakReason.SEAL)


@pytest.mark.req("SRS-AUD-005")
@pytest.mark.parametrize("mac", ["forged", "copied", "none"])
def test_a_well_formed_forged_append_is_caught(store_sessions, store_engine: Engine,
                                               mac: str) -> None:
    events = _append_events(store_sessions, 3)
    with store_sessions() as session:
        forged = AuditEvent(at=events[-1].at, site="site-a", actor="key:1", action="key.create",
                            object_type="api_key", object_id="99", outcome="success",
                            detail={}, prev_hash=events[-1].hash, seq=4,
                            key_id=events[-1].key_id)
        forged.hash = row_hash(forged)
        forged.mac = {"forged": "ab" * 32, "copied": events[-1].mac, "none": None}[mac]
        if mac == "none":
            forged.seq = forged.key_id = None
        session.add(forged)  # a plain INSERT: the triggers only refuse UPDATE and DELETE
        session.commit()
        forged_id = forged.id
    result = _verify(store_sessions)
    assert (result.ok, result.first_broken_id) == (False, forged_id)
    assert result.reason == (BreakReason.UNSEALED if mac == "none" else BreakReason.SEAL)


@pytest.mark.req("SRS-AUD-005")
@pytest.mark.parametrize("removed", [1, 3])
def test_removing_the_newest_events_is_caught_by_the_anchor(
        store_sessions, store_engine: Engine, removed: int) -> None:
    events = _append_events(store_sessions, 4)
    with audit_triggers_bypassed(store_engine) as connection:
        connection.execute(text("DELETE FROM audit_events WHERE id >= :id"),
                           {"id": events[-removed].id})
    result = _verify(store_sessions)
    assert (result.ok, result.reason, result.anchored_seq) == (
        False, BreakReason.TRUNCATED, 4)
    assert result.checked == 4 - removed


@pytest.mark.req("SRS-AUD-005")
def test_removing_every_event_and_the_anchor_is_caught(store_sessions, store_engine: Engine,
                                                       audit_seal: AuditSeal) -> None:
    _append_events(store_sessions, 2)
    audit_seal.anchor_path.unlink()
    assert _verify(store_sessions).reason == BreakReason.ANCHOR_MISSING
    with audit_triggers_bypassed(store_engine) as connection:
        connection.execute(text("DELETE FROM audit_events"))
    _append_events(store_sessions, 1)  # a fresh start: the anchor file is made again
    assert _verify(store_sessions).ok  # with both gone the trail is new (see the guide)


@pytest.mark.req("SRS-AUD-005")
@pytest.mark.parametrize("edit", ["seq", "hash", "garbage", "unkeyed"])
def test_an_anchor_line_edited_without_the_key_is_caught(store_sessions,
                                                         audit_seal: AuditSeal,
                                                         edit: str) -> None:
    _append_events(store_sessions, 3)
    lines = audit_seal.anchor_path.read_text().splitlines()
    last = json.loads(lines[-1])
    changed = {"seq": {**last, "seq": 2}, "hash": {**last, "hash": "0" * 64},
               "garbage": None, "unkeyed": {k: v for k, v in last.items() if k != "mac"}}[edit]
    lines[-1] = "not json" if changed is None else json.dumps(changed)
    audit_seal.anchor_path.write_text("\n".join(lines) + "\n")
    result = _verify(store_sessions)
    assert (result.ok, result.reason) == (False, BreakReason.ANCHOR_INVALID)


@pytest.mark.req("SRS-AUD-005")
def test_a_crash_before_the_anchor_leaves_a_trail_that_verifies(
        store_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = os.urandom(32)
    anchor = tmp_path / "anchor.log"
    _append_events(session_factory(store_engine, AuditSeal(key, anchor_path=anchor)), 2)
    # The next commit cannot reach its anchor (as if killed between commit and write).
    blocked = AuditSeal(key, anchor_path=tmp_path / "blocked" / "anchor.log")
    (tmp_path / "blocked").write_text("a file where the folder should be")
    _append_events(session_factory(store_engine, blocked), 1, start=2)
    assert "AUDIT_ANCHOR_FAILED" in caplog.text
    with anchor.open("a") as torn:  # and a torn line from a write cut short
        torn.write('{"seq": 3, "ha')
    sessions = session_factory(store_engine, AuditSeal(key, anchor_path=anchor))
    result = _verify(sessions)
    assert (result.ok, result.checked, result.anchored_seq) == (True, 3, 2)


@pytest.mark.req("SRS-AUD-005")
def test_a_rolled_back_append_is_not_anchored(store_sessions, audit_seal: AuditSeal) -> None:
    _append_events(store_sessions, 1)
    with store_sessions() as session:
        append_audit(session, "site-a", "a", "x", "y", None, "success")
        session.rollback()
    assert len(audit_seal.anchor_path.read_text().splitlines()) == 1
    assert _verify(store_sessions).ok


@pytest.mark.req("SRS-AUD-006")
def test_events_sealed_with_a_retired_key_still_verify(store_engine: Engine,
                                                       tmp_path: Path) -> None:
    old, new, anchor = os.urandom(32), os.urandom(32), tmp_path / "anchor.log"
    earlier = _append_events(session_factory(store_engine, AuditSeal(old, anchor_path=anchor)),
                             2)
    rotated = session_factory(store_engine, AuditSeal(new, (old,), anchor))
    later = _append_events(rotated, 2, start=2)
    assert earlier[0].key_id != later[0].key_id  # sealed under the new key
    assert _verify(rotated).ok
    # A site that lost the retired key cannot vouch for what it sealed.
    forgetful = session_factory(store_engine, AuditSeal(new, anchor_path=anchor))
    assert not _verify(forgetful).ok


@pytest.mark.req("SRS-AUD-005")
def test_a_session_without_the_seal_cannot_append(store_engine: Engine) -> None:
    with session_factory(store_engine)() as session:
        with pytest.raises(StoreError) as info:
            append_audit(session, "site-a", "a", "x", "y", None, "success")
        assert info.value.code == "AUDIT_KEY_MISSING"
