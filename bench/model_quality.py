"""Benchmark: quality of a model bundle on held-out phantom cases, beside two baselines.

    .venv/bin/python bench/model_quality.py --bundle DIR [--cases 24] [--record OUT.json]
        [--report quality_report.json]
    .venv/bin/python bench/model_quality.py --production

Cases come from validation/protocols/aaa-cta.yaml (seeds never used in training). The reference
output of a case is its NCCT plus its noiseless enhancement. Metrics, stratified by
|thrombus - blood| and noise: per-label MAE and bias inside the body, PSNR (data range 4095) and
SSIM, lumen and thrombus Dice after thresholding the synthetic CTA at 150 HU inside the aortic
region without calcium (the reference: the ideal CTA thresholded the same way, so that it scores
1.0 itself), spurious lumen (mL), maximum lumen diameter error (mm), and |enhancement| in fat,
bone and air. Baselines: identity (the NCCT itself) and a threshold heuristic (+300 HU
wherever the smoothed NCCT looks like blood, 30-70 HU). With --record, writes the validation
record of the bundle against the protocol's acceptance criteria (evidence: phantom only).
"""

import argparse
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from scipy import ndimage

from digital_contrast.config import REPO_ROOT
from digital_contrast.imaging.phantom.case import PhantomCase, generate_case, noiseless_images
from digital_contrast.imaging.phantom.labels import Label
from digital_contrast.imaging.volume import Volume

PROTOCOL = REPO_ROOT / "validation" / "protocols" / "aaa-cta.yaml"
LUMEN_HU = 150.0
SPURIOUS_TOLERANCE_MM = 2.0
Predictor = Callable[[PhantomCase], np.ndarray]


def model_predictor(network: torch.nn.Module, config) -> Predictor:
    from digital_contrast.inference.synthesize import predict_enhancement

    def predict(case: PhantomCase) -> np.ndarray:
        enhancement = predict_enhancement(Volume(case.ncct, case.affine), network, config,
                                          kvp=case.parameters.kvp)
        return np.clip(case.ncct + enhancement, -1024, 3071)

    return predict


def ideal(case: PhantomCase) -> np.ndarray:
    """The reference itself: what each metric reads for a perfect synthesis (its floor)."""
    clean = noiseless_images(case.parameters, case.labels)
    return np.clip(case.ncct + clean["arterial"] - clean["ncct"], -1024, 3071)


def identity(case: PhantomCase) -> np.ndarray:
    return case.ncct


def threshold_heuristic(case: PhantomCase) -> np.ndarray:
    smooth = ndimage.gaussian_filter(case.ncct, 1.0)
    return np.clip(case.ncct + np.where((smooth > 30) & (smooth < 70), 300.0, 0.0), -1024, 3071)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else float("nan")


def _max_diameter_mm(mask: np.ndarray, pixel_mm: float) -> float:
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1) * pixel_mm**2
    return float(2 * np.sqrt(areas.max() / np.pi)) if areas.max() else 0.0


def case_metrics(case: PhantomCase, synthetic: np.ndarray) -> dict[str, float]:
    reference = ideal(case)
    labels = case.labels
    body = labels != Label.AIR
    error = synthetic - reference
    voxel_ml = float(np.prod(case.spacing)) / 1000.0
    out: dict[str, float] = {}
    for label in Label:
        mask = (labels == label) & body
        if mask.sum() >= 20:
            out[f"mae_{label.name.lower()}"] = float(np.abs(error[mask]).mean())
            out[f"bias_{label.name.lower()}"] = float(error[mask].mean())
    mse = float(np.mean(error[body] ** 2))
    out["psnr_db"] = 20 * np.log10(4095.0) - 10 * np.log10(max(mse, 1e-9))
    out["ssim"] = _ssim(synthetic, reference)

    # The reference CTA is read exactly like the synthetic one: thresholded in the same region,
    # so that enhanced branches and veins beside the aorta count on both sides.
    vessel = np.isin(labels, [Label.AORTA_LUMEN, Label.THROMBUS, Label.AORTIC_WALL])
    calcium = ndimage.binary_dilation(labels == Label.CALCIFICATION)
    region = ndimage.binary_dilation(vessel, iterations=3) & ~calcium
    true_lumen = (reference > LUMEN_HU) & region
    pred_lumen = (synthetic > LUMEN_HU) & region
    sac = np.isin(labels, [Label.AORTA_LUMEN, Label.THROMBUS]) & region
    out["lumen_dice"] = _dice(pred_lumen, true_lumen)
    out["thrombus_dice"] = (_dice(sac & ~pred_lumen, sac & ~true_lumen)
                            if case.parameters.thrombus_shape != "none" else float("nan"))
    out["lumen_mae_hu"] = float(np.abs(error[(labels == Label.AORTA_LUMEN) & region]).mean())
    out["spurious_lumen_ml"] = float((pred_lumen & ~true_lumen).sum() * voxel_ml)
    # The same, beyond one working-grid voxel (2 mm) of the true lumen: hallucinated lumen, not
    # the partial-volume shell that even a perfect 2 mm synthesis leaves (see the oracle study).
    distance = ndimage.distance_transform_edt(~true_lumen, sampling=case.spacing)
    out["spurious_lumen_beyond_2mm_ml"] = float(
        (pred_lumen & (distance > SPURIOUS_TOLERANCE_MM)).sum() * voxel_ml)
    out["diameter_error_mm"] = abs(_max_diameter_mm(pred_lumen, case.spacing[1])
                                   - _max_diameter_mm(true_lumen, case.spacing[1]))
    unchanged = np.isin(labels, [Label.FAT_SUBCUTANEOUS, Label.FAT_VISCERAL,
                                 Label.BONE_CORTICAL, Label.BONE_CANCELLOUS, Label.AIR,
                                 Label.BOWEL_AIR])
    change = np.abs(synthetic - case.ncct)[unchanged]
    out["unchanged_median_abs_hu"] = float(np.median(change))
    out["unchanged_p99_abs_hu"] = float(np.percentile(change, 99))
    return out


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from monai.metrics import SSIMMetric

    def as_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((x + 1024.0)[None, None].astype(np.float32))

    return float(SSIMMetric(spatial_dims=3, data_range=4095.0)(as_tensor(a), as_tensor(b)).mean())


def stratum(case: PhantomCase) -> str:
    p = case.parameters
    if p.noise_sd_hu > 20:
        return "noise > 20 HU"
    if p.thrombus_shape != "none" and abs(p.thrombus_minus_blood_hu) < 5:
        return "|thrombus-blood| < 5 HU"
    return "primary"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", type=Path, help="bundle folder to evaluate")
    source.add_argument("--production", action="store_true", help="the production model")
    parser.add_argument("--cases", type=int, default=None, help="fewer cases than the protocol")
    parser.add_argument("--record", type=Path, help="write the validation record here")
    parser.add_argument("--report", type=Path,
                        help="write every median (method x stratum) as JSON, for the model card")
    args = parser.parse_args()

    protocol = yaml.safe_load(PROTOCOL.read_text())
    seeds = range(protocol["dataset"]["seeds"]["start"],
                  protocol["dataset"]["seeds"]["start"] + (args.cases or
                                                           protocol["dataset"]["seeds"]["count"]))
    if args.production:
        from digital_contrast.inference import LockedModel

        locked = LockedModel.load("aaa-cta")
        network, config, sha = locked.network, locked.network_config, locked.bundle_sha256
        manifest = None
    else:
        from digital_contrast.model.bundle import read_bundle
        from digital_contrast.model.network import build_network

        bundle = read_bundle(args.bundle)
        network = build_network(bundle.manifest.network)
        network.load_state_dict(bundle.state_dict())
        network.eval()
        config, sha, manifest = bundle.manifest.network, bundle.sha256, bundle.manifest
    methods: dict[str, Predictor] = {"model": model_predictor(network, config),
                                     "identity": identity, "threshold": threshold_heuristic,
                                     "ideal": ideal}
    rows: dict[str, dict[str, list[dict[str, float]]]] = {m: {} for m in methods}
    started = time.perf_counter()
    for seed in seeds:
        case = generate_case(seed, "small")
        for name, predict in methods.items():
            rows[name].setdefault(stratum(case), []).append(case_metrics(case, predict(case)))
    print(f"{len(seeds)} held-out phantom cases (seeds {seeds.start}-{seeds.stop - 1}), bundle "
          f"{sha[:16]}, {time.perf_counter() - started:.0f} s. Evidence: phantom only; "
          "not clinically validated.")
    keys = ["lumen_dice", "thrombus_dice", "lumen_mae_hu", "diameter_error_mm",
            "spurious_lumen_ml", "spurious_lumen_beyond_2mm_ml", "unchanged_median_abs_hu",
            "unchanged_p99_abs_hu", "psnr_db",
            "ssim", "mae_thrombus", "bias_thrombus", "mae_aorta_lumen", "mae_liver",
            "mae_kidney_cortex"]
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

    if args.report:
        args.report.write_text(json.dumps({
            "bundle_sha256": sha, "protocol": str(PROTOCOL.relative_to(REPO_ROOT)),
            "seeds": [seeds.start, seeds.stop - 1], "evidence": protocol["evidence"],
            "medians": [{"method": m, "stratum": g, **v} for (m, g), v in medians.items()],
        }, indent=2) + "\n")
    primary = medians.get(("model", "primary"))
    if primary is None:
        print("no case in the primary stratum: increase --cases")
        return
    print("acceptance on the primary stratum (medians; per_case rules: worst case):")
    from digital_contrast.model.validation_record import Criterion

    criteria = []
    for rule in protocol["acceptance"]:
        value = (max(c[rule["metric"]] for c in rows["model"]["primary"]) if rule.get("per_case")
                 else primary[rule["metric"]])
        criterion = Criterion(metric=rule["metric"], op=rule["op"],
                              threshold=rule["threshold"], value=round(value, 4))
        criteria.append(criterion)
        print(f"  {rule['metric']:<26} {value:10.3f} {rule['op']} {rule['threshold']:<8} "
              f"{'pass' if criterion.passed else 'FAIL'}")
    if args.record and manifest is not None:
        from digital_contrast.model.validation_record import ValidationRecord

        record = ValidationRecord(
            bundle_sha256=sha, use_case=manifest.use_case, model_name=manifest.model_name,
            model_version=manifest.model_version, protocol=str(PROTOCOL.relative_to(REPO_ROOT)),
            protocol_sha256=hashlib.sha256(PROTOCOL.read_bytes()).hexdigest(),
            dataset=f"phantom seeds {seeds.start}-{seeds.stop - 1} (held out), small size",
            criteria=criteria, evidence=protocol["evidence"])
        print(f"validation record: {record.save(args.record)} passed={record.passed}")


if __name__ == "__main__":
    main()
