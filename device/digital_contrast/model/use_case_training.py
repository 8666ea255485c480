"""Training for a use case: the stages its training config names (`training_plan`), written as
one unvalidated bundle with its provenance."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.model.bundle import MANIFEST, WEIGHTS, Bundle, write_bundle
from digital_contrast.model.lumen_stage import LumenStageConfig
from digital_contrast.model.network import load_state_dict_bytes
from digital_contrast.model.network_config import NetworkConfig
from digital_contrast.model.training import TrainingResult
from digital_contrast.usecases import UseCase


@dataclass(frozen=True)
class LumenStageRun:
    """A finished second-stage run: its folder (`lumen_training`'s outputs) and energy."""

    folder: Path
    energy_kwh: float | None  # None: not measured (a run trained outside `model train`)

    @property
    def config(self) -> LumenStageConfig:
        return LumenStageConfig.model_validate_json(
            (self.folder / "lumen_stage.json").read_text("utf-8"))

    def state_dict(self) -> dict:
        return load_state_dict_bytes((self.folder / "weights.pt").read_bytes())


def write_trained_bundle(result: TrainingResult, lumen: LumenStageRun | None,
                         use_case: UseCase, model_version: str, bundles_dir: Path) -> Bundle:
    """`<bundles_dir>/<use case>/<run id>/`: the trained stages as a bundle, not yet
    validated (`lumen` None: the first stage alone)."""
    provenance = {"training_run_id": result.run_id,
                  "data_manifest_sha256": result.manifest_sha256,
                  "weights_sha256": result.weights_sha256,
                  "energy_kwh": result.energy.energy_kwh,
                  "duration_s": round(result.duration_s, 1)}
    if lumen is not None:
        provenance["lumen_stage_energy_kwh"] = lumen.energy_kwh
    if result.cohort is not None:  # real pairs, not the phantom: which, and how labelled
        provenance["training_cohort"] = result.cohort
    return write_bundle(bundles_dir / use_case.id / result.run_id, use_case=use_case,
                        model_version=model_version, network=result.network,
                        state_dict=result.state_dict,
                        lumen_stage=None if lumen is None else lumen.config,
                        lumen_state_dict=None if lumen is None else lumen.state_dict(),
                        provenance=provenance)


def assemble_bundle(first_stage: Path, lumen: LumenStageRun, use_case: UseCase,
                    model_version: str, out: Path) -> Bundle:
    """A cascade from the first stage of an earlier bundle (of any format: its `bundle.json`
    network and `weights.pt`) and a finished second-stage run, nnU-Net style: a second stage
    retrained without retraining the first. The first stage's provenance is kept."""
    manifest = json.loads((first_stage / MANIFEST).read_text("utf-8"))
    weights = (first_stage / WEIGHTS).read_bytes()
    history = (lumen.folder / "history.jsonl").read_text("utf-8").splitlines()
    return write_bundle(out, use_case=use_case, model_version=model_version,
                        network=NetworkConfig.from_dict(manifest["network"]),
                        state_dict=load_state_dict_bytes(weights), lumen_stage=lumen.config,
                        lumen_state_dict=lumen.state_dict(),
                        provenance={
                            "first_stage": {"from_model_version": manifest["model_version"],
                                            "weights_sha256":
                                                hashlib.sha256(weights).hexdigest(),
                                            **manifest.get("provenance", {})},
                            "lumen_stage": {
                                "training_config_sha256": hashlib.sha256(
                                    (lumen.folder / "training_config.json").read_bytes()
                                ).hexdigest(),
                                "last_evaluation": json.loads(history[-1]) if history else {},
                                "energy_kwh": lumen.energy_kwh}})
