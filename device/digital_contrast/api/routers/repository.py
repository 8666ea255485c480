"""The CT repository over the API, for the researcher role only: series search and saved
cohorts, read from the series index (DC_REPOSITORY_DATABASE_URL), a database apart from the
clinical store. Of the clinical store these routes only append to the site's audit trail, as
result retrievals do: each search with its filters and count, each cohort read with the
cohort's name, version and hash, never a patient pseudonym."""

import logging
import threading
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints, ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.api.deps import Caller, DbSession
from digital_contrast.api.problems import MEDIA_TYPE as PROBLEM
from digital_contrast.api.schemas import (
    REPOSITORY_EVIDENCE,
    CohortSummary,
    CohortVersion,
    SeriesPage,
)
from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.index.cohorts import NAME, cohort_version, cohorts
from digital_contrast.repository.index.database import open_index, sessions
from digital_contrast.repository.index.search import Phase, Region, SeriesQuery, search
from digital_contrast.store.audit import append_audit

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/repository", tags=["repository"])

UNAVAILABLE = {"description": "INDEX_UNAVAILABLE: the series index database cannot be used",
               "content": {PROBLEM: {}}}
# A header value the index holds (site, kernel, age band): printable ASCII, as the index's own
# column bounds; anything else cannot match and is refused before reaching the database.
Label = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                         pattern=r"^[\x20-\x7e]+$")]


class RepositoryIndex:
    """The series index of one service process: opened at its newest schema on first use and
    kept, so only the first request pays for the migration check. Not opened at start: the
    clinical service starts and serves whether or not the index can be reached."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    def sessions(self) -> sessionmaker[Session]:
        with self._lock:
            if self._sessions is None:
                try:
                    engine = open_index(self._url)
                except SQLAlchemyError as exc:
                    raise unavailable(exc) from None
                self._engine, self._sessions = engine, sessions(engine)
            return self._sessions

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._sessions = None


def unavailable(exc: SQLAlchemyError) -> RepositoryError:
    """INDEX_UNAVAILABLE (503); the driver's message, which may name the host, stays out."""
    log.warning("series index unavailable: %s", type(exc).__name__,
                extra={"event": "repository.index_unavailable"})
    return RepositoryError("INDEX_UNAVAILABLE", "the series index database cannot be used "
                           f"({type(exc).__name__}); the operators see DC_REPOSITORY_DATABASE_"
                           "URL and the database's own log")


def index_session(request: Request) -> Iterator[Session]:
    """A session of the series index for one request."""
    index: RepositoryIndex = request.app.state.repository_index
    try:
        with index.sessions()() as session:
            yield session
    except SQLAlchemyError as exc:
        raise unavailable(exc) from None


IndexSession = Annotated[Session, Depends(index_session)]


def series_query(
    modality: Annotated[str, Query(min_length=1, max_length=16)] = "CT",
    phase: Annotated[list[Phase] | None, Query(
        description="Header label (repeat for several)")] = None,
    region: Annotated[list[Region] | None, Query(
        description="Header label (repeat for several)")] = None,
    kvp_min: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    kvp_max: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    thickness_min_mm: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    thickness_max_mm: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    kernel: Annotated[list[Label] | None, Query(examples=[["B30f"]])] = None,
    site: Annotated[list[Label] | None, Query(description="Contributing site")] = None,
    age_band: Annotated[list[Label] | None, Query(examples=[["60-69"]])] = None,
    sex: Annotated[list[Literal["M", "F", "O"]] | None, Query()] = None,
    quality: Annotated[list[Literal["complete", "gaps", "unknown"]] | None, Query()] = None,
    with_native_pair: Annotated[bool, Query(
        description="Contrast series whose study also holds a native series")] = False,
    limit: Annotated[int, Query(ge=0, le=1000, description="Rows (0: the count only)")] = 50,
) -> SeriesQuery:
    """The query of a search; a range whose minimum exceeds its maximum is REQUEST_INVALID,
    like any other query that does not match the schema."""
    try:
        return SeriesQuery(modality=modality, phase=phase or [], region=region or [],
                           kvp_min=kvp_min, kvp_max=kvp_max, thickness_min_mm=thickness_min_mm,
                           thickness_max_mm=thickness_max_mm, kernel=kernel or [],
                           site=site or [], age_band=age_band or [], sex=sex or [],
                           quality=quality or [], with_native_pair=with_native_pair,
                           limit=limit)
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("query", *error["loc"])}
                                      for error in exc.errors()]) from None


def _columns(row: Any, *leave_out: str) -> dict[str, Any]:
    """Every column of an index row but those left out (new columns come through as well)."""
    return {c.name: getattr(row, c.key) for c in row.__table__.columns
            if c.name not in leave_out}


@router.get("/series", summary="Search the series index", responses={503: UNAVAILABLE})
def search_series(query: Annotated[SeriesQuery, Depends(series_query)], index: IndexSession,
                  db: DbSession, caller: Caller) -> SeriesPage:
    """The number of matching series and the first `limit` of them, with every column of the
    index but its row id. Phase and region are header labels, unverified; values generated to
    fill a column are named in each row's `generated`."""
    count, rows = search(index, query)
    append_audit(db, caller.site, caller.actor, "repository.search", "repository_series",
                 None, "success", {"query": query.model_dump(mode="json"), "count": count})
    db.commit()
    return SeriesPage(count=count, limit=query.limit, series=[_columns(r, "id") for r in rows],
                      evidence=REPOSITORY_EVIDENCE)


@router.get("/cohorts", summary="Saved cohorts, newest version of each",
            responses={503: UNAVAILABLE})
def list_cohorts(index: IndexSession) -> list[CohortSummary]:
    return [CohortSummary.model_validate(c) for c in cohorts(index)]


@router.get("/cohorts/{name}", summary="A saved cohort's version and its members",
            responses={404: {"description": "COHORT_UNKNOWN: no such cohort or version",
                             "content": {PROBLEM: {}}}, 503: UNAVAILABLE})
def get_cohort(index: IndexSession, db: DbSession, caller: Caller,
               name: Annotated[str, PathParam(max_length=64, pattern=NAME.pattern,
                                              examples=["pv-pairs"])],
               version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Default: "
                                                    "the newest")] = None) -> CohortVersion:
    cohort, members = cohort_version(index, name, version)
    append_audit(db, caller.site, caller.actor, "repository.cohort_read", "cohort",
                 f"{cohort.name}@{cohort.version}", "success",
                 {"cohort_sha256": cohort.cohort_sha256, "members": len(members)})
    db.commit()
    return CohortVersion(**CohortSummary.model_validate(cohort).model_dump(),
                         query=cohort.query,
                         members=[_columns(m, "cohort_id") for m in members],
                         evidence=REPOSITORY_EVIDENCE)
