"""Shared fixtures. The requirement-marker plugin is loaded here for the whole suite."""

import os
import shutil
from pathlib import Path

import pytest

from tests.support.signing import site_key_environment

pytest_plugins = ["pytester", "digital_contrast.qms.pytest_plugin"]


# Every test runs at a site with a keys folder and a trusted signing key (DC_KEYS_DIR and
# DC_TRUSTED_KEYS), set before any fixture of any scope and inherited by started processes.
os.environ.update(site_key_environment())


@pytest.fixture(autouse=True)
def fresh_settings() -> None:
    """Settings re-read after each test, so no test's DC_ variables leak into the next."""
    from digital_contrast.config import get_settings

    yield
    get_settings.cache_clear()


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


@pytest.fixture
def operator_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 empty_registry_db: Path) -> Path:
    """An operator's environment for CLI tests: data (with an empty registry), releases and
    build folders under `tmp_path`, set through DC_ variables; settings re-read around it."""
    from digital_contrast.config import get_settings

    (tmp_path / "data").mkdir()
    shutil.copy(empty_registry_db, tmp_path / "data" / "mlflow.db")
    (tmp_path / "releases").mkdir()
    monkeypatch.setenv("DC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DC_RELEASES_DIR", str(tmp_path / "releases"))
    monkeypatch.setenv("DC_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv("DC_MLFLOW_URI", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def small_junit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A junit report of a few real tests (the NIfTI ones), written by the requirement plugin:
    what the regulatory commands read after a test run."""
    import subprocess
    import sys

    from digital_contrast.config import REPO_ROOT

    path = tmp_path_factory.mktemp("run") / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/unit/test_nifti.py", f"--junitxml={path}"], cwd=REPO_ROOT,
                   check=True, capture_output=True)
    return path


# --- Store databases (SQLite and PostgreSQL; see tests/support/databases.py) ----------------

@pytest.fixture(scope="session")
def postgres_store_url():
    """One migrated throwaway PostgreSQL database for the whole session (rows emptied per test)."""
    from digital_contrast.store.database import upgrade_to_head
    from tests.support.databases import throwaway_postgres_database

    with throwaway_postgres_database() as url:
        upgrade_to_head(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (faster than migrating each time)."""
    from digital_contrast.store.database import upgrade_to_head

    path = tmp_path_factory.mktemp("store-template") / "store.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated store database, once per supported database."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copy(request.getfixturevalue("sqlite_store_template"), path)
        return f"sqlite:///{path}"
    from digital_contrast.store.database import make_engine
    from tests.support.databases import empty_tables

    url = request.getfixturevalue("postgres_store_url")
    engine = make_engine(url)
    empty_tables(engine)
    engine.dispose()
    return url


@pytest.fixture
def store_engine(store_url: str):
    from digital_contrast.store.database import make_engine

    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def audit_seal(tmp_path: Path):
    """A test's audit key and anchor file (the service takes both from the keys folder)."""
    from digital_contrast.store.audit_seal import AuditSeal

    return AuditSeal(os.urandom(32), anchor_path=tmp_path / "anchors" / "audit.log")


@pytest.fixture
def store_sessions(store_engine, audit_seal):
    """A sessionmaker bound to the test's store database, sealing audit events."""
    from digital_contrast.store.database import session_factory

    return session_factory(store_engine, audit_seal)


@pytest.fixture
def instance_store(tmp_path: Path):
    from digital_contrast.store.instance_store import InstanceStore

    return InstanceStore(tmp_path / "instances")


@pytest.fixture(scope="session")
def phantom_series(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small phantom case written as DICOM: NCCT and arterial series folders, and the case."""
    from digital_contrast.phantom.case import generate_case
    from digital_contrast.phantom.export import Phase, write_phase_dicom

    root = tmp_path_factory.mktemp("phantom-series")
    case = generate_case(5, "small")
    folders = {phase: write_phase_dicom(case, phase, root / phase.value) and root / phase.value
               for phase in (Phase.NCCT, Phase.ARTERIAL)}
    return {"case": case, **folders}


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path):
    """An empty database (no tables), once per supported database: the store's or the
    repository index's to migrate."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'blank.db'}"
        return
    from tests.support.databases import throwaway_postgres_database

    with throwaway_postgres_database() as url:
        yield url
