"""Cohort batches on the embedded queue: a manifest from a folder tree, cases refused for what
they are, the jobs run by a worker, a resumed batch that runs nothing twice, the outcome table
and the summary."""

import csv
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digital_contrast.batch_manifest import read_manifest
from digital_contrast.jobs.batch import open_batch, submit_cases
from digital_contrast.jobs.worker import Worker
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.export import Phase, write_phase_dicom
from digital_contrast.service import opened_state
from digital_contrast.store import Job
from digital_contrast.store.tables import BatchCase
from tests.support.cli import run_cli, site_environment


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two phantom patients' NCCT folders (one with files that are not DICOM beside its
    series, as archives have) and a folder whose one file is damaged."""
    root = tmp_path_factory.mktemp("cohort")
    for name, seed in (("p01", 31), ("p02", 32)):
        write_phase_dicom(generate_case(seed, "small"), Phase.NCCT, root / "site-a" / name)
    (root / "site-a" / "p02" / "README.txt").write_text("exported by the archive\n")
    (root / "site-a" / "p02" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    damaged = root / "site-a" / "p03"
    damaged.mkdir()
    first = sorted((root / "site-a" / "p01").iterdir())[0]
    (damaged / first.name).write_bytes(first.read_bytes()[:-4096])  # pixel data cut short
    return root


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_registry_db: Path):
    yield from site_environment(tmp_path / "site", empty_registry_db, monkeypatch)



def _manifest(cohort: Path, tmp_path: Path) -> Path:
    tree = shutil.copytree(cohort, tmp_path / "cohort")
    path = tree / "manifest.jsonl"
    made = run_cli("batch", "manifest", str(path), "--from-folder", str(tree), "--use-case",
                "aaa-cta", "--name", "test cohort")
    assert made.exit_code == 0, made.output
    cases = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    assert [c["case_id"] for c in cases] == ["site-a_p01", "site-a_p02", "site-a_p03"]
    with open(path, "a") as out:  # the right series with the wrong hash; a series not stored
        out.write(json.dumps(cases[0] | {"case_id": "tampered", "folder": None,
                                         "instance_set_sha256": "0" * 64}) + "\n")
        out.write(json.dumps({"case_id": "absent", "series_instance_uid": "1.2.3.999",
                              "instance_set_sha256": "1" * 64}) + "\n")
    return path


def _run_jobs(settings) -> int:
    with opened_state(settings) as state:
        worker, ran = Worker(state, lease_seconds=60), 0
        while worker.run_once():
            ran += 1
    return ran


@pytest.mark.req("SRS-BATCH-001", "SRS-BATCH-002", "SRS-BATCH-003")
def test_a_batch_runs_its_cases_once_refuses_the_wrong_ones_and_reports(
        env, cohort: Path, tmp_path: Path) -> None:
    manifest = _manifest(cohort, tmp_path)
    first = run_cli("batch", "submit", str(manifest), "--no-wait")
    assert first.exit_code == 0, first.output
    batch_id = first.output.split("batch ", 1)[1].split()[0]
    assert _run_jobs(env) == 2
    again = run_cli("batch", "submit", str(manifest), "--out", str(tmp_path / "report"))
    assert again.exit_code == 0, again.output
    assert "5 already submitted" in " ".join(again.output.split())
    with open(tmp_path / "report" / "outcomes.csv") as table:
        rows = {row["case_id"]: row for row in csv.DictReader(table)}
    assert {case: (row["outcome"], row["code"]) for case, row in rows.items()} == {
        "site-a_p01": ("succeeded", ""), "site-a_p02": ("succeeded", ""),
        "site-a_p03": ("refused", "CASE_FOLDER_REFUSED"),
        "tampered": ("refused", "INSTANCE_SET_MISMATCH"),
        "absent": ("refused", "SERIES_NOT_FOUND")}
    assert all(rows[c]["output_series_instance_uid"] for c in ("site-a_p01", "site-a_p02"))
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["cases"], summary["succeeded"], summary["refused"], summary["failed"],
            summary["pending"]) == (5, 2, 3, 0, 0)
    assert summary["refusal_codes"] == {"CASE_FOLDER_REFUSED": 1, "INSTANCE_SET_MISMATCH": 1,
                                        "SERIES_NOT_FOUND": 1}
    measured = [float(r["energy_kwh"]) for r in rows.values() if r["energy_kwh"]]
    assert summary["jobs_measured"] == len(measured)
    assert summary["energy_kwh"] == pytest.approx(sum(measured))
    assert "phantom" in summary["evidence"] and "not a measured saving" in summary["evidence"]
    status = run_cli("batch", "status", batch_id)
    assert status.exit_code == 0 and "5/5 finished" in " ".join(status.output.split())
    with opened_state(env) as state, state.sessions() as db:
        assert db.scalar(select(func.count(Job.id))) == 2  # the resume ran nothing again


@pytest.mark.req("SRS-BATCH-002")
def test_a_batch_stopped_mid_submission_resumes_without_repeating_a_case(
        env, cohort: Path, tmp_path: Path) -> None:
    manifest = read_manifest(_manifest(cohort, tmp_path))
    seen = []

    def stop_after_two() -> None:
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt  # Ctrl-C between two cases

    with opened_state(env) as state:
        batch = open_batch(state, manifest, "test")
        with pytest.raises(KeyboardInterrupt):
            submit_cases(state, batch, manifest, "test", on_case=stop_after_two)
        resumed = submit_cases(state, open_batch(state, manifest, "test"), manifest, "test")
        assert (resumed.skipped, resumed.submitted + resumed.refused) == (2, 3)
        with state.sessions() as db:
            cases = list(db.scalars(select(BatchCase.case_id).where(
                BatchCase.batch_id == batch.id)))
            jobs = db.scalar(select(func.count(Job.id)))
    assert sorted(cases) == sorted(c.case_id for c in manifest.cases)
    assert jobs == 2


@pytest.mark.req("SRS-BATCH-001")
def test_batch_commands_refuse_what_they_cannot_use(env, tmp_path: Path) -> None:
    neither = run_cli("batch", "manifest", str(tmp_path / "m.jsonl"), "--use-case", "aaa-cta",
                   "--name", "x")
    assert neither.exit_code == 2 and "MANIFEST_SOURCE_MISSING" in neither.output
    unknown = run_cli("batch", "manifest", str(tmp_path / "m.jsonl"), "--from-store",
                   "--use-case", "nope", "--name", "x")
    assert unknown.exit_code == 2 and "USECASE_UNKNOWN" in unknown.output
    (tmp_path / "bad.jsonl").write_text("{}\n")
    bad = run_cli("batch", "submit", str(tmp_path / "bad.jsonl"))
    assert bad.exit_code == 2 and "MANIFEST_INVALID" in bad.output
    missing = run_cli("batch", "status", "no-such-batch")
    assert missing.exit_code == 2 and "BATCH_NOT_FOUND" in missing.output


@pytest.mark.req("SRS-BATCH-003")
def test_the_progress_rate_counts_cases_finished_while_watching() -> None:
    from rich.progress import Progress

    from digital_contrast.cli.batch import CasesPerHour

    now = [100.0]
    progress = Progress(CasesPerHour(), get_time=lambda: now[0])
    task_id = progress.add_task("synthesizing", total=10, completed=4, first=4)
    column = CasesPerHour()
    assert column.render(progress.tasks[task_id]).plain == "- cases/h"
    now[0] += 1800
    progress.update(task_id, completed=7)  # 3 more in half an hour
    assert column.render(progress.tasks[task_id]).plain == "6 cases/h"
