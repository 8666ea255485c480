"""No double counting: jobs measured at once on one host, by separate meters that share only the
database (as separate worker processes do), never overlap, so the host's energy is counted once.
Run against SQLite and PostgreSQL."""

import threading
import time
from datetime import timedelta
from itertools import pairwise

import pytest

from digital_contrast.carbon.meter import MeterConfig, ScanMeter
from digital_contrast.jobs.host_slot import host_slot
from digital_contrast.store.measurement_slots import release, renew, try_acquire
from tests.support.carbon import WATTS, FakePower, fake_factory

JOBS, WORK_S = 4, 0.15


def _run_concurrently(measure_one) -> tuple[list[float], float]:
    """Start JOBS measured jobs at once; their energies and the wall time they spanned."""
    barrier = threading.Barrier(JOBS)
    energies: list[float] = [0.0] * JOBS

    def job(k: int) -> None:
        barrier.wait()
        energies[k] = measure_one(k)

    threads = [threading.Thread(target=job, args=(k,)) for k in range(JOBS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return energies, time.perf_counter() - start


@pytest.mark.req("SRS-CARB-003")
def test_concurrent_jobs_on_one_host_do_not_double_count(store_sessions) -> None:
    """Each job has its own meter and tracker (its own 'process'); the host draws WATTS."""
    powers = [FakePower() for _ in range(JOBS)]
    meters = [ScanMeter(MeterConfig(), fake_factory(p)) for p in powers]

    def with_slot(k: int) -> float:
        slot = host_slot(store_sessions, f"worker-{k}", lease_s=30, poll_s=0.01, host="host-a")
        with meters[k].measure(f"job {k}", slot) as energy:
            time.sleep(WORK_S)
        return energy.energy_kwh

    energies, wall = _run_concurrently(with_slot)
    intervals = sorted(interval for p in powers for interval in p.tasks)
    assert len(intervals) == JOBS
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(intervals))
    host_energy = WATTS * wall / 3.6e6  # what the host drew while the jobs ran
    assert sum(energies) <= host_energy
    assert sum(energies) == pytest.approx(JOBS * WATTS * WORK_S / 3.6e6, rel=0.2)

    # The counterfactual, to show the check can fail: without the slot the measured intervals
    # overlap and the jobs are charged more energy than the host drew.
    powers = [FakePower() for _ in range(JOBS)]
    meters = [ScanMeter(MeterConfig(), fake_factory(p)) for p in powers]

    def without_slot(k: int) -> float:
        with meters[k].measure(f"job {k}") as energy:
            time.sleep(WORK_S)
        return energy.energy_kwh

    energies, wall = _run_concurrently(without_slot)
    assert sum(energies) > 1.5 * WATTS * wall / 3.6e6


@pytest.mark.req("SRS-CARB-003")
def test_the_slot_is_exclusive_renewable_and_taken_over_when_expired(store_sessions) -> None:
    lease = timedelta(seconds=60)
    with store_sessions() as session:
        assert try_acquire(session, "host-a", "w1", lease)
        assert try_acquire(session, "host-a", "w1", lease)  # its own: kept
        assert not try_acquire(session, "host-a", "w2", lease)
        assert try_acquire(session, "host-b", "w2", lease)  # another host: its own slot
        assert renew(session, "host-a", "w1", lease) and not renew(session, "host-a", "w2", lease)
        release(session, "host-a", "w2")  # not the holder: nothing happens
        assert not try_acquire(session, "host-a", "w2", lease)
        # w1 dies without releasing: once its lease has expired, w2 takes the slot over.
        assert try_acquire(session, "host-a", "w2", lease,
                           now=_later(session, "host-a", seconds=1))
        release(session, "host-a", "w2")
        assert try_acquire(session, "host-a", "w3", lease)


def _later(session, host: str, seconds: float):
    from digital_contrast.store import MeasurementSlot

    return session.get(MeasurementSlot, host).expires_at + timedelta(seconds=seconds)
