"""Energy of each job: one CodeCarbon task per job on a tracker warmed once per process.

Creating an `OfflineEmissionsTracker` probes the hardware (over a second); a `ScanMeter` does
that once, then measures each job as a `start_task`/`stop_task` pair. A tracker measures one
task at a time and, in machine mode, counts the whole host: two measured jobs running at once on
one host would each be charged the other's energy. So a measurement is always taken inside a
*slot*: this process's lock, and a host-wide lease that the caller passes in (the job workers
use a lease in the database, shared by worker threads and worker processes). Measured intervals
on one host therefore never overlap, and the host's energy is counted once.

A tracker failure never fails the job: the measurement then says `unavailable` and why, with no
energy figure (an unknown is never reported as zero).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from digital_contrast.carbon.measure import (
    check_country,
    compute_method,
    describe_methods,
    offline_tracker,
)

log = logging.getLogger(__name__)
Status = Literal["measured", "estimated", "unavailable"]
# Counters that measure energy (anything else is CodeCarbon's estimate from load x TDP).
_COUNTED = ("RAPL", "NVML", "powermetrics")


@dataclass(frozen=True)
class MeterConfig:
    """Site settings of the measurement (validated: `check()`)."""

    country_iso_code: str = "GBR"
    pue: float = 1.0
    force_cpu_power_w: float | None = None
    force_ram_power_w: float | None = None

    def check(self) -> MeterConfig:
        """The config with a country CodeCarbon has an energy mix for (ValueError otherwise)."""
        if self.pue < 1.0:
            raise ValueError("PUE is at least 1")
        for name in ("force_cpu_power_w", "force_ram_power_w"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive watts")
        return MeterConfig(check_country(self.country_iso_code), self.pue,
                           self.force_cpu_power_w, self.force_ram_power_w)


@dataclass
class JobEnergy:
    """What one job's compute cost; complete when its `measure` block has exited."""

    status: Status = "unavailable"
    reason: str | None = "not measured: the job ended before its compute started"
    method: str | None = None
    methods: dict[str, str] = field(default_factory=dict)
    duration_s: float | None = None
    cpu_energy_kwh: float | None = None
    gpu_energy_kwh: float | None = None
    ram_energy_kwh: float | None = None
    energy_kwh: float | None = None
    emissions_kg_co2e: float | None = None
    grid_intensity_kg_per_kwh: float | None = None
    country_iso_code: str | None = None
    pue: float | None = None
    codecarbon_version: str | None = None
    slot_wait_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fail(self, reason: str) -> None:
        """No figure at all: a partial reading would understate the cost."""
        for name in ("method", "duration_s", "cpu_energy_kwh", "gpu_energy_kwh",
                     "ram_energy_kwh", "energy_kwh", "emissions_kg_co2e"):
            setattr(self, name, None)
        self.methods = {}
        self.status, self.reason = "unavailable", reason


class TaskTracker(Protocol):
    """What the meter needs of CodeCarbon's tracker (tests give a fake power source)."""

    def start_task(self, task_name: str | None = None) -> None: ...

    def stop_task(self, task_name: str | None = None) -> Any: ...


def _codecarbon_tracker(config: MeterConfig) -> tuple[TaskTracker, dict[str, Any]]:
    """A warmed offline tracker and what it says about itself (methods, version, intensity)."""
    import codecarbon
    from codecarbon.input import DataSource

    options: dict[str, Any] = {"pue": config.pue}
    if config.force_cpu_power_w is not None:
        options["force_cpu_power"] = config.force_cpu_power_w
    if config.force_ram_power_w is not None:
        options["force_ram_power"] = config.force_ram_power_w
    tracker = offline_tracker("digital-contrast jobs", config.country_iso_code, **options)
    tracker.start_task("warm-up")  # the first task pays for hardware probing, not a job
    tracker.stop_task("warm-up")
    mix = DataSource().get_global_energy_mix_data()[config.country_iso_code]
    methods = describe_methods(tracker)
    if config.force_cpu_power_w is not None and "cpu" in methods:
        methods["cpu"] = f"estimated (CPU load x forced {config.force_cpu_power_w:g} W)"
    if config.force_ram_power_w is not None:
        methods["ram"] = f"estimated (forced {config.force_ram_power_w:g} W)"
    return tracker, {"methods": methods, "codecarbon_version": codecarbon.__version__,
                     "grid_intensity_kg_per_kwh": float(mix["carbon_intensity"]) / 1000.0}


TrackerFactory = Callable[[MeterConfig], tuple[TaskTracker, dict[str, Any]]]


class ScanMeter:
    """Measures jobs one at a time per process (and per host, given a host slot)."""

    def __init__(self, config: MeterConfig,
                 tracker_factory: TrackerFactory = _codecarbon_tracker) -> None:
        self.config = config
        self._factory = tracker_factory
        self._lock = threading.Lock()
        self._tracker: TaskTracker | None = None
        self._about: dict[str, Any] = {}
        self._broken: str | None = None

    def warm(self) -> ScanMeter:
        """Create the tracker now (a worker does this before its first job)."""
        with self._lock:
            self._ensure()
        return self

    def _ensure(self) -> TaskTracker | None:
        if self._tracker is None and self._broken is None:
            try:
                self._tracker, self._about = self._factory(self.config)
            except Exception as exc:  # a host CodeCarbon cannot measure: jobs go on
                self._broken = f"the energy tracker could not start ({type(exc).__name__})"
                log.warning("energy tracker unavailable: %s", type(exc).__name__)
        return self._tracker

    @contextmanager
    def measure(self, task: str, slot: AbstractContextManager[Any] | None = None,
                energy: JobEnergy | None = None) -> Iterator[JobEnergy]:
        """Measure the block as one task into `energy` (a new one by default); it is complete
        after the block, also when the block raises (a refused job still cost energy)."""
        energy = energy if energy is not None else JobEnergy()
        energy.country_iso_code, energy.pue = self.config.country_iso_code, self.config.pue
        waited = time.perf_counter()
        with self._lock, (slot if slot is not None else nullcontext()):
            energy.slot_wait_s = round(time.perf_counter() - waited, 3)
            tracker = self._ensure()
            started = self._start(tracker, task, energy)
            try:
                yield energy
            finally:
                if started:
                    self._stop(tracker, task, energy)

    def _start(self, tracker: TaskTracker | None, task: str, energy: JobEnergy) -> bool:
        if tracker is None:
            energy.fail(self._broken or "the energy tracker is not available")
            return False
        try:
            tracker.start_task(task)
        except Exception as exc:
            energy.fail(f"the energy tracker failed to start the task ({type(exc).__name__})")
            return False
        return True

    def _stop(self, tracker: TaskTracker | None, task: str, energy: JobEnergy) -> None:
        assert tracker is not None
        try:
            data = tracker.stop_task(task)
            if data is None:
                raise RuntimeError("no emissions data")
            values = {"duration_s": float(data.duration),
                      "cpu_energy_kwh": float(data.cpu_energy),
                      "gpu_energy_kwh": float(data.gpu_energy),
                      "ram_energy_kwh": float(data.ram_energy),
                      "energy_kwh": float(data.energy_consumed),
                      "emissions_kg_co2e": float(data.emissions)}
        except Exception as exc:
            energy.fail(f"the energy tracker failed to stop the task ({type(exc).__name__})")
            return
        if any(v < 0 or v != v for v in values.values()):  # negative or NaN: not a reading
            energy.fail("the energy tracker returned an invalid reading")
            return
        for name, value in values.items():
            setattr(energy, name, value)
        methods = dict(self._about.get("methods", {}))
        energy.methods, energy.method = methods, compute_method(methods)
        compute = [methods[k] for k in ("cpu", "gpu") if k in methods]
        energy.status = "measured" if compute and all(
            m.startswith(_COUNTED) for m in compute) else "estimated"
        energy.reason = None
        energy.codecarbon_version = self._about.get("codecarbon_version")
        energy.grid_intensity_kg_per_kwh = self._about.get("grid_intensity_kg_per_kwh")


_meters: dict[MeterConfig, ScanMeter] = {}
_meters_lock = threading.Lock()


def process_meter(config: MeterConfig) -> ScanMeter:
    """The process's meter for this configuration (its tracker is created once, lazily)."""
    with _meters_lock:
        return _meters.setdefault(config, ScanMeter(config))
