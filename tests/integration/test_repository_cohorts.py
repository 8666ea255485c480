"""Saved cohorts on SQLite and PostgreSQL: versions, frozen members, hashes, the index's
migration from its first revision with rows, and the export as a batch manifest that the
batch reader accepts and whose folders hash to what it names."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from typer.testing import CliRunner

from digital_contrast.batch_manifest import folder_instance_set, read_manifest
from digital_contrast.cli import app
from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.index.cohorts import cohort_version, cohorts, save_cohort
from digital_contrast.repository.index.database import MIGRATIONS, open_index, sessions
from digital_contrast.repository.index.records import record_series
from digital_contrast.repository.index.search import SeriesQuery
from digital_contrast.store.database import make_engine
from tests.support.repository import index_at, phantom_patients
from tests.support.repository import index_row as _row


@pytest.mark.req("SRS-REPO-008")
def test_versions_change_only_with_the_query_or_its_members(blank_url: str) -> None:
    engine = open_index(blank_url)
    make = sessions(engine)
    with make.begin() as session:
        record_series(session, [_row(0), _row(1, phase="portal_venous")])
    pv = SeriesQuery(phase=["portal_venous"])

    def save(query: SeriesQuery = pv, purpose: str = "training pairs"):
        with make.begin() as session:
            return save_cohort(session, "pv", query, purpose)

    first = save()
    assert (first.version, first.series_count, first.created) == (1, 1, True)
    again = save(purpose="other words")
    assert (again.version, again.created, again.cohort_sha256) == (1, False,
                                                                  first.cohort_sha256)
    with make.begin() as session:  # a new matching series: the members changed
        record_series(session, [_row(3, phase="portal_venous")])
    second = save()
    assert (second.version, second.series_count) == (2, 2)
    assert second.cohort_sha256 != first.cohort_sha256
    third = save(SeriesQuery(phase=["portal_venous"], kvp_max=130))  # same members, new query
    assert (third.version, third.cohort_sha256) == (3, second.cohort_sha256)
    with make() as session:
        old, members = cohort_version(session, "pv", 1)  # frozen at its version
        assert [m.series_uid for m in members] == ["2.25.1"]
        assert old.query["phase"] == ["portal_venous"] and "limit" not in old.query
        assert [(c.name, c.version) for c in cohorts(session)] == [("pv", 3)]
        for name, version, code in (("pv", 9, "COHORT_UNKNOWN"), ("nope", None,
                                                                   "COHORT_UNKNOWN"),
                                    ("Bad Name", None, "COHORT_INVALID")):
            with pytest.raises(RepositoryError) as raised:
                cohort_version(session, name, version)
            assert raised.value.code == code
    with make.begin() as session, pytest.raises(RepositoryError) as raised:
        save_cohort(session, "pv", pv, "  ")
    assert raised.value.code == "COHORT_INVALID"
    engine.dispose()


@pytest.mark.req("SRS-REPO-008", "SRS-REPO-013")
def test_a_pair_cohort_freezes_the_native_series_each_pairs_with(blank_url: str) -> None:
    engine = open_index(blank_url)
    make = sessions(engine)
    study = {"study_uid": "2.25.77"}
    with make.begin() as session:
        record_series(session, [_row(10, thickness_mm=5.0, **study),
                                _row(11, thickness_mm=1.0, **study),
                                _row(12, phase="arterial", thickness_mm=1.25, **study),
                                _row(13, phase="arterial")])  # no native in its study
    pairs = SeriesQuery(with_native_pair=True)

    def save() -> tuple[object, list]:
        with make.begin() as session:
            saved = save_cohort(session, "pairs", pairs, "training pairs")
        with make() as session:
            return saved, cohort_version(session, "pairs")[1]

    first, members = save()
    assert [(m.series_uid, m.native_series_uid, m.native_instance_set_sha256)
            for m in members] == [("2.25.12", "2.25.11", f"{11:064x}")]  # the nearest thickness
    with make.begin() as session:  # as near, and a lower UID: the pick changes, so the version
        record_series(session, [_row(1, thickness_mm=1.5, **study)])
    second, members = save()
    assert [m.native_series_uid for m in members] == ["2.25.1"]
    assert (second.version, second.series_count) == (2, 1)
    assert second.cohort_sha256 != first.cohort_sha256
    engine.dispose()


@pytest.mark.req("SRS-REPO-008", "SRS-REPO-007")
def test_the_index_upgrades_from_its_first_revision_with_rows(blank_url: str) -> None:
    engine = index_at(blank_url, "r0001")
    with sessions(engine).begin() as session:
        record_series(session, [_row(0), _row(1, phase="arterial")])
    engine.dispose()
    engine = open_index(blank_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM repository_series")).scalar() == 2
        assert connection.execute(text(
            "SELECT version_num FROM repository_alembic_version")).scalar() == \
            ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with sessions(engine).begin() as session:
        assert save_cohort(session, "all", SeriesQuery(), "everything").series_count == 2
    engine.dispose()


@pytest.mark.req("SRS-REPO-008", "SRS-REPO-009", "SRS-REPO-005")
def test_a_cohort_of_ingested_series_exports_as_a_batch_manifest(
        tmp_path: Path, phantom_series: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DC_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "repository"
    done = subprocess.run(
        [sys.executable, "-m", "digital_contrast", "repository", "ingest",
         str(phantom_patients(phantom_series, tmp_path / "source", 2)), "--site", "site-a", "--out",
         str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    runner = CliRunner()
    saved = runner.invoke(app, ["repository", "search", "--pairs", "--limit", "0", "--save",
                                "arterial-pairs", "--purpose", "phantom demo"])
    assert saved.exit_code == 0, saved.output
    assert "2 series match" in saved.output and "version 1" in saved.output

    def export(*args: str) -> object:
        return runner.invoke(app, ["repository", "export", *args, "--use-case", "aaa-cta",
                                   "--dua", "DUA-7", "--files", str(out)])

    outside = tmp_path / "exports" / "cohort.jsonl"  # its folders would not be inside it
    outside.parent.mkdir()
    refused = export("arterial-pairs", "--out", str(outside))
    assert refused.exit_code == 2 and "EXPORT_INVALID" in refused.output
    elsewhere = runner.invoke(app, [  # a folder that does not hold the series
        "repository", "export", "arterial-pairs", "--use-case", "aaa-cta", "--dua", "DUA-7",
        "--min-k", "2", "--quasi-identifiers", "age_band,sex,manufacturer,site",
        "--files", str(outside.parent), "--out", str(outside)])
    assert elsewhere.exit_code == 2 and "EXPORT_INVALID" in elsewhere.output
    assert "is not in" in " ".join(elsewhere.output.split()) and not outside.exists()
    # two patients: their shifted study years differ (studies 20 years apart), so by default each is
    # a class of one; without the year they are one class, which k = 3 suppresses, k = 2 keeps
    without_year = ("--quasi-identifiers", "age_band,sex,manufacturer,site")
    for args in (("--min-k", "2"), ("--min-k", "3", *without_year)):
        refused = export("arterial-pairs", "--out", str(tmp_path / "k.jsonl"), *args)
        assert refused.exit_code == 2 and "COHORT_EMPTY" in refused.output
    manifest = tmp_path / "cohort.jsonl"
    exported = export("arterial-pairs", "--out", str(manifest), "--min-k", "2", *without_year)
    assert exported.exit_code == 0, exported.output
    assert "0 series of 0 patients suppressed" in exported.output
    read = read_manifest(manifest)
    provenance = read.header.provenance
    assert (provenance["cohort"], provenance["cohort_version"], provenance["data_use_agreement"]
            ) == ("arterial-pairs", 1, "DUA-7")
    assert json.loads(str(provenance["k_anonymity"]))["min_k"] == 2
    assert len(read.cases) == 2
    for case in read.cases:  # the native series in, its arterial series as the reference
        assert case.reference is not None and case.reference.phase == "arterial"
        for series in (case, case.reference):
            assert (series.series_instance_uid, series.instance_set_sha256
                    ) == folder_instance_set(read.root / series.folder)
    refused = export("nothing", "--out", str(tmp_path / "x.jsonl"))
    assert refused.exit_code == 2 and "COHORT_UNKNOWN" in refused.output
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".part",) or p.name in (
        "x.jsonl", "k.jsonl")] and not outside.exists()

    # one export recorded, sealed; a record changed afterwards breaks the chain
    log = runner.invoke(app, ["repository", "exports"])
    assert log.exit_code == 0 and "1 exports; seal chain intact" in log.output
    assert "arterial-pairs v1 for aaa-cta under DUA-7: 2 series" in log.output
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'repository' / 'index.db'}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE repository_exports SET data_use_agreement = 'DUA-8'"))
    engine.dispose()
    log = runner.invoke(app, ["repository", "exports"])
    assert log.exit_code == 1 and "changed after it was sealed" in log.output


@pytest.mark.req("SRS-REPO-008")
def test_an_index_that_cannot_be_used_is_named_not_traced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DC_REPOSITORY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["repository", "cohorts"])
    assert result.exit_code == 2
    assert "INDEX_UNAVAILABLE" in result.output and "Traceback" not in result.output
