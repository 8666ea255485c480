"""The explain evidence of one bundle, added to its validation record before release: the
uncertainty calibration and the attribution sanity checks, on held-out phantom seeds."""

from collections.abc import Callable, Sequence

import torch

from digital_contrast.explain.attribution import Method
from digital_contrast.explain.calibration import calibrate
from digital_contrast.explain.sanity import run_sanity_checks
from digital_contrast.model.explain_evidence import ExplainEvidence
from digital_contrast.model.network import NetworkConfig

# Seeds of neither training (0-999, validation 1000+) nor the validation protocol (9000+).
CALIBRATION_SEEDS = tuple(range(8000, 8012))
SANITY_SEEDS = (8100, 8101)


def explain_evidence(network: torch.nn.Module, config: NetworkConfig, *,
                     calibration_seeds: Sequence[int] = CALIBRATION_SEEDS,
                     sanity_seeds: Sequence[int] = SANITY_SEEDS,
                     methods: Sequence[Method] = tuple(Method),
                     progress: Callable[[str], None] | None = None) -> ExplainEvidence:
    report = progress or (lambda _: None)
    uncertainty = calibrate(network, config, calibration_seeds,
                            progress=lambda seed: report(f"calibration case {seed}"))
    report(f"uncertainty threshold {uncertainty.threshold_hu} HU")
    sanity = run_sanity_checks(network, config, sanity_seeds, methods)
    return ExplainEvidence(uncertainty=uncertainty, sanity=sanity)
