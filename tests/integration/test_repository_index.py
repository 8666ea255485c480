"""The series index on SQLite and PostgreSQL: its own migrations beside the clinical store's,
rows replaced when a series comes again, and every filter of the search."""

from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from digital_contrast.repository.index.database import open_index, sessions
from digital_contrast.repository.index.records import record_series
from digital_contrast.repository.index.search import SeriesQuery, search
from digital_contrast.repository.index.tables import Series
from tests.support.databases import throwaway_postgres_database
from tests.support.repository import index_row as _row


@pytest.mark.req("SRS-REPO-007")
def test_the_index_keeps_its_own_migrations(blank_url: str) -> None:
    engine = open_index(blank_url)
    open_index(blank_url).dispose()  # at head already: nothing to do, nothing broken
    tables = set(inspect(engine).get_table_names())
    assert {"repository_series", "repository_alembic_version"} <= tables
    assert not {"alembic_version", "jobs", "series"} & tables
    engine.dispose()


@pytest.mark.req("SRS-REPO-007")
def test_beside_the_clinical_store_in_one_postgresql_database() -> None:
    from digital_contrast.store.database import upgrade_to_head

    with throwaway_postgres_database() as url:
        upgrade_to_head(url)
        _both_histories(url)


def _both_histories(url: str) -> None:
    engine = open_index(url)
    tables = set(inspect(engine).get_table_names())
    assert {"repository_series", "series", "repository_alembic_version", "alembic_version",
            "jobs"} <= tables
    with engine.connect() as connection:
        store = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert store and not store.startswith("r")  # the store's history is its own
    engine.dispose()


@pytest.mark.req("SRS-REPO-007")
def test_search_filters_and_pairs(blank_url: str) -> None:
    engine = open_index(blank_url)
    make = sessions(engine)
    rows = [
        _row(0), _row(1, phase="portal_venous", kvp=100.0),  # a pair in study 2.25.90
        _row(2, phase="arterial", thickness_mm=3.0), _row(3, phase="arterial", kvp=80.0),
        _row(4, phase="portal_venous", site="site-b", sex="M", age_band="70-79"),
        _row(5, region="chest", quality="gaps", kernel="B70F"),
        _row(6, modality="MR"),
    ]
    with make.begin() as session:
        record_series(session, rows)

    def ask(**query) -> tuple[int, set[str]]:
        with make() as session:
            count, found = search(session, SeriesQuery(**query))
        return count, {s.series_uid for s in found}

    assert ask()[0] == 6  # CT only
    assert ask(phase=["portal_venous"]) == (2, {"2.25.1", "2.25.4"})
    assert ask(phase=["portal_venous"], with_native_pair=True) == (1, {"2.25.1"})
    assert ask(with_native_pair=True) == (1, {"2.25.1"})  # contrast series only
    assert ask(kvp_min=90, kvp_max=110) == (1, {"2.25.1"})
    assert ask(thickness_min_mm=2) == (1, {"2.25.2"})
    assert ask(site=["site-b"], sex=["M"], age_band=["70-79"]) == (1, {"2.25.4"})
    assert ask(region=["chest"], quality=["gaps"], kernel=["B70F"]) == (1, {"2.25.5"})
    assert ask(modality="MR")[0] == 1
    assert ask(limit=2)[0] == 6 and len(ask(limit=2)[1]) == 2
    assert ask(limit=0) == (6, set())

    # the same series again replaces its row
    with make.begin() as session:
        record_series(session, [_row(0, kvp=140.0)])
    with make() as session:
        assert session.scalar(select(Series.kvp).where(Series.series_uid == "2.25.0")) == 140
        assert len(session.scalars(select(Series)).all()) == 7
    engine.dispose()


@pytest.mark.req("SRS-REPO-007")
@pytest.mark.parametrize("query", [
    {"kvp_min": 120, "kvp_max": 100}, {"phase": ["venous"]}, {"sex": ["X"]}, {"limit": 5000},
    {"thickness_min_mm": -1},
])
def test_an_invalid_query_is_refused(query: dict) -> None:
    with pytest.raises(ValueError):
        SeriesQuery(**query)


@pytest.mark.req("SRS-REPO-007")
@pytest.mark.parametrize(("args", "expect"), [
    (["--kvp", "120-100"], "SEARCH_INVALID"), (["--phase", "venous"], "SEARCH_INVALID"),
    (["--kvp", "high"], "not a range"),
])
def test_the_search_command_refuses_an_invalid_query(
        args: list[str], expect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from digital_contrast.cli import app

    monkeypatch.setenv("DC_REPOSITORY_DATABASE_URL", f"sqlite:///{tmp_path / 'index.db'}")
    result = CliRunner().invoke(app, ["repository", "search", *args])
    assert result.exit_code == 2
    assert expect in result.output
