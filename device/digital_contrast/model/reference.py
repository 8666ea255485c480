"""Committed reference models (`releases/models/<use-case>/<version>/`): on an empty registry,
the newest one is registered, its validation record (signed offline with a release key whose
public half ships in releases/keys/) attached and it is promoted, through the same gate as any
model, so a fresh installation runs without a training step."""

import logging
from pathlib import Path

from digital_contrast.config import get_settings
from digital_contrast.keys.signing import trusted_keys
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.registry import ModelRegistry, RegisteredBundle, RegistryError
from digital_contrast.model.validation_record import SignedRecord
from digital_contrast.usecases.schema import UseCase

BUNDLE_DIR = "bundle"
RECORD = "validation_record.json"
log = logging.getLogger(__name__)


def _version_key(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in path.name.split("."))


def reference_release(use_case: UseCase, releases_dir: Path | None = None) -> Path | None:
    root = (releases_dir or get_settings().releases_dir) / "models" / use_case.id
    candidates = [p for p in root.iterdir() if (p / BUNDLE_DIR).is_dir() and
                  (p / RECORD).is_file()] if root.is_dir() else []
    return max(candidates, key=_version_key) if candidates else None


def register_reference_model(registry: ModelRegistry, use_case: UseCase,
                             releases_dir: Path | None = None) -> RegisteredBundle | None:
    """Register and promote the committed reference model; None when there is none."""
    release = reference_release(use_case, releases_dir)
    if release is None:
        return None
    bundle = read_bundle(release / BUNDLE_DIR)
    raw = (release / RECORD).read_bytes()
    record = SignedRecord.verify(raw, trusted_keys(), f"the record of {release.name}").record
    if record.bundle_sha256 != bundle.sha256:
        raise RegistryError("MODEL_INTEGRITY",
                            f"committed reference model {release.name}: bundle hash "
                            f"{bundle.sha256[:12]} differs from its validation record's "
                            f"{record.bundle_sha256[:12]}")
    registered = registry.attach_validation(registry.register(bundle), raw)
    log.info("registered reference model %s version %s", registered.name, registered.version)
    return registry.promote(registered.name, registered.version)
