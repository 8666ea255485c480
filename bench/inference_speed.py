"""Benchmark: `synthesize` against the pipeline a MONAI user would write for the same job, on a
512x512x300 phantom NCCT (0.7 mm pixels, 1 mm slices), in the same run; and the clinical path
end to end (read, conformity, both stages, TTA confidence, labelled series and uncertainty map
written).

    .venv/bin/python bench/inference_speed.py [--repeats 3] [--threads 2] [--bundle DIR]
        [--explain-from FILE] [--skip-end-to-end]

The same job: from the DICOM series folder to the synthetic CT on the series' own grid, with the
same weights (the bundle's whole cascade: stage 1 on the working grid, stage 2 on a crop around
the aorta, composed, gated and added to the NCCT) and the preprocessing those weights assume.
Ours: `read_series` then `synthesize` (its conformity check included). The peer, which checks
nothing: MONAI's transforms wherever MONAI has one that gives the same image -- LoadImaged
(PydicomReader: ITK is not installed), EnsureChannelFirstd, Orientationd to the orientation the
network was trained in, Spacingd to the working spacing, ScaleIntensityRanged per input window
(ConcatItemsd), sliding_window_inference, then Invertd back to the source grid and the output
scale to HU. The anti-alias filter the weights assume goes before Spacingd as scipy's Gaussian
in a Lambdad (MONAI's GaussianSmooth has another kernel and pads with zeros: a different image).
The rest is this model's own, so the peer calls the product's functions as a MONAI user
reproducing it would: locating the aorta and stage 2 on its crop (`predict_lumen`), composing
the stages and the tissue gate. Settings that decide the output are the product's (ROI,
overlap, Gaussian blending, replicate padding, bilinear with border padding); the rest are
MONAI's defaults (sw_batch_size 1, Spacingd's float64 resampling, networks as built:
contiguous). Both sides run on the same threads, in inference mode. `peer_settings` lists them
and the run prints them.

Output: median seconds over the repeats (and each run's) and peak RSS of each side, each run in
a fresh process, with the last run's steps and CPU seconds (all threads); peer/ours; max
|difference| (HU) between the two synthetic CTs inside the body (NCCT above -500 HU). Where
CUDA is available the same comparison runs with the networks on the GPU. Uses the production
aaa-cta model (the committed reference model on a fresh registry); `--bundle` is loaded the way
`validate` loads a candidate, never by attaching a record to it. Targets (issue 19): peer/ours
>= 2 at a max |difference| <= 1 HU, peak RSS <= 4 GB; end to end <= 30 s (issue 16).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SEED = 2
MODEL_SPEC = "model.json"  # which model the child processes load
Synthesis = tuple[np.ndarray, np.ndarray, dict]  # synthetic CT, its LPS affine, timings
OVERRIDES = {"n_slices": 300, "pixel_spacing_mm": 0.7, "slice_spacing_mm": 1.0,
             "slice_thickness_mm": 1.0}
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # MONAI's readers give RAS affines
BODY_HU = -500.0  # the NCCT above this is the body, where the outputs are compared
AXCODES = "SPL"  # the phantom's (slice, row, column) order: the network's training orientation


def peer_settings() -> dict[str, str]:
    """What the MONAI peer runs with, as printed."""
    from digital_contrast.inference.synthesize import BLEND_MODE, OVERLAP, ROI_SIZE

    return {"reader": "LoadImaged(PydicomReader)", "orientation": f"Orientationd({AXCODES})",
            "anti-alias": "scipy.ndimage.gaussian_filter in a Lambdad (the product's sigma)",
            "spacing": "Spacingd(working spacing, bilinear, border, float64)",
            "windows": "ScaleIntensityRanged per window, ConcatItemsd",
            "sliding window": f"roi {ROI_SIZE}, overlap {OVERLAP}, {BLEND_MODE} "
                              "(sigma_scale 0.125), replicate padding, sw_batch_size 1",
            "inverse": "Invertd(bilinear, border) x HU per output unit",
            "networks": "the bundle's weights, contiguous", "mode": "torch.inference_mode"}


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


def ours(model, device: str) -> Callable[[Path], Synthesis]:
    """`read_series` + `synthesize`, networks on `device`: (synthetic CT, its LPS affine,
    timings)."""
    from digital_contrast.imaging.series_reader import read_series
    from digital_contrast.inference import synthesize

    for network in (model.cascade.network, model.cascade.lumen_network):
        network.to(device)

    def run(folder: Path) -> Synthesis:
        start = time.perf_counter()
        volume = read_series(folder)
        read = time.perf_counter() - start
        result = synthesize(volume, "aaa-cta", model)
        return result.volume.array, volume.affine, {"read": round(read, 3)} | result.timings_s

    return run


def monai_peer(model, device: str) -> Callable[[Path], Synthesis]:
    """The MONAI user's pipeline (module docstring), networks on `device`: (synthetic CT on the
    loaded grid, its LPS affine, timings)."""
    import copy

    import pydicom
    import torch
    from monai.data import MetaTensor, PydicomReader
    from monai.inferers import sliding_window_inference
    from monai.transforms import (
        Compose,
        ConcatItemsd,
        CopyItemsd,
        EnsureChannelFirstd,
        Invertd,
        Lambdad,
        LoadImaged,
        Orientationd,
        ScaleIntensityRanged,
        Spacingd,
    )
    from scipy import ndimage

    from digital_contrast.imaging.ct_image import HU_MAX, HU_MIN
    from digital_contrast.inference.lumen_step import compose, predict_lumen
    from digital_contrast.inference.synthesize import BLEND_MODE, OVERLAP, ROI_SIZE
    from digital_contrast.inference.tissue_gate import tissue_gate
    from digital_contrast.model.network_config import output_scale_hu

    config, cascade = model.network_config, model.cascade
    network, lumen_network = (copy.deepcopy(n).to(device=device,
                                                  memory_format=torch.contiguous_format)
                              for n in (cascade.network, cascade.lumen_network))
    gate = config.tissue_gate_hu
    assert config.detail_window is not None and gate is not None

    def smooth(image: MetaTensor) -> MetaTensor:
        """The anti-alias filter the weights assume, with scipy's Gaussian (as the product)."""
        sampled = np.linalg.norm(image.affine.numpy()[:3, :3], axis=0)
        sigma = [max(0.0, (w / s - 1.0) / 2.0)
                 for w, s in zip(config.spacing_mm, sampled, strict=True)]
        image[0] = torch.from_numpy(ndimage.gaussian_filter(image[0].numpy(), sigma,
                                                            truncate=3.0))
        return image

    preprocessing = Compose([
        LoadImaged("image", reader=PydicomReader()),
        EnsureChannelFirstd("image"),
        CopyItemsd("image", names="source"),
        Orientationd("image", axcodes=AXCODES),
        Lambdad("image", smooth),
        Spacingd("image", pixdim=config.spacing_mm, mode="bilinear"),
        CopyItemsd("image", times=2, names=["working", "detail"]),
        ScaleIntensityRanged("image", *config.hu_window, -1.0, 1.0, clip=True),
        ScaleIntensityRanged("detail", *config.detail_window, -1.0, 1.0, clip=True),
        ConcatItemsd(["image", "detail"], "input"),
    ])

    def run(folder: Path) -> Synthesis:
        timings, start = {}, time.perf_counter()
        data = preprocessing({"image": str(folder)})
        kvp = float(pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).KVP)
        timings["load_preprocess"] = time.perf_counter() - start
        source = data["source"][0].numpy()
        source_affine = RAS_TO_LPS @ data["source"].affine.numpy()
        with torch.inference_mode():
            start = time.perf_counter()
            output = sliding_window_inference(data["input"][None].to(device), ROI_SIZE, 1,
                                              network, overlap=OVERLAP, mode=BLEND_MODE,
                                              padding_mode="replicate")[0]
            data["pred"] = output * output_scale_hu(config, kvp)
            timings["stage_1"] = time.perf_counter() - start
            start = time.perf_counter()
            lumen = predict_lumen(lumen_network, cascade.lumen_config, source, source_affine,
                                  data["working"][0].numpy(), data["pred"][0].cpu().numpy(),
                                  RAS_TO_LPS @ data["image"].affine.numpy(), kvp)
            timings["stage_2"] = time.perf_counter() - start
            start = time.perf_counter()
            data = Invertd("pred", preprocessing, orig_keys="image", nearest_interp=False)(data)
            enhancement = data["pred"][0].cpu().numpy().astype(np.float32)
            timings["invert"] = time.perf_counter() - start
        start = time.perf_counter()
        enhancement = np.maximum(compose(enhancement, lumen, source_affine), 0.0)
        spacing = tuple(float(s) for s in np.linalg.norm(source_affine[:3, :3], axis=0))
        enhancement *= tissue_gate(source, spacing, gate)
        synthetic = np.clip(source + enhancement, HU_MIN, HU_MAX)
        timings["compose_gate_add"] = time.perf_counter() - start
        return synthetic, source_affine, {k: round(v, 3) for k, v in timings.items()}

    return run


def child(task: str, workdir: Path, model_spec: str, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    model = load_model(Path(model_spec))
    if task == "end_to_end":
        from digital_contrast.pipeline.clinical_path import run_clinical_path
        from digital_contrast.usecases import load_use_case

        start = time.perf_counter()
        result = run_clinical_path(workdir / "ncct", load_use_case("aaa-cta"),
                                   lambda _: model, workdir / f"out-{time.time_ns()}")
        return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(),
                "detail": result.timings_s}
    side, _, device = task.partition("@")
    run = (ours if side == "ours" else monai_peer)(model, device)
    start, cpu = time.perf_counter(), time.process_time()
    synthetic, affine, detail = run(workdir / "ncct")
    seconds, peak = time.perf_counter() - start, _peak_rss_mb()
    detail["cpu_s"] = round(time.process_time() - cpu, 1)  # all threads: the work done
    np.save(workdir / f"{task}.npy", synthetic)  # for the comparison, after the clock
    np.save(workdir / f"{task}.affine.npy", affine)
    return {"seconds": seconds, "peak_rss_mb": peak, "detail": detail}


def run_children(script: str, tasks: list[str], workdir: Path, model_spec: str,
                 threads: int, repeats: int) -> dict[str, list[dict]]:
    """Each task `repeats` times, each run in a fresh `script --child` process (so that its
    peak RSS is its own), on `threads` threads; the JSON each child printed last, by task."""
    env = os.environ | {"DC_INFERENCE_THREADS": str(threads)}
    runs: dict[str, list[dict]] = {t: [] for t in tasks}
    for _ in range(repeats):
        for task in tasks:
            out = subprocess.run([sys.executable, script, "--threads", str(threads),
                                  "--child", task, str(workdir), model_spec],
                                 capture_output=True, text=True, check=True, env=env)
            runs[task].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def max_difference_in_body(workdir: Path, device: str) -> float:
    """Max |ours - peer| (HU) where the NCCT is above BODY_HU, the peer's array brought to
    ours' axis order first (the loader stores the series in another)."""
    from nibabel.orientations import apply_orientation, io_orientation, ornt_transform

    from digital_contrast.imaging.series_reader import read_series

    ours_array, peer = (np.load(workdir / f"{side}@{device}.npy") for side in ("ours", "peer"))
    ours_affine, peer_affine = (np.load(workdir / f"{side}@{device}.affine.npy")
                                for side in ("ours", "peer"))
    peer = apply_orientation(peer, ornt_transform(io_orientation(peer_affine),
                                                  io_orientation(ours_affine)))
    body = read_series(workdir / "ncct").array > BODY_HU
    return float(np.abs(ours_array - peer)[body].max())


def report(runs: dict[str, list[dict]], workdir: Path, device: str, threads: int) -> None:
    medians = {side: statistics.median(r["seconds"] for r in runs[f"{side}@{device}"])
               for side in ("ours", "peer")}
    peaks = {side: statistics.median(r["peak_rss_mb"] for r in runs[f"{side}@{device}"])
             for side in ("ours", "peer")}
    ratio, difference = medians["peer"] / medians["ours"], max_difference_in_body(workdir, device)
    print(f"[{device}] ours {medians['ours']:.2f} s, MONAI peer {medians['peer']:.2f} s: "
          f"peer/ours {ratio:.2f} (target >= 2: {'met' if ratio >= 2 else 'NOT met'}); "
          f"max |difference| inside the body {difference:.4f} HU (target <= 1: "
          f"{'met' if difference <= 1 else 'NOT met'}); peak RSS ours "
          f"{peaks['ours'] / 1024:.2f} GB (target <= 4 GB: "
          f"{'met' if peaks['ours'] <= 4096 else 'NOT met'}), peer {peaks['peer'] / 1024:.2f} GB; "
          f"{threads} threads")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", type=Path, help="time this bundle (default: production)")
    parser.add_argument("--explain-from", type=Path, help="the bundle's calibration file or "
                        "record, for its explain evidence (as `validate --explain-from`)")
    parser.add_argument("--skip-end-to-end", action="store_true",
                        help="leave out the clinical path")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, workdir, spec = args.child
        print(json.dumps(child(task, Path(workdir), spec, args.threads)))
        return

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    tasks = [f"{side}@{device}" for device in devices for side in ("ours", "peer")] + (
        [] if args.skip_end_to_end else ["end_to_end"])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        used = prepare(workdir, args.bundle, args.explain_from)
        print(f"512x512x300 phantom NCCT (seed {SEED}); model: {used['weights']}; "
              f"{args.threads} threads; {args.repeats} repeats, medians")
        print("MONAI peer: " + "; ".join(f"{k}: {v}" for k, v in peer_settings().items()))
        runs = run_children(__file__, tasks, workdir, used["model"], args.threads,
                            args.repeats)
        for task, results in runs.items():
            seconds = statistics.median(r["seconds"] for r in results)
            rss = statistics.median(r["peak_rss_mb"] for r in results)
            each = ", ".join(f"{r['seconds']:.1f}" for r in results)
            print(f"{task:<12} {seconds:8.2f} s ({each})   peak RSS {rss:7.0f} MB   "
                  f"last: {results[-1]['detail']}")
        for device in devices:
            report(runs, workdir, device, args.threads)
    if not args.skip_end_to_end:
        end_to_end = statistics.median(r["seconds"] for r in runs["end_to_end"])
        peak = statistics.median(r["peak_rss_mb"] for r in runs["end_to_end"])
        print(f"end to end {end_to_end:.1f} s (target <= 30 s): "
              f"{'met' if end_to_end <= 30 else 'NOT met'}; peak RSS {peak / 1024:.2f} GB "
              f"(target <= 4 GB): {'met' if peak <= 4096 else 'NOT met'}")


if __name__ == "__main__":
    main()
