"""API keys: shown once, only a salted hash stored; wrong, unknown and revoked keys refused."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from digital_contrast.store import Role, StoreError, api_keys
from digital_contrast.store.api_keys import authenticate, create_api_key, list_keys, revoke


@pytest.mark.req("SRS-KEY-001")
def test_only_a_salted_hash_is_stored(store_sessions, store_engine: Engine) -> None:
    with store_sessions() as session:
        key, plaintext = create_api_key(session, "site-a", "PACS router", Role.CLINICIAN)
        other, other_plaintext = create_api_key(session, "site-a", "dashboard", "sustainability")
        session.commit()
    scheme, prefix, secret = plaintext.split("_", 2)
    assert (scheme, prefix) == ("dc", key.prefix) and len(secret) >= 40
    assert key.salt != other.salt and key.key_hash.startswith("scrypt$")
    with store_engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).mappings().all()
    dump = repr(rows)
    for leaked in (plaintext, secret, other_plaintext, other_plaintext.split("_", 2)[2]):
        assert leaked not in dump
    assert {r["role"] for r in rows} == {"clinician", "sustainability"}


@pytest.mark.req("SRS-KEY-002")
def test_authentication_accepts_the_key_and_refuses_everything_else(store_sessions) -> None:
    with store_sessions() as session:
        key, plaintext = create_api_key(session, "site-a", "PACS router", Role.CLINICIAN)
        session.commit()
    now = datetime(2026, 5, 1, tzinfo=UTC)
    with store_sessions() as session:
        found = authenticate(session, plaintext, now=now)
        session.commit()
        assert found is not None and (found.id, found.role) == (key.id, Role.CLINICIAN)
        assert found.last_used_at == now
        authenticate(session, plaintext, now=now + timedelta(seconds=10))
        assert found.last_used_at == now  # bookkeeping writes are throttled
        scheme, prefix, secret = plaintext.split("_", 2)
        unknown_prefix = "0" * 12 if prefix != "0" * 12 else "1" * 12
        for wrong in ("", "garbage", f"{scheme}_{prefix}_{secret[:-1]}x",
                      f"{scheme}_{prefix}_{secret}x", f"{scheme}_{unknown_prefix}_{secret}",
                      f"xx_{prefix}_{secret}", plaintext.upper()):
            if wrong != plaintext:
                assert authenticate(session, wrong) is None, wrong


@pytest.mark.req("SRS-KEY-002")
def test_a_revoked_key_is_refused_for_good(store_sessions) -> None:
    with store_sessions() as session:
        key, plaintext = create_api_key(session, "site-a", "old router", Role.ADMIN)
        kept, kept_plaintext = create_api_key(session, "site-a", "new router", Role.ADMIN)
        session.commit()
        revoked = revoke(session, key.id)
        first_revocation = revoked.revoked_at
        session.commit()
        assert revoke(session, key.id).revoked_at == first_revocation
        assert authenticate(session, plaintext) is None
        assert authenticate(session, kept_plaintext).id == kept.id
        assert [k.id for k in list_keys(session, "site-a", include_revoked=False)] == [kept.id]
        assert [k.id for k in list_keys(session, "site-a")] == [key.id, kept.id]
        assert list_keys(session, "site-b") == []
        for missing, site in ((999_999, None), (kept.id, "site-b")):
            with pytest.raises(StoreError) as info:
                revoke(session, missing, site=site)
            assert info.value.code == "API_KEY_NOT_FOUND"


@pytest.mark.req("SRS-KEY-002")
def test_a_key_verified_once_is_still_checked_against_its_row(store_sessions,
                                                               monkeypatch) -> None:
    """The in-process memory of verified keys saves scrypt, never a check: a wrong secret under
    a known prefix, a revoked key and a replaced hash are refused on the next request."""
    with store_sessions() as session:
        key, plaintext = create_api_key(session, "site-a", "router", Role.CLINICIAN)
        session.commit()
        assert authenticate(session, plaintext) is not None
        derivations: list[str] = []
        real_derive = api_keys._derive
        monkeypatch.setattr(api_keys, "_derive",
                            lambda text, *args: derivations.append(text) or real_derive(
                                text, *args))
        assert authenticate(session, plaintext).id == key.id
        assert derivations == []  # verified from memory
        scheme, prefix, secret = plaintext.split("_", 2)
        assert authenticate(session, f"{scheme}_{prefix}_{secret[:-1]}x") is None
        other, other_plaintext = create_api_key(session, "site-a", "other", Role.CLINICIAN)
        key.key_hash = other.key_hash  # the row changed behind the service's back
        key.salt = other.salt
        session.commit()
        assert authenticate(session, plaintext) is None
        assert authenticate(session, other_plaintext).id == other.id
        revoke(session, other.id)
        session.commit()
        assert authenticate(session, other_plaintext) is None


@pytest.mark.req("SRS-KEY-001")
def test_roles_are_a_closed_set(store_sessions) -> None:
    with store_sessions() as session, pytest.raises(ValueError):
        create_api_key(session, "site-a", "x", "superuser")
