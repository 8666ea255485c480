"""A fake power source for energy tests: constant watts, charged per task like CodeCarbon's
machine mode."""

import time
from types import SimpleNamespace
from typing import Any

from digital_contrast.carbon.meter import MeterConfig

WATTS = 36.0  # 36 W for 1 s = 1e-5 kWh


class FakePower:
    """A host drawing constant power: a task is charged watts x its wall time, as CodeCarbon's
    machine mode charges every task with the whole host's power."""

    def __init__(self, watts: float = WATTS, fail_on: str | None = None) -> None:
        self.watts, self.fail_on = watts, fail_on
        self.tasks: list[tuple[float, float]] = []
        self._started = 0.0

    def start_task(self, task_name: str | None = None) -> None:
        if self.fail_on == "start":
            raise OSError("RAPL counter unreadable")
        self._started = time.perf_counter()

    def stop_task(self, task_name: str | None = None) -> Any:
        stopped = time.perf_counter()
        self.tasks.append((self._started, stopped))
        if self.fail_on == "stop":
            raise OSError("RAPL counter unreadable")
        if self.fail_on == "none":
            return None
        kwh = self.watts * (stopped - self._started) / 3.6e6
        return SimpleNamespace(duration=stopped - self._started, cpu_energy=kwh, gpu_energy=0.0,
                               ram_energy=0.0, energy_consumed=kwh, emissions=kwh * 0.25)


def fake_factory(power: FakePower, cpu_method: str = "estimated (CPU load x TDP)",
                 calls: list[MeterConfig] | None = None):
    def factory(config: MeterConfig) -> tuple[FakePower, dict[str, Any]]:
        if calls is not None:
            calls.append(config)
        return power, {"methods": {"cpu": cpu_method, "ram": "estimated (RAM size)"},
                       "codecarbon_version": "test", "grid_intensity_kg_per_kwh": 0.25}
    return factory
