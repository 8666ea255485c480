"""The model a validation run judges: a bundle folder (registered first when its record is to
be attached) or a registered version of the use case's model (default: production), loaded with
the clinical identity checks but without the passing record it is about to earn."""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.inference.locked_model import LockedModel, resolve_registered
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.explain_evidence import ExplainFile
from digital_contrast.model.registry import ModelRegistry, RegisteredBundle, RegistryError
from digital_contrast.usecases import UseCase

UNUSABLE_RECORD = {"RECORD_UNSIGNED", "SIGNER_UNTRUSTED", "SIGNATURE_INVALID"}


@dataclass(frozen=True, eq=False)
class Candidate:
    model: LockedModel
    registry: ModelRegistry | None  # None: an unregistered bundle folder
    registered: RegisteredBundle | None


def load_candidate(use_case: UseCase, *, bundle: Path | None = None,
                   version: str | None = None, register: bool = False,
                   explain_from: ExplainFile | None = None) -> Candidate:
    """A bundle folder (registered first with `register`), else the registered `version` (or
    production); the caller gives at most one of the two. The explain evidence carried into
    the new record is `explain_from`'s, else that of the version's verified earlier record."""
    registry = ModelRegistry() if bundle is None or register else None
    with tempfile.TemporaryDirectory(prefix="dc-bundle-") as tmp:
        if bundle is not None:
            candidate = read_bundle(bundle)
            registered = registry.register(candidate) if registry else None
        else:
            assert registry is not None
            registered = resolve_registered(registry, use_case, version)
            candidate = registry.fetch(registered, Path(tmp))  # MODEL_INTEGRITY
        model = LockedModel.under_validation(
            candidate, use_case, registered, explain_from or _earlier_explain(registry, registered))
    return Candidate(model, registry, registered)


def _earlier_explain(registry: ModelRegistry | None,
                     registered: RegisteredBundle | None) -> ExplainFile | None:
    """The version's earlier record if it is signed by a trusted key; a record from before
    signing is not evidence any more (re-validating is how such a version is upgraded)."""
    if registry is None or registered is None:
        return None
    try:
        signed = registry.validation_record(registered)
    except RegistryError as exc:
        if exc.code not in UNUSABLE_RECORD:
            raise
        return None
    if signed is None:
        return None
    return ExplainFile(bundle_sha256=signed.record.bundle_sha256, explain=signed.record.explain)
