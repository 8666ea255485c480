"""A use case's training config, `training/<use case>/training.yaml`: for each named preset the
first stage's training configuration and the second stage's; a preset without `second_stage`
trains the first stage alone.

Each stage is a code preset (`base`) with the file's overrides; seeds may be written as
`{start, count}`. A preset with `cohort: true` trains on a repository cohort only
(`cohort_plan`). The first stage always gets the use case's preprocessing and target phase,
whatever the preset's grid, so that the bundle it makes carries them. Adding a use case adds
this file, not code.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from digital_contrast.batch_manifest import Manifest
from digital_contrast.config import REPO_ROOT
from digital_contrast.errors import DigitalContrastError
from digital_contrast.model.cohort_data import CohortDataError
from digital_contrast.model.lumen_training import (
    LumenTrainingConfig,
    reference_lumen_config,
    smoke_lumen_config,
)
from digital_contrast.model.training import TrainingConfig, reference_config, smoke_config
from digital_contrast.usecases import UseCase

TRAINING_DIR = REPO_ROOT / "training"
CONFIG_FILE = "training.yaml"
FIRST_STAGE_BASES = {"reference": reference_config, "smoke": smoke_config}
SECOND_STAGE_BASES = {"reference": reference_lumen_config, "smoke": smoke_lumen_config}
_SEED_FIELDS = ("seeds", "validation_seeds")


class TrainingPlanError(DigitalContrastError):
    """TRAINING_CONFIG_MISSING (no training config for the use case), TRAINING_CONFIG_INVALID
    (one that does not load, names an unknown base or preset, or gives invalid values)."""


@dataclass(frozen=True)
class TrainingPlan:
    use_case: str
    preset: str
    first_stage: TrainingConfig
    second_stage: LumenTrainingConfig | None  # None: the bundle is the first stage alone
    cohort_only: bool = False  # a preset for a cohort's pairs (`cohort: true`), not the phantom


def training_config_path(use_case: str, root: Path = TRAINING_DIR) -> Path:
    return root / use_case / CONFIG_FILE


def _seeds(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"start", "count"}:
        return tuple(range(int(value["start"]), int(value["start"]) + int(value["count"])))
    return value


def _stage(spec: Any, bases: dict[str, Any], where: str, **fixed: Any) -> Any:
    if not isinstance(spec, dict) or spec.get("base") not in bases:
        raise TrainingPlanError("TRAINING_CONFIG_INVALID",
                                f"{where} needs base: one of {sorted(bases)}")
    overrides = {k: _seeds(v) if k in _SEED_FIELDS else v
                 for k, v in spec.items() if k != "base"}
    try:
        return bases[spec["base"]](**{**overrides, **fixed})
    except (ValidationError, TypeError, ValueError) as exc:
        raise TrainingPlanError("TRAINING_CONFIG_INVALID", f"{where}: {exc}") from None


def training_plan(use_case: UseCase, preset: str, epochs: int | None = None,
                  root: Path = TRAINING_DIR) -> TrainingPlan:
    """The `preset` of the use case's training config (`epochs` overrides the first stage's)."""
    path = training_config_path(use_case.id, root)
    if not path.is_file():
        raise TrainingPlanError("TRAINING_CONFIG_MISSING",
                                f"use case {use_case.id} has no training config "
                                f"(training/{use_case.id}/{CONFIG_FILE})")
    try:
        document = yaml.safe_load(path.read_text("utf-8"))
        presets = document["presets"]
        if document["use_case"] != use_case.id:
            raise ValueError(f"it is for use case {document['use_case']}")
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise TrainingPlanError("TRAINING_CONFIG_INVALID",
                                f"training/{use_case.id}/{CONFIG_FILE}: {exc}") from None
    if not isinstance(presets, dict) or preset not in presets:
        raise TrainingPlanError("TRAINING_CONFIG_INVALID",
                                f"preset must be one of {sorted(presets or ())}")
    where = f"training/{use_case.id}/{CONFIG_FILE} {preset}"
    stages = presets[preset] if isinstance(presets[preset], dict) else {}
    spec = stages.get("first_stage")
    as_written = _stage(spec, FIRST_STAGE_BASES, f"{where} first_stage")
    # The bundle must carry the use case's preprocessing, whatever the preset's grid.
    first = _stage(spec, FIRST_STAGE_BASES, f"{where} first_stage",
                   network=as_written.network.with_preprocessing(use_case.preprocessing),
                   target_phase=use_case.target_phase.value,
                   **({"epochs": epochs} if epochs else {}))
    second_spec = stages.get("second_stage")
    second = None if second_spec is None else _stage(second_spec, SECOND_STAGE_BASES,
                                                     f"{where} second_stage")
    return TrainingPlan(use_case.id, preset, first, second, stages.get("cohort") is True)


def cohort_plan(plan: TrainingPlan, cohort: Manifest) -> TrainingPlan:
    """The plan's first stage trained on the pairs of `cohort` instead of phantom cases.

    A cohort has no labels: a preset with a second stage (trained on phantom crops of the
    aortic lumen) or label weights is refused, as is a manifest for another use case.
    """
    if cohort.header.use_case != plan.use_case:
        raise CohortDataError("TRAINING_COHORT_INVALID", f"the manifest is for use case "
                                                         f"{cohort.header.use_case}, not "
                                                         f"{plan.use_case}")
    if plan.second_stage is not None:
        raise CohortDataError("TRAINING_COHORT_UNSUPPORTED", f"preset {plan.preset} trains a "
                                                             "second stage on phantom labels: "
                                                             "a cohort trains a first stage "
                                                             "alone (e.g. preset cohort-smoke)")
    fields = {**plan.first_stage.model_dump(), "seeds": (), "validation_seeds": (),
              "cohort_manifest_sha256": cohort.sha256}
    try:
        first = TrainingConfig.model_validate(fields)
    except ValidationError as exc:
        raise CohortDataError("TRAINING_COHORT_UNSUPPORTED",
                              f"preset {plan.preset}: {exc.errors()[0]['msg']}") from None
    return TrainingPlan(plan.use_case, plan.preset, first, None, plan.cohort_only)
