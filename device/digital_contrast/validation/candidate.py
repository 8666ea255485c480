"""The model a validation run judges: a bundle folder (registered first when its record is to
be attached) or a registered version of the use case's model (default: production), loaded with
the clinical identity checks but without the passing record it is about to earn."""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.inference.locked_model import LockedModel, resolve_registered
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.registry import ModelRegistry, RegisteredBundle
from digital_contrast.usecases import UseCase


@dataclass(frozen=True, eq=False)
class Candidate:
    model: LockedModel
    registry: ModelRegistry | None  # None: an unregistered bundle folder
    registered: RegisteredBundle | None


def load_candidate(use_case: UseCase, *, bundle: Path | None = None,
                   version: str | None = None, register: bool = False) -> Candidate:
    """A bundle folder (registered first with `register`), else the registered `version` (or
    production); the caller gives at most one of the two."""
    registry = ModelRegistry() if bundle is None or register else None
    with tempfile.TemporaryDirectory(prefix="dc-bundle-") as tmp:
        if bundle is not None:
            candidate = read_bundle(bundle)
            registered = registry.register(candidate) if registry else None
        else:
            assert registry is not None
            registered = resolve_registered(registry, use_case, version)
            candidate = registry.fetch(registered, Path(tmp))  # MODEL_INTEGRITY
        previous = registry.validation_record(registered) if registry and registered else None
        model = LockedModel.under_validation(candidate, use_case, registered, previous)
    return Candidate(model, registry, registered)
