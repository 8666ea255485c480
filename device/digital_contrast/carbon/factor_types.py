"""The vocabulary that point and differential factor sets share: ranges, sources, components,
the grid a set's energy is converted with, the per-scan factor shown to users, and the strict
schema primitives of the YAML files (a quoted number or an unquoted version is a type error)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from digital_contrast.frozen_schema import FrozenSchema


@dataclass(frozen=True)
class Factor:
    """One per-scan factor as shown on the dashboard and in API responses."""

    key: str
    value: float
    unit: str
    covers: str
    source: str
    derivation: str
    plausible_min: float | None
    plausible_max: float | None
    plausible_basis: str | None
    low: float | None = None  # the range, where the set gives one (differential sets)
    high: float | None = None


@dataclass(frozen=True)
class Range:
    """A low / central / high estimate; sums of ranges add bound by bound."""

    low: float
    central: float
    high: float

    @classmethod
    def point(cls, value: float) -> Range:
        return cls(value, value, value)

    def scaled(self, k: float) -> Range:
        return Range(self.low * k, self.central * k, self.high * k)

    def __add__(self, other: Range) -> Range:
        if not isinstance(other, Range):
            return NotImplemented
        return Range(self.low + other.low, self.central + other.central,
                     self.high + other.high)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GridIntensity:
    """The electricity grid a set's scanner energy is converted with (the site's, as for the
    compute)."""

    country_iso_code: str
    kg_co2e_per_kwh: float
    source: str


@dataclass(frozen=True)
class SourceRef:
    """Where a component's figures come from, and whether they were checked against it."""

    citation: str
    doi: str
    locator: str  # the table or figure, or "table not verified"
    verified: bool

    @property
    def text(self) -> str:
        checked = ("verified against the source" if self.verified
                   else "not verified against the source")
        return f"{self.citation} doi:{self.doi}, {self.locator}; {checked}."


@dataclass(frozen=True)
class Component:
    """One contributor to a differential set: its CO2e range and the quantities it carries."""

    key: str
    category: str
    covers: str
    co2e_kg: Range
    energy_kwh: Range | None
    plastics_g: Range | None
    steel_g: Range | None
    derivation: str
    source: SourceRef

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "category": self.category, "covers": self.covers,
                "co2e_kg": self.co2e_kg.to_dict(),
                **{name: None if value is None else value.to_dict()
                   for name, value in (("energy_kwh", self.energy_kwh),
                                       ("plastics_g", self.plastics_g),
                                       ("steel_g", self.steel_g))},
                "derivation": self.derivation, "source": {**asdict(self.source),
                                                          "text": self.source.text}}



Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class StrictModel(FrozenSchema):
    model_config = ConfigDict(strict=True)  # merged into FrozenSchema's


class Plausible(StrictModel):
    min: Positive
    max: Positive
    basis: Text

    @model_validator(mode="after")
    def _ordered(self) -> Plausible:
        if self.min >= self.max:
            raise ValueError(f"min {self.min} is not below max {self.max}")
        return self


class Sourced(StrictModel):
    value: Positive
    source: Text


class ProtocolSpec(StrictModel):
    volume_ml: Sourced
    concentration_mg_per_ml: Sourced


def num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.6g}"
