"""One MLflow run per training run: parameters, per-epoch metrics, data hash, code, energy.

Uses an explicit `MlflowClient` (no global active run), so a worker or a test can track to
its own store without touching process-wide MLflow state. No server is started: a
`sqlite:///` URI is opened directly; its artifacts go next to the database by default.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlparse

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.utils.time import get_current_time_millis

import digital_contrast
from digital_contrast.carbon.measure import EnergyMeasurement
from digital_contrast.config import get_settings

DEFAULT_EXPERIMENT = "digital-contrast-training"
_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value
_BATCH = 100  # MLflow accepts at most 100 params per log_batch call


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    return tracking_uri or get_settings().mlflow_uri


def default_artifact_location(tracking_uri: str) -> str | None:
    """`<db folder>/mlartifacts` for a SQLite store; None lets a server decide.

    MLflow's own default is `./mlruns` relative to the working directory, which scatters
    artifacts wherever a command happens to be run.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db_path = Path(unquote(tracking_uri[len("sqlite:///"):]))
    return (db_path.resolve().parent / "mlartifacts").as_uri()


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {'network.channels': '[16, 32]', ...} as MLflow parameter strings."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            text = str(list(value)) if isinstance(value, tuple | list) else str(value)
            flat[name] = text[:_MAX_PARAM_LENGTH]
    return flat


def code_version() -> dict[str, str]:
    """Package version and, in a git checkout, the commit and whether the tree was dirty."""
    info = {"code_version": digital_contrast.__version__}
    root = Path(digital_contrast.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=root, capture_output=True, text=True, timeout=10,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return info  # not a checkout, or no git: the package version has to do
    info["git_commit"] = commit
    info["git_dirty"] = str(bool(status.strip())).lower()
    return info


class TrainingRun:
    """An open MLflow run; use as a context manager (FINISHED on success, FAILED on error)."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    @classmethod
    def start(cls, tracking_uri: str | None, params: Mapping[str, Any],
              manifest_sha256: str, experiment_name: str = DEFAULT_EXPERIMENT,
              run_name: str | None = None, artifact_location: str | None = None,
              tags: Mapping[str, str] | None = None) -> TrainingRun:
        uri = resolve_tracking_uri(tracking_uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            experiment_id = client.create_experiment(
                experiment_name, artifact_location=artifact_location
                or default_artifact_location(uri))
        else:
            experiment_id = experiment.experiment_id
        version = code_version()
        all_tags = {"manifest_sha256": manifest_sha256, **version, **(tags or {})}
        if "git_commit" in version:
            all_tags["mlflow.source.git.commit"] = version["git_commit"]
        run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        tracked = cls(client, run.info.run_id)
        flat = flatten(params)
        flat["data.manifest_sha256"] = manifest_sha256
        flat["code_version"] = version["code_version"]
        tracked.log_params(flat)
        return tracked

    @classmethod
    def resume(cls, tracking_uri: str | None, run_id: str) -> TrainingRun:
        """An earlier run, open again (a training resumed from its checkpoint)."""
        uri = resolve_tracking_uri(tracking_uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.update_run(run_id, status="RUNNING")
        return cls(client, run_id)

    def log_params(self, params: Mapping[str, str]) -> None:
        items = [Param(k, v) for k, v in sorted(params.items())]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + _BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = get_current_time_millis()
        batch = [Metric(k, float(v), now, step) for k, v in sorted(metrics.items())]
        self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_energy(self, energy: EnergyMeasurement) -> None:
        """Energy as metrics (`energy.*`) and how it was measured as tags."""
        self.log_metrics({f"energy.{k}": v for k, v in energy.metrics().items()})
        self.set_tags({"energy.method": energy.method, "energy.country": energy.country_iso_code,
                       "energy.measured": str(energy.measured).lower(),
                       "energy.codecarbon_version": energy.codecarbon_version})

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: int = RunStatus.FINISHED) -> None:
        self.client.set_terminated(self.run_id, RunStatus.to_string(status))

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.end(RunStatus.FINISHED if exc_type is None else RunStatus.FAILED)
