"""Floor study of the abdomen-pv protocol: every metric for the oracle and the exact reference.

Run before protocol abdomen-pv v1 was committed (and before any model was evaluated under it)
to set its criteria where an ideal model can meet them. Each case goes the validation path's
way (NCCT written as DICOM and read back) and is scored twice:

- exact: the reference itself (NCCT as read + the case's noiseless portal-venous enhancement),
  a sanity check of the metrics (errors 0, Dice 1, no break, no lesion lost);
- oracle: the floor of `validation.cases`, the true label geometry with population-typical
  portal-venous values (what an NCCT shows: kVp, anatomy, liver variant, unenhanced blood), put
  through the use case's working grid and back.

The seeds come from pools used for nothing else (floor study 49000-49999, its shift cases
49500-49999 with `shift_overrides`); single process, tens of cases.

    PYTHONPATH=device .venv/bin/python bench/pv_floor_study.py [--cases 24] [--shift 8]
    PYTHONPATH=device .venv/bin/python bench/pv_floor_study.py --stratum cirrhotic --cases 4 \
        --shift 0      # the first 4 cases of one stratum in the pool (a rare stratum)
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from digital_contrast.imaging.ct_image import HU_MAX, HU_MIN
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.phantom.case import noiseless_images, render_case
from digital_contrast.phantom.export import Phase, case_id, write_phase_dicom
from digital_contrast.phantom.sampling import sample_parameters
from digital_contrast.usecases import load_use_case
from digital_contrast.validation.cases import _oracle, _shift_qualifies, shift_overrides
from digital_contrast.validation.metrics import (
    METRICS,
    SHIFT,
    abdomen_pv_metrics,
    phantom_stratum,
    with_confidence,
)

USE_CASE = "abdomen-pv"
FLOOR_POOL = 49000  # floor study, in-distribution cases
SHIFT_POOL = 49500  # floor study, shift cases
SHOWN = ("liver_enhancement_error_hu", "spleen_enhancement_error_hu",
         "kidney_cortex_enhancement_error_hu", "portal_vein_gain_error_fraction",
         "liver_dice", "spleen_dice", "kidney_dice", "enhancing_organ_dice",
         "portal_vein_breaks", "hepatic_vein_breaks", "lesions_lost", "lesions_lost_unflagged",
         "lesion_contrast_change_hu", "unchanged_beyond_2mm_median_abs_hu",
         "unchanged_beyond_2mm_p99_abs_hu")


def _plan(cases: int, shift: int, stratum: str | None) -> list[tuple[int, dict]]:
    plan: list[tuple[int, dict]] = []
    seed = FLOOR_POOL
    while len(plan) < cases and seed < SHIFT_POOL:
        if stratum is None or phantom_stratum(sample_parameters(seed, "small",
                                                                USE_CASE)) == stratum:
            plan.append((seed, {}))
        seed += 1
    seed = SHIFT_POOL
    while sum(1 for _, o in plan if o) < shift:
        if _shift_qualifies(sample_parameters(seed, "small", USE_CASE)):
            plan.append((seed, shift_overrides(seed)))
        seed += 1
    return plan


def _worst(metric: str, values: list[float]) -> float:
    return min(values) if METRICS[metric].better == "higher" else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--shift", type=int, default=8)
    parser.add_argument("--stratum", default=None, help="only cases of this stratum")
    args = parser.parse_args()
    use_case = load_use_case(USE_CASE)
    spacing = tuple(use_case.preprocessing.working_spacing_mm)
    rows: list[tuple[str, str, dict[str, float], dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="dc-pv-floor-") as tmp:
        for seed, overrides in _plan(args.cases, args.shift, args.stratum):
            start = time.perf_counter()
            case = render_case(sample_parameters(seed, "small", USE_CASE, **overrides))
            folder = Path(tmp) / case_id(seed, USE_CASE) / "ncct"
            write_phase_dicom(case, Phase.NCCT, folder)
            ncct = read_series(folder)
            clean = noiseless_images(case.parameters, case.labels)
            reference = np.clip(ncct.array + clean["portal_venous"] - clean["ncct"],
                                HU_MIN, HU_MAX).astype(np.float32)
            del clean
            exact = with_confidence(abdomen_pv_metrics(
                ncct.array, reference, reference, case.labels, case.spacing,
                label_free=False), False)
            synthetic = _oracle(case, "portal_venous", overrides)(ncct, spacing)
            oracle = with_confidence(abdomen_pv_metrics(
                ncct.array, synthetic.array, reference, case.labels, case.spacing,
                label_free=False), False)
            stratum = SHIFT if overrides else phantom_stratum(case.parameters)
            rows.append((case_id(seed, USE_CASE), stratum, exact, oracle))
            p = case.parameters
            print(f"{rows[-1][0]} ({stratum}, {p.scanner.kvp:g} kVp, noise "
                  f"{p.scanner.noise_sd_hu:.0f} HU, {p.extension.liver_state}, "  # type: ignore[union-attr]
                  f"{p.extension.lesion_count} lesions): "  # type: ignore[union-attr]
                  f"{time.perf_counter() - start:.1f} s; oracle "
                  + ", ".join(f"{k}={oracle[k]:.3g}" for k in SHOWN if k in oracle), flush=True)
    groups = {"in-distribution": [r for r in rows if r[1] != SHIFT],
              "shift": [r for r in rows if r[1] == SHIFT]}
    for group, members in groups.items():
        if not members:
            continue
        print(f"\n{group}: {len(members)} cases; median [worst] per metric")
        print(f"  {'metric':<38}{'exact reference':>24}{'oracle':>24}")
        for metric in SHOWN:
            cells = []
            for which in (2, 3):
                values = [r[which][metric] for r in members
                          if metric in r[which] and math.isfinite(r[which][metric])]
                cells.append(f"{statistics.median(values):.4g} [{_worst(metric, values):.4g}] "
                             f"n={len(values)}" if values else "not measured")
            print(f"  {metric:<38}{cells[0]:>24}{cells[1]:>24}")
    strata = sorted({r[1] for r in rows})
    print("\noracle medians by stratum")
    print(f"  {'metric':<38}" + "".join(f"{s:>12}" for s in strata))
    for metric in SHOWN:
        cells = []
        for stratum in strata:
            values = [r[3][metric] for r in rows if r[1] == stratum and metric in r[3]
                      and math.isfinite(r[3][metric])]
            cells.append(f"{statistics.median(values):.3g}" if values else "-")
        print(f"  {metric:<38}" + "".join(f"{c:>12}" for c in cells))


if __name__ == "__main__":
    main()
