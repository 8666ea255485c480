"""Benchmark: the clinical path on a 512x512x300 phantom NCCT (0.7 mm pixels, 1 mm slices) on
CPU, end to end (read, conformity, both stages of the cascade, TTA confidence, the labelled
series and the uncertainty map written), and `synthesize` alone, beside the first stage's
network through a plain `monai.inferers.sliding_window_inference` call with default settings on
the same region at the same working spacing, in the same run.

    .venv/bin/python bench/inference_speed.py [--repeats 3] [--threads 2] [--bundle DIR]
        [--explain-from FILE]

Uses the production aaa-cta model (the committed reference model on a fresh registry);
`--bundle` is loaded the way `validate` loads a candidate, never by attaching a record to it.
Each measurement runs in a fresh subprocess so that peak RSS belongs to it. Where CUDA is
available, the plain call is also timed on the GPU. Targets (issue 16): end to end <= 30 s on
2 threads, peak RSS <= 4 GB.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 2
MODEL_SPEC = "model.json"  # which model the child processes load
OVERRIDES = {"n_slices": 300, "pixel_spacing_mm": 0.7, "slice_spacing_mm": 1.0,
             "slice_thickness_mm": 1.0}


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(workdir: Path, bundle_dir: Path | None = None,
            record_path: Path | None = None) -> dict:
    """Write the phantom series and say which model the runs load; returns what was used.

    With `bundle_dir` (and its calibration file or record, for its explain evidence), that bundle is
    timed whether or not it passed its protocol, loaded the way `validate` loads a candidate
    (`LockedModel.under_validation`: the same identity checks, no record forged or attached).
    Without it, the production model.
    """
    from digital_contrast.inference import LockedModel
    from digital_contrast.phantom.case import generate_case
    from digital_contrast.phantom.export import Phase, write_phase_dicom

    case = generate_case(SEED, "clinical", **OVERRIDES)
    write_phase_dicom(case, Phase.NCCT, workdir / "ncct")
    spec: dict[str, str | None] = {"bundle": None, "record": None}
    if bundle_dir is None:
        model = LockedModel.load("aaa-cta")
        weights = f"production version {model.registered.version} " \
                  f"({model.registered.model_version})"
    else:
        from digital_contrast.model.bundle import read_bundle

        bundle = read_bundle(bundle_dir)
        spec = {"bundle": str(bundle_dir), "record": str(record_path) if record_path else None}
        weights = f"bundle {bundle.manifest.model_version} ({bundle.sha256[:12]}), loaded " \
                  "as under validation"
    (workdir / MODEL_SPEC).write_text(json.dumps(spec))
    return {"model": str(workdir / MODEL_SPEC), "weights": weights}


def load_model(spec_path: Path):  # -> LockedModel
    """The model `prepare` chose: production through the clinical load, a bundle through the
    validation-time load."""
    from digital_contrast.inference import LockedModel
    from digital_contrast.model.bundle import read_bundle
    from digital_contrast.model.explain_evidence import ExplainFile

    spec = json.loads(Path(spec_path).read_text())
    if spec["bundle"] is None:
        return LockedModel.load("aaa-cta")
    explain = ExplainFile.read(Path(spec["record"])) if spec["record"] else None
    return LockedModel.under_validation(read_bundle(Path(spec["bundle"])), "aaa-cta",
                                        explain=explain)


def child(task: str, workdir: Path, model_spec: str, threads: int) -> dict:
    import torch

    from digital_contrast.imaging.resampling import to_working_spacing
    from digital_contrast.imaging.series_reader import read_series
    from digital_contrast.inference import synthesize
    from digital_contrast.inference.synthesize import ROI_SIZE
    from digital_contrast.model.network import scale_input

    torch.set_num_threads(threads)
    if task == "end_to_end":
        from digital_contrast.pipeline.clinical_path import run_clinical_path
        from digital_contrast.usecases import load_use_case

        model = load_model(Path(model_spec))
        start = time.perf_counter()
        result = run_clinical_path(workdir / "ncct", load_use_case("aaa-cta"),
                                   lambda _: model, workdir / f"out-{time.time_ns()}")
        return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(),
                "detail": result.timings_s}
    volume = read_series(workdir / "ncct")
    model = load_model(Path(model_spec))
    start = time.perf_counter()
    if task == "synthesize":
        result = synthesize(volume, "aaa-cta", model)
        detail = result.timings_s
    else:
        from monai.inferers import sliding_window_inference

        device = "cuda" if task == "plain_gpu" else "cpu"
        working = to_working_spacing(volume.array, volume.affine, model.network_config.spacing_mm)
        inputs = scale_input(working.as_tensor()[None], model.network_config).to(device)
        network = model.network.to(device)
        start = time.perf_counter()  # the plain call alone, as a peer of "inference"
        with torch.inference_mode():
            sliding_window_inference(inputs, roi_size=ROI_SIZE, sw_batch_size=1,
                                     predictor=network)
        if device == "cuda":
            torch.cuda.synchronize()
        detail = {"working_shape": list(inputs.shape[2:])}
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(),
            "detail": detail}


def run_children(script: str, tasks: list[str], workdir: Path, model_spec: str,
                 threads: int, repeats: int) -> dict[str, list[dict]]:
    """Each task `repeats` times, each run in a fresh `script --child` process (so that its
    peak RSS is its own); the JSON each child printed last, by task."""
    runs: dict[str, list[dict]] = {t: [] for t in tasks}
    for _ in range(repeats):
        for task in tasks:
            out = subprocess.run([sys.executable, script, "--threads", str(threads),
                                  "--child", task, str(workdir), model_spec],
                                 capture_output=True, text=True, check=True)
            runs[task].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", type=Path, help="time this bundle (default: production)")
    parser.add_argument("--explain-from", type=Path, help="the bundle's calibration file or "
                        "record, for its explain evidence (as `validate --explain-from`)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, workdir, spec = args.child
        print(json.dumps(child(task, Path(workdir), spec, args.threads)))
        return

    import torch

    tasks = ["end_to_end", "synthesize", "plain_cpu"] + (
        ["plain_gpu"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        used = prepare(workdir, args.bundle, args.explain_from)
        print(f"512x512x300 phantom NCCT (seed {SEED}); model: {used['weights']}; "
              f"{args.threads} threads; {args.repeats} repeats, medians")
        runs = run_children(__file__, tasks, workdir, used["model"], args.threads,
                            args.repeats)
    for task, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["peak_rss_mb"] for r in results)
        print(f"{task:<12} {seconds:8.2f} s   peak RSS {rss:7.0f} MB   {results[-1]['detail']}")
    inference = statistics.median(r["detail"]["inference"] for r in runs["synthesize"])
    plain = statistics.median(r["seconds"] for r in runs["plain_cpu"])
    end_to_end = statistics.median(r["seconds"] for r in runs["end_to_end"])
    peak = statistics.median(r["peak_rss_mb"] for r in runs["end_to_end"])
    print(f"ratio synthesize inference step (both stages) / plain sliding_window_inference "
          f"(stage 1's network): {inference / plain:.2f}; end to end / plain: "
          f"{end_to_end / plain:.2f}")
    print(f"end to end {end_to_end:.1f} s (target <= 30 s): "
          f"{'met' if end_to_end <= 30 else 'NOT met'}; peak RSS {peak / 1024:.2f} GB "
          f"(target <= 4 GB): {'met' if peak <= 4096 else 'NOT met'}")


if __name__ == "__main__":
    main()
