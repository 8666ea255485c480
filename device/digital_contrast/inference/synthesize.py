"""`synthesize`: the one entry point from an NCCT volume to a synthetic contrast volume.

Conformity first (an input outside the envelope never reaches the network), then the cascade:
stage 1 on the working spacing (sliding-window inference with fixed overlap and blending)
renders the whole volume (and localises the aorta); where the bundle has a second stage, it
segments lumen and thrombus on a crop around the aorta and renders the lumen (`lumen_step`),
and the two are composed. The enhancement is resampled to the scan's grid, clamped at >= 0
(iodine only adds attenuation), added to the NCCT and clamped to the HU scale. Deterministic
algorithms and a fixed thread count make the output bit-identical for the same input and bundle
on the same platform; its hash is recorded.
"""

import hashlib
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
import torch
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference

from digital_contrast import __version__
from digital_contrast.config import get_settings
from digital_contrast.imaging.conformity import Verdict, require_conformity
from digital_contrast.imaging.ct_image import HU_MAX, HU_MIN
from digital_contrast.imaging.resampling import (
    Box,
    box_affine,
    box_shape,
    to_native_grid,
    to_working_spacing,
    whole_box,
)
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.locked_model import LockedModel
from digital_contrast.inference.lumen_step import LumenPrediction, compose, predict_lumen
from digital_contrast.inference.tissue_gate import tissue_box, tissue_gate
from digital_contrast.model.determinism import deterministic
from digital_contrast.model.network import scale_input
from digital_contrast.model.network_config import NetworkConfig, output_scale_hu
from digital_contrast.usecases import UseCase, load_use_case

# Locked inference settings: part of what produced an image, so recorded and hashed into the
# derived series' UIDs.
ROI_SIZE = (64, 128, 128)  # (slice, row, column) at working spacing; multiples of 16
OVERLAP = 0.25
BLEND_MODE = "gaussian"
# Windows per forward pass: the same output (to float rounding) in less time than one window
# at a time on CPU threads, for about 0.3 GB more memory.
SW_BATCH_SIZE = 4


@dataclass(frozen=True, eq=False)
class WorkingPrediction:
    """The cascade's view: the NCCT on stage 1's working grid and its predicted enhancement
    there (HU at the source tube voltage, not yet clamped), both (1, k, j, i) with the grid's
    affine; and stage 2's prediction on its crop (None for a bundle of stage 1 alone)."""

    image: MetaTensor
    enhancement: MetaTensor
    hu_per_unit: float  # network output unit -> HU at the source kVp
    lumen: LumenPrediction | None


@dataclass(frozen=True)
class SynthesisResult:
    volume: Volume  # the synthetic CT, same geometry and source as the input
    use_case: str
    model_name: str
    model_version: str  # the bundle's own version
    registry_version: str
    bundle_sha256: str
    input_sha256: str
    output_sha256: str
    verdict: Verdict
    timings_s: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    evidence: str = ""
    notice: str | None = None  # the use case's: what the output must not be used for
    platform: dict[str, str] = field(default_factory=dict)
    # The network's working-grid view, kept for the uncertainty step (not part of the record).
    working: WorkingPrediction | None = field(default=None, repr=False)

    @property
    def options(self) -> dict[str, object]:
        """What, beside the bundle, determined the output (hashed into the series UID)."""
        return {"use_case": self.use_case, "roi_size": list(ROI_SIZE), "overlap": OVERLAP,
                "blend": BLEND_MODE}

    def to_dict(self) -> dict:
        return {
            "use_case": self.use_case, "evidence": self.evidence, "notice": self.notice,
            "model": {"name": self.model_name, "version": self.model_version,
                      "registry_version": self.registry_version,
                      "bundle_sha256": self.bundle_sha256},
            "input_sha256": self.input_sha256, "output_sha256": self.output_sha256,
            "options": self.options, "conformity": self.verdict.to_dict(),
            "timings_s": self.timings_s, "warnings": self.warnings, "platform": self.platform,
        }


def volume_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).data).hexdigest()


def platform_info() -> dict[str, str]:
    # The threads inference runs on (`deterministic` sets them for its block only).
    return {"threads": str(get_settings().inference_threads),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "monai": version("monai"), "numpy": np.__version__,
            "digital_contrast": __version__}


def synthesize(volume: Volume, use_case: str | UseCase, model: LockedModel | None = None, *,
               verdict: Verdict | None = None) -> SynthesisResult:
    """`verdict`: the passed conformity verdict of this very volume for this use case, when
    the caller has just checked it (the pipeline, before loading the model); otherwise
    conformity runs here. Either way no input outside the envelope reaches the network."""
    case = load_use_case(use_case) if isinstance(use_case, str) else use_case
    timings: dict[str, float] = {}
    if verdict is None:
        start = time.perf_counter()
        verdict = require_conformity(volume, case)  # ConformityError before any inference
        timings["conformity"] = time.perf_counter() - start
    elif not verdict.passed or verdict.use_case != case.id:
        raise ValueError(f"a passed verdict for {case.id} is required, got one for "
                         f"{verdict.use_case} (passed: {verdict.passed})")

    if model is None:
        start = time.perf_counter()
        model = LockedModel.load(case)
        timings["model_load"] = time.perf_counter() - start
    if model.use_case.id != case.id:
        raise ValueError(f"model for {model.use_case.id} given for use case {case.id}")

    start = time.perf_counter()
    # What needs the NCCT alone (its hash, the tissue gate) runs on a second thread meanwhile:
    # the cascade's single-threaded steps (imports, locating the aorta, the crop) leave a core
    # idle.
    with ThreadPoolExecutor(1) as aside:
        input_sha256 = aside.submit(volume_sha256, volume.array)
        gate = aside.submit(native_gate, volume, model.network_config, 1)
        working = predict_working(volume, model.cascade, source_kvp(volume))
        enhancement = to_native_enhancement(working, volume, model.network_config,
                                            gate.result())
    timings["inference"] = time.perf_counter() - start
    synthetic = np.clip(np.add(volume.array, enhancement, out=enhancement), HU_MIN, HU_MAX,
                        out=enhancement)
    output = volume.with_array(synthetic)
    warnings = [f"{c.code}: {c.message}" for c in verdict.warnings]
    return SynthesisResult(
        volume=output, use_case=case.id, model_name=model.registered.name,
        model_version=model.registered.model_version,
        registry_version=model.registered.version, bundle_sha256=model.bundle_sha256,
        input_sha256=input_sha256.result(), output_sha256=volume_sha256(synthetic),
        verdict=verdict, timings_s={k: round(v, 3) for k, v in timings.items()},
        warnings=warnings, evidence=case.evidence, notice=case.notice, platform=platform_info(),
        working=working)


def source_kvp(volume: Volume) -> float | None:
    """The tube voltage of the input series (conformity has checked it is present and in
    range before inference runs)."""
    value = volume.source.header.get("KVP") if volume.source is not None else None
    return float(value) if value not in (None, "") else None


def run_network(network: torch.nn.Module, image_hu: torch.Tensor, config: NetworkConfig,
                roi_size: tuple[int, int, int] = ROI_SIZE) -> torch.Tensor:
    """(B, 1, k, j, i) HU on the working grid -> (B, 1, k, j, i) network output units on the
    CPU, with the locked sliding-window settings, on the network's device (the CPU in the
    product; benchmarks move it to a GPU). Callers hold `deterministic` and inference mode."""
    device = next(network.parameters()).device
    return sliding_window_inference(scale_input(image_hu, config).to(device),
                                    roi_size=roi_size, sw_batch_size=SW_BATCH_SIZE,
                                    predictor=network, overlap=OVERLAP, mode=BLEND_MODE,
                                    padding_mode="replicate").cpu()


def predict_working(volume: Volume, cascade: Cascade,
                    kvp: float | None = None) -> WorkingPrediction:
    config = cascade.network_config
    hu_per_unit = output_scale_hu(config, kvp)
    if kvp is None:  # the lumen's contrast depends on it, whatever stage 1's convention
        raise ValueError("the tube voltage of the input is required")
    with deterministic(0, get_settings().inference_threads), torch.inference_mode():
        working = to_working_spacing(volume.array, volume.affine, config.spacing_mm)
        output = run_network(cascade.network, working.as_tensor()[None], config)
        enhancement = MetaTensor(output[0] * hu_per_unit, affine=working.affine)
        lumen = None
        if cascade.lumen_network is not None and cascade.lumen_config is not None:
            lumen = predict_lumen(cascade.lumen_network, cascade.lumen_config, volume.array,
                                  volume.affine, working.as_tensor()[0].numpy(),
                                  enhancement.as_tensor()[0].numpy(),
                                  working.affine.numpy(), kvp)
    return WorkingPrediction(image=working, enhancement=enhancement, hu_per_unit=hu_per_unit,
                             lumen=lumen)


@dataclass(frozen=True, eq=False)
class NativeGate:
    """Where the enhancement may go on a volume's grid: the block `box` (None: nowhere) and,
    when the bundle has a tissue gate, the gate's weights on that block."""

    box: Box | None
    weights: np.ndarray | None


def native_gate(volume: Volume, config: NetworkConfig, threads: int | None = None
                ) -> NativeGate:
    """With a tissue gate, only its box (the body) can be enhanced: beyond it the gate is 0.
    `threads` for its filter (default: torch's)."""
    gate = config.tissue_gate_hu
    if gate is None:
        return NativeGate(whole_box(volume.shape), None)
    box = tissue_box(volume.array, volume.spacing, gate)
    weights = None if box is None else \
        tissue_gate(volume.array, volume.spacing, gate, box, threads)
    return NativeGate(box, weights)


def to_native_enhancement(prediction: WorkingPrediction, volume: Volume,
                          config: NetworkConfig, gate: NativeGate | None = None) -> np.ndarray:
    """Enhancement in HU on the volume's own grid: stage 1's with stage 2's (if any) composed in,
    clamped at >= 0 and, when the bundle has a tissue gate, zero where the NCCT is not blood or
    soft tissue; resampled and composed on the gate's box only. `gate`: `native_gate` of
    this volume and config, when already computed."""
    gate = gate or native_gate(volume, config)
    native = np.zeros(volume.shape, dtype=np.float32)
    if gate.box is None:  # nothing in the scan takes up iodine
        return native
    affine = box_affine(volume.affine, gate.box)
    # Fixed threads: the resampling's matrix products may round by them.
    with deterministic(0, get_settings().inference_threads), torch.inference_mode():
        inside = to_native_grid(prediction.enhancement, affine, box_shape(gate.box))
        if prediction.lumen is not None:
            inside = compose(inside, prediction.lumen, affine)
        inside = np.maximum(inside, 0.0, out=inside)
    if gate.weights is not None:
        inside *= gate.weights
    native[gate.box] = inside
    return native


def predict_enhancement(volume: Volume, cascade: Cascade, kvp: float | None = None
                        ) -> np.ndarray:
    """`predict_working` then `to_native_enhancement`. Callers other than `synthesize`
    (validation of a candidate bundle) must vouch for the networks themselves."""
    return to_native_enhancement(predict_working(volume, cascade, kvp), volume,
                                 cascade.network_config)
