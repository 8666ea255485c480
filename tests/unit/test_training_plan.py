"""A use case's training config: presets of its stages, validated, from training/<id>/."""

from pathlib import Path

import pytest

from digital_contrast.model.lumen_training import reference_lumen_config, smoke_lumen_config
from digital_contrast.model.training import reference_config, smoke_config
from digital_contrast.model.training_plan import (
    TrainingPlanError,
    training_config_path,
    training_plan,
)
from digital_contrast.usecases import load_use_case

AAA = load_use_case("aaa-cta")


def _write(root: Path, text: str, use_case: str = "aaa-cta") -> Path:
    path = training_config_path(use_case, root)
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.req("SRS-MOD-014")
@pytest.mark.parametrize(("preset", "first", "second"), [
    ("reference", reference_config, reference_lumen_config),
    ("smoke", smoke_config, smoke_lumen_config)])
def test_the_aaa_cta_config_is_the_code_presets_with_the_use_case_preprocessing(
        preset: str, first, second) -> None:
    plan = training_plan(AAA, preset)
    expected = first(network=first().network.with_preprocessing(AAA.preprocessing),
                     target_phase="arterial")
    assert plan.first_stage == expected and plan.second_stage == second()
    assert plan.first_stage.network.spacing_mm == AAA.preprocessing.working_spacing_mm
    assert training_plan(AAA, preset, epochs=3).first_stage.epochs == 3


@pytest.mark.req("SRS-MOD-014")
def test_overrides_seed_ranges_and_a_first_stage_alone(tmp_path: Path) -> None:
    root = _write(tmp_path, """
use_case: aaa-cta
presets:
  small:
    first_stage:
      base: smoke
      seeds: {start: 10, count: 3}
      validation_seeds: [1000]
      learning_rate: 0.01
      extra_loss_labels: {IVC: 2.0}
      sampled_labels: [IVC]
""")
    plan = training_plan(AAA, "small", root=root)
    assert plan.first_stage.seeds == (10, 11, 12) and plan.first_stage.validation_seeds == (1000,)
    assert plan.first_stage.learning_rate == 0.01 and plan.second_stage is None
    assert plan.first_stage.label_weights()["extra_loss"] == {21: 2.0}
    assert plan.first_stage.label_weights()["sampled"] == (21,)


@pytest.mark.req("SRS-MOD-014")
@pytest.mark.parametrize(("text", "message"), [
    ("use_case: aaa-cta\npresets: {reference: {first_stage: {base: huge}}}\n", "base: one of"),
    ("use_case: aaa-cta\npresets: {other: {first_stage: {base: smoke}}}\n", "preset must be"),
    ("use_case: aaa-cta\npresets: {reference: {first_stage: {base: smoke, learning_rate: -1}}}\n",
     "learning_rate"),
    ("use_case: aaa-cta\npresets: {reference: {first_stage: {base: smoke, lr: 1}}}\n", "lr"),
    ("use_case: aaa-cta\npresets: {reference: {first_stage: {base: smoke, "
     "sampled_labels: [LIVERR]}}}\n", "unknown phantom labels: LIVERR"),
    ("use_case: aaa-cta\npresets: {reference: {first_stage: {base: smoke},"
     " second_stage: {base: smoke, steps: 0}}}\n", "second_stage"),
    ("use_case: abdomen-pv\npresets: {reference: {first_stage: {base: smoke}}}\n",
     "for use case abdomen-pv"),
    ("presets: [\n", "training.yaml"),
])
def test_an_invalid_config_is_refused_with_its_place(tmp_path: Path, text: str,
                                                    message: str) -> None:
    with pytest.raises(TrainingPlanError) as info:
        training_plan(AAA, "reference", root=_write(tmp_path, text))
    assert info.value.code == "TRAINING_CONFIG_INVALID" and message in str(info.value)


@pytest.mark.req("SRS-MOD-014")
def test_a_use_case_without_a_training_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingPlanError) as info:
        training_plan(AAA, "reference", root=tmp_path)
    assert info.value.code == "TRAINING_CONFIG_MISSING"
    assert "training/aaa-cta/training.yaml" in str(info.value)
