"""The model registry: MLflow model versions that are hash-locked bundles.

MLflow stores no content hash, so the bundle's SHA-256 is a version tag, checked against the
downloaded files on every fetch. Promotion to `production` needs a passing validation record for
that exact hash, stored with the version; loaders check it again, so an alias set directly in
MLflow gains nothing.
"""

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.errors import DigitalContrastError
from digital_contrast.model.bundle import Bundle, read_bundle
from digital_contrast.model.tracking import default_artifact_location, resolve_tracking_uri
from digital_contrast.model.validation_record import ValidationRecord

PRODUCTION = "production"
CANDIDATE = "candidate"
EXPERIMENT = "digital-contrast-bundles"
BUNDLE_PATH = "bundle"
RECORD_PATH = "validation"
RECORD_FILE = "validation_record.json"
TAG_SHA = "bundle_sha256"

log = logging.getLogger(__name__)


class RegistryError(DigitalContrastError):
    """REGISTRY_UNREACHABLE, MODEL_NOT_REGISTERED, MODEL_NOT_VALIDATED, MODEL_INTEGRITY."""


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
            validation_passed=tags.get("validation_passed") == "true")

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

    def attach_validation(self, registered: RegisteredBundle,
                          record: ValidationRecord) -> RegisteredBundle:
        if record.bundle_sha256 != registered.sha256:
            raise RegistryError("MODEL_NOT_VALIDATED",
                                "the validation record is for another bundle "
                                f"({record.bundle_sha256[:12]} vs {registered.sha256[:12]})")
        with _reaching(self.uri), tempfile.TemporaryDirectory() as tmp:
            record.save(Path(tmp) / RECORD_FILE)
            self.client.log_artifact(registered.run_id, str(Path(tmp) / RECORD_FILE),
                                     RECORD_PATH)
            self.client.set_model_version_tag(registered.name, registered.version,
                                              "validation_passed", str(record.passed).lower())
        return self.show(registered.name, registered.version)

    def validation_record(self, registered: RegisteredBundle) -> ValidationRecord | None:
        """The stored record, re-validated; None when there is none."""
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = download_artifacts(run_id=registered.run_id,
                                          artifact_path=f"{RECORD_PATH}/{RECORD_FILE}",
                                          dst_path=tmp, tracking_uri=self.uri)
            except (MlflowException, OSError):
                return None
            return ValidationRecord.load(Path(path))

    def require_validated(self, registered: RegisteredBundle) -> ValidationRecord:
        """A passing record for exactly this bundle hash, or MODEL_NOT_VALIDATED."""
        record = self.validation_record(registered)
        if record is None or record.bundle_sha256 != registered.sha256 or not record.passed:
            state = ("no validation record" if record is None else
                     "a record for another bundle" if record.bundle_sha256 != registered.sha256
                     else "a failing validation record")
            raise RegistryError("MODEL_NOT_VALIDATED",
                                f"{registered.name} version {registered.version} has {state}; "
                                "it cannot be used for production. Validate it first "
                                "('digital-contrast validate --protocol PROTOCOL --version "
                                f"{registered.version} --attach'); see docs/operations.md, "
                                "'Models and the registry'")
        return record

    def promote(self, name: str, version: str, alias: str = PRODUCTION) -> RegisteredBundle:
        registered = self.show(name, version)
        if alias == PRODUCTION:
            self.require_validated(registered)
        with _reaching(self.uri):
            self.client.set_registered_model_alias(name, alias, version)
        log.info("model %s version %s given alias %s", name, version, alias)
        return self.show(name, version)
