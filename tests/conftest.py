"""Shared fixtures. The requirement-marker plugin is loaded here for the whole suite."""

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester", "digital_contrast.qms.pytest_plugin"]


@pytest.fixture(scope="session")
def empty_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its schema migrated once (seconds per database)."""
    from digital_contrast.model.registry import ModelRegistry

    path = tmp_path_factory.mktemp("registry-template") / "mlflow.db"
    ModelRegistry(f"sqlite:///{path}").names()
    return path


@pytest.fixture
def registry_uri_factory(empty_registry_db: Path):
    """Fresh, empty registries (a copy of the migrated template) under a given folder."""

    def make(folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(empty_registry_db, folder / "mlflow.db")
        return f"sqlite:///{folder / 'mlflow.db'}"

    return make
