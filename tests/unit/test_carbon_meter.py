"""The per-process job meter: warmed once, one task per job, typed failures, honest methods."""

import socket
import time
from pathlib import Path
from typing import Any

import codecarbon
import pytest

from digital_contrast.carbon.meter import JobEnergy, MeterConfig, ScanMeter, process_meter
from tests.support.carbon import WATTS, FakePower, fake_factory


@pytest.mark.req("SRS-CARB-002", "SRS-CARB-004")
def test_one_tracker_per_meter_one_task_per_job() -> None:
    calls: list[MeterConfig] = []
    power = FakePower()
    meter = ScanMeter(MeterConfig("FRA", pue=1.2), fake_factory(power, calls=calls)).warm()
    results = []
    for k in range(3):
        with meter.measure(f"job {k}") as energy:
            time.sleep(0.02)
        results.append(energy)
    assert len(calls) == 1 and len(power.tasks) == 3  # created once, a task per job
    for energy in results:
        assert energy.status == "estimated" and energy.reason is None
        assert energy.method == "estimated (CPU load x TDP)"
        assert energy.energy_kwh == pytest.approx(WATTS * energy.duration_s / 3.6e6)
        assert energy.emissions_kg_co2e == pytest.approx(energy.energy_kwh * 0.25)
        assert (energy.country_iso_code, energy.pue, energy.grid_intensity_kg_per_kwh,
                energy.codecarbon_version) == ("FRA", 1.2, 0.25, "test")


@pytest.mark.req("SRS-CARB-004")
def test_counters_are_reported_as_measured_and_estimates_as_estimated() -> None:
    measured = ScanMeter(MeterConfig(), fake_factory(FakePower(), cpu_method="RAPL"))
    with measured.measure("job") as energy:
        pass
    assert energy.status == "measured" and energy.method == "RAPL"


@pytest.mark.req("SRS-CARB-005")
@pytest.mark.parametrize("fail_on", ["factory", "start", "stop", "none"])
def test_a_tracker_failure_never_fails_the_job(fail_on: str) -> None:
    power = FakePower(fail_on=fail_on)

    def broken(config: MeterConfig) -> Any:
        raise RuntimeError("no hardware")

    meter = ScanMeter(MeterConfig(), broken if fail_on == "factory" else fake_factory(power))
    ran = []
    with meter.measure("job") as energy:
        ran.append(True)  # the clinical work runs either way
    assert ran == [True]
    assert energy.status == "unavailable" and energy.reason
    assert "tracker" in energy.reason
    assert (energy.energy_kwh, energy.emissions_kg_co2e, energy.method) == (None, None, None)


@pytest.mark.req("SRS-CARB-005")
def test_a_job_that_raises_is_still_measured() -> None:
    meter = ScanMeter(MeterConfig(), fake_factory(FakePower()))
    with pytest.raises(ValueError), meter.measure("refused job") as energy:
        raise ValueError("CONF_CONTRAST_GIVEN")
    assert energy.status == "estimated" and energy.energy_kwh is not None


@pytest.mark.req("SRS-CARB-006")
def test_settings_are_checked() -> None:
    assert MeterConfig("gbr").check().country_iso_code == "GBR"
    for bad in (MeterConfig("XXX"), MeterConfig(pue=0.9), MeterConfig(force_cpu_power_w=0),
                MeterConfig(force_ram_power_w=-3)):
        with pytest.raises(ValueError):
            bad.check()
    assert process_meter(MeterConfig("GBR")) is process_meter(MeterConfig("GBR"))
    assert JobEnergy().status == "unavailable"


@pytest.mark.req("SRS-CARB-002")
def test_real_codecarbon_task_offline_without_files(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access during an offline measurement")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.chdir(tmp_path)
    meter = ScanMeter(MeterConfig("GBR", force_ram_power_w=3.0)).warm()
    with meter.measure("job") as energy:
        sum(i * i for i in range(300_000))
    assert energy.status in ("measured", "estimated") and energy.energy_kwh is not None
    assert energy.energy_kwh > 0 and energy.codecarbon_version == codecarbon.__version__
    assert energy.methods["ram"] == "estimated (forced 3 W)"
    assert energy.grid_intensity_kg_per_kwh == pytest.approx(
        energy.emissions_kg_co2e / energy.energy_kwh, rel=1e-3)
    assert attempts == [] and list(tmp_path.iterdir()) == []
