"""Training for a use case: a named preset made to carry the use case's preprocessing and
target phase, and the trained weights written as an unvalidated bundle with its provenance."""

from collections.abc import Callable
from pathlib import Path

from digital_contrast.model.bundle import Bundle, write_bundle
from digital_contrast.model.training import (
    TrainingConfig,
    TrainingResult,
    reference_config,
    smoke_config,
)
from digital_contrast.usecases import UseCase

PRESETS: dict[str, Callable[..., TrainingConfig]] = {"reference": reference_config,
                                                     "smoke": smoke_config}


def use_case_config(use_case: UseCase, preset: str, epochs: int | None = None
                    ) -> TrainingConfig:
    """The preset for `use_case` (ValueError for an unknown preset)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}")
    make = PRESETS[preset]
    # The bundle must carry the use case's preprocessing, whatever the preset's grid.
    network = make().network.with_preprocessing(use_case.preprocessing)
    return make(network=network, target_phase=use_case.target_phase.value,
                **({"epochs": epochs} if epochs else {}))


def write_trained_bundle(result: TrainingResult, use_case: UseCase, model_version: str,
                         bundles_dir: Path) -> Bundle:
    """`<bundles_dir>/<use case>/<run id>/`: the weights as a bundle, not yet validated."""
    return write_bundle(bundles_dir / use_case.id / result.run_id, use_case=use_case,
                        model_version=model_version, network=result.network,
                        state_dict=result.state_dict,
                        provenance={"training_run_id": result.run_id,
                                    "data_manifest_sha256": result.manifest_sha256,
                                    "weights_sha256": result.weights_sha256,
                                    "energy_kwh": result.energy.energy_kwh,
                                    "duration_s": round(result.duration_s, 1)})
