"""Registry and locked loading: hash lock, promotion gate, load-time validation, refusals."""

from pathlib import Path

import pytest

from digital_contrast.inference import LockedModel
from digital_contrast.model.bundle import BundleError, write_bundle
from digital_contrast.model.network import build_network
from digital_contrast.model.reference import register_reference_model
from digital_contrast.model.registry import PRODUCTION, ModelRegistry, RegistryError
from digital_contrast.usecases import UseCaseError, load_use_case
from tests.support.models import (
    record_for,
    tiny_bundle,
    tiny_lumen_stage,
    tiny_network,
    write_record,
)

AAA = load_use_case("aaa-cta")


@pytest.fixture
def registry(tmp_path: Path, registry_uri_factory) -> ModelRegistry:
    return ModelRegistry(registry_uri_factory(tmp_path / "registry"))


@pytest.fixture
def releases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty releases folder, so the committed reference model stays out of the way."""
    from digital_contrast.config import get_settings

    folder = tmp_path / "releases"
    folder.mkdir()
    monkeypatch.setenv("DC_RELEASES_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def _promoted(registry: ModelRegistry, tmp_path: Path, seed: int = 0):
    bundle = tiny_bundle(tmp_path / f"bundle{seed}", AAA, seed=seed)
    registered = registry.attach_validation(registry.register(bundle), record_for(bundle))
    return bundle, registry.promote(registered.name, registered.version)


@pytest.mark.req("SRS-MOD-004")
def test_registering_stores_the_hash_and_is_idempotent(registry: ModelRegistry,
                                                       tmp_path: Path) -> None:
    bundle = tiny_bundle(tmp_path / "b", AAA)
    first = registry.register(bundle)
    again = registry.register(bundle)
    assert first.version == again.version == "1"
    assert first.sha256 == bundle.sha256 and len(bundle.sha256) == 64
    other = registry.register(tiny_bundle(tmp_path / "c", AAA, seed=1))
    assert other.version == "2" and other.sha256 != first.sha256
    assert [v.version for v in registry.versions("aaa-cta")] == ["1", "2"]


@pytest.mark.req("SRS-MOD-004")
def test_bundle_preprocessing_must_match_the_use_case(tmp_path: Path) -> None:
    config = tiny_network(AAA).model_copy(update={"spacing_mm": (3.0, 3.0, 3.0)})
    with pytest.raises(BundleError) as info:
        write_bundle(tmp_path / "x", use_case=AAA, model_version="1", network=config,
                     state_dict=build_network(config).state_dict(),
                     lumen_stage=tiny_lumen_stage(), lumen_state_dict={})
    assert info.value.code == "BUNDLE_MISMATCH"


@pytest.mark.req("SRS-MOD-005")
def test_promotion_needs_a_passing_record_for_that_exact_bundle(registry: ModelRegistry,
                                                                tmp_path: Path) -> None:
    bundle = tiny_bundle(tmp_path / "b", AAA)
    registered = registry.register(bundle)
    with pytest.raises(RegistryError) as info:
        registry.promote("aaa-cta", registered.version)
    assert info.value.code == "MODEL_NOT_VALIDATED" and "no validation record" in info.value.detail

    other = tiny_bundle(tmp_path / "other", AAA, seed=5)
    with pytest.raises(RegistryError, match="another bundle"):
        registry.attach_validation(registered, record_for(other))

    registry.attach_validation(registered, record_for(bundle, passing=False))
    with pytest.raises(RegistryError, match="failing validation record"):
        registry.promote("aaa-cta", registered.version)

    registry.attach_validation(registered, record_for(bundle))
    promoted = registry.promote("aaa-cta", registered.version)
    assert PRODUCTION in promoted.aliases and promoted.validation_passed
    # A candidate alias needs no record.
    second = registry.register(tiny_bundle(tmp_path / "c", AAA, seed=2))
    assert "candidate" in registry.promote("aaa-cta", second.version, "candidate").aliases


@pytest.mark.req("SRS-INF-002")
def test_alias_set_behind_the_gate_is_refused_at_load(registry: ModelRegistry, tmp_path: Path,
                                                      releases: Path) -> None:
    registered = registry.register(tiny_bundle(tmp_path / "b", AAA))
    registry.client.set_registered_model_alias("aaa-cta", PRODUCTION, registered.version)
    with pytest.raises(RegistryError) as info:
        LockedModel.load("aaa-cta", registry=registry)
    assert info.value.code == "REGISTRY_CHANGED_OUTSIDE"


@pytest.mark.req("SRS-INF-001")
@pytest.mark.parametrize("target", ["weights.pt", "bundle.json"])
def test_tampered_bundle_is_refused(registry: ModelRegistry, tmp_path: Path, target: str,
                                    releases: Path) -> None:
    _, registered = _promoted(registry, tmp_path)
    assert LockedModel.load("aaa-cta", registry=registry).bundle_sha256 == registered.sha256
    stored = Path(registered.source.removeprefix("file://")) / target
    data = bytearray(stored.read_bytes())
    if target == "weights.pt":
        data[-100] ^= 0xFF
    else:
        data = bytearray(data.decode().replace('"dropout": 0.0', '"dropout": 0.5').encode())
    stored.write_bytes(bytes(data))
    with pytest.raises(RegistryError) as info:
        LockedModel.load("aaa-cta", registry=registry)
    assert info.value.code == "MODEL_INTEGRITY"


@pytest.mark.req("SRS-INF-003")
def test_unknown_use_case_missing_model_and_unregistered_version(
        registry: ModelRegistry, tmp_path: Path, releases: Path) -> None:
    with pytest.raises(UseCaseError) as unknown:
        LockedModel.load("knee-mri", registry=registry)
    assert unknown.value.code == "USECASE_UNKNOWN"
    with pytest.raises(UseCaseError) as no_model:
        LockedModel.load("abdomen-pv", registry=registry)
    assert no_model.value.code == "USECASE_NO_MODEL"
    _promoted(registry, tmp_path)
    with pytest.raises(RegistryError) as missing:
        LockedModel.load("aaa-cta", version="99", registry=registry)
    assert missing.value.code == "MODEL_NOT_REGISTERED"


@pytest.mark.req("SRS-INF-003")
def test_unreachable_registry_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    registry = ModelRegistry("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(RegistryError) as info:
        LockedModel.load("aaa-cta", registry=registry)
    assert info.value.code == "REGISTRY_UNREACHABLE"
    assert "Traceback" not in info.value.detail


@pytest.mark.req("SRS-INF-008")
def test_committed_reference_model_is_registered_through_the_gate(
        registry: ModelRegistry, tmp_path: Path, releases: Path) -> None:
    release = releases / "models" / "aaa-cta" / "0.0.1"
    bundle = tiny_bundle(release / "bundle", AAA)
    write_record(record_for(bundle), release / "validation_record.json")
    model = LockedModel.load("aaa-cta", registry=registry)
    assert model.bundle_sha256 == bundle.sha256
    assert model.validation.passed
    production = registry.resolve("aaa-cta")
    assert production.version == model.registered.version
    assert LockedModel.load("aaa-cta", registry=registry).registered.version == \
        production.version  # second load: no second registration
    assert len(registry.versions("aaa-cta")) == 1


@pytest.mark.req("SRS-INF-008")
def test_committed_bundle_not_matching_its_record_is_refused(
        registry: ModelRegistry, tmp_path: Path, releases: Path) -> None:
    release = releases / "models" / "aaa-cta" / "0.0.2"
    bundle = tiny_bundle(release / "bundle", AAA)
    other = tiny_bundle(tmp_path / "other", AAA, seed=9)
    write_record(record_for(other), release / "validation_record.json")
    with pytest.raises(RegistryError) as info:
        register_reference_model(registry, AAA)
    assert info.value.code == "MODEL_INTEGRITY"
    assert bundle.sha256[:12] in info.value.detail
    assert registry.versions("aaa-cta", missing_ok=True) == []


@pytest.mark.req("SRS-API-011")
def test_an_unvalidated_model_says_how_to_validate_it(registry: ModelRegistry,
                                                      tmp_path: Path) -> None:
    registered = registry.register(tiny_bundle(tmp_path / "b", AAA))
    with pytest.raises(RegistryError) as info:
        registry.require_validated(registered, AAA)
    assert "digital-contrast validate --protocol validation/protocols/aaa-cta.yaml " \
           f"--version {registered.version} --attach" in info.value.detail
    assert "docs/operations.md" in info.value.detail
