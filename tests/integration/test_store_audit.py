"""Audit trail: the hash chain verifies, any edit or removal is named, the database refuses
UPDATE and DELETE, and concurrent appends never fork the chain."""

from itertools import pairwise

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from digital_contrast.store import StoreError
from digital_contrast.store.audit import (
    GENESIS,
    VerifyResult,
    append_audit,
    list_audit,
    verify_audit_chain,
)
from digital_contrast.store.tables import AuditEvent
from tests.support.databases import audit_triggers_bypassed, run_concurrently


def _append(session, k: int, site: str = "site-a") -> AuditEvent:
    return append_audit(session, site, f"key:{k % 3}", "job.submit", "job", f"job-{k}",
                        "success", {"use_case": "aaa-cta", "n": k, "ratio": k / 7,
                                    "note": "ünïcode"})


@pytest.mark.req("SRS-AUD-001")
def test_the_chain_links_every_event_and_verifies(store_sessions) -> None:
    with store_sessions() as session:
        assert verify_audit_chain(session) == VerifyResult(True, None, 0, GENESIS)
        events = [_append(session, k) for k in range(5)]
        session.commit()
        assert events[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in pairwise(events))
    with store_sessions() as session:
        result = verify_audit_chain(session)
        assert (result.ok, result.first_broken_id, result.checked) == (True, None, 5)
        assert result.head_hash == events[-1].hash
        assert [e.object_id for e in list_audit(session, "site-a")] == [
            f"job-{k}" for k in range(5)]
        assert list_audit(session, "site-b") == []


@pytest.mark.req("SRS-AUD-001")
@pytest.mark.parametrize("column", ["outcome", "detail", "at", "hash"])
def test_an_edited_row_is_named(store_sessions, store_engine: Engine, column: str) -> None:
    with store_sessions() as session:
        events = [_append(session, k) for k in range(5)]
        session.commit()
        # The session still holds the original rows: verification must read the database.
        target = events[2]
        values = {"outcome": "'failure'", "detail": "'{\"n\": 99}'",
                  "at": "at + INTERVAL '1 second'" if store_engine.dialect.name == "postgresql"
                  else "'2020-01-01 00:00:00.000000'", "hash": f"'{'f' * 64}'"}
        with audit_triggers_bypassed(store_engine) as connection:
            connection.execute(text(f"UPDATE audit_events SET {column} = {values[column]} "
                                    "WHERE id = :id"), {"id": target.id})
        result = verify_audit_chain(session)
        assert (result.ok, result.first_broken_id, result.checked) == (False, target.id, 3)
        assert result.head_hash == events[1].hash


@pytest.mark.req("SRS-AUD-001")
def test_a_removed_row_is_detected_at_the_next_one(store_sessions, store_engine: Engine) -> None:
    with store_sessions() as session:
        events = [_append(session, k) for k in range(4)]
        session.commit()
    with audit_triggers_bypassed(store_engine) as connection:
        connection.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": events[1].id})
    with store_sessions() as session:
        result = verify_audit_chain(session)
        assert not result.ok and result.first_broken_id == events[2].id


@pytest.mark.req("SRS-AUD-002")
def test_the_database_refuses_update_and_delete_of_audit_rows(store_sessions,
                                                              store_engine: Engine) -> None:
    with store_sessions() as session:
        event_id = _append(session, 1).id
        session.commit()
    for statement in ("UPDATE audit_events SET outcome = 'failure' WHERE id = :id",
                      "DELETE FROM audit_events WHERE id = :id"):
        with store_engine.begin() as connection, pytest.raises(DatabaseError,
                                                               match="append-only"):
            connection.execute(text(statement), {"id": event_id})
    with store_sessions() as session:
        assert verify_audit_chain(session).ok
        event = session.get(AuditEvent, event_id)
        event.outcome = "failure"
        with pytest.raises(DatabaseError, match="append-only"):
            session.flush()


@pytest.mark.req("SRS-AUD-001")
def test_concurrent_appends_keep_one_chain(store_sessions) -> None:
    def append(k: int) -> None:
        for j in range(5):
            with store_sessions() as session:
                _append(session, 10 * k + j)
                session.commit()

    assert run_concurrently(append, 4) == []
    with store_sessions() as session:
        result = verify_audit_chain(session)
        assert (result.ok, result.checked) == (True, 20)
        prev = session.scalars(select(AuditEvent.prev_hash)).all()
        assert len(set(prev)) == 20


@pytest.mark.req("SRS-AUD-001")
def test_detail_must_be_plain_json(store_sessions) -> None:
    with store_sessions() as session:
        with pytest.raises(StoreError) as info:
            append_audit(session, "s", "a", "x", "y", None, "success", {"when": object()})
        assert info.value.code == "AUDIT_INVALID"
        with pytest.raises(StoreError):
            append_audit(session, "s", "a", "x", "y", None, "success", {"v": float("nan")})
        event = append_audit(session, "s", "a", "x", "y", None, "success", {"t": (1, 2)})
        assert event.detail == {"t": [1, 2]}
