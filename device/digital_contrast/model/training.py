"""Deterministic, vessel-weighted training of the enhancement network on phantom cases, or on
the native + contrast pairs of a repository cohort (`cohort_data`).

Each training is one MLflow run (see `tracking`) whose energy is measured (CodeCarbon).
Same configuration + same platform => same weights, bit for bit: seeded MONAI/torch RNGs, a
seeded data loader in the main process, deterministic algorithms and a fixed thread count.
After each epoch the output folder gets a checkpoint (weights, optimiser, schedule, history,
random state); `train` given a folder that holds one resumes the same MLflow run after the last
finished epoch (the finished epochs' patches drawn again and dropped), and the weights are those
of a run that went through (runs take an hour or more on two CPU cores). The energy of every
invocation is appended to the folder's energy log and summed.

A config may start from earlier weights (fine-tuning): named by path (relative to the
repository) and SHA-256, so the config still determines the result; other bytes are refused.
With segmentation classes (the network's), the loss adds Dice + cross-entropy of the class
channels against the phantom labels of each class, times `segmentation_loss_weight`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from monai.data import CacheDataset, DataLoader
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.transforms import Compose
from pydantic import Field, model_validator

from digital_contrast.batch_manifest import Manifest
from digital_contrast.carbon.measure import DEFAULT_COUNTRY, EnergyMeasurement, measure_energy
from digital_contrast.config import REPO_ROOT, get_settings
from digital_contrast.errors import DigitalContrastError
from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.phantom.labels import Label

from .cohort_data import (
    CohortDataError,
    cohort_data_manifest,
    cohort_dataset,
    cohort_items,
    cohort_training_transforms,
)
from .data import (
    IMAGE,
    LABELS,
    LOSS_WEIGHT,
    LUMEN_LABELS,
    SEGMENT,
    TARGET,
    ascii_json,
    data_manifest,
    manifest_sha256,
    phantom_dataset,
    training_transforms,
    validation_transforms,
)
from .determinism import deterministic
from .network import build_network, load_state_dict_bytes, save_checkpoint, state_dict_bytes
from .network_config import NetworkConfig
from .tracking import DEFAULT_EXPERIMENT, TrainingRun

# progress(epoch, step, loss): 0-based epoch, 0-based step within the epoch, that step's loss.
ProgressCallback = Callable[[int, int, float], None]
WEIGHTS_FILE = "weights.pt"
NETWORK_FILE = "network_config.json"
CONFIG_FILE = "training_config.json"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILE = "run.json"  # the MLflow run a resumed training continues
ENERGY_LOG = "energy.jsonl"  # one line per invocation


class TrainingResumeError(DigitalContrastError):
    """TRAINING_RESUME_MISMATCH: the folder holds a checkpoint of another configuration."""


class TrainingInitError(DigitalContrastError):
    """TRAINING_INITIAL_WEIGHTS_INVALID: the weights a config starts from are missing, are not
    the bytes its SHA-256 names, or do not fit its network."""


class InitialWeights(FrozenSchema):
    """Weights to start from: a first-stage `weights.pt` (a bundle's or a training's).
    `new_outputs`: the network has more output channels than those weights; the tensors whose
    shape differs (those of the output layers) keep their fresh initialisation."""

    path: str = Field(min_length=1)  # relative to the repository root, or absolute
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    new_outputs: bool = False

    def load(self) -> dict[str, torch.Tensor]:
        path = Path(self.path) if Path(self.path).is_absolute() else REPO_ROOT / self.path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrainingInitError("TRAINING_INITIAL_WEIGHTS_INVALID",
                                    f"cannot read {self.path}: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise TrainingInitError("TRAINING_INITIAL_WEIGHTS_INVALID",
                                    f"{self.path} is not the weights of SHA-256 "
                                    f"{self.sha256[:12]}...")
        return load_state_dict_bytes(data)


class TrainingConfig(FrozenSchema):
    """Everything that determines the trained weights (the network config included)."""

    seeds: tuple[int, ...] = ()  # phantom cases trained on (none: a cohort's)
    validation_seeds: tuple[int, ...] = ()  # held-out cases, evaluated after each epoch
    phantom_size: Literal["small", "clinical"] = "small"
    target_phase: Literal["arterial", "portal_venous"] = "arterial"
    network: NetworkConfig = NetworkConfig()
    patch_size: tuple[int, int, int] = (32, 32, 32)  # voxels on the working grid
    volumes_per_batch: int = Field(2, ge=1)
    patches_per_volume: int = Field(2, ge=1)  # batch = volumes_per_batch x this
    epochs: int = Field(1, ge=1)
    steps_per_epoch: int = Field(8, ge=1)  # an epoch is a step count: patches are random
    learning_rate: float = Field(1e-3, gt=0.0)
    min_learning_rate: float = Field(5e-5, ge=0.0)  # end of the cosine schedule
    weight_decay: float = Field(1e-5, ge=0.0)
    lumen_loss_weight: float = Field(10.0, ge=0.0)  # extra L1 weight in the arterial lumen
    thrombus_loss_weight: float = Field(10.0, ge=0.0)  # extra L1 weight in thrombus
    vessel_sampling_weight: float = Field(50.0, ge=1.0)  # patch-centre odds, vessel vs not
    # A use case's phantom extension (e.g. abdomen-pv), the labels it adds to the loss (label
    # name: extra L1 weight) and those patch centres favour as they favour vessels.
    phantom_extension: str | None = None
    extra_loss_labels: dict[str, float] = Field(default_factory=dict)
    sampled_labels: tuple[str, ...] = ()
    validation_overlap: float = Field(0.25, ge=0.0, lt=1.0)
    initial_weights: InitialWeights | None = None  # None: a fresh initialisation
    # Segmentation classes and the phantom labels of each (the network's classes are its keys).
    segmentation_labels: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    segmentation_loss_weight: float = Field(1.0, ge=0.0)
    # Instead of phantom seeds, the pairs of a repository cohort: its batch manifest's SHA-256
    # (cohort_data); the manifest itself is given to `train`, which checks it is this one.
    cohort_manifest_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = Field(2, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _classes_from_labels(cls, data: Any) -> Any:
        """The network segments the classes `segmentation_labels` names, in its order."""
        if not isinstance(data, dict) or not data.get("segmentation_labels"):
            return data
        network = data.get("network", NetworkConfig())
        fields = (network.model_dump() if isinstance(network, NetworkConfig) else dict(network))
        return {**data, "network": {**fields,
                                    "segmentation_classes": tuple(data["segmentation_labels"])}}

    @model_validator(mode="after")
    def _check(self) -> TrainingConfig:
        divisor = self.network.divisor
        if any(p % divisor for p in self.patch_size):
            raise ValueError(f"patch_size entries must be multiples of {divisor}"
                             " (the network's total downsampling)")
        if self.cohort_manifest_sha256 is not None:
            if (self.seeds or self.validation_seeds or self.phantom_extension
                    or self.extra_loss_labels or self.sampled_labels or self.segmentation_labels):
                raise ValueError("a cohort's pairs carry no phantom seeds or labels: seeds, "
                                 "phantom_extension and the label weights must be empty")
        elif not self.seeds:
            raise ValueError("seeds: at least one phantom case, or a cohort")
        if set(self.seeds) & set(self.validation_seeds):
            raise ValueError("a seed cannot be both a training and a validation case")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("training seeds must be distinct")
        members = [name for names in self.segmentation_labels.values() for name in names]
        unknown = sorted((set(self.extra_loss_labels) | set(self.sampled_labels) | set(members))
                         - set(Label.__members__))
        if unknown:
            raise ValueError(f"unknown phantom labels: {', '.join(unknown)}")
        if any(w < 0 for w in self.extra_loss_labels.values()):
            raise ValueError("extra loss weights must be >= 0")
        if tuple(self.segmentation_labels) != self.network.segmentation_classes:
            raise ValueError("a network with segmentation_classes needs segmentation_labels")
        if len(set(members)) != len(members) or not all(self.segmentation_labels.values()):
            raise ValueError("each segmentation class needs its own, non-empty phantom labels")
        return self

    def label_weights(self) -> dict[str, Any]:
        """The label weighting of `data`'s transforms, as keyword arguments."""
        return {"lumen_weight": self.lumen_loss_weight,
                "thrombus_weight": self.thrombus_loss_weight,
                "vessel_weight": self.vessel_sampling_weight,
                "extra_loss": {int(Label[n]): w for n, w in self.extra_loss_labels.items()},
                "sampled": tuple(int(Label[n]) for n in self.sampled_labels),
                "segment": tuple(tuple(int(Label[n]) for n in names)
                                 for names in self.segmentation_labels.values())}

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Working grid (slice, row, column); stored in the network config for inference."""
        return self.network.spacing_mm

    def to_dict(self) -> dict[str, Any]:
        # without a cohort the key is left out: phantom configurations keep their bytes
        return self.model_dump(mode="json", exclude=None if self.cohort_manifest_sha256
                               else {"cohort_manifest_sha256"})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingConfig:
        return cls.model_validate(dict(data))


def smoke_config(**overrides: Any) -> TrainingConfig:
    """Seconds on two CPU cores: proves the pipeline, learns little."""
    values: dict[str, Any] = {
        "seeds": (0, 1), "validation_seeds": (2,),
        "network": NetworkConfig(channels=(8, 16, 32), strides=(2, 2), num_res_units=1,
                                 spacing_mm=(3.0, 3.0, 3.0)),
        "patch_size": (32, 32, 32), "volumes_per_batch": 2, "patches_per_volume": 1,
        "epochs": 1, "steps_per_epoch": 12, "learning_rate": 3e-3, "device": "cpu"}
    return TrainingConfig(**{**values, **overrides})


def reference_config(**overrides: Any) -> TrainingConfig:
    """The reference model: 5400 steps of 4 x 64^3 patches; about 40 minutes on two CPU cores
    of the slower 2-core machine (bench/inference_speed.py's plain call ~5 s there).

    64 phantom cases (cheap to render; fewer overfit), 2 mm grid, 64^3 patches (128 mm: a
    whole aneurysm cross-section with its wall, which is what tells thrombus from lumen), four
    downsamplings for context, 2.8 M parameters (11 MB).
    """
    values: dict[str, Any] = {
        "seeds": tuple(range(64)), "validation_seeds": (1000, 1001, 1002, 1003),
        "network": NetworkConfig(channels=(16, 32, 64, 128, 128), strides=(2, 2, 2, 2),
                                 num_res_units=2, spacing_mm=(2.0, 2.0, 2.0)),
        "patch_size": (64, 64, 64), "volumes_per_batch": 2, "patches_per_volume": 2,
        "epochs": 12, "steps_per_epoch": 450, "learning_rate": 2e-3,
        "thrombus_loss_weight": 20.0}
    return TrainingConfig(**{**values, **overrides})


@dataclass
class TrainingResult:
    run_id: str
    config: TrainingConfig
    weights_path: Path  # local copy; the same bytes are the run's `model/weights.pt` artifact
    weights_sha256: str
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    manifest_sha256: str
    metrics: dict[str, float]  # last epoch
    history: list[dict[str, float]]  # one entry per epoch
    step_losses: list[float]
    energy: EnergyMeasurement
    duration_s: float
    cohort: dict[str, Any] | None = None  # the cohort trained on (None: the phantom)

    @property
    def network(self) -> NetworkConfig:
        return self.config.network


def weighted_l1(prediction: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
    """mean(weight x |error|); weight = 1 + extra lumen/thrombus weight, so L1 + that term."""
    return (weight * (prediction - target).abs()).mean()


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


def _batches(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches: a new shuffled pass (and new random patches) after each pass."""
    while True:
        yield from loader


@torch.no_grad()
def evaluate(model: torch.nn.Module, volumes: Sequence[Mapping[str, torch.Tensor]],
             config: TrainingConfig, device: torch.device) -> dict[str, float]:
    """Mean absolute enhancement error (HU) on whole held-out volumes, as inference will see it.

    The prediction is clamped at >= 0 like inference does. Regions: the body (not air), the
    arterial lumen, the thrombus (there, any enhancement is an error) and each label the
    configuration gives an extra loss weight. With a kVp-normalised
    output, the errors are in HU at the reference tube voltage.
    """
    model.eval()
    scale = config.network.output_scale_hu
    emphasised = {name.lower(): int(Label[name]) for name in config.extra_loss_labels}
    sums: dict[str, float] = dict.fromkeys(["body", "lumen", "thrombus", *emphasised], 0.0)
    counts: dict[str, int] = dict.fromkeys(sums, 0)
    lumen_values = torch.tensor([int(v) for v in LUMEN_LABELS])
    for volume in volumes:
        image = volume[IMAGE][None].to(device)
        prediction = sliding_window_inference(
            image, roi_size=config.patch_size, sw_batch_size=4, predictor=model,
            overlap=config.validation_overlap)
        if not isinstance(prediction, torch.Tensor):
            raise TypeError("the network must return one tensor")
        error = ((prediction[0, :1].cpu() * scale).clamp(min=0.0) - volume[TARGET] * scale).abs()
        labels = volume[LABELS].round().to(torch.int64)
        masks = {"body": labels != int(Label.AIR), "lumen": torch.isin(labels, lumen_values),
                 "thrombus": labels == int(Label.THROMBUS),
                 **{name: labels == value for name, value in emphasised.items()}}
        for region, mask in masks.items():
            sums[region] += float(error[mask].sum())
            counts[region] += int(mask.sum())
    return {f"val_{region}_l1_hu": sums[region] / counts[region]
            for region in sums if counts[region]}


def initial_network(config: TrainingConfig) -> torch.nn.Module:
    """The network before training: fresh, or holding the config's initial weights."""
    model = build_network(config.network)
    initial = config.initial_weights
    if initial is not None:
        state = initial.load()
        if initial.new_outputs:
            own = model.state_dict()
            kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
            if len(kept) == len(state) or set(state) != set(own):
                raise TrainingInitError("TRAINING_INITIAL_WEIGHTS_INVALID",
                                        f"{initial.path} is not this network with fewer "
                                        "outputs: new_outputs needs the same layers, the "
                                        "output layers of another shape")
            state = own | kept
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # another architecture: names or shapes differ
            raise TrainingInitError("TRAINING_INITIAL_WEIGHTS_INVALID",
                                    f"{initial.path} does not fit the network: "
                                    f"{str(exc).splitlines()[0]}") from None
    return model


@dataclass
class _Fit:
    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    step_losses: list[float]


def _datasets(config: TrainingConfig, manifest: Mapping[str, Any],
              pairs: list[dict[str, str]] | None) -> tuple[CacheDataset, CacheDataset]:
    """Training and validation data: the manifest's phantom cases, or a cohort's `pairs`
    (no validation volumes: a cohort is validated under its protocol, not per epoch)."""
    workers = min(config.num_threads, len(pairs if pairs is not None else config.seeds))
    if pairs is not None:
        return (cohort_dataset(pairs, cohort_training_transforms(
            config.network, config.patch_size, config.patches_per_volume,
            config.lumen_loss_weight, config.vessel_sampling_weight), workers),
            CacheDataset([], transform=Compose([])))
    weights = {"target_phase": config.target_phase, **config.label_weights()}
    return (phantom_dataset(manifest["training"], training_transforms(
        config.network, config.patch_size, config.patches_per_volume, **weights), workers),
        phantom_dataset(manifest["validation"], validation_transforms(
            config.network, config.patch_size, **weights), workers))


def _fit(config: TrainingConfig, manifest: Mapping[str, Any],
         pairs: list[dict[str, str]] | None, device: torch.device,
         progress: ProgressCallback | None,
         on_epoch: Callable[[dict[str, float], int], None], checkpoint: Path) -> _Fit:
    train_data, val_data = _datasets(config, manifest, pairs)
    # Channels-last 3D weights: about twice as fast on CPU (oneDNN), same results.
    model = initial_network(config).to(device, memory_format=torch.channels_last_3d)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * config.steps_per_epoch,
        eta_min=min(config.min_learning_rate, config.learning_rate))
    scale = config.network.output_scale_hu
    # batch=True: Dice over the whole batch, so a class absent from one patch is no 0/0.
    segmentation_loss = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    history: list[dict[str, float]] = []
    step_losses: list[float] = []
    # Main-process loading with a seeded generator: MONAI reseeds the random crops from it.
    loader = DataLoader(train_data, batch_size=config.volumes_per_batch, shuffle=True,
                        num_workers=0,
                        generator=torch.Generator().manual_seed(config.seed))
    batches = _batches(loader)
    first_epoch = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        history, step_losses = state["history"], state["step_losses"]
        first_epoch = len(history)
        # The finished epochs' patches drawn again and dropped (cropping cached volumes costs
        # little beside a training step), so the rest is drawn as in a run that went through.
        for _ in range(first_epoch * config.steps_per_epoch):
            next(batches)
        torch.set_rng_state(state["torch"])
    for epoch in range(first_epoch, config.epochs):
        model.train()
        losses: list[float] = []
        l1_hu: list[float] = []
        learning_rate = optimizer.param_groups[0]["lr"]
        for step in range(config.steps_per_epoch):
            batch = next(batches)
            image, target = batch[IMAGE].to(device), batch[TARGET].to(device)
            prediction = model(image)
            loss = weighted_l1(prediction[:, :1], target, batch[LOSS_WEIGHT].to(device))
            if config.segmentation_labels:
                loss = loss + config.segmentation_loss_weight * segmentation_loss(
                    prediction[:, 1:], batch[SEGMENT].to(device).long())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            l1_hu.append(float((prediction[:, :1].detach() - target).abs().mean()) * scale)
            if progress is not None:
                progress(epoch, step, losses[-1])
        metrics = {"train_loss": sum(losses) / len(losses),
                   "train_l1_hu": sum(l1_hu) / len(l1_hu), "learning_rate": learning_rate}
        if len(val_data):
            metrics.update(evaluate(model, [val_data[i] for i in range(len(val_data))],
                                    config, device))
        history.append(metrics)
        step_losses += losses
        on_epoch(metrics, epoch)
        save_checkpoint(checkpoint, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "torch": torch.get_rng_state(),
            "history": history, "step_losses": step_losses})
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return _Fit(state, history, step_losses)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _resumable_run(out: Path, config: TrainingConfig) -> str | None:
    """The MLflow run id of an earlier invocation in `out`, None for a fresh folder;
    TRAINING_RESUME_MISMATCH when the folder trained another configuration."""
    if not (out / RUN_FILE).exists():
        return None
    found, wanted = json.loads((out / CONFIG_FILE).read_text("utf-8")), config.to_dict()
    if found != wanted:
        differs = sorted(k for k in found.keys() | wanted.keys()
                         if found.get(k) != wanted.get(k))
        raise TrainingResumeError("TRAINING_RESUME_MISMATCH",
                                  f"{out} holds a training of another configuration (differs "
                                  f"in {', '.join(differs)}); use a new output folder")
    run_id: str = json.loads((out / RUN_FILE).read_text("utf-8"))["run_id"]
    return run_id


def total_energy(out: Path) -> EnergyMeasurement:
    """Every invocation's measurement in `out` (ENERGY_LOG) summed; how it was measured is the
    last invocation's, and it counts as measured only if every invocation was."""
    parts = [json.loads(line) for line in (out / ENERGY_LOG).read_text().splitlines() if line]
    total = EnergyMeasurement(**parts[-1])
    for name in total.metrics():
        setattr(total, name, sum(part[name] for part in parts))
    total.measured = all(part["measured"] for part in parts)
    return total


def train(config: TrainingConfig, tracking_uri: str | None = None,
          progress: ProgressCallback | None = None, *, output_dir: Path | None = None,
          experiment_name: str = DEFAULT_EXPERIMENT, artifact_location: str | None = None,
          country_iso_code: str = DEFAULT_COUNTRY,
          cohort: Manifest | None = None) -> TrainingResult:
    """Train, tracked as one MLflow run; weights land in `output_dir` and in the run.

    A configuration naming a cohort trains on the pairs of `cohort`, the batch manifest of
    that SHA-256, every pair checked before the run starts (`cohort_data.cohort_items`).

    `tracking_uri` defaults to the settings' MLflow URI, `output_dir` to
    `<data_dir>/training/<run id>`. An `output_dir` holding an interrupted training of the same
    configuration resumes it (its MLflow run, after its last finished epoch).
    """
    started = time.perf_counter()
    device = resolve_device(config.device)
    pairs = None
    if config.cohort_manifest_sha256 is None:
        manifest = data_manifest(config.seeds, config.validation_seeds, config.phantom_size,
                                 config.target_phase, config.phantom_extension)
    elif cohort is None or cohort.sha256 != config.cohort_manifest_sha256:
        raise CohortDataError("TRAINING_COHORT_CHANGED", "the batch manifest given is not the "
                                                         "one the configuration names")
    else:
        pairs = cohort_items(cohort, config.target_phase)
        manifest = cohort_data_manifest(cohort, config.target_phase)
    digest = manifest_sha256(manifest)
    earlier = _resumable_run(Path(output_dir), config) if output_dir else None
    if config.initial_weights is not None:
        initial_network(config)  # refused weights fail here, before an MLflow run starts
    if earlier is None:
        run = TrainingRun.start(tracking_uri, config.to_dict(), digest, experiment_name,
                                run_name=f"train-{config.target_phase}-{digest[:8]}",
                                artifact_location=artifact_location,
                                tags={"device": device.type})
    else:
        run = TrainingRun.resume(tracking_uri, earlier)
    with run:
        out = Path(output_dir) if output_dir else get_settings().data_dir / "training" / run.run_id
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / CONFIG_FILE, config.to_dict())
        _write_json(out / RUN_FILE, {"run_id": run.run_id})
        measured: EnergyMeasurement | None = None
        try:
            with (measure_energy(f"training {run.run_id}", country_iso_code) as measured,
                  deterministic(config.seed, config.num_threads)):
                fit = _fit(config, manifest, pairs, device, progress,
                           lambda metrics, epoch: run.log_metrics(metrics, step=epoch),
                           out / CHECKPOINT_FILE)
        finally:  # after the measurement closed; an interrupted invocation's energy counts too
            if measured is not None:
                with (out / ENERGY_LOG).open("a", encoding="utf-8") as log:
                    log.write(json.dumps(measured.to_dict()) + "\n")
        energy = total_energy(out)
        run.log_energy(energy)

        weights = state_dict_bytes(fit.state_dict)
        weights_sha256 = hashlib.sha256(weights).hexdigest()
        (out / WEIGHTS_FILE).write_bytes(weights)
        _write_json(out / NETWORK_FILE, config.network.to_dict())
        # Exactly the hashed bytes: sha256 of the file == manifest_sha256.
        (out / "data_manifest.json").write_text(ascii_json(manifest), encoding="ascii")
        for name in (WEIGHTS_FILE, NETWORK_FILE):
            run.log_artifact(out / name, "model")
        run.log_artifact(out / CONFIG_FILE)
        run.log_artifact(out / "data_manifest.json")
        run.set_tags({"weights_sha256": weights_sha256})
        return TrainingResult(
            run_id=run.run_id, config=config, weights_path=out / WEIGHTS_FILE,
            weights_sha256=weights_sha256, state_dict=fit.state_dict, manifest_sha256=digest,
            metrics=fit.history[-1], history=fit.history, step_losses=fit.step_losses,
            energy=energy, duration_s=time.perf_counter() - started,
            cohort=None if pairs is None else {"batch_manifest_sha256": cohort.sha256,
                                               **manifest["cohort"]})
