"""Operator commands that run no model start without torch, MONAI or FastAPI (the 1.5 s
start is measured by bench/cli_startup.py); the energy-mix check reads CodeCarbon's data
without importing it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODEL_LIBRARIES = ("torch", "monai")
HEAVY = (*MODEL_LIBRARIES, "fastapi", "pandas")  # MLflow's own import loads the last two
# Runs the commands in one fresh interpreter and reports which heavy modules got imported.
PROBE = """
import json, sys
from typer.testing import CliRunner
from digital_contrast.cli import app
runner = CliRunner()
codes = {}
for args in json.loads(sys.argv[1]):
    codes[" ".join(args)] = runner.invoke(app, args).exit_code
print(json.dumps({"codes": codes, "heavy": sorted(
    m for m in sys.modules if m.split(".")[0] in json.loads(sys.argv[2]))}))
"""


def _probe(data_dir: Path, commands: list[list[str]], heavy: tuple[str, ...]) -> list[str]:
    env = os.environ | {"DC_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands), json.dumps(heavy)],
                          capture_output=True, text=True, env=env, timeout=300, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report["codes"].values()) == {0}, report["codes"]
    return report["heavy"]


@pytest.mark.req("SRS-PKG-009")
def test_operator_commands_import_no_model_library(tmp_path: Path) -> None:
    commands = [["version"], ["keys", "create", "--role", "admin", "--name", "probe"],
                ["keys", "list"], ["keys", "revoke", "1"], ["audit", "verify"], ["purge"]]
    assert _probe(tmp_path / "data", commands, HEAVY) == []
    # The registry is MLflow's: listing it loads MLflow, never the network libraries.
    assert _probe(tmp_path / "data", [["model", "list"]], MODEL_LIBRARIES) == []


@pytest.mark.req("SRS-PKG-009", "SRS-CARB-006")
def test_the_energy_mix_check_reads_the_same_countries_as_codecarbon() -> None:
    from codecarbon.input import DataSource

    from digital_contrast.carbon.measure import _energy_mix_countries, check_country

    assert _energy_mix_countries() == set(DataSource().get_global_energy_mix_data())
    assert check_country("gbr") == "GBR"
    with pytest.raises(ValueError, match="no CodeCarbon energy mix"):
        check_country("XXX")
