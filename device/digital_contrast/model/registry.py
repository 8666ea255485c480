"""The model registry: MLflow model versions that are hash-locked bundles.

MLflow stores no content hash, so the bundle's SHA-256 is a version tag, checked against the
downloaded files on every fetch. Promotion to `production` needs a signed validation record
that opens the gate (`model.gate`), stored with the version as its signed bytes; loaders check
record, gate and the registry seals (`model.registry_seal`) again, so an alias set or a record
replaced directly in MLflow gains nothing and is reported.
"""

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.keys.errors import KeysError
from digital_contrast.keys.signing import trusted_keys
from digital_contrast.model.bundle import Bundle, read_bundle
from digital_contrast.model.errors import RegistryError
from digital_contrast.model.gate import require_gate
from digital_contrast.model.registry_seal import (
    ALIAS_TAG_PREFIX,
    VERSION_TAG,
    alias_seal,
    seal_matches,
    version_seal,
)
from digital_contrast.model.tracking import default_artifact_location, resolve_tracking_uri
from digital_contrast.model.validation_record import SignedRecord
from digital_contrast.usecases import UseCase, use_cases

PRODUCTION = "production"
CANDIDATE = "candidate"
EXPERIMENT = "digital-contrast-bundles"
BUNDLE_PATH = "bundle"
RECORD_PATH = "validation"
RECORD_FILE = "validation_record.json"
TAG_SHA = "bundle_sha256"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredBundle:
    name: str
    version: str
    sha256: str
    source: str
    run_id: str
    aliases: tuple[str, ...]
    model_version: str  # the bundle's own semantic version
    validation_passed: bool
    seal: str | None = None  # what our commands last sealed (model.registry_seal)


@contextmanager
def _reaching(uri: str) -> Iterator[None]:
    """Turn connection and store failures into one typed error without leaking the URI's
    credentials or a stack trace."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except RegistryError:
        raise
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            raise RegistryError("MODEL_NOT_REGISTERED", exc.message) from None
        raise RegistryError("REGISTRY_UNREACHABLE",
                            f"the model registry did not answer: {exc.message[:200]}") from None
    except OSError as exc:  # includes ConnectionError
        raise RegistryError("REGISTRY_UNREACHABLE",
                            f"the model registry cannot be reached ({type(exc).__name__})") \
            from None


class ModelRegistry:
    def __init__(self, tracking_uri: str | None = None) -> None:
        from mlflow import MlflowClient

        self.uri = resolve_tracking_uri(tracking_uri)
        self._artifact_root = default_artifact_location(self.uri)
        if self.uri.startswith("sqlite:///"):  # SQLite cannot create the database's folder
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(self.client.create_experiment(EXPERIMENT,
                                                 artifact_location=self._artifact_root))

    def register(self, bundle: Bundle) -> RegisteredBundle:
        """A new model version for the bundle, or the existing one with the same hash."""
        name = bundle.manifest.model_name
        with _reaching(self.uri):
            for existing in self.versions(name, missing_ok=True):
                if existing.sha256 == bundle.sha256:
                    return existing
            run = self.client.create_run(self._experiment_id(),
                                         tags={TAG_SHA: bundle.sha256, "kind": "bundle"})
            self.client.log_artifacts(run.info.run_id, str(bundle.folder), BUNDLE_PATH)
            self.client.set_terminated(run.info.run_id)
            if not self._model_exists(name):
                self.client.create_registered_model(
                    name, description=f"{bundle.manifest.use_case}: {bundle.manifest.evidence}")
            created = self.client.create_model_version(
                name, f"{run.info.artifact_uri}/{BUNDLE_PATH}", run_id=run.info.run_id,
                tags={TAG_SHA: bundle.sha256, "use_case": bundle.manifest.use_case,
                      "model_version": bundle.manifest.model_version,
                      "bundle_format": bundle.manifest.format})
            return self.show(name, str(created.version))

    def _model_exists(self, name: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            return False
        return True

    def _describe(self, version: object) -> RegisteredBundle:
        tags = getattr(version, "tags", {}) or {}
        return RegisteredBundle(
            name=version.name, version=str(version.version),  # type: ignore[attr-defined]
            sha256=tags.get(TAG_SHA, ""), source=version.source,  # type: ignore[attr-defined]
            run_id=version.run_id or "", aliases=tuple(version.aliases or ()),  # type: ignore[attr-defined]
            model_version=tags.get("model_version", ""),
            validation_passed=tags.get("validation_passed") == "true",
            seal=tags.get(VERSION_TAG))

    def versions(self, name: str, *, missing_ok: bool = False) -> list[RegisteredBundle]:
        with _reaching(self.uri):
            if missing_ok and not self._model_exists(name):
                return []
            found = self.client.search_model_versions(f"name = '{name}'")
            return sorted((self._describe(v) for v in found), key=lambda b: int(b.version))

    def names(self) -> list[str]:
        with _reaching(self.uri):
            return sorted(m.name for m in self.client.search_registered_models())

    def show(self, name: str, version: str) -> RegisteredBundle:
        with _reaching(self.uri):
            return self._describe(self.client.get_model_version(name, version))

    def resolve(self, name: str, *, version: str | None = None,
                alias: str = PRODUCTION) -> RegisteredBundle:
        with _reaching(self.uri):
            if version is not None:
                return self.show(name, version)
            return self._describe(self.client.get_model_version_by_alias(name, alias))

    def fetch(self, registered: RegisteredBundle, destination: Path) -> Bundle:
        """Download the bundle and prove it is the one registered (MODEL_INTEGRITY)."""
        from mlflow.artifacts import download_artifacts

        with _reaching(self.uri):
            local = download_artifacts(artifact_uri=registered.source,
                                       dst_path=str(destination), tracking_uri=self.uri)
        bundle = read_bundle(Path(local))
        if not registered.sha256 or bundle.sha256 != registered.sha256:
            raise RegistryError("MODEL_INTEGRITY",
                                f"{registered.name} version {registered.version}: bundle hash "
                                f"{bundle.sha256[:12]} differs from the registered "
                                f"{registered.sha256[:12] or 'none'}; refusing to run")
        return bundle

    def attach_validation(self, registered: RegisteredBundle, raw: bytes) -> RegisteredBundle:
        """Store a signed record (its exact bytes) with the version and seal it; RECORD_UNSIGNED,
        SIGNER_UNTRUSTED or SIGNATURE_INVALID for anything `validate` did not sign with a key
        this site trusts. A failing record is attached too: it is evidence."""
        try:
            signed = SignedRecord.verify(raw, trusted_keys(), "the validation record")
        except KeysError as exc:
            raise RegistryError(exc.code, exc.detail) from None
        if signed.record.bundle_sha256 != registered.sha256:
            raise RegistryError("MODEL_NOT_VALIDATED",
                                "the validation record is for another bundle "
                                f"({signed.record.bundle_sha256[:12]} vs "
                                f"{registered.sha256[:12]})")
        with _reaching(self.uri), tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / RECORD_FILE).write_bytes(raw)
            self.client.log_artifact(registered.run_id, str(Path(tmp) / RECORD_FILE),
                                     RECORD_PATH)
            self.client.set_model_version_tag(registered.name, registered.version,
                                              "validation_passed",
                                              str(signed.record.passed).lower())
            self.client.set_model_version_tag(
                registered.name, registered.version, VERSION_TAG,
                version_seal(registered.name, registered.version, registered.sha256,
                             signed.sha256))
        return self.show(registered.name, registered.version)

    def validation_record(self, registered: RegisteredBundle) -> SignedRecord | None:
        """The stored record with its signature verified; None when there is none, and
        RECORD_UNSIGNED (saying how to re-validate) for a record from before signing."""
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = download_artifacts(run_id=registered.run_id,
                                          artifact_path=f"{RECORD_PATH}/{RECORD_FILE}",
                                          dst_path=tmp, tracking_uri=self.uri)
            except (MlflowException, OSError):
                return None
            what = f"the validation record of {registered.name} version {registered.version}"
            try:
                return SignedRecord.read(Path(path), trusted_keys(), what)
            except KeysError as exc:
                raise RegistryError(exc.code, f"{exc.detail}. Re-validate the version "
                                    "('digital-contrast validate --protocol PROTOCOL --version "
                                    f"{registered.version} --attach'); see docs/regulatory.md, "
                                    "'Keys and signed records'") from None

    def require_sealed(self, registered: RegisteredBundle, signed: SignedRecord | None,
                       alias: str | None = None) -> None:
        """REGISTRY_CHANGED_OUTSIDE when the version's hash or record, or the alias that
        resolved to it, is not what our commands last wrote."""
        record_sha = signed.sha256 if signed else ""
        found = registered.seal
        problems = []
        if (found is not None or signed is not None) and not seal_matches(
                version_seal(registered.name, registered.version, registered.sha256,
                             record_sha), found):
            problems.append(f"version {registered.version}'s bundle hash or validation record")
        if alias is not None:
            with _reaching(self.uri):
                tags = self.client.get_registered_model(registered.name).tags or {}
            if not seal_matches(alias_seal(registered.name, alias, registered.version,
                                           registered.sha256, record_sha),
                                tags.get(ALIAS_TAG_PREFIX + alias)):
                problems.append(f"alias {alias} (now on version {registered.version})")
        if problems:
            raise RegistryError("REGISTRY_CHANGED_OUTSIDE",
                                f"{registered.name}: {' and '.join(problems)} changed outside "
                                "digital-contrast commands; refusing to run it. Re-validate "
                                "and promote the intended version; see docs/operations.md, "
                                "'Models and the registry'")

    def require_validated(self, registered: RegisteredBundle, use_case: UseCase,
                          alias: str | None = None) -> SignedRecord:
        """The signed record that opens the gate for exactly this version (`model.gate`),
        after the registry seals are checked; typed refusals otherwise."""
        signed = self.validation_record(registered)
        self.require_sealed(registered, signed, alias)
        require_gate(signed, bundle_sha256=registered.sha256, use_case=use_case,
                     version=registered.version)
        assert signed is not None
        return signed

    def promote(self, name: str, version: str, alias: str = PRODUCTION) -> RegisteredBundle:
        """Give a version an alias (production only through the gate) and seal it."""
        registered = self.show(name, version)
        if alias == PRODUCTION:
            signed: SignedRecord | None = self.require_validated(registered,
                                                                 _use_case_of_model(name))
        else:
            signed = self.validation_record(registered)
        with _reaching(self.uri):
            self.client.set_registered_model_alias(name, alias, version)
            self.client.set_registered_model_tag(
                name, ALIAS_TAG_PREFIX + alias,
                alias_seal(name, alias, version, registered.sha256,
                           signed.sha256 if signed else ""))
        log.info("model %s version %s given alias %s", name, version, alias)
        return self.show(name, version)


def _use_case_of_model(name: str) -> UseCase:
    """The use case whose model this is (from the definitions, never from registry tags)."""
    for use_case in use_cases().values():
        if use_case.model_name == name:
            return use_case
    raise RegistryError("MODEL_NOT_VALIDATED", f"no use case runs a model named {name}")
