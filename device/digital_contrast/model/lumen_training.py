"""Training of the second stage: Dice + cross-entropy with deep supervision on cached crops,
resumable from its last checkpoint (a run on two CPU cores takes an hour or more).

`python -m digital_contrast.model.lumen_training CONFIG.json OUT_DIR` runs or resumes a run:
OUT_DIR holds `checkpoint.pt` (every `checkpoint_every` steps, replaced atomically),
`history.jsonl` (loss and held-out Dice), `energy.jsonl` (CodeCarbon, per invocation) and, at
the end, `weights.pt` and `lumen_stage.json`.
Crops are rendered once into `cache_dir` (see `lumen_data`). Same configuration and platform:
same weights, also across a resume (the sampler's and torch's random states are checkpointed).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from scipy import ndimage

from digital_contrast.carbon.measure import DEFAULT_COUNTRY, measure_energy
from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.model.determinism import deterministic
from digital_contrast.model.lumen_data import (
    LumenCrop,
    cached_crop,
    contrast_table,
    training_parameters,
)
from digital_contrast.model.lumen_stage import (
    LUMEN,
    THROMBUS,
    LumenContrast,
    LumenStageConfig,
    build_lumen_network,
    lumen_input,
)
from digital_contrast.model.network import save_checkpoint, state_dict_bytes
from digital_contrast.phantom.sampling import sample_parameters

ENERGY_LOG = "energy.jsonl"


class LumenTrainingConfig(FrozenSchema):
    """Everything that determines the second stage's weights."""

    seeds: tuple[int, ...] = Field(min_length=1)  # training cases (widened)
    validation_seeds: tuple[int, ...] = ()  # model-selection cases (plain phantom)
    filters: tuple[int, ...] = (16, 32, 64, 128, 160)
    norm: Literal["batch", "instance"] = "batch"
    spacing_mm: tuple[float, float, float] = (2.0, 1.5, 1.5)
    regional_sigma_mm: float | None = Field(3.0, gt=0.0)
    cache_yx: tuple[int, int] = (112, 112)  # cached crop: patches move inside it
    patch: tuple[int, int, int] = (32, 80, 80)
    batch: int = Field(2, ge=1)
    steps: int = Field(4000, ge=1)
    warmup_steps: int = Field(100, ge=0)
    learning_rate: float = Field(2e-3, gt=0)
    min_learning_rate: float = Field(1e-5, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    sac_patch_fraction: float = Field(0.7, ge=0, le=1)  # patches centred on a thrombus slice
    blood_reference_sd_hu: float = Field(1.5, ge=0)  # its estimation error, simulated
    extra_noise_probability: float = Field(0.3, ge=0, le=1)
    extra_noise_max_hu: float = Field(12.0, ge=0)
    blur_probability: float = Field(0.2, ge=0, le=1)  # a softer kernel
    checkpoint_every: int = Field(200, ge=1)
    evaluate_every: int = Field(500, ge=1)
    seed: int = Field(0, ge=0)
    num_threads: int = Field(2, ge=1)

    def stage(self, contrast: LumenContrast) -> LumenStageConfig:
        return LumenStageConfig(filters=self.filters, norm=self.norm,
                                spacing_mm=self.spacing_mm,
                                regional_sigma_mm=self.regional_sigma_mm, contrast=contrast)


def reference_lumen_config(**overrides: Any) -> LumenTrainingConfig:
    """The reference second stage (training/aaa-cta/lumen_stage.json): 320 widened training
    cases, 4000 steps of two 32 x 80 x 80 patches, about 80 minutes on two CPU cores."""
    values: dict[str, Any] = {"seeds": tuple(range(320)),
                              "validation_seeds": tuple(range(1000, 1012)), "steps": 4000}
    return LumenTrainingConfig(**{**values, **overrides})


def smoke_lumen_config(**overrides: Any) -> LumenTrainingConfig:
    """Seconds on two CPU cores: proves the pipeline, learns little."""
    values: dict[str, Any] = {"seeds": (0, 1), "validation_seeds": (), "steps": 2,
                              "filters": (8, 16, 16, 32, 32), "patch": (16, 32, 32),
                              "checkpoint_every": 2, "evaluate_every": 2}
    return LumenTrainingConfig(**{**values, **overrides})


def lumen_contrast(config: LumenTrainingConfig) -> LumenContrast:
    """The contrast table of the training cases (their parameters: nothing is rendered)."""
    cases = [training_parameters(s) for s in config.seeds]
    table = contrast_table([{"kvp": p.scanner.kvp, "lumen_hu": p.intensities.arterial_lumen_hu}
                            for p in cases])
    ilt = float(np.median([p.intensities.thrombus_enhancement_hu for p in cases]))
    return LumenContrast(kvp=tuple(table), lumen_hu=tuple(table.values()),
                         thrombus_enhancement_hu=round(ilt, 2),
                         source=f"medians of {len(cases)} training phantom cases "
                                f"(seeds {min(config.seeds)}-{max(config.seeds)})")


def _window(length: int, size: int, centre: int | None, rng: np.random.Generator) -> int:
    if length <= size:
        return 0
    if centre is None:
        return int(rng.integers(0, length - size + 1))
    return int(np.clip(centre - size // 2 + rng.integers(-size // 4, size // 4 + 1), 0,
                       length - size))


def sample_patch(crop: LumenCrop, config: LumenTrainingConfig, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """(image HU, classes, blood reference) of one augmented training patch."""
    pz, py, px = config.patch
    image, target = crop.image, crop.target
    if image.shape[0] < pz:  # short scans: repeat the edge slices
        extra = pz - image.shape[0]
        pad = ((extra // 2, extra - extra // 2), (0, 0), (0, 0))
        image, target = np.pad(image, pad, mode="edge"), np.pad(target, pad, mode="edge")
    centre = None
    if rng.random() < config.sac_patch_fraction:
        rows = np.flatnonzero((target == THROMBUS).any(axis=(1, 2)))
        if rows.size == 0:
            rows = np.flatnonzero((target == LUMEN).any(axis=(1, 2)))
        centre = int(rng.choice(rows)) if rows.size else None
    z0 = _window(image.shape[0], pz, centre, rng)
    y0, x0 = (int(rng.integers(0, n - p + 1)) for n, p in zip(image.shape[1:], (py, px),
                                                              strict=True))
    box = (slice(z0, z0 + pz), slice(y0, y0 + py), slice(x0, x0 + px))
    patch, classes = image[box].copy(), target[box]
    if rng.random() < config.blur_probability:
        patch = ndimage.gaussian_filter(patch, (0.0, *[rng.uniform(0.3, 0.8)] * 2))
    if rng.random() < config.extra_noise_probability:
        noise = ndimage.gaussian_filter(rng.standard_normal(patch.shape).astype(np.float32),
                                        (0.3, 0.7, 0.7))
        patch += noise * (rng.uniform(0.0, config.extra_noise_max_hu) / max(noise.std(), 1e-6))
    blood = crop.blood_hu + rng.normal(0.0, config.blood_reference_sd_hu)
    return patch, classes, float(blood)


def dice_scores(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Dice of lumen and thrombus (nan where neither has the class)."""
    out = {}
    for name, value in (("lumen", LUMEN), ("thrombus", THROMBUS)):
        p, t = prediction == value, target == value
        total = int(p.sum() + t.sum())
        out[name] = 2.0 * float((p & t).sum()) / total if total else float("nan")
    return out


@torch.no_grad()
def predict_crop(model: torch.nn.Module, image: np.ndarray, blood_hu: float,
                 stage: LumenStageConfig) -> np.ndarray:
    """Class probabilities (3, z, y, x) of a whole crop (z padded to the network's multiple)."""
    model.eval()
    multiple = stage.divisor[0]
    extra = -image.shape[0] % multiple
    padded = np.pad(image, ((extra // 2, extra - extra // 2), (0, 0), (0, 0)), mode="edge")
    hu = torch.from_numpy(np.ascontiguousarray(padded))[None, None]
    logits = model(lumen_input(hu, torch.tensor([blood_hu]), stage))
    probabilities = torch.softmax(logits, dim=1)[0].numpy()
    return probabilities[:, extra // 2: extra // 2 + image.shape[0]]


def evaluate(model: torch.nn.Module, crops: Sequence[LumenCrop], stage: LumenStageConfig,
             size_yx: tuple[int, int]) -> dict[str, float]:
    """Median lumen and thrombus Dice on the central `size_yx` of held-out crops."""
    scores: dict[str, list[float]] = {"lumen": [], "thrombus": []}
    for crop in crops:
        y0, x0 = ((n - s) // 2 for n, s in zip(crop.image.shape[1:], size_yx, strict=True))
        box = (slice(None), slice(y0, y0 + size_yx[0]), slice(x0, x0 + size_yx[1]))
        classes = predict_crop(model, crop.image[box], crop.blood_hu, stage).argmax(axis=0)
        for name, value in dice_scores(classes, crop.target[box]).items():
            if not math.isnan(value):
                scores[name].append(value)
    return {f"val_{k}_dice": float(np.median(v)) for k, v in scores.items() if v}


def _learning_rate(config: LumenTrainingConfig, step: int) -> float:
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_learning_rate + 0.5 * (config.learning_rate - config.min_learning_rate) \
        * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_lumen_stage(config: LumenTrainingConfig, out: Path, cache_dir: Path,
                      log: Callable[[str], None] = print) -> Path:
    """Train (or resume) into `out`; returns the final weights' path."""
    from monai.losses import DiceCELoss

    out.mkdir(parents=True, exist_ok=True)
    (out / "training_config.json").write_text(json.dumps(config.model_dump(mode="json"),
                                                         indent=2) + "\n")
    stage = config.stage(lumen_contrast(config))
    started = time.perf_counter()
    crops = [cached_crop(training_parameters(s), cache_dir, config.spacing_mm, config.cache_yx,
                         stage.z_margin_mm) for s in config.seeds]
    held_out = [cached_crop(sample_parameters(s), cache_dir, config.spacing_mm,
                            config.cache_yx, stage.z_margin_mm) for s in config.validation_seeds]
    log(f"{len(crops)} training and {len(held_out)} held-out crops ready in "
        f"{time.perf_counter() - started:.0f} s")
    loss_fn = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
    heads = stage.deep_supervision_heads
    weights = torch.tensor([0.5 ** i for i in range(heads + 1)])
    weights = weights / weights.sum()
    with deterministic(config.seed, config.num_threads):
        model = build_lumen_network(stage).to(memory_format=torch.channels_last_3d)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                      weight_decay=config.weight_decay)
        rng = np.random.default_rng(config.seed)
        step = 0
        checkpoint = out / "checkpoint.pt"
        if checkpoint.exists():
            state = torch.load(checkpoint, map_location="cpu", weights_only=False)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["sampler"]
            torch.set_rng_state(state["torch"])
            step = int(state["step"])
            log(f"resumed at step {step}")
        history = out / "history.jsonl"
        losses: list[float] = []
        while step < config.steps:
            model.train()
            samples = [sample_patch(crops[int(rng.integers(0, len(crops)))], config, rng)
                       for _ in range(config.batch)]
            hu = torch.from_numpy(np.stack([s[0] for s in samples]))[:, None]
            target = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.int64))[:, None]
            x = lumen_input(hu, torch.tensor([s[2] for s in samples]), stage)
            outputs = model(x.contiguous(memory_format=torch.channels_last_3d))
            if heads:
                loss = sum(w * loss_fn(outputs[:, i], target) for i, w in enumerate(weights))
            else:
                loss = loss_fn(outputs, target)
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(config, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            optimizer.step()
            losses.append(float(loss.detach()))  # type: ignore[union-attr]
            step += 1
            if step % config.evaluate_every == 0 or step == config.steps:
                record = {"step": step, "loss": float(np.mean(losses)),
                          "learning_rate": _learning_rate(config, step - 1),
                          "elapsed_s": round(time.perf_counter() - started, 1),
                          **evaluate(model, held_out, stage, stage.crop_yx)}
                losses = []
                with history.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                log(json.dumps(record))
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint(checkpoint, {"model": model.state_dict(),
                                             "optimizer": optimizer.state_dict(), "step": step,
                                             "sampler": rng.bit_generator.state,
                                             "torch": torch.get_rng_state()})
    weights_path = out / "weights.pt"
    weights_path.write_bytes(state_dict_bytes(model.state_dict()))
    (out / "lumen_stage.json").write_text(json.dumps(stage.to_dict(), indent=2) + "\n")
    return weights_path


def measured_energy_kwh(out: Path) -> float | None:
    """The energy of every invocation of a run folder (`ENERGY_LOG`), None if none measured."""
    path = out / ENERGY_LOG
    if not path.exists():
        return None
    return sum(json.loads(line)["energy_kwh"] for line in path.read_text().splitlines() if line)


def train_measured(config: LumenTrainingConfig, out: Path, cache_dir: Path,
                   log: Callable[[str], None] = print, country_iso_code: str = DEFAULT_COUNTRY
                   ) -> Path:
    """`train_lumen_stage`, its energy (CodeCarbon) appended to ENERGY_LOG."""
    with measure_energy(f"lumen stage {out.name}", country_iso_code) as energy:
        weights = train_lumen_stage(config, out, cache_dir, log)
    with (out / ENERGY_LOG).open("a") as handle:
        handle.write(json.dumps({"energy_kwh": energy.energy_kwh, "method": energy.method,
                                 "duration_s": energy.duration_s}) + "\n")
    return weights


def main(argv: Sequence[str]) -> None:
    config_path, out, *rest = argv
    config = LumenTrainingConfig.model_validate_json(Path(config_path).read_text())
    folder = Path(out)

    def log(message: str) -> None:
        print(time.strftime("%H:%M:%S"), message, flush=True)

    train_measured(config, folder, Path(rest[0]) if rest else folder / "cache", log)


if __name__ == "__main__":
    main(sys.argv[1:])
