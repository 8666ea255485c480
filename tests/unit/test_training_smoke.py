"""Enhancement network, deterministic vessel-weighted training and its MLflow record."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow import MlflowClient

import digital_contrast
from digital_contrast.model.data import (
    LOSS_WEIGHT,
    LUMEN_LABELS,
    data_manifest,
    manifest_sha256,
    phantom_dataset,
    training_transforms,
    validation_transforms,
)
from digital_contrast.model.network import (
    build_network,
    load_state_dict_bytes,
    scale_input,
    state_dict_bytes,
)
from digital_contrast.model.network_config import NetworkConfig, output_scale_hu
from digital_contrast.model.training import (
    CHECKPOINT_FILE,
    ENERGY_LOG,
    RUN_FILE,
    InitialWeights,
    TrainingConfig,
    TrainingInitError,
    TrainingResult,
    TrainingResumeError,
    reference_config,
    smoke_config,
    train,
)
from digital_contrast.phantom.labels import Label

EPOCHS, STEPS = 2, 8


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The smoke configuration trained twice into one temporary MLflow store."""
    root = tmp_path_factory.mktemp("training")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = smoke_config(epochs=EPOCHS, steps_per_epoch=STEPS)
    calls: list[tuple[int, int, float]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root / ".")  # anything written relative to the cwd would show up here
        first = train(config, uri, progress=lambda *a: calls.append(a),
                      output_dir=root / "first")
        second = train(config, uri, output_dir=root / "second")
    yield {"uri": uri, "root": root, "config": config, "first": first, "second": second,
           "calls": calls}


@pytest.mark.req("SRS-MOD-001")
def test_network_config_round_trips_and_maps_a_patch_to_a_patch() -> None:
    for config in (smoke_config().network, reference_config().network):
        assert NetworkConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        network = build_network(config).eval()
        patch = torch.zeros(1, 1, 32, 48, 32)
        with torch.no_grad():
            assert network(patch).shape == patch.shape
    training = reference_config()
    assert TrainingConfig.from_dict(json.loads(json.dumps(training.to_dict()))) == training


@pytest.mark.req("SRS-MOD-001")
def test_weights_are_small_and_reload_exactly() -> None:
    state = build_network(reference_config().network).state_dict()
    data = state_dict_bytes(state)
    assert len(data) < 20 * 1024**2
    reloaded = load_state_dict_bytes(data)
    assert all(torch.equal(reloaded[k], v) for k, v in state.items())


@pytest.mark.req("SRS-MOD-001")
def test_preprocessing_is_the_stated_window_and_invalid_configs_fail() -> None:
    config = NetworkConfig(hu_window=(-200.0, 600.0))
    hu = torch.tensor([-1024.0, -200.0, 200.0, 600.0, 3000.0]).reshape(1, 1, 1, 5)
    assert scale_input(hu, config).flatten().tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]
    detail = NetworkConfig(hu_window=(-200.0, 600.0), detail_window=(0.0, 100.0))
    two_channels = scale_input(torch.zeros(1, 1, 16, 16, 16), detail)
    assert build_network(detail)(two_channels).shape == (1, 1, 16, 16, 16)
    assert scale_input(hu, detail)[1].flatten().tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    assert output_scale_hu(NetworkConfig(iodine_kvp_exponent=1.3), 120.0) == 100.0
    assert output_scale_hu(NetworkConfig(iodine_kvp_exponent=1.3), 80.0) == pytest.approx(
        100.0 * 1.5**1.3)
    with pytest.raises(ValueError, match="tube voltage"):
        output_scale_hu(NetworkConfig(iodine_kvp_exponent=1.3), None)
    with pytest.raises(ValueError, match="tissue_gate_hu"):
        NetworkConfig(tissue_gate_hu=(0.0, -10.0, 100.0, 200.0))
    with pytest.raises(ValueError, match="strides"):
        NetworkConfig(channels=(8, 16, 32), strides=(2,))
    with pytest.raises(ValueError, match="multiples of 8"):
        reference_config(patch_size=(36, 32, 32), network=NetworkConfig())
    with pytest.raises(ValueError, match="both a training and a validation"):
        smoke_config(validation_seeds=(1,))


@pytest.mark.req("SRS-MOD-002")
def test_patches_are_drawn_towards_vessels_and_weighted_in_lumen_and_thrombus() -> None:
    network = smoke_config().network
    cases = data_manifest([3])["training"]  # seed 3: an aneurysm with eccentric thrombus
    weights = {"target_phase": "arterial", "lumen_weight": 10.0, "thrombus_weight": 20.0}

    volume = phantom_dataset(cases, validation_transforms(
        network, (32, 32, 32), vessel_weight=50.0, **weights))[0]
    labels = volume["labels"].round().long()
    lumen = torch.isin(labels, torch.tensor([int(v) for v in LUMEN_LABELS]))
    thrombus = labels == Label.THROMBUS
    assert lumen.any() and thrombus.any()
    loss_weight = volume[LOSS_WEIGHT]
    assert torch.all(loss_weight[lumen] == 11.0) and torch.all(loss_weight[thrombus] == 21.0)
    assert torch.all(loss_weight[~lumen & ~thrombus] == 1.0)

    def weighted_fraction(vessel_weight: float) -> float:
        """Mean fraction of lumen or thrombus voxels in 32 random small (24 mm) patches."""
        transform = training_transforms(network, (8, 8, 8), 32,
                                        vessel_weight=vessel_weight, **weights)
        transform.set_random_state(seed=0)
        patches = phantom_dataset(cases, transform)[0]
        return sum(float((p[LOSS_WEIGHT] > 1).float().mean()) for p in patches) / len(patches)

    # Uniform sampling hits the lumen or thrombus with ~0.5 % of voxels, vessel-weighted ~14 %.
    assert weighted_fraction(50.0) > 5 * weighted_fraction(1.0)


@pytest.mark.req("SRS-MOD-002")
def test_loss_falls_over_training_and_progress_is_reported(runs: dict[str, Any]) -> None:
    result: TrainingResult = runs["first"]
    losses = result.step_losses
    assert len(losses) == EPOCHS * STEPS
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert [(e, s) for e, s, _ in runs["calls"]] == [
        (e, s) for e in range(EPOCHS) for s in range(STEPS)]
    assert [loss for *_, loss in runs["calls"]] == losses


@pytest.mark.req("SRS-MOD-002")
def test_same_configuration_and_seed_give_identical_weights(runs: dict[str, Any]) -> None:
    first: TrainingResult = runs["first"]
    second: TrainingResult = runs["second"]
    assert first.run_id != second.run_id
    assert first.weights_sha256 == second.weights_sha256
    assert first.weights_path.read_bytes() == second.weights_path.read_bytes()
    assert all(torch.equal(v, second.state_dict[k]) for k, v in first.state_dict.items())
    assert first.step_losses == second.step_losses
    # Process-wide settings are put back after training.
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.req("SRS-MOD-003")
def test_training_run_is_recorded_in_mlflow(runs: dict[str, Any], tmp_path: Path) -> None:
    result: TrainingResult = runs["first"]
    client = MlflowClient(tracking_uri=runs["uri"])
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"

    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    config = runs["config"]
    assert params["seeds"] == "[0, 1]" and params["epochs"] == str(EPOCHS)
    assert params["network.channels"] == str(list(config.network.channels))
    assert params["network.spacing_mm"] == str(list(config.network.spacing_mm))
    assert params["lumen_loss_weight"] == str(config.lumen_loss_weight)
    manifest = data_manifest(config.seeds, config.validation_seeds)
    assert params["data.manifest_sha256"] == tags["manifest_sha256"] == manifest_sha256(
        manifest) == result.manifest_sha256
    assert params["code_version"] == tags["code_version"] == digital_contrast.__version__
    if "git_commit" in tags:
        assert len(tags["git_commit"]) == 40 and tags["git_dirty"] in ("true", "false")

    for key in ("train_loss", "train_l1_hu", "val_body_l1_hu", "val_lumen_l1_hu"):
        history = client.get_metric_history(result.run_id, key)
        assert [m.step for m in history] == list(range(EPOCHS)), key
    assert metrics["energy.energy_kwh"] == pytest.approx(result.energy.energy_kwh)
    assert metrics["energy.energy_kwh"] >= 0 and metrics["energy.emissions_kg"] >= 0
    assert tags["energy.method"] == result.energy.method and tags["energy.country"] == "GBR"

    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"model", "data_manifest.json", "training_config.json"} <= artifacts
    assert {a.path for a in client.list_artifacts(result.run_id, "model")} == {
        "model/weights.pt", "model/network_config.json"}
    local = Path(client.download_artifacts(result.run_id, "model", str(tmp_path)))
    weights = (local / "weights.pt").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == tags["weights_sha256"] == result.weights_sha256
    assert NetworkConfig.from_dict(json.loads((local / "network_config.json").read_text())) \
        == config.network
    manifest_file = Path(client.download_artifacts(result.run_id, "data_manifest.json",
                                                   str(tmp_path)))
    assert hashlib.sha256(manifest_file.read_bytes()).hexdigest() == result.manifest_sha256
    # Artifacts live beside the database, not in ./mlruns of whatever the cwd was.
    assert not (runs["root"] / "mlruns").exists()
    assert (runs["root"] / "mlartifacts").is_dir()


class _Interrupted(Exception):
    """Stands for the kill of a background training after its first epoch."""


@pytest.mark.req("SRS-MOD-013")
def test_an_interrupted_training_resumes_to_the_same_weights(runs: dict[str, Any]) -> None:
    config, folder = runs["config"], runs["root"] / "resumed"

    def stop_in_second_epoch(epoch: int, step: int, loss: float) -> None:
        if epoch == 1:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train(config, runs["uri"], progress=stop_in_second_epoch, output_dir=folder)
    assert (folder / CHECKPOINT_FILE).exists() and not (folder / "weights.pt").exists()
    resumed = train(config, runs["uri"], output_dir=folder)
    through: TrainingResult = runs["first"]
    assert resumed.weights_sha256 == through.weights_sha256
    assert resumed.step_losses == through.step_losses and len(resumed.history) == EPOCHS
    client = MlflowClient(tracking_uri=runs["uri"])
    run = client.get_run(resumed.run_id)
    assert run.info.status == "FINISHED"
    assert json.loads((folder / RUN_FILE).read_text())["run_id"] == resumed.run_id
    # One epoch's metrics per epoch across both invocations, and both invocations' energy.
    assert [m.step for m in client.get_metric_history(resumed.run_id, "train_loss")] == [0, 1]
    parts = [json.loads(line) for line in (folder / ENERGY_LOG).read_text().splitlines()]
    assert len(parts) == 2
    assert resumed.energy.energy_kwh == pytest.approx(sum(p["energy_kwh"] for p in parts))
    assert resumed.energy.duration_s == pytest.approx(sum(p["duration_s"] for p in parts))


@pytest.mark.req("SRS-MOD-013")
def test_a_folder_of_another_configuration_is_not_resumed(runs: dict[str, Any]) -> None:
    folder = runs["root"] / "first"  # finished training of runs["config"]
    other = runs["config"].model_copy(update={"learning_rate": 1e-2})
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(TrainingResumeError) as info:
        train(other, runs["uri"], output_dir=folder)
    assert info.value.code == "TRAINING_RESUME_MISMATCH" and "learning_rate" in str(info.value)
    assert sorted(p.name for p in folder.iterdir()) == before


def _initial(path: Path) -> InitialWeights:
    return InitialWeights(path=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.mark.req("SRS-MOD-015")
def test_a_training_starts_from_the_weights_its_config_names(runs: dict[str, Any]) -> None:
    first: TrainingResult = runs["first"]
    config = runs["config"].model_copy(update={"initial_weights": _initial(first.weights_path)})
    tuned = train(config, runs["uri"], output_dir=runs["root"] / "tuned")
    # Started from the trained weights, the first epoch's loss is that of the trained network,
    # below the fresh run's first epoch; the config that says so is the run's record.
    assert tuned.history[0]["train_loss"] < first.history[0]["train_loss"]
    assert tuned.weights_sha256 != first.weights_sha256
    recorded = json.loads((runs["root"] / "tuned" / "training_config.json").read_text())
    assert recorded["initial_weights"] == {"path": str(first.weights_path),
                                           "sha256": first.weights_sha256,
                                           "new_outputs": False}
    params = MlflowClient(tracking_uri=runs["uri"]).get_run(tuned.run_id).data.params
    assert first.weights_sha256 in json.dumps(params)


@pytest.mark.req("SRS-MOD-015")
def test_initial_weights_that_are_not_the_named_bytes_or_do_not_fit_are_refused(
        runs: dict[str, Any], tmp_path: Path) -> None:
    first: TrainingResult = runs["first"]
    changed = tmp_path / "changed.pt"
    changed.write_bytes(first.weights_path.read_bytes() + b"\0")
    wider = smoke_config(network=NetworkConfig(channels=(16, 32, 64), strides=(2, 2),
                                               num_res_units=1, spacing_mm=(3.0, 3.0, 3.0)))
    cases = {
        "missing": (runs["config"], InitialWeights(path=str(tmp_path / "none.pt"),
                                                   sha256=first.weights_sha256)),
        "other bytes": (runs["config"], InitialWeights(path=str(changed),
                                                       sha256=first.weights_sha256)),
        "another network": (wider, _initial(first.weights_path)),
    }
    client = MlflowClient(tracking_uri=runs["uri"])
    before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    for name, (config, initial) in cases.items():
        out = tmp_path / name
        with pytest.raises(TrainingInitError) as info:
            train(config.model_copy(update={"initial_weights": initial}), runs["uri"],
                  output_dir=out)
        assert info.value.code == "TRAINING_INITIAL_WEIGHTS_INVALID", name
        assert not out.exists(), name  # refused before anything was written or tracked
    after = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    assert after == before
    with pytest.raises(ValueError):  # a digest that is not one
        InitialWeights(path=str(first.weights_path), sha256="abc")
