"""The floor of a validation protocol: its criteria met by the oracle alone, per stratum.

The oracle has each phantom case's true geometry and intensities but, like any model, cannot
see the bolus (it assumes the middle of the phantom's bolus range at the series' kVp), and it
works on the use case's working grid. Every case goes the validation path's way (NCCT written
as DICOM and read back). A criterion the oracle fails cannot be met by any model: the protocol
must be reviewed, not the model blamed. `validate` prints the same floor beside the model.

    .venv/bin/python bench/protocol_floor.py validation/protocols/aaa-cta.yaml [--limit N]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from digital_contrast.imaging.series_reader import read_series
from digital_contrast.usecases import load_use_case
from digital_contrast.validation import load_protocol
from digital_contrast.validation.cases import dataset_cases
from digital_contrast.validation.metrics import with_confidence
from digital_contrast.validation.protocol_run import evaluate, measured
from digital_contrast.validation.results import CaseOutcome, stratum_medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="first N cases only (a smoke "
                        "run; the floor is only the floor over the protocol's whole dataset)")
    args = parser.parse_args()
    fixed = load_protocol(args.protocol)
    protocol = fixed.protocol
    use_case = load_use_case(protocol.use_case)
    spacing = tuple(use_case.preprocessing.working_spacing_mm)
    outcomes, seconds = [], []
    with tempfile.TemporaryDirectory(prefix="dc-floor-") as tmp:
        for index, case in enumerate(dataset_cases(protocol.dataset, Path(tmp), fixed.path.parent,
                                                   use_case.target_phase.value)):
            if args.limit is not None and index >= args.limit:
                break
            if case.floor is None:
                raise SystemExit("this dataset has no floor (paired cases)")
            start = time.perf_counter()
            ncct = read_series(case.ncct)
            # The oracle never labels LOW CONFIDENCE: a lesion it loses counts against it.
            metrics = with_confidence(case.score(ncct, case.floor(ncct, spacing)), False)
            outcome = CaseOutcome(case.case_id, case.seed, case.stratum)
            outcome.floor_metrics = measured(metrics)
            outcomes.append(outcome)
            seconds.append(time.perf_counter() - start)
            print(f"{case.case_id} ({case.stratum}): {seconds[-1]:.1f} s", flush=True)
    print(f"\nfloor of {fixed.name} (version {protocol.version}, SHA-256 {fixed.sha256[:12]}) "
          f"on {len(outcomes)} cases, working spacing {spacing} mm; median "
          f"{statistics.median(seconds):.1f} s per case")
    failing = 0
    for criterion in evaluate(protocol.acceptance, outcomes, floor=True):
        value = "not measurable" if criterion.value is None else f"{criterion.value:g}"
        failing += not criterion.passed
        print(f"  {criterion.describe():<62} oracle {value:>14}  "
              f"{'meets' if criterion.passed else 'FAILS'}")
    print(f"the oracle fails {failing} criteria" if failing else "the oracle meets every "
          "criterion it can be judged on (confidence criteria judge the model only)")
    metrics = list(dict.fromkeys(rule.metric for rule in protocol.acceptance))
    table = {m: stratum_medians(outcomes, m, floor=True) for m in metrics}
    strata = list(dict.fromkeys(o.stratum for o in outcomes))
    print("\noracle medians by stratum (n/a: not measured there, or a judgement of the "
          "model's own confidence)")
    print(f"  {'metric':<36}" + "".join(f"{s:>20}" for s in strata))
    for metric, medians in table.items():
        print(f"  {metric:<36}" + "".join(
            f"{'n/a' if medians[s] is None else format(medians[s], 'g'):>20}" for s in strata))


if __name__ == "__main__":
    main()
