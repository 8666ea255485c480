"""One Settings object, DC_ environment variables, documented defaults."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from digital_contrast.config import Settings


@pytest.mark.req("SRS-PKG-002")
def test_defaults_put_everything_under_the_data_directory(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DC_DATA_DIR", "DC_DATABASE_URL", "DC_MLFLOW_URI", "DC_SITE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    data_dir = (tmp_path / "var").resolve()
    assert settings.data_dir == data_dir  # resolved once: the same folder from anywhere later
    assert settings.database_url == f"sqlite:///{data_dir / 'digital_contrast.db'}"
    assert settings.mlflow_uri == f"sqlite:///{data_dir / 'mlflow.db'}"
    assert settings.site == "default-site"


@pytest.mark.req("SRS-PKG-002")
def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DC_DATABASE_URL", "postgresql+psycopg://127.0.0.1/test")
    monkeypatch.setenv("DC_MLFLOW_URI", "http://mlflow.internal:5000")
    monkeypatch.setenv("DC_SITE", "St Elsewhere")
    settings = Settings()
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == "postgresql+psycopg://127.0.0.1/test"
    assert settings.mlflow_uri == "http://mlflow.internal:5000"
    assert settings.site == "St Elsewhere"


@pytest.mark.req("SRS-PKG-002")
def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DC_MAX_UPLOAD_BYTES", "-5")
    with pytest.raises(ValidationError, match="max_upload_bytes"):
        Settings()
    monkeypatch.delenv("DC_MAX_UPLOAD_BYTES")
    monkeypatch.setenv("DC_SITE", "")
    with pytest.raises(ValidationError, match="site"):
        Settings()
