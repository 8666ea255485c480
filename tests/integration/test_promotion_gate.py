"""The production gate cannot be forged: every way around it that the registry allows is refused
with a typed code, and a registry changed outside our commands is detected at load and audited."""

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from digital_contrast.inference import LockedModel
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.gate import ProtocolTerms
from digital_contrast.model.registry import (
    PRODUCTION,
    RECORD_FILE,
    RECORD_PATH,
    TAG_SHA,
    ModelRegistry,
    RegisteredBundle,
    RegistryError,
)
from digital_contrast.model.validation_record import Criterion, ValidationRecord
from digital_contrast.usecases import load_use_case
from tests.support.models import record_for, tiny_bundle
from tests.support.service import make_settings, running_service
from tests.support.signing import site_signer, untrusted_signer

AAA = load_use_case("aaa-cta")


@pytest.fixture
def registry(tmp_path: Path, registry_uri_factory, monkeypatch: pytest.MonkeyPatch
             ) -> ModelRegistry:
    from digital_contrast.config import get_settings

    (tmp_path / "releases").mkdir()
    monkeypatch.setenv("DC_RELEASES_DIR", str(tmp_path / "releases"))  # no reference model
    get_settings.cache_clear()
    return ModelRegistry(registry_uri_factory(tmp_path / "registry"))


def _promoted(registry: ModelRegistry, tmp_path: Path) -> RegisteredBundle:
    bundle = tiny_bundle(tmp_path / "bundle", AAA)
    registered = registry.attach_validation(registry.register(bundle), record_for(bundle))
    return registry.promote(registered.name, registered.version)


def _stored(registry: ModelRegistry, registered: RegisteredBundle, *parts: str) -> Path:
    """A file of the version's run in the artifact store, as an intruder would reach it."""
    uri = registry.client.get_run(registered.run_id).info.artifact_uri
    return Path(urlparse(uri).path).joinpath(*parts)


def _load_refusal(registry: ModelRegistry) -> str:
    """The code with which loading the production model is refused."""
    with pytest.raises(RegistryError) as info:
        LockedModel.load(AAA, registry=registry)
    return info.value.code


def _forged(bundle_sha256: str, *, protocol_sha256: str = "0" * 64,
            metric: str = "anything") -> ValidationRecord:
    """The issue's forgery: any protocol text, a zero hash and one criterion `anything >= 0`."""
    return ValidationRecord(
        bundle_sha256=bundle_sha256, use_case="aaa-cta", model_name="aaa-cta",
        model_version="0.0.1", protocol="whatever.yaml", protocol_sha256=protocol_sha256,
        dataset="none", evidence="none",
        criteria=[Criterion(metric=metric, op=">=", threshold=0, value=1)])


@pytest.mark.req("SRS-MOD-007")
def test_an_unsigned_or_untrusted_forged_record_is_refused_at_attach(
        registry: ModelRegistry, tmp_path: Path) -> None:
    bundle = tiny_bundle(tmp_path / "b", AAA)
    registered = registry.register(bundle)
    forged = _forged(bundle.sha256)
    with pytest.raises(RegistryError) as info:
        registry.attach_validation(registered, forged.model_dump_json().encode())
    assert info.value.code == "RECORD_UNSIGNED"
    with pytest.raises(RegistryError) as info:
        registry.attach_validation(registered, forged.signed(untrusted_signer()))
    assert info.value.code == "SIGNER_UNTRUSTED"
    with pytest.raises(RegistryError):
        registry.promote("aaa-cta", registered.version)
    assert not registry.show("aaa-cta", registered.version).aliases


@pytest.mark.req("SRS-MOD-007")
def test_a_trusted_signature_does_not_make_a_forged_record_pass_the_gate(
        registry: ModelRegistry, tmp_path: Path) -> None:
    """Even signed with the site's key, a record must be of the current protocol, carry every
    criterion of it and pass them all."""
    bundle = tiny_bundle(tmp_path / "b", AAA)
    registered = registry.register(bundle)
    registry.attach_validation(registered, _forged(bundle.sha256).signed(site_signer()))
    with pytest.raises(RegistryError) as info:
        registry.promote("aaa-cta", registered.version)
    assert info.value.code == "PROTOCOL_OUTDATED"

    terms = ProtocolTerms.of(AAA)
    right_hash = _forged(bundle.sha256, protocol_sha256=terms.sha256).model_copy(
        update={"protocol": terms.path})
    registry.attach_validation(registered, right_hash.signed(site_signer()))
    with pytest.raises(RegistryError) as info:
        registry.promote("aaa-cta", registered.version)
    assert info.value.code == "MODEL_NOT_VALIDATED" and "lacks criteria" in info.value.detail
    assert not registry.show("aaa-cta", registered.version).aliases


@pytest.mark.req("SRS-MOD-007")
def test_an_edited_record_in_the_artifact_store_is_refused_at_load(
        registry: ModelRegistry, tmp_path: Path) -> None:
    registered = _promoted(registry, tmp_path)
    assert LockedModel.load(AAA, registry=registry).bundle_sha256 == registered.sha256
    stored = _stored(registry, registered, RECORD_PATH, RECORD_FILE)
    document = json.loads(stored.read_text())
    document["payload"]["criteria"][0]["value"] = 0.99  # a "better" value
    stored.write_text(json.dumps(document, indent=2))
    assert _load_refusal(registry) == "SIGNATURE_INVALID"


@pytest.mark.req("SRS-MOD-008")
def test_a_record_swapped_for_another_signed_one_is_detected(registry: ModelRegistry,
                                                             tmp_path: Path) -> None:
    """A validly signed record our commands did not attach (here: a second one for the same
    bundle, written straight into the store) breaks the version's seal."""
    registered = _promoted(registry, tmp_path)
    bundle = read_bundle(tmp_path / "bundle")
    _stored(registry, registered, RECORD_PATH, RECORD_FILE).write_bytes(record_for(bundle))
    assert _load_refusal(registry) == "REGISTRY_CHANGED_OUTSIDE"


@pytest.mark.req("SRS-MOD-007", "SRS-MOD-008")
def test_rewritten_weights_hash_tag_and_record_are_refused(registry: ModelRegistry,
                                                          tmp_path: Path) -> None:
    registered = _promoted(registry, tmp_path)
    other = tiny_bundle(tmp_path / "other", AAA, seed=7)
    for name in ("weights.pt", "lumen_weights.pt"):  # both stages rewritten
        _stored(registry, registered, "bundle", name).write_bytes(
            (other.folder / name).read_bytes())
    registry.client.set_model_version_tag("aaa-cta", registered.version, TAG_SHA, other.sha256)
    stored = _stored(registry, registered, RECORD_PATH, RECORD_FILE)
    for signer, code in ((untrusted_signer(), "SIGNER_UNTRUSTED"),
                         (site_signer(), "REGISTRY_CHANGED_OUTSIDE")):
        # Even a record the site's key signed for the new hash was never attached by us.
        stored.write_bytes(record_for(other, signer=signer))
        assert _load_refusal(registry) == code


@pytest.mark.req("SRS-MOD-007")
def test_a_record_from_before_signing_is_refused_with_how_to_revalidate(
        registry: ModelRegistry, tmp_path: Path) -> None:
    registered = _promoted(registry, tmp_path)
    stored = _stored(registry, registered, RECORD_PATH, RECORD_FILE)
    stored.write_text(json.dumps(json.loads(stored.read_text())["payload"]))  # 0.1.0 format
    with pytest.raises(RegistryError) as info:
        LockedModel.load(AAA, registry=registry)
    assert info.value.code == "RECORD_UNSIGNED"
    assert f"--version {registered.version} --attach" in info.value.detail


@pytest.mark.req("SRS-MOD-007")
def test_a_revoked_signing_key_closes_the_gate(registry: ModelRegistry, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from digital_contrast.config import get_settings

    _promoted(registry, tmp_path)
    monkeypatch.setenv("DC_TRUSTED_KEYS", "[]")  # the site stops trusting its old key
    get_settings.cache_clear()
    assert _load_refusal(registry) == "SIGNER_UNTRUSTED"


@pytest.mark.req("SRS-MOD-008")
def test_an_alias_set_outside_our_commands_is_refused_and_audited(tmp_path: Path,
                                                                  empty_registry_db: Path
                                                                  ) -> None:
    from digital_contrast.store.audit import list_audit

    settings = make_settings(tmp_path, empty_registry_db)
    registry = ModelRegistry(settings.mlflow_uri)
    second = registry.register(tiny_bundle(tmp_path / "second", AAA, seed=9))
    registry.client.set_registered_model_alias("aaa-cta", PRODUCTION, second.version)
    with running_service(settings) as service:
        ready = service.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["models"]["aaa-cta"]["code"] == "REGISTRY_CHANGED_OUTSIDE"
        with service.state.sessions() as db:
            events = [e for e in list_audit(db, settings.site)
                      if e.action == "registry.changed_outside"]
    assert len(events) == 1 and events[0].object_id == "aaa-cta"
    assert events[0].detail["code"] == "REGISTRY_CHANGED_OUTSIDE"
