"""Benchmark: the explain steps on the 512x512x300 phantom NCCT of bench/inference_speed.py, on
CPU: test-time-augmentation uncertainty, Integrated Gradients (defaults), Saliency and
Occlusion, each as seconds, peak RSS and a ratio to the inference time measured in the same run.

    .venv/bin/python bench/explain_speed.py [--repeats 1] [--threads 2] [--bundle DIR --record R]
        [--previews DIR]

Targets: uncertainty <= 1x inference extra; IG <= 10 minutes; peak RSS <= 6 GB throughout.
Uses the production aaa-cta model (see inference_speed.prepare) or `--bundle`. Uncertainty is
the TTA of the cascade's second stage; attribution explains the first stage's network. Each
step runs in a fresh subprocess so that its peak RSS is its own.
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from inference_speed import _peak_rss_mb, prepare, run_children

TASKS = ("inference", "uncertainty", "integrated-gradients", "saliency", "occlusion")


def _write_previews(folder: Path, volume, prediction, uncertainty, config) -> None:
    import numpy as np

    from digital_contrast.explain.outputs import MapSpec
    from digital_contrast.explain.outputs.previews import preview_center, render_previews, write_png
    from digital_contrast.inference.synthesize import to_native_enhancement

    enhancement = to_native_enhancement(prediction, volume, config)
    synthetic = volume.with_array(np.clip(volume.array + enhancement, -1024, 3071))
    spec = MapSpec(kind="uncertainty", method="tta", unit_code="[hnsf'U]",
                   unit_meaning="Hounsfield unit",
                   description="SD of synthesized enhancement over 8 test-time augmentations")
    images = render_previews(volume, synthetic, uncertainty.to_native(volume), spec,
                             preview_center(enhancement, volume.spacing))
    for view, image in images.items():
        write_png(image, folder / f"uncertainty_{view}.png")


def child(task: str, workdir: Path, model_spec: str, threads: int) -> dict:
    import numpy as np
    import torch
    from inference_speed import load_model

    from digital_contrast.explain.attribution import attribute, box_mask_mm
    from digital_contrast.explain.region import aortic_component, predicted_lumen
    from digital_contrast.explain.uncertainty import estimate_uncertainty
    from digital_contrast.imaging.series_reader import read_series
    from digital_contrast.inference.synthesize import (
        predict_working,
        source_kvp,
        to_native_enhancement,
    )
    from digital_contrast.model.explain_evidence import TTASettings

    torch.set_num_threads(threads)
    volume = read_series(workdir / "ncct")
    model = load_model(Path(model_spec))
    network, config = model.network, model.network_config
    start = time.perf_counter()
    prediction = predict_working(volume, model.cascade, source_kvp(volume))
    if task == "inference":
        to_native_enhancement(prediction, volume, config)
        return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()}
    if task == "uncertainty":
        evidence = model.validation.explain
        settings = evidence.uncertainty.tta if evidence else TTASettings()
        start = time.perf_counter()
        result = estimate_uncertainty(prediction, model.cascade, settings)
        detail = {"crop": list(result.grid.shape), "samples": settings.samples}
        seconds = time.perf_counter() - start
        if (workdir / "previews").is_dir():  # not timed: what a reader of the job would see
            _write_previews(workdir / "previews", volume, prediction, result, config)
        return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "detail": detail}
    target = None
    if not aortic_component(predicted_lumen(prediction)).any():
        centre = np.asarray(volume.world(tuple(n / 2 for n in volume.shape)))
        target = box_mask_mm(prediction, tuple(centre - 20), tuple(centre + 20))
    start = time.perf_counter()
    attribution = attribute(prediction, network, config, task, target=target)
    detail = {"crop": attribution.crop.shape,
              "convergence_delta": attribution.convergence_delta}
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(),
            "detail": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", type=Path, help="time this bundle (default: production)")
    parser.add_argument("--record", type=Path, help="the bundle's calibration file or record "
                        "(explain evidence)")
    parser.add_argument("--previews", type=Path, help="also write the uncertainty previews here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, workdir, uri = args.child
        print(json.dumps(child(task, Path(workdir), uri, args.threads)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        used = prepare(workdir, args.bundle, args.record)
        if args.previews:
            (workdir / "previews").mkdir()
        print(f"512x512x300 phantom NCCT; model: {used['weights']}; {args.threads} threads; "
              f"{args.repeats} repeat(s), medians")
        runs = run_children(__file__, list(TASKS), workdir, used["model"], args.threads,
                            args.repeats)
        if args.previews:
            shutil.copytree(workdir / "previews", args.previews, dirs_exist_ok=True)
            print(f"uncertainty previews: {sorted(map(str, args.previews.glob('*.png')))}")
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
