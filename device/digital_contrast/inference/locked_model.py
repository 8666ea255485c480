"""Loading a model for clinical use: resolve, fetch, verify the hash, re-check the validation
record, and only then build the network. Every refusal is typed; nothing half-loaded runs."""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from digital_contrast.inference.cascade import Cascade
from digital_contrast.model.bundle import Bundle, BundleError, check_preprocessing
from digital_contrast.model.explain_evidence import ExplainEvidence, ExplainFile
from digital_contrast.model.network_config import NetworkConfig
from digital_contrast.model.reference import register_reference_model
from digital_contrast.model.registry import (
    PRODUCTION,
    ModelRegistry,
    RegisteredBundle,
    RegistryError,
)
from digital_contrast.model.validation_record import ValidationRecord
from digital_contrast.usecases import UseCase, UseCaseError, load_use_case


@dataclass(frozen=True, eq=False)
class LockedModel:
    use_case: UseCase
    registered: RegisteredBundle
    # The signed record that opened the gate; None under validation (`under_validation`,
    # which no job ever gets).
    validation: ValidationRecord | None
    # Uncertainty calibration and attribution checks (the record's, or under validation the
    # ones the new record will carry); None: not calibrated.
    explain_evidence: ExplainEvidence | None
    cascade: Cascade
    # The repository cohort its first stage learnt from (bundle provenance); None: the phantom.
    training_cohort_sha256: str | None = None

    @property
    def bundle_sha256(self) -> str:
        return self.registered.sha256

    @property
    def network(self) -> torch.nn.Module:
        """Stage 1, the whole-volume network (attribution explains it)."""
        return self.cascade.network

    @property
    def network_config(self) -> NetworkConfig:
        return self.cascade.network_config

    @classmethod
    def load(cls, use_case: str | UseCase, *, version: str | None = None,
             registry: ModelRegistry | None = None) -> "LockedModel":
        use_case = load_use_case(use_case) if isinstance(use_case, str) else use_case
        registry = registry or ModelRegistry()
        registered = resolve_registered(registry, use_case, version)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = registry.fetch(registered, Path(tmp))  # MODEL_INTEGRITY on any change
            _check_bundle(bundle, use_case)
            # Signed record, gate and seals: an alias or record changed behind our back fails.
            signed = registry.require_validated(registered, use_case,
                                                alias=PRODUCTION if version is None else None)
            return cls._built(bundle, use_case, registered, signed.record,
                              signed.record.explain)

    @classmethod
    def under_validation(cls, bundle: Bundle, use_case: str | UseCase,
                         registered: RegisteredBundle | None = None,
                         explain: ExplainFile | None = None) -> "LockedModel":
        """A bundle being validated (`digital-contrast validate`): the same checks of its
        identity and use case as `load`, without the passing record it is about to earn. A
        bundle folder that is not registered is identified by its hash alone. `explain`, the
        bundle's uncertainty calibration and attribution checks (`model calibrate`, or an
        earlier record's), goes into the new record."""
        use_case = load_use_case(use_case) if isinstance(use_case, str) else use_case
        _check_bundle(bundle, use_case)
        if registered is not None and registered.sha256 != bundle.sha256:
            raise RegistryError("MODEL_INTEGRITY", "the bundle is not the registered one")
        if explain is not None and explain.bundle_sha256 != bundle.sha256:
            raise RegistryError("MODEL_INTEGRITY", "the explain evidence is for another bundle")
        manifest = bundle.manifest
        registered = registered or RegisteredBundle(
            name=manifest.model_name, version="unregistered", sha256=bundle.sha256,
            source=str(bundle.folder), run_id="", aliases=(),
            model_version=manifest.model_version, validation_passed=False)
        return cls._built(bundle, use_case, registered, None,
                          explain.explain if explain else None)

    @classmethod
    def _built(cls, bundle: Bundle, use_case: UseCase, registered: RegisteredBundle,
               validation: ValidationRecord | None,
               explain: ExplainEvidence | None) -> "LockedModel":
        cohort = bundle.manifest.provenance.get("training_cohort") or {}
        return cls(use_case=use_case, registered=registered, validation=validation,
                   explain_evidence=explain, cascade=Cascade.of(bundle),
                   training_cohort_sha256=cohort.get("cohort_sha256"))


def resolve_registered(registry: ModelRegistry, use_case: UseCase,
                       version: str | None = None) -> RegisteredBundle:
    """The registry entry a load would use (production unless `version`), without fetching."""
    try:
        return registry.resolve(use_case.model_name, version=version)
    except RegistryError as exc:
        if exc.code != "MODEL_NOT_REGISTERED" or version is not None:
            raise
    # No production model: the committed reference model, if this use case has one, is
    # registered and promoted through the same gate as any other.
    if register_reference_model(registry, use_case) is None:
        raise UseCaseError(
            "USECASE_NO_MODEL",
            f"use case {use_case.id} has no validated production model. An operator validates "
            f"a bundle ('digital-contrast validate --protocol {use_case.validation_protocol} "
            f"--bundle BUNDLE --attach') and promotes it ('digital-contrast model promote "
            f"{use_case.model_name} VERSION'); see docs/operations.md, 'Models and the registry'")
    return registry.resolve(use_case.model_name, alias=PRODUCTION)


def _check_bundle(bundle: Bundle, use_case: UseCase) -> None:
    if bundle.manifest.use_case != use_case.id or bundle.manifest.model_name != \
            use_case.model_name:
        raise BundleError("BUNDLE_MISMATCH",
                          f"the bundle is for {bundle.manifest.use_case}, not {use_case.id}")
    check_preprocessing(use_case, bundle.manifest.network)
