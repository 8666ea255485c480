"""Benchmark: `synthesize` on a 512x512x300 phantom NCCT (0.7 mm pixels, 1 mm slices) on CPU,
beside the same network through a plain `monai.inferers.sliding_window_inference` call with
default settings on the same region at the same working spacing, in the same run.

    .venv/bin/python bench/inference_speed.py [--repeats 3] [--threads 2] [--bundle DIR]

Uses the production aaa-cta model when the registry has one; otherwise a bundle of the
reference architecture with untrained weights (timing does not depend on the weights; the
output says which). Each measurement runs in a fresh subprocess so that peak RSS belongs to it.
Where CUDA is available, the plain call is also timed on the GPU.
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
OVERRIDES = {"n_slices": 300, "pixel_spacing_mm": 0.7, "slice_spacing_mm": 1.0,
             "slice_thickness_mm": 1.0}


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(workdir: Path, bundle_dir: Path | None = None,
            record_path: Path | None = None) -> dict:
    """Write the phantom series and make sure a model is loadable; returns what was used.

    With `bundle_dir` (and its validation record), that bundle is timed, whether or not it
    passed its protocol: it is registered in a throwaway registry with a timing-only record
    that carries its explain evidence (bench only; never a production registry).
    """
    from digital_contrast.errors import DigitalContrastError
    from digital_contrast.inference import LockedModel
    from digital_contrast.model.registry import ModelRegistry
    from digital_contrast.phantom.case import generate_case
    from digital_contrast.phantom.export import Phase, write_phase_dicom

    case = generate_case(SEED, "clinical", **OVERRIDES)
    write_phase_dicom(case, Phase.NCCT, workdir / "ncct")
    if bundle_dir is None:
        try:
            model = LockedModel.load("aaa-cta")
            return {"registry": ModelRegistry().uri,
                    "weights": f"production version {model.registered.version}"}
        except DigitalContrastError as exc:  # no usable production model: say why, time anyway
            reason = exc.code
    import torch

    from digital_contrast.model.bundle import read_bundle, write_bundle
    from digital_contrast.model.network import build_network
    from digital_contrast.model.training import reference_config
    from digital_contrast.model.validation_record import Criterion, ValidationRecord
    from digital_contrast.usecases import load_use_case

    explain = None
    if bundle_dir is not None:
        bundle = read_bundle(bundle_dir)
        if record_path is not None:
            explain = ValidationRecord.load(record_path).explain
        weights = f"trained bundle {bundle.manifest.model_version} ({bundle.sha256[:12]})"
    else:
        use_case = load_use_case("aaa-cta")
        config = reference_config().network.with_preprocessing(use_case.preprocessing)
        torch.manual_seed(0)
        bundle = write_bundle(workdir / "bundle", use_case=use_case, model_version="bench",
                              network=config, state_dict=build_network(config).state_dict())
        weights = f"untrained reference architecture ({reason})"
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    registry = ModelRegistry(uri)
    record = ValidationRecord(bundle_sha256=bundle.sha256, use_case="aaa-cta",
                              model_name="aaa-cta", model_version=bundle.manifest.model_version,
                              protocol="bench only", protocol_sha256="0" * 64,
                              dataset="none", evidence="timing only, not a validation",
                              criteria=[Criterion(metric="timing_only", op=">=", threshold=0,
                                                  value=0)], explain=explain)
    registered = registry.attach_validation(registry.register(bundle), record)
    registry.promote(registered.name, registered.version)
    return {"registry": uri, "weights": weights}


def child(task: str, workdir: Path, registry_uri: str, threads: int) -> dict:
    import torch

    from digital_contrast.imaging.resampling import to_working_spacing
    from digital_contrast.imaging.series_reader import read_series
    from digital_contrast.inference import LockedModel, synthesize
    from digital_contrast.inference.synthesize import ROI_SIZE
    from digital_contrast.model.network import scale_input
    from digital_contrast.model.registry import ModelRegistry

    torch.set_num_threads(threads)
    volume = read_series(workdir / "ncct")
    model = LockedModel.load("aaa-cta", registry=ModelRegistry(registry_uri))
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


def run_children(script: str, tasks: list[str], workdir: Path, registry_uri: str,
                 threads: int, repeats: int) -> dict[str, list[dict]]:
    """Each task `repeats` times, each run in a fresh `script --child` process (so that its
    peak RSS is its own); the JSON each child printed last, by task."""
    runs: dict[str, list[dict]] = {t: [] for t in tasks}
    for _ in range(repeats):
        for task in tasks:
            out = subprocess.run([sys.executable, script, "--threads", str(threads),
                                  "--child", task, str(workdir), registry_uri],
                                 capture_output=True, text=True, check=True)
            runs[task].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", type=Path, help="time this bundle (default: production)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, workdir, uri = args.child
        print(json.dumps(child(task, Path(workdir), uri, args.threads)))
        return

    import torch

    tasks = ["synthesize", "plain_cpu"] + (["plain_gpu"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        used = prepare(workdir, args.bundle)
        print(f"512x512x300 phantom NCCT (seed {SEED}); model: {used['weights']}; "
              f"{args.threads} threads; {args.repeats} repeats, medians")
        runs = run_children(__file__, tasks, workdir, used["registry"], args.threads,
                            args.repeats)
    for task, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["peak_rss_mb"] for r in results)
        print(f"{task:<12} {seconds:8.2f} s   peak RSS {rss:7.0f} MB   {results[-1]['detail']}")
    inference = statistics.median(r["detail"]["inference"] for r in runs["synthesize"])
    plain = statistics.median(r["seconds"] for r in runs["plain_cpu"])
    print(f"ratio synthesize inference step / plain sliding_window_inference: "
          f"{inference / plain:.2f}; end-to-end synthesize / plain: "
          f"{statistics.median(r['seconds'] for r in runs['synthesize']) / plain:.2f}")


if __name__ == "__main__":
    main()
