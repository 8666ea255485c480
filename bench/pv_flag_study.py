"""Would the TTA uncertainty map flag where an abdomen-pv candidate fails? A study on
model-selection seeds (never the protocol's held-out pools), without changing anything.

For each case: the candidate's synthesis and its TTA spread (the same estimator a job runs,
`explain.uncertainty`), then, on the native grid, the spread where the failures are (the true
vein centreline band the synthetic image does not show, the cores of lesions whose contrast it
lowered) beside where it is right (the band it shows, the lesions it kept), and the case score
(fraction of the scored region above each threshold). If the failures' spread does not stand
above the successes', no threshold on this map can flag them, per case or per region.

    .venv/bin/python bench/pv_flag_study.py --bundle training/abdomen-pv/1.2.0/bundle \
        --seeds 1000-1011

Evidence: phantom only (abdomen-pv extension); not clinically validated.
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from model_quality import seed_range  # this folder: the script's own
from scipy import ndimage

from digital_contrast.explain.uncertainty import estimate_uncertainty
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.synthesize import predict_working, to_native_enhancement
from digital_contrast.model.bundle import read_bundle
from digital_contrast.model.explain_evidence import TTASettings
from digital_contrast.phantom.case import noiseless_images, render_case
from digital_contrast.phantom.labels import LESION_LABELS
from digital_contrast.phantom.sampling import sample_parameters
from digital_contrast.validation.organ_metrics import (
    _CONNECTED,
    HALF_MAXIMUM,
    HEPATIC_VEIN,
    LESION_CORE_MM,
    MIN_LEVEL_HU,
    PORTAL_SYSTEM,
    _inside,
    centreline_band,
    lesion_contrasts,
    vein_breaks,
)

THRESHOLDS_HU = (3.0, 5.4, 8.0, 12.0)  # 5.4: abdomen-pv 1.0.0's calibrated threshold


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--seeds", type=seed_range, default=range(1000, 1012))
    parser.add_argument("--samples", type=int, default=TTASettings().samples)
    args = parser.parse_args()
    bundle = read_bundle(args.bundle)
    cascade = Cascade.of(bundle)
    settings = TTASettings(samples=args.samples)
    started = time.perf_counter()
    print(f"bundle {bundle.sha256[:16]}, TTA {settings.samples} samples; spread in HU "
          "(median over voxels); phantom only, not clinically validated")
    print(f"{'seed':>6}{'breaks':>8}{'sd shown':>10}{'sd missed':>10}{'missed>5.4':>11}"
          f"{'lesions':>9}{'sd kept':>9}{'sd lost':>9}"
          + "".join(f"{'case>' + str(t):>10}" for t in THRESHOLDS_HU))
    pooled: dict[str, list[float]] = {"shown": [], "missed": [], "kept": [], "lost": []}
    for seed in args.seeds:
        case = render_case(sample_parameters(seed, "small", "abdomen-pv"))
        volume = Volume(case.ncct, case.affine)
        prediction = predict_working(volume, cascade, kvp=case.parameters.scanner.kvp)
        pred = to_native_enhancement(prediction, volume, cascade.network_config)
        spread = estimate_uncertainty(prediction, cascade, settings)
        sd = spread.to_native(volume)
        clean = noiseless_images(case.parameters, case.labels)
        true = (clean["portal_venous"] - clean["ncct"]).astype(np.float32)
        breaks = sum(np.nan_to_num(vein_breaks(pred, true, case.labels, vein, case.spacing))
                     for vein in (PORTAL_SYSTEM, HEPATIC_VEIN))
        band = np.zeros(case.labels.shape, dtype=bool)
        for vein in (PORTAL_SYSTEM, HEPATIC_VEIN):
            band |= centreline_band(np.isin(case.labels, vein.labels), case.spacing)
        band &= true >= MIN_LEVEL_HU
        shown = band & (pred >= HALF_MAXIMUM * true)
        missed = band & ~shown
        pooled["shown"] += sd[shown].tolist()
        pooled["missed"] += sd[missed].tolist()
        synthetic = case.ncct + pred
        lesions = lesion_contrasts(case.ncct, synthetic, case.ncct + true, case.labels,
                                   case.spacing)
        parts, count = ndimage.label(np.isin(case.labels, LESION_LABELS), structure=_CONNECTED)
        by_size = {int((parts == i).sum()): i for i in range(1, count + 1)}
        kept, lost = [], []
        for contrast in lesions:  # the same parts, less those with no liver ring
            lesion = parts == by_size[contrast.voxels]
            core = lesion & (_inside(lesion, case.spacing) > LESION_CORE_MM)
            (lost if contrast.lost else kept).append(
                float(np.median(sd[core if core.any() else lesion])))
        pooled["kept"] += kept
        pooled["lost"] += lost
        missed_sd = sd[missed]
        print(f"{seed:>6}{breaks:>8.0f}{_median(sd[shown].tolist()):>10.1f}"
              f"{_median(missed_sd.tolist()):>10.1f}"
              f"{(missed_sd > 5.4).mean() if missed_sd.size else float('nan'):>11.2f}"
              f"{f'{len(lost)}/{len(lesions)}':>9}{_median(kept):>9.1f}{_median(lost):>9.1f}"
              + "".join(f"{spread.fraction_above(t):>10.3f}" for t in THRESHOLDS_HU))
    print(f"pooled medians: band shown {_median(pooled['shown']):.1f} HU "
          f"({len(pooled['shown'])} voxels), band missed {_median(pooled['missed']):.1f} HU "
          f"({len(pooled['missed'])}), lesions kept {_median(pooled['kept']):.1f} HU "
          f"({len(pooled['kept'])}), lost {_median(pooled['lost']):.1f} HU "
          f"({len(pooled['lost'])}); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
