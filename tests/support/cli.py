"""Commands run in-process as an operator runs them, against a site's settings."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.config import Settings, get_settings
from tests.support.service import make_settings


def run_cli(*args: str):
    """`digital-contrast ARGS`; never a traceback in what it printed."""
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def site_environment(root: Path, registry_db: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> Iterator[Settings]:
    """A site with a promoted tiny model under `root`, named by DC_* for the commands."""
    settings = make_settings(root, registry_db)
    monkeypatch.setenv("DC_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DC_RELEASES_DIR", str(settings.releases_dir))
    monkeypatch.delenv("DC_DATABASE_URL", raising=False)
    monkeypatch.delenv("DC_MLFLOW_URI", raising=False)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()
