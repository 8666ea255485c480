"""Energy and emissions of one compute task, measured offline with CodeCarbon.

The offline tracker takes the carbon intensity from CodeCarbon's bundled per-country energy
mix, so nothing is looked up on the network, and writes nothing (no CSV, no API). How power
was obtained depends on the machine: RAPL counters or NVML where readable, otherwise an
estimate from CPU load times the CPU's TDP (and RAM size for memory); `method` says which.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_COUNTRY = "GBR"
ENERGY_MIX_FILE = "data/private_infra/global_energy_mix.json"  # inside the codecarbon package

# CodeCarbon CPU modes -> how the CPU power was obtained.
_CPU_METHODS: dict[str, str] = {
    "intel_rapl": "RAPL",
    "intel_power_gadget": "Intel Power Gadget",
    "windows_emi": "Windows EMI",
    "cpu_load": "estimated (CPU load x TDP)",
    "constant": "estimated (constant fraction of TDP)",
}


@dataclass
class EnergyMeasurement:
    """Filled in when the `measure_energy` block exits; zeros and 'not measured' before."""

    task_name: str
    country_iso_code: str
    country_name: str = ""
    duration_s: float = 0.0
    energy_kwh: float = 0.0
    cpu_energy_kwh: float = 0.0
    gpu_energy_kwh: float = 0.0
    ram_energy_kwh: float = 0.0
    emissions_kg: float = 0.0
    method: str = "not measured"
    methods: dict[str, str] = field(default_factory=dict)  # per component: cpu, gpu, ram
    codecarbon_version: str = ""
    measured: bool = False  # False: the tracker failed; the numbers are not a measurement

    def metrics(self) -> dict[str, float]:
        """The numeric fields, e.g. for an MLflow run."""
        return {"duration_s": self.duration_s, "energy_kwh": self.energy_kwh,
                "cpu_energy_kwh": self.cpu_energy_kwh, "gpu_energy_kwh": self.gpu_energy_kwh,
                "ram_energy_kwh": self.ram_energy_kwh, "emissions_kg": self.emissions_kg}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def _energy_mix() -> dict[str, dict[str, Any]]:
    """CodeCarbon's global energy mix by country, read from the file its `DataSource` reads,
    without importing codecarbon (whose import pulls pandas: half a second on every operator
    command that opens the service state)."""
    spec = importlib.util.find_spec("codecarbon")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / ENERGY_MIX_FILE
    mix: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return mix


def _energy_mix_countries() -> frozenset[str]:
    return frozenset(_energy_mix())


@functools.cache  # read on every summary request; the bundled mix does not change in a process
def grid_intensity(country_iso_code: str) -> tuple[float, str]:
    """The country's grid carbon intensity in kg CO2e/kWh, as the tracker uses it (the same
    bundled energy mix), and where it comes from."""
    code = check_country(country_iso_code)
    entry = _energy_mix()[code]
    kg = float(entry["carbon_intensity"]) / 1000.0
    return kg, (f"CodeCarbon {importlib.metadata.version('codecarbon')} bundled global energy "
                f"mix: {entry.get('country_name', code)}, {entry.get('year', 'year not stated')}, "
                f"{float(entry['carbon_intensity']):g} g CO2e/kWh (annual average, "
                f"location-based)")


def check_country(country_iso_code: str) -> str:
    """The code if CodeCarbon has an energy mix for it; it would silently fall back otherwise."""
    code = country_iso_code.upper()
    if code not in _energy_mix_countries():
        raise ValueError(f"no CodeCarbon energy mix for country {country_iso_code!r}"
                         " (expected an ISO 3166-1 alpha-3 code such as 'GBR')")
    return code


def describe_methods(tracker: Any) -> dict[str, str]:
    """How each hardware component was measured, read from the tracker's hardware list."""
    methods: dict[str, str] = {}
    for hardware in getattr(tracker, "_hardware", []):
        kind = type(hardware).__name__
        if kind == "CPU":
            mode = str(getattr(hardware, "_mode", ""))
            methods["cpu"] = _CPU_METHODS.get(mode, f"codecarbon mode {mode!r}")
        elif kind == "GPU":
            methods["gpu"] = "NVML"
        elif kind == "RAM":
            methods["ram"] = "estimated (RAM size)"
        elif kind == "AppleSiliconChip":
            methods["cpu"] = "powermetrics"
        else:
            methods[kind.lower()] = "codecarbon default"
    return methods


def compute_method(methods: dict[str, str]) -> str | None:
    """The compute methods (CPU, GPU) in one phrase; RAM is always estimated."""
    return " + ".join(methods[k] for k in ("cpu", "gpu") if k in methods) or None


def offline_tracker(project_name: str, country_iso_code: str, **options: Any) -> Any:
    """An offline tracker that writes nothing (no CSV, API, logger or Prometheus output)."""
    from codecarbon import OfflineEmissionsTracker

    # Before construction: the tracker logs at INFO while it probes the hardware.
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    return OfflineEmissionsTracker(project_name=project_name, country_iso_code=country_iso_code,
                                   output_methods=[], log_level="error",
                                   allow_multiple_runs=True, **options)


@contextmanager
def measure_energy(task_name: str, country_iso_code: str = DEFAULT_COUNTRY,
                   measure_power_secs: float = 15.0,
                   tracking_mode: Literal["machine", "process"] = "machine",
                   ) -> Iterator[EnergyMeasurement]:
    """Measure the block; the yielded object is complete once the block has exited.

    The tracker is stopped even when the block raises. `tracking_mode="process"` attributes
    only this process's CPU load, "machine" the whole machine's.
    """
    import codecarbon

    country_iso_code = check_country(country_iso_code)
    result = EnergyMeasurement(task_name=task_name, country_iso_code=country_iso_code,
                               codecarbon_version=codecarbon.__version__)
    tracker = offline_tracker(task_name, country_iso_code,
                              measure_power_secs=measure_power_secs, tracking_mode=tracking_mode)
    started = time.perf_counter()
    tracker.start()
    try:
        yield result
    finally:
        tracker.stop()
        result.duration_s = time.perf_counter() - started
        data = getattr(tracker, "final_emissions_data", None)
        if data is not None:
            result.duration_s = float(data.duration)
            result.energy_kwh = float(data.energy_consumed)
            result.cpu_energy_kwh = float(data.cpu_energy)
            result.gpu_energy_kwh = float(data.gpu_energy)
            result.ram_energy_kwh = float(data.ram_energy)
            result.emissions_kg = float(data.emissions)
            result.country_name = str(data.country_name)
            result.methods = describe_methods(tracker)
            result.method = compute_method(result.methods) or "unknown"
            result.measured = True
