"""Tiny, untrained bundles for registry and inference tests (behaviour, not quality)."""

from pathlib import Path

import torch

from digital_contrast.keys.signing import Signer
from digital_contrast.model.bundle import Bundle, write_bundle
from digital_contrast.model.explain_evidence import (
    ExplainEvidence,
    SanityCheck,
    TTASettings,
    UncertaintyCalibration,
)
from digital_contrast.model.gate import ProtocolTerms
from digital_contrast.model.lumen_stage import LumenContrast, LumenStageConfig, build_lumen_network
from digital_contrast.model.network import build_network
from digital_contrast.model.network_config import NetworkConfig
from digital_contrast.model.validation_record import Criterion, ValidationRecord
from digital_contrast.usecases import UseCase, load_use_case
from tests.support.signing import site_signer


def tiny_network(use_case: UseCase) -> NetworkConfig:
    return NetworkConfig(channels=(4, 8), strides=(2,), num_res_units=0
                         ).with_preprocessing(use_case.preprocessing)


def tiny_lumen_stage() -> LumenStageConfig:
    return LumenStageConfig(
        filters=(4, 8, 8), strides=((1, 1, 1), (1, 2, 2), (2, 2, 2)),
        deep_supervision_heads=1, crop_yx=(96, 96),
        contrast=LumenContrast(kvp=(80.0, 120.0), lumen_hu=(400.0, 290.0),
                               thrombus_enhancement_hu=2.5, source="test values"))


def tiny_bundle(folder: Path, use_case: UseCase, *, seed: int = 0,
                model_version: str = "0.0.1", second_stage: bool = True) -> Bundle:
    """`second_stage=False`: a bundle of the first stage alone."""
    config, lumen = tiny_network(use_case), tiny_lumen_stage()
    torch.manual_seed(seed)
    network, lumen_network = build_network(config), build_lumen_network(lumen)
    state = network.state_dict()
    # Untrained, yet the cascade must run: the first stage's output layer is biased to
    # enhance all soft tissue, so it always shows an aorta (the body) to crop around, and the
    # second stage's towards lumen, so that there is a synthesized lumen to be confident about.
    last_bias = [name for name in state if name.endswith("bias")][-1]
    state[last_bias] = torch.full_like(state[last_bias], 2.0)
    lumen_state = lumen_network.state_dict()
    lumen_state["output_block.conv.conv.bias"] = torch.tensor([0.0, 3.0, 0.0])
    return write_bundle(folder, use_case=use_case, model_version=model_version,
                        network=config, state_dict=state,
                        lumen_stage=lumen if second_stage else None,
                        lumen_state_dict=lumen_state if second_stage else None,
                        provenance={"note": "untrained test bundle"})


def explain_evidence(*, threshold_hu: float = 1.0e6,
                     passing: tuple[str, ...] = ("integrated-gradients", "saliency"),
                     failing: tuple[str, ...] = ("occlusion",)) -> ExplainEvidence:
    """Made-up explain evidence: an uncertainty calibration with `threshold_hu` (the default is
    so high that no voxel is uncertain: never LOW CONFIDENCE), methods that passed their sanity
    checks and methods that failed them (any other method was never checked)."""
    def check(method: str, ok: bool) -> SanityCheck:
        return SanityCheck(method=method, randomisation_spearman=0.1 if ok else 0.8,
                           max_randomisation_spearman=0.3, aorta_mass_ratio=5.0 if ok else 1.0,
                           min_aorta_mass_ratio=3.0, cases=1)

    return ExplainEvidence(
        uncertainty=UncertaintyCalibration(
            tta=TTASettings(), error_hu=50.0, threshold_hu=threshold_hu,
            dataset="test fixture", cases=[(0.1, 0.1)], mean_abs_fraction_error=0.0,
            spearman_cases=1.0, voxel_auc=0.9),
        sanity=[check(m, True) for m in passing] + [check(m, False) for m in failing])


def record_for(bundle: Bundle, *, passing: bool = True,
               explain: ExplainEvidence | None = None, use_case: UseCase | None = None,
               signer: Signer | None = None) -> bytes:
    """A validation record of the bundle under its use case's current protocol, carrying every
    criterion at its threshold (one unmeasured when not `passing`), signed by the test site's
    trusted key (tests.support.signing) as `validate` would sign it. Without `explain` the
    bundle is uncalibrated (every result LOW CONFIDENCE) and offers no attribution method."""
    use_case = use_case or load_use_case(bundle.manifest.use_case)
    terms = ProtocolTerms.of(use_case)
    criteria = [Criterion(**rule.model_dump(), value=rule.threshold) for rule in terms.rules]
    if not passing:
        criteria[0] = criteria[0].model_copy(update={"value": None})
    record = ValidationRecord(
        bundle_sha256=bundle.sha256, use_case=bundle.manifest.use_case,
        model_name=bundle.manifest.model_name, model_version=bundle.manifest.model_version,
        protocol=terms.path, protocol_sha256=terms.sha256, dataset="test fixture",
        evidence="untrained test bundle", criteria=criteria, explain=explain)
    return record.signed(signer or site_signer())


def write_record(raw: bytes, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path
