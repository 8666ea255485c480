"""Benchmark: the explain steps on the 512x512x300 phantom NCCT of bench/inference_speed.py, on
CPU: test-time-augmentation uncertainty, Integrated Gradients (defaults), Saliency and
Occlusion, each as seconds, peak RSS and a ratio to the inference time measured in the same run.

    .venv/bin/python bench/explain_speed.py [--repeats 1] [--threads 2] [--bundle DIR --record R]

Targets: uncertainty <= 1x inference extra; IG <= 10 minutes; peak RSS <= 6 GB throughout.
Uses the production aaa-cta model when there is one (see inference_speed.prepare); with the
untrained stand-in there is no synthesized lumen, so attribution explains a 40 mm box at the
volume centre instead (timings hardly depend on the target). Each step runs in a fresh
subprocess so that its peak RSS is its own.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inference_speed import _peak_rss_mb, prepare

TASKS = ("inference", "uncertainty", "integrated-gradients", "saliency", "occlusion")


def child(task: str, workdir: Path, registry_uri: str, threads: int) -> dict:
    import numpy as np
    import torch

    from digital_contrast.explain.attribution import attribute, box_mask_mm
    from digital_contrast.explain.region import aortic_component, predicted_lumen
    from digital_contrast.explain.uncertainty import estimate_uncertainty
    from digital_contrast.imaging.series_reader import read_series
    from digital_contrast.inference import LockedModel
    from digital_contrast.inference.synthesize import (
        predict_working,
        source_kvp,
        to_native_enhancement,
    )
    from digital_contrast.model.explain_evidence import TTASettings
    from digital_contrast.model.registry import ModelRegistry

    torch.set_num_threads(threads)
    volume = read_series(workdir / "ncct")
    model = LockedModel.load("aaa-cta", registry=ModelRegistry(registry_uri))
    network, config = model.network, model.network_config
    start = time.perf_counter()
    prediction = predict_working(volume, network, config, source_kvp(volume))
    if task == "inference":
        to_native_enhancement(prediction, volume, config)
        return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()}
    detail: dict = {}
    if task == "uncertainty":
        evidence = model.validation.explain
        settings = evidence.uncertainty.tta if evidence else TTASettings()
        start = time.perf_counter()
        result = estimate_uncertainty(prediction, network, config, settings)
        detail = {"region": result.region.shape if result.region else None,
                  "samples": settings.samples}
    else:
        target = None
        if not aortic_component(predicted_lumen(prediction)).any():
            centre = np.asarray(volume.world(tuple(n / 2 for n in volume.shape)))
            target = box_mask_mm(prediction, tuple(centre - 20), tuple(centre + 20))
        start = time.perf_counter()
        result = attribute(prediction, network, config, task, target=target)
        detail = {"crop": result.crop.shape, "convergence_delta": result.convergence_delta}
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(),
            "detail": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", type=Path, help="time this bundle (default: production)")
    parser.add_argument("--record", type=Path, help="the bundle's record (explain evidence)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, workdir, uri = args.child
        print(json.dumps(child(task, Path(workdir), uri, args.threads)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        used = prepare(workdir, args.bundle, args.record)
        print(f"512x512x300 phantom NCCT; model: {used['weights']}; {args.threads} threads; "
              f"{args.repeats} repeat(s), medians")
        runs: dict[str, list[dict]] = {t: [] for t in TASKS}
        for _ in range(args.repeats):
            for task in TASKS:
                out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                                      "--child", task, str(workdir), used["registry"]],
                                     capture_output=True, text=True, check=True)
                runs[task].append(json.loads(out.stdout.strip().splitlines()[-1]))
    inference = statistics.median(r["seconds"] for r in runs["inference"])
    print(f"{'step':<22}{'seconds':>10}{'x inference':>13}{'peak RSS MB':>13}  detail")
    for task, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["peak_rss_mb"] for r in results)
        print(f"{task:<22}{seconds:>10.1f}{seconds / inference:>13.2f}{rss:>13.0f}  "
              f"{results[-1].get('detail', '')}")
    peak = max(r["peak_rss_mb"] for results in runs.values() for r in results)
    uncertainty = statistics.median(r["seconds"] for r in runs["uncertainty"]) / inference
    ig = statistics.median(r["seconds"] for r in runs["integrated-gradients"])
    print(f"targets: uncertainty {uncertainty:.2f}x inference (<= 1): "
          f"{'pass' if uncertainty <= 1 else 'MISS'}; IG {ig:.0f} s (<= 600): "
          f"{'pass' if ig <= 600 else 'MISS'}; peak RSS {peak:.0f} MB (<= 6144): "
          f"{'pass' if peak <= 6144 else 'MISS'}")


if __name__ == "__main__":
    main()
