"""The production gate: which signed validation record lets a bundle be promoted and loaded.

A record opens the gate for a bundle only when it is signed by a trusted key as a
"validation-record" (only `digital-contrast validate` signs those), is for exactly the
bundle's hash and the use case, was produced under the protocol file the use case names *as it
is now* (same SHA-256), carries every acceptance criterion of that protocol with the same terms,
and every criterion it carries passes. No setting turns any of this off.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from digital_contrast.config import REPO_ROOT
from digital_contrast.model.errors import RegistryError
from digital_contrast.model.validation_record import Rule, SignedRecord
from digital_contrast.usecases import UseCase


class GateError(RegistryError):
    """MODEL_NOT_VALIDATED, PROTOCOL_OUTDATED."""


@dataclass(frozen=True)
class ProtocolTerms:
    """What the gate needs of a use case's current protocol: its hash and its rules."""

    path: str
    sha256: str
    rules: tuple[Rule, ...]

    @classmethod
    def of(cls, use_case: UseCase) -> ProtocolTerms:
        path = REPO_ROOT / use_case.validation_protocol
        try:
            raw = Path(path).read_bytes()
            rules = tuple(Rule.model_validate(r) for r in yaml.safe_load(raw)["acceptance"])
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValidationError):
            raise GateError("MODEL_NOT_VALIDATED", f"the protocol of use case {use_case.id} "
                            f"({use_case.validation_protocol}) cannot be read, so no record "
                            "can be checked against it") from None
        return cls(use_case.validation_protocol, hashlib.sha256(raw).hexdigest(), rules)


def _revalidate(use_case: UseCase, version: str) -> str:
    return (f"Validate it under the current protocol ('digital-contrast validate --protocol "
            f"{use_case.validation_protocol} --version {version} --attach'); see "
            "docs/operations.md, 'Models and the registry'")


def require_gate(signed: SignedRecord | None, *, bundle_sha256: str, use_case: UseCase,
                 version: str) -> None:
    """MODEL_NOT_VALIDATED or PROTOCOL_OUTDATED unless `signed` opens the gate for the
    bundle (its signature was verified when it was read)."""
    label = f"{use_case.model_name} version {version}"
    if signed is None:
        raise GateError("MODEL_NOT_VALIDATED", f"{label} has no validation record; it cannot "
                        f"be used for production. {_revalidate(use_case, version)}")
    record = signed.record
    if record.bundle_sha256 != bundle_sha256 or record.use_case != use_case.id:
        raise GateError("MODEL_NOT_VALIDATED", f"{label} has a validation record for another "
                        f"bundle or use case. {_revalidate(use_case, version)}")
    terms = ProtocolTerms.of(use_case)
    if record.protocol_sha256 != terms.sha256 or record.protocol != terms.path:
        raise GateError("PROTOCOL_OUTDATED", f"{label} was validated under {record.protocol} "
                        f"with SHA-256 {record.protocol_sha256[:12]}; the use case's protocol "
                        f"is now {terms.path} with {terms.sha256[:12]}. "
                        f"{_revalidate(use_case, version)}")
    carried = {c.terms for c in record.criteria}
    missing = [r.describe() for r in terms.rules if r.terms not in carried]
    if missing:
        raise GateError("MODEL_NOT_VALIDATED", f"{label}: the validation record lacks "
                        f"criteria of its protocol ({'; '.join(missing)})")
    failing = [f"{c.describe()}: {c.value}" for c in record.criteria if not c.passed]
    if failing:
        raise GateError("MODEL_NOT_VALIDATED", f"{label} has a failing validation record "
                        f"({'; '.join(failing)}); it cannot be used for production")
