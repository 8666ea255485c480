"""Benchmark: quality of a model bundle on held-out phantom cases, beside two baselines.

    .venv/bin/python bench/model_quality.py --bundle DIR [--protocol P] [--cases 24]
        [--shift 20] [--report quality_report.json]
    .venv/bin/python bench/model_quality.py --production [--protocol P]

Cases are those of the protocol (default validation/protocols/aaa-cta.yaml; any protocol of
phantom cases: the first cases of each stratum of seeds never used in training or model
selection; `--cases N`: the first N of them). The reference output of a case is its NCCT plus
its noiseless enhancement in the use case's target phase. Metrics
(`digital_contrast.validation.metrics`), per stratum, those of the protocol's use case: for
aaa-cta per-label MAE and bias inside the body, PSNR (data range 4095) and SSIM, the
half-maximum lumen's Dice, diameter error and spurious volume, gain-corrected lumen error and
lumen bias, thrombus Dice (thrombus >= 5 mm) and thickness error, and the change in tissue more
than 2 mm from enhancing tissue; for abdomen-pv the organ, vein and lesion metrics. Baselines:
identity (the NCCT itself), a threshold heuristic (one typical enhancement wherever the smoothed
NCCT looks like blood or soft tissue: +300 HU at 30-70 HU for the arterial phase, +55 HU at
20-80 HU for the portal-venous one) and the ideal output. The arrays are compared in memory,
without the DICOM round trip: the validation record itself comes from `digital-contrast
validate --protocol P`.

`--seeds A-B` takes phantom seeds A to B of the use case instead (model selection, a first look
at a candidate before its protocol run): seeds in the protocol's pools are refused, so that the
held-out cases stay unseen until the validation run.

`--shift N` adds N shift-set cases, reported as stratum "shift" beside the protocol's strata:
the protocol's own shift set where it defines one (abdomen-pv), else seeds 30000 on
(`lumen_data.shift_parameters`: blood, thrombus contrast, noise, kernel, sac bulge and slice
thickness beyond aaa-cta's training ranges); no acceptance rule of this bench reads them.
"""

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from digital_contrast.config import REPO_ROOT
from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.volume import Volume
from digital_contrast.model.lumen_data import shift_parameters
from digital_contrast.phantom.case import PhantomCase, noiseless_images, render_case
from digital_contrast.phantom.parameters import PhantomParameters
from digital_contrast.phantom.sampling import sample_parameters
from digital_contrast.usecases.catalog import load_use_case
from digital_contrast.validation.cases import selected_seeds, shift_overrides, shift_seeds
from digital_contrast.validation.metrics import (
    abdomen_pv_metrics,
    phantom_metrics,
    phantom_stratum,
)
from digital_contrast.validation.protocol import PhantomDataset, load_protocol
from digital_contrast.validation.protocol_run import evaluate
from digital_contrast.validation.results import CaseOutcome

PROTOCOL = REPO_ROOT / "validation" / "protocols" / "aaa-cta.yaml"
Predictor = Callable[[PhantomCase], np.ndarray]
# The heuristic per target phase: (smoothed NCCT from, to, HU added there).
HEURISTIC = {"arterial": (30.0, 70.0, 300.0), "portal_venous": (20.0, 80.0, 55.0)}
KEYS = {
    None: ["lumen_dice", "thrombus_dice", "ilt_thickness_error_mm", "lumen_mae_hu",
           "lumen_gain_mae_hu", "lumen_abs_bias_fraction", "diameter_error_mm",
           "spurious_lumen_ml", "spurious_lumen_beyond_2mm_ml",
           "unchanged_beyond_2mm_median_abs_hu", "unchanged_beyond_2mm_p99_abs_hu", "psnr_db",
           "ssim", "mae_thrombus", "bias_thrombus", "mae_aorta_lumen", "mae_liver",
           "mae_kidney_cortex"],
    "abdomen-pv": ["liver_enhancement_error_hu", "spleen_enhancement_error_hu",
                   "kidney_cortex_enhancement_error_hu", "portal_vein_gain_error_fraction",
                   "enhancing_organ_dice", "portal_vein_breaks", "hepatic_vein_breaks",
                   "lesions_lost", "unchanged_beyond_2mm_median_abs_hu",
                   "unchanged_beyond_2mm_p99_abs_hu", "psnr_db", "ssim"],
}


SHIFT_SEEDS_FROM = 30000
SHIFT = "shift"


def model_predictor(cascade) -> Predictor:
    from digital_contrast.inference.synthesize import predict_enhancement

    def predict(case: PhantomCase) -> np.ndarray:
        enhancement = predict_enhancement(Volume(case.ncct, case.affine), cascade,
                                          kvp=case.parameters.scanner.kvp)
        return np.clip(case.ncct + enhancement, -1024, 3071)

    return predict


def ideal_for(phase: str) -> Predictor:
    def ideal(case: PhantomCase) -> np.ndarray:
        """The reference itself: what each metric reads for a perfect synthesis (its floor)."""
        clean = noiseless_images(case.parameters, case.labels)
        return np.clip(case.ncct + clean[phase] - clean["ncct"], -1024, 3071)

    return ideal


def identity(case: PhantomCase) -> np.ndarray:
    return case.ncct


def heuristic_for(phase: str) -> Predictor:
    low, high, added = HEURISTIC[phase]

    def threshold_heuristic(case: PhantomCase) -> np.ndarray:
        smooth = ndimage.gaussian_filter(case.ncct, 1.0)
        return np.clip(case.ncct + np.where((smooth > low) & (smooth < high), added, 0.0),
                       -1024, 3071)

    return threshold_heuristic


def case_metrics(case: PhantomCase, synthetic: np.ndarray, reference: np.ndarray
                 ) -> dict[str, float]:
    if case.parameters.extension is not None:
        return abdomen_pv_metrics(case.ncct, synthetic, reference, case.labels, case.spacing)
    return phantom_metrics(case.ncct, synthetic, reference, case.labels, case.spacing,
                           case.parameters.aorta.thrombus_shape != "none")


def shift_cases(dataset: PhantomDataset, count: int) -> list[PhantomParameters]:
    """The first `count` cases of the protocol's shift set, or of aaa-cta's."""
    if dataset.shift is not None:
        return [sample_parameters(seed, dataset.size, dataset.extension, **shift_overrides(seed))
                for seed in shift_seeds(dataset)[:count]]
    return [shift_parameters(SHIFT_SEEDS_FROM + n) for n in range(count)]


def seed_range(text: str) -> range:
    """'A-B' (or 'A') as the range of seeds A to B, both included."""
    start, _, end = text.partition("-")
    return range(int(start), int(end or start) + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", type=Path, help="bundle folder to evaluate")
    source.add_argument("--production", action="store_true", help="the production model")
    parser.add_argument("--protocol", type=Path, default=PROTOCOL,
                        help="validation protocol of phantom cases (default: aaa-cta's)")
    parser.add_argument("--cases", type=int, default=None,
                        help="fewer cases than the protocol (0: the shift set only)")
    parser.add_argument("--seeds", type=seed_range, default=None,
                        help="A-B: these seeds instead of the protocol's (none of its pools)")
    parser.add_argument("--shift", type=int, default=0, help="shift-set cases to add")
    parser.add_argument("--report", type=Path,
                        help="write every median (method x stratum) as JSON, for the model card")
    args = parser.parse_args()

    protocol = load_protocol(args.protocol).protocol
    dataset = protocol.dataset
    phase = load_use_case(protocol.use_case).target_phase.value
    if args.seeds is not None:
        pools = set(dataset.seeds.seeds) | set(dataset.shift.seeds.seeds if dataset.shift else ())
        if pools & set(args.seeds):
            parser.error("--seeds overlaps the protocol's held-out pools")
        seeds = list(args.seeds)
    else:
        seeds = selected_seeds(dataset)[:args.cases]  # the protocol's cases, in order
    if args.production:
        from digital_contrast.inference import LockedModel

        locked = LockedModel.load(protocol.use_case)
        cascade, sha = locked.cascade, locked.bundle_sha256
    else:
        from digital_contrast.inference.cascade import Cascade
        from digital_contrast.model.bundle import read_bundle

        bundle = read_bundle(args.bundle)
        cascade, sha = Cascade.of(bundle), bundle.sha256
    ideal = ideal_for(phase)
    methods: dict[str, Predictor] = {"model": model_predictor(cascade),
                                     "identity": identity, "threshold": heuristic_for(phase),
                                     "ideal": ideal}
    rows: dict[str, dict[str, list[dict[str, float]]]] = {m: {} for m in methods}
    started = time.perf_counter()
    shift = shift_cases(dataset, args.shift) if args.shift else []
    cases = ([(sample_parameters(seed, dataset.size, dataset.extension), None) for seed in seeds]
             + [(p, SHIFT) for p in shift])
    refused: dict[tuple[str, str], list[str]] = {}  # the model refusing a case is a result
    for parameters, group in cases:
        case = render_case(parameters)
        stratum = group or phantom_stratum(case.parameters)
        reference = ideal(case)
        for name, predict in methods.items():
            try:
                rows[name].setdefault(stratum, []).append(
                    case_metrics(case, predict(case), reference))
            except DigitalContrastError as exc:
                refused.setdefault((name, stratum), []).append(exc.code)
    span = f"seeds {seeds[0]}-{seeds[-1]}" if seeds else "none"
    print(f"{len(seeds)} held-out phantom cases of protocol {protocol.id} v{protocol.version} "
          f"({span}) and {len(shift)} shift-set cases, bundle {sha[:16]}, "
          f"{time.perf_counter() - started:.0f} s. Evidence: phantom only; not clinically "
          "validated.")
    keys = KEYS[dataset.extension]
    medians: dict[tuple[str, str], dict[str, float]] = {}
    for name, strata in rows.items():
        for group, cases in sorted(strata.items()):
            values = {k: [c[k] for c in cases if k in c and not np.isnan(c[k])] for k in keys}
            medians[name, group] = {k: statistics.median(v) for k, v in values.items() if v}
            medians[name, group]["n"] = len(cases)
    print(f"{'method':<10}{'stratum':<26}" + "".join(f"{k[:14]:>15}" for k in ["n", *keys]))
    for (name, group), values in sorted(medians.items(), key=lambda x: (x[0][1], x[0][0])):
        print(f"{name:<10}{group:<26}" + "".join(
            f"{values.get(k, float('nan')):>15.3f}" for k in ["n", *keys]))

    for (name, group), codes in sorted(refused.items()):
        counts = ", ".join(f"{codes.count(c)} {c}" for c in sorted(set(codes)))
        print(f"{name} refused {len(codes)} {group} case(s), left out of the medians: {counts}")

    if args.report:
        args.report.write_text(json.dumps({
            "bundle_sha256": sha,
            "protocol": str(args.protocol.resolve().relative_to(REPO_ROOT)),
            "seeds": [seeds[0], seeds[-1]] if seeds else [], "shift_cases": len(shift),
            "evidence": protocol.evidence,
            "medians": [{"method": m, "stratum": g, **v} for (m, g), v in medians.items()],
            "refused": [{"method": m, "stratum": g, "codes": c} for (m, g), c in refused.items()],
        }, indent=2) + "\n")
    outcomes = [CaseOutcome(f"{group} {i}", None, group, metrics)
                for group, cases in rows["model"].items() if group != SHIFT
                for i, metrics in enumerate(cases)]
    if not outcomes:  # the shift set alone: no acceptance rule reads it
        return
    print("acceptance (each rule's statistic over its stratum), in memory, without the DICOM "
          "round trip or the confidence step of `digital-contrast validate`:")
    for criterion in evaluate(protocol.acceptance, outcomes):
        value = "-" if criterion.value is None else f"{criterion.value:10.3f}"
        print(f"  {criterion.describe():<62} {value:>10} "
              f"{'pass' if criterion.passed else 'FAIL'}")

if __name__ == "__main__":
    main()
