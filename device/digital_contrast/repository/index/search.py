"""Search of the series index: a typed query, its count and a page of rows, the same for the
command line and (later) the API. Every answer says which labels came from headers and which
values were generated, so no cohort is read as more than it is."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.repository.index.tables import PHASES, REGIONS, Series

Phase = Literal[PHASES]  # type: ignore[valid-type]
Region = Literal[REGIONS]  # type: ignore[valid-type]
CONTRAST_PHASES = ("arterial", "portal_venous", "delayed")


class SeriesQuery(FrozenSchema):
    """What a cohort is chosen by; every field optional, all given ones must hold."""

    modality: str = "CT"
    phase: list[Phase] = Field(default_factory=list)
    region: list[Region] = Field(default_factory=list)
    kvp_min: float | None = Field(None, ge=0)
    kvp_max: float | None = Field(None, ge=0)
    thickness_min_mm: float | None = Field(None, ge=0)
    thickness_max_mm: float | None = Field(None, ge=0)
    kernel: list[str] = Field(default_factory=list)
    site: list[str] = Field(default_factory=list)
    age_band: list[str] = Field(default_factory=list)
    sex: list[Literal["M", "F", "O"]] = Field(default_factory=list)
    quality: list[Literal["complete", "gaps", "unknown"]] = Field(default_factory=list)
    # a contrast series whose study also holds a native series (the pair a model trains on)
    with_native_pair: bool = False
    limit: int = Field(50, ge=0, le=1000)

    @model_validator(mode="after")
    def _ranges(self) -> SeriesQuery:
        for low, high in ((self.kvp_min, self.kvp_max),
                          (self.thickness_min_mm, self.thickness_max_mm)):
            if low is not None and high is not None and low > high:
                raise ValueError("a range's minimum exceeds its maximum")
        return self


def conditions(query: SeriesQuery) -> list[Any]:
    """The WHERE clauses of the query over `Series`."""
    where = [Series.modality == query.modality]
    for column, values in ((Series.phase, query.phase), (Series.region, query.region),
                           (Series.kernel, query.kernel), (Series.site, query.site),
                           (Series.age_band, query.age_band), (Series.sex, query.sex),
                           (Series.quality, query.quality)):
        if values:
            where.append(column.in_(values))
    for column, low, high in ((Series.kvp, query.kvp_min, query.kvp_max),
                              (Series.thickness_mm, query.thickness_min_mm,
                               query.thickness_max_mm)):
        if low is not None:
            where.append(column >= low)
        if high is not None:
            where.append(column <= high)
    if query.with_native_pair:
        native = aliased(Series)
        where.append(Series.phase.in_(CONTRAST_PHASES))
        where.append(exists().where(and_(native.study_uid == Series.study_uid,
                                         native.site == Series.site,
                                         native.phase == "native")))
    return where


def search(session: Session, query: SeriesQuery) -> tuple[int, list[Series]]:
    """(number of matching series, the first `limit` of them in index order)."""
    where = conditions(query)
    count = session.scalar(select(func.count()).select_from(Series).where(*where)) or 0
    rows = list(session.scalars(select(Series).where(*where).order_by(Series.id)
                                .limit(query.limit))) if query.limit else []
    return count, rows
