"""Calibrating the uncertainty threshold against real error on held-out phantom cases.

For each case the true enhancement is known. On the scored region (synthesized or possible
lumen on stage 2's crop; for a bundle of stage 1 alone, enhanced tissue on its working grid) we
pair each voxel's TTA spread with its absolute enhancement error,
then choose the spread threshold at which the per-case fraction of the region above it best
matches the per-case fraction whose error exceeds `error_hu`: the confidence score then
estimates the share of that region that is wrong by more than that, which is what a reader
needs to know.
"""

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from digital_contrast.explain.uncertainty import estimate_uncertainty
from digital_contrast.imaging.resampling import to_working_spacing
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.synthesize import predict_working
from digital_contrast.model.crop_grid import to_crop
from digital_contrast.model.explain_evidence import TTASettings, UncertaintyCalibration
from digital_contrast.phantom.case import generate_case, noiseless_images

DEFAULT_ERROR_HU = 50.0  # a lumen voxel off by this much changes how the lumen reads
CANDIDATES = 200  # thresholds tried: quantiles of the pooled spread


def case_pairs(seed: int, cascade: Cascade, settings: TTASettings,
               target_phase: str = "arterial", extension: str | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(spread, absolute error) in HU for each voxel of the scored region of one phantom case
    (of the use case's phantom `extension`, None for the base phantom): synthesized lumen on
    stage 2's crop, or enhanced tissue on stage 1's working grid for a bundle without stage 2."""
    case = generate_case(seed, "small", extension)
    volume = Volume(case.ncct, case.affine)
    prediction = predict_working(volume, cascade, case.parameters.scanner.kvp)
    uncertainty = estimate_uncertainty(prediction, cascade, settings)
    clean = noiseless_images(case.parameters, case.labels)
    enhancement = clean[target_phase] - clean["ncct"]
    if prediction.lumen is None:  # stage 1 alone: its working grid
        truth = to_working_spacing(enhancement, case.affine, cascade.network_config.spacing_mm)
        error = np.abs(prediction.enhancement.as_tensor()[0].numpy()
                       - truth.as_tensor()[0].numpy())
    else:
        truth = to_crop(enhancement, case.affine, prediction.lumen.grid)
        error = np.abs(prediction.lumen.enhancement() - truth)
    return uncertainty.sd_hu[uncertainty.region], error[uncertainty.region]


def choose_threshold(pairs: Sequence[tuple[np.ndarray, np.ndarray]], error_hu: float
                     ) -> tuple[float, list[tuple[float, float]], float]:
    """(threshold, per-case (uncertain, erroneous) fractions, mean |difference|)."""
    pooled = np.concatenate([sd for sd, _ in pairs])
    if pooled.size == 0:
        raise ValueError("no synthesized lumen in any calibration case: nothing to calibrate")
    candidates = np.unique(np.quantile(pooled, np.linspace(0.0, 1.0, CANDIDATES)))
    wrong = np.array([(err > error_hu).mean() if err.size else 1.0 for _, err in pairs])

    def fractions(threshold: float) -> np.ndarray:
        return np.array([(sd > threshold).mean() if sd.size else 1.0 for sd, _ in pairs])

    costs = [float(np.abs(fractions(t) - wrong).mean()) for t in candidates]
    best = int(np.argmin(costs))
    threshold = float(candidates[best])
    cases = [(round(float(u), 4), round(float(e), 4))
             for u, e in zip(fractions(threshold), wrong, strict=True)]
    return threshold, cases, costs[best]


def voxel_auc(pairs: Sequence[tuple[np.ndarray, np.ndarray]], error_hu: float) -> float:
    """Probability that an erroneous lumen voxel has a larger spread than a correct one."""
    sd = np.concatenate([s for s, _ in pairs])
    wrong = np.concatenate([e for _, e in pairs]) > error_hu
    if wrong.all() or not wrong.any():
        return float("nan")
    statistic = stats.mannwhitneyu(sd[wrong], sd[~wrong]).statistic
    return float(statistic / (wrong.sum() * (~wrong).sum()))


def calibrate(cascade: Cascade, seeds: Sequence[int], *,
              settings: TTASettings | None = None, error_hu: float = DEFAULT_ERROR_HU,
              target_phase: str = "arterial", extension: str | None = None,
              progress: Callable[[int], None] | None = None) -> UncertaintyCalibration:
    settings = settings or TTASettings()
    pairs = []
    for seed in seeds:
        pairs.append(case_pairs(seed, cascade, settings, target_phase, extension))
        if progress is not None:
            progress(seed)
    threshold, cases, cost = choose_threshold(pairs, error_hu)
    uncertain, wrong = zip(*cases, strict=True)
    spearman = stats.spearmanr(uncertain, wrong).statistic if len(cases) > 2 else float("nan")
    return UncertaintyCalibration(
        tta=settings, error_hu=error_hu, threshold_hu=round(threshold, 3),
        dataset=f"phantom seeds {min(seeds)}-{max(seeds)} (held out), small size"
                + (f", {extension} extension" if extension else ""),
        cases=cases, mean_abs_fraction_error=round(cost, 4),
        spearman_cases=round(float(spearman), 4), voxel_auc=round(voxel_auc(pairs, error_hu), 4))

