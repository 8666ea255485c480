"""Offline energy measurement of a compute task (CodeCarbon)."""

import socket
from pathlib import Path
from typing import Any

import codecarbon
import pytest

from digital_contrast.carbon.measure import EnergyMeasurement, measure_energy


def _busy() -> int:
    return sum(i * i for i in range(300_000))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection attempt or name lookup is recorded and refused."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[1:] if args else kwargs)
        raise OSError("network access during an offline measurement")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.mark.req("SRS-CARB-001")
def test_measures_a_cpu_task_offline_without_writing_files(
        no_network: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # CodeCarbon would write emissions.csv here by default
    with measure_energy("unit test", country_iso_code="GBR", measure_power_secs=1) as m:
        assert isinstance(m, EnergyMeasurement) and not m.measured
        _busy()
    assert m.measured
    assert m.duration_s > 0
    for value in (m.energy_kwh, m.cpu_energy_kwh, m.gpu_energy_kwh, m.ram_energy_kwh,
                  m.emissions_kg):
        assert value >= 0
    assert m.energy_kwh == pytest.approx(m.cpu_energy_kwh + m.gpu_energy_kwh
                                         + m.ram_energy_kwh)
    assert m.country_iso_code == "GBR" and m.country_name == "United Kingdom"
    assert "cpu" in m.methods and m.method not in ("", "unknown", "not measured")
    assert m.codecarbon_version == codecarbon.__version__
    assert set(m.metrics()) >= {"energy_kwh", "emissions_kg", "duration_s"}
    assert no_network == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.req("SRS-CARB-001")
def test_stops_and_reports_when_the_task_fails(no_network: list[Any]) -> None:
    with pytest.raises(RuntimeError, match="task failed"), \
            measure_energy("failing task", country_iso_code="FRA") as m:
        raise RuntimeError("task failed")
    assert m.measured and m.country_iso_code == "FRA" and m.emissions_kg >= 0
    assert no_network == []


@pytest.mark.req("SRS-CARB-001")
def test_unknown_country_is_refused_not_silently_replaced() -> None:
    with pytest.raises(ValueError, match="no CodeCarbon energy mix"), measure_energy("x", "XXX"):
        pass
