"""Emission records: reported outcomes and the sustainability aggregates, on SQLite and
PostgreSQL, checked against literal hand-computed figures."""

from datetime import UTC, datetime
from typing import Any

import pytest

from digital_contrast.store import EmissionRecord, EnergyStatus, Job, JobState, StoreError
from digital_contrast.store.footprints import (
    FootprintFilter,
    breakdown,
    energy_histogram,
    export_records,
    record_emission,
    report_outcome,
    summary,
    timeseries,
)

# Avoided per succeeded scan in these records (a factor set's figures, rounded for hand sums).
KG, IODINE, PLASTICS, STEEL, KWH = 9.2, 35.0, 733.0, 5.0, 0.8


def _record(session, job_id: str, state: JobState, at: datetime, energy: float | None, *,
            site: str = "site-a", use_case: str = "aaa-cta", version: str = "1.0.0",
            emitted: float | None = None) -> None:
    session.add(Job(id=job_id, site=site, use_case=use_case, bundle_sha256="0" * 64,
                    model_name="dc-aaa-cta", model_version=version, state=state,
                    idempotency_key=job_id, finished_at=at))
    session.flush()  # the job row first: the record's foreign key points at it
    succeeded = state is JobState.SUCCEEDED
    values: dict[str, Any] = {
        "job_id": job_id, "site": site, "use_case": use_case, "model_name": "dc-aaa-cta",
        "model_version": version, "job_state": state, "finished_at": at,
        "energy_status": EnergyStatus.ESTIMATED if energy is not None else
        EnergyStatus.UNAVAILABLE, "energy_kwh": energy,
        "emissions_kg_co2e": emitted if emitted is not None else
        (energy * 0.5 if energy is not None else None),  # 0.5 kg/kWh grid
        "factor_set_id": "contrast-ct", "factor_set_version": "2026.1",
        "avoided_kg_co2e": KG if succeeded else 0.0,
        "avoided_iodine_g": IODINE if succeeded else 0.0,
        "avoided_plastics_g": PLASTICS if succeeded else 0.0,
        "avoided_steel_g": STEEL if succeeded else 0.0,
        "avoided_energy_kwh": KWH if succeeded else 0.0}
    record_emission(session, EmissionRecord(**values))


def _day(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.fixture
def records(store_sessions):
    """Five jobs of site-a (Mon 2 Nov .. Mon 9 Nov 2026) and one of site-b."""
    with store_sessions() as session:
        _record(session, "j1", JobState.SUCCEEDED, _day(2), 0.010)
        _record(session, "j2", JobState.SUCCEEDED, _day(3), 0.020, version="1.1.0")
        _record(session, "j3", JobState.REJECTED, _day(3, 13), 0.002)
        _record(session, "j4", JobState.SUCCEEDED, _day(9), None)  # tracker failed
        _record(session, "j5", JobState.FAILED, _day(9, 14), 0.004, use_case="abdomen-pv")
        _record(session, "b1", JobState.SUCCEEDED, _day(3), 0.5, site="site-b")
        session.commit()
    return store_sessions


@pytest.mark.req("SRS-CARB-013", "SRS-CARB-020", "SRS-CARB-021", "SRS-CARB-025")
def test_summary_counts_sums_and_nets_by_hand(records) -> None:
    with records() as session:
        report_outcome(session, "j1", "site-a", True)
        report_outcome(session, "j2", "site-a", False)
        report_outcome(session, "j4", "site-a", True)
        session.commit()
        result = summary(session, FootprintFilter("site-a"))
    assert result["counts"] == {
        "jobs": 5, "succeeded": 3, "rejected": 1, "failed": 1, "energy_measured": 0,
        "energy_estimated": 4, "energy_unavailable": 1, "outcome_contrast_avoided": 2,
        "outcome_contrast_followed": 1}
    compute = result["compute"]
    assert compute["energy_kwh"] == pytest.approx(0.036)
    assert compute["energy_kwh_mean_per_scan"] == pytest.approx(0.009)
    # rank ceil(0.95 * 4) = 4: 0.020 kWh, read from its 2 % energy bin
    assert 0.020 <= compute["energy_kwh_p95_per_scan"] <= 0.020 * 1.02
    assert compute["emissions_kg_co2e"] == pytest.approx(0.018)
    assert result["avoided"]["potential"] == pytest.approx(
        {"kg_co2e": 27.6, "iodine_g": 105.0, "plastics_g": 2199.0, "steel_g": 15.0,
         "energy_kwh": 2.4})
    assert result["avoided"]["confirmed"] == pytest.approx(  # j1 and j4 confirmed
        {"kg_co2e": 18.4, "iodine_g": 70.0, "plastics_g": 1466.0, "steel_g": 10.0,
         "energy_kwh": 1.6})
    # The net leaves out j4 (energy unknown) entirely: 18.4 - 0.018 and 9.2 - 0.018.
    assert result["net_kg_co2e"] == pytest.approx({"potential": 18.382, "confirmed": 9.182})
    assert result["factor_sets"] == [{"id": "contrast-ct", "version": "2026.1", "jobs": 5}]


@pytest.mark.req("SRS-CARB-021")
def test_summary_filters_by_time_use_case_and_model_version(records) -> None:
    with records() as session:
        assert summary(session, FootprintFilter("site-a", start=_day(3), end=_day(9))
                       )["counts"]["jobs"] == 2
        assert summary(session, FootprintFilter("site-a", use_case="abdomen-pv")
                       )["counts"]["failed"] == 1
        only = summary(session, FootprintFilter("site-a", model_version="1.1.0"))
        assert only["counts"]["jobs"] == 1 and only["compute"]["energy_kwh"] == 0.02
        empty = summary(session, FootprintFilter("site-c"))
    assert empty["counts"]["jobs"] == 0 and empty["compute"]["energy_kwh_p95_per_scan"] is None
    assert empty["net_kg_co2e"] == {"potential": 0.0, "confirmed": 0.0}
    with pytest.raises(StoreError) as info:
        FootprintFilter("site-a", start=_day(9), end=_day(3))
    assert info.value.code == "RANGE_INVALID"


@pytest.mark.req("SRS-CARB-022", "SRS-STORE-008")
def test_a_range_shorter_than_a_day_across_midnight_counts_each_day_apart(
        store_sessions) -> None:
    with store_sessions() as session:
        _record(session, "late", JobState.SUCCEEDED, _day(2, 23), 0.010)
        _record(session, "early", JobState.FAILED, _day(3, 1), None)
        _record(session, "outside", JobState.SUCCEEDED, _day(3, 3), 0.020)
        session.commit()
        scope = FootprintFilter("site-a", _day(2, 22), _day(3, 2))
        days = timeseries(session, scope, "day")
        result = summary(session, scope)
    assert [(d["start"], d["jobs"], d["succeeded"]) for d in days] == [
        ("2026-11-02", 1, 1), ("2026-11-03", 1, 0)]
    assert (result["counts"]["jobs"], result["counts"]["energy_unavailable"]) == (2, 1)
    assert 0.010 <= result["compute"]["energy_kwh_p95_per_scan"] <= 0.010 * 1.02


@pytest.mark.req("SRS-CARB-022")
def test_timeseries_buckets_by_day_week_and_month(records) -> None:
    with records() as session:
        days = timeseries(session, FootprintFilter("site-a"), "day")
        weeks = timeseries(session, FootprintFilter("site-a"), "week")
        months = timeseries(session, FootprintFilter("site-a"), "month")
        with pytest.raises(StoreError) as info:
            timeseries(session, FootprintFilter("site-a"), "year")  # type: ignore[arg-type]
    assert info.value.code == "BUCKET_INVALID"
    assert [(d["start"], d["jobs"], d["succeeded"]) for d in days] == [
        ("2026-11-02", 1, 1), ("2026-11-03", 2, 1), ("2026-11-09", 2, 1)]
    assert days[1]["energy_kwh"] == pytest.approx(0.022)
    assert days[1]["potential_avoided_kg_co2e"] == pytest.approx(9.2)
    assert [(w["start"], w["jobs"]) for w in weeks] == [("2026-11-02", 3), ("2026-11-09", 2)]
    assert [(m["start"], m["jobs"]) for m in months] == [("2026-11-01", 5)]
    assert months[0]["emissions_kg_co2e"] == pytest.approx(0.018)


@pytest.mark.req("SRS-CARB-030")
def test_breakdowns_and_energy_histogram(records) -> None:
    with records() as session:
        versions = breakdown(session, FootprintFilter("site-a"), "model_version")
        cases = breakdown(session, FootprintFilter("site-a"), "use_case")
        bins = energy_histogram(session, FootprintFilter("site-a"), bins=3)
        none = energy_histogram(session, FootprintFilter("site-c"))
    assert [(v["model_version"], v["jobs"]) for v in versions] == [("1.0.0", 4), ("1.1.0", 1)]
    assert [(c["use_case"], c["jobs"], c["potential_avoided_kg_co2e"]) for c in cases] == [
        ("aaa-cta", 4, pytest.approx(27.6)), ("abdomen-pv", 1, 0.0)]
    # 0.002 .. 0.020 in three bins of 0.006: {0.002, 0.004}, {0.010}, {0.020}
    assert [b["jobs"] for b in bins] == [2, 1, 1]
    assert bins[0]["from_kwh"] == pytest.approx(0.002, rel=0.02)
    assert bins[2]["to_kwh"] == pytest.approx(0.02, rel=0.02)
    assert none == []


@pytest.mark.req("SRS-CARB-020")
def test_outcome_refused_for_unknown_or_unsuccessful_jobs_and_other_sites(records) -> None:
    with records() as session:
        for job_id, site, code in (("nope", "site-a", "JOB_NOT_FOUND"),
                                   ("b1", "site-a", "JOB_NOT_FOUND"),
                                   ("j3", "site-a", "OUTCOME_NOT_APPLICABLE"),
                                   ("j5", "site-a", "OUTCOME_NOT_APPLICABLE")):
            with pytest.raises(StoreError) as info:
                report_outcome(session, job_id, site, True)
            assert info.value.code == code
        session.rollback()
        assert all(r.contrast_scan_avoided is None
                   for r in export_records(session, FootprintFilter("site-a")))
        corrected = report_outcome(session, "j1", "site-a", True, now=_day(20))
        corrected = report_outcome(session, "j1", "site-a", False, now=_day(21))
        assert (corrected.contrast_scan_avoided, corrected.outcome_at) == (False, _day(21))
        assert [r.job_id for r in export_records(session, FootprintFilter("site-a"))] == [
            "j1", "j2", "j3", "j4", "j5"]


@pytest.mark.req("SRS-CARB-025", "SRS-CARB-021", "SRS-CARB-022", "SRS-STORE-008")
@pytest.mark.parametrize(("seed", "spread"), [(1, 20), (2, 20), (3, 150)])
def test_rollups_agree_with_the_records_for_any_range(store_sessions, seed: int,
                                                      spread: int) -> None:
    """Random records over `spread` days and outcome corrections; every aggregate over random ranges
    (whole and partial days, whole months over 150 days) equals the same figure computed
    naively from the records themselves."""
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    states = [JobState.SUCCEEDED] * 3 + [JobState.REJECTED, JobState.FAILED]
    with store_sessions() as session:
        for k in range(40):
            at = datetime(2026, 10, 25, tzinfo=UTC) + timedelta(minutes=rng.randrange(
                spread * 1440))
            _record(session, f"r{k}", rng.choice(states), at,
                    rng.choice([None, round(rng.uniform(0.001, 0.05), 6)]),
                    use_case=rng.choice(["aaa-cta", "abdomen-pv"]),
                    version=rng.choice(["1.0.0", "1.1.0"]))
        succeeded = [f"r{k}" for k in range(40) if session.get(Job, f"r{k}").state ==
                     JobState.SUCCEEDED]
        for job_id in rng.sample(succeeded, k=min(8, len(succeeded))):
            report_outcome(session, job_id, "site-a", rng.random() < 0.7)
            if rng.random() < 0.3:  # a correction moves the job's contribution
                report_outcome(session, job_id, "site-a", rng.random() < 0.5)
        session.commit()
        records = list(session.query(EmissionRecord))
        for _ in range(6):
            start = datetime(2026, 10, 24, tzinfo=UTC) + timedelta(
                minutes=rng.randrange((spread + 4) * 1440))
            end = start + timedelta(minutes=rng.randrange(1, spread * 1440 * 3 // 5))
            scope = FootprintFilter("site-a", start, end,
                                    use_case=rng.choice([None, "aaa-cta"]))
            chosen = [r for r in records if start <= r.finished_at < end
                      and (scope.use_case is None or r.use_case == scope.use_case)]
            known = [r for r in chosen if r.energy_kwh is not None]
            emitted = sum(r.emissions_kg_co2e for r in known)
            confirmed = [r for r in chosen if r.contrast_scan_avoided]
            result = summary(session, scope)
            assert result["counts"]["jobs"] == len(chosen)
            assert result["counts"]["energy_unavailable"] == len(chosen) - len(known)
            assert result["counts"]["outcome_contrast_avoided"] == len(confirmed)
            assert result["compute"]["energy_kwh"] == pytest.approx(
                sum(r.energy_kwh for r in known))
            assert result["avoided"]["potential"]["kg_co2e"] == pytest.approx(
                sum(r.avoided_kg_co2e for r in chosen))
            assert result["avoided"]["confirmed"]["iodine_g"] == pytest.approx(
                sum(r.avoided_iodine_g for r in confirmed))
            assert result["net_kg_co2e"]["confirmed"] == pytest.approx(
                sum(r.avoided_kg_co2e for r in confirmed if r.energy_kwh is not None)
                - emitted)
            if known:
                energies = sorted(r.energy_kwh for r in known)
                exact = energies[-(-95 * len(energies) // 100) - 1]
                assert exact <= result["compute"]["energy_kwh_p95_per_scan"] <= exact * 1.02
            assert sum(b["jobs"] for b in energy_histogram(session, scope)) == len(known)
            days = {}
            for r in chosen:
                days[r.finished_at.date().isoformat()] = days.get(
                    r.finished_at.date().isoformat(), 0) + 1
            assert {d["start"]: d["jobs"] for d in timeseries(session, scope, "day")} == days
            versions = {v: sum(r.model_version == v for r in chosen) for v in ("1.0.0", "1.1.0")}
            assert {b["model_version"]: b["jobs"] for b in breakdown(
                session, scope, "model_version")} == {v: n for v, n in versions.items() if n}
