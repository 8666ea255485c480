"""Differential factor sets: a contrast-enhanced CT minus the non-contrast CT it replaces.

A digital-contrast scan spares the *contrast part* of an exam, not a whole CT: the patient still
has the non-contrast scan. A differential set therefore lists only what contrast adds, component
by component (injector consumables and saline, their packaging, the manufacture of the contrast
agent, the scanner's extra energy), each with low / central / high values, what it covers, how
the figures were obtained and its source (a DOI, the table or figure, and whether the figures
were checked against it). The totals are computed here, never typed:

- CO2e: the sum of the components, bound by bound (a component given per g of iodine is scaled
  by the contrast protocol's iodine, an energy component is converted with the site's grid);
- energy: the sum of the energy components, reported as its own quantity. Its CO2e is already
  inside the CO2e total and is never added again (no double counting);
- plastics and steel: the sums of the masses the components carry.

This module knows the schema and the arithmetic; `factors.load_factor_set` reads the file,
reports errors with their line and assembles the `FactorSet`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from digital_contrast.carbon.factor_types import (
    Component,
    Factor,
    GridIntensity,
    Ident,
    Plausible,
    ProtocolSpec,
    Range,
    SourceRef,
    StrictModel,
    Text,
    num,
)

# A DOI as registered (10.<registrant>/<suffix>); a URL or a bare title is refused.
Doi = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^10\.\d{4,9}/\S+$")]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Category = Literal["consumables", "packaging", "contrast_agent", "energy"]
UNVERIFIED_LOCATOR = "table not verified"


class _RangeSpec(StrictModel):
    low: NonNegative
    central: NonNegative
    high: NonNegative

    @model_validator(mode="after")
    def _ordered(self) -> _RangeSpec:
        if not self.low <= self.central <= self.high:
            raise ValueError(f"needs low <= central <= high, got low {self.low:g}, central "
                             f"{self.central:g}, high {self.high:g}")
        if self.high <= 0:
            raise ValueError("a component that adds nothing (high 0) is not a factor")
        return self

    def range(self) -> Range:
        return Range(self.low, self.central, self.high)


class _SourceSpec(StrictModel):
    citation: Text
    doi: Doi
    locator: Text  # the table or figure of the source the figures come from
    verified: bool

    @model_validator(mode="after")
    def _honest(self) -> _SourceSpec:
        if self.verified and UNVERIFIED_LOCATOR in self.locator.lower():
            raise ValueError(f"verified: true needs the table or figure checked, not "
                             f"{self.locator!r}")
        return self


class _ComponentSpec(StrictModel):
    category: Category
    covers: Text
    co2e_kg: _RangeSpec | None = None
    co2e_kg_per_g_iodine: _RangeSpec | None = None
    energy_kwh: _RangeSpec | None = None
    plastics_g: _RangeSpec | None = None
    steel_g: _RangeSpec | None = None
    derivation: Text
    source: _SourceSpec

    @model_validator(mode="after")
    def _one_footprint(self) -> _ComponentSpec:
        given = [name for name in ("co2e_kg", "co2e_kg_per_g_iodine", "energy_kwh")
                 if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of co2e_kg, co2e_kg_per_g_iodine or energy_kwh")
        if (self.category == "energy") != (given[0] == "energy_kwh"):
            raise ValueError("energy_kwh is the footprint of the energy category, and only of "
                             "it (its CO2e comes from the site's grid)")
        return self


class _IodineSpec(StrictModel):
    unit: Literal["g/scan"]
    covers: Text
    per_scan_from_protocol: ProtocolSpec
    plausible: Plausible


class DifferentialFile(StrictModel):
    id: Ident
    version: Ident
    kind: Literal["differential"]
    title: Text
    description: Text
    comparison: Text  # which exam is subtracted from which
    components: Annotated[dict[Ident, _ComponentSpec], Field(min_length=1)]
    total_plausible: Plausible  # sanity bound on the central CO2e total
    iodine: _IodineSpec


def _sum(ranges: list[Range]) -> Range:
    total = Range(0.0, 0.0, 0.0)  # an empty sum: a set without masses carries none
    for r in ranges:
        total = total + r
    return total


def _text(r: Range, unit: str) -> str:
    return f"{num(r.central)} {unit} (low {num(r.low)}, high {num(r.high)})"


def _component(key: str, spec: _ComponentSpec, iodine_g: float, grid: GridIntensity
               ) -> Component:
    energy = spec.energy_kwh.range() if spec.energy_kwh is not None else None
    derivation = spec.derivation
    if spec.co2e_kg is not None:
        co2e = spec.co2e_kg.range()
    elif spec.co2e_kg_per_g_iodine is not None:
        per_g = spec.co2e_kg_per_g_iodine.range()
        co2e = per_g.scaled(iodine_g)
        derivation += (f" Per scan: {_text(per_g, 'kg CO2e/g iodine')} x {num(iodine_g)} g "
                       f"iodine (contrast protocol) = {_text(co2e, 'kg CO2e')}.")
    else:
        assert energy is not None  # the schema requires one footprint
        co2e = energy.scaled(grid.kg_co2e_per_kwh)
        derivation += (f" CO2e: {_text(energy, 'kWh')} x {num(grid.kg_co2e_per_kwh)} kg "
                       f"CO2e/kWh ({grid.country_iso_code} grid, as for the compute) = "
                       f"{_text(co2e, 'kg CO2e')}.")
    source = SourceRef(spec.source.citation, spec.source.doi, spec.source.locator,
                       spec.source.verified)
    return Component(key, spec.category, spec.covers, co2e, energy,
                     spec.plastics_g.range() if spec.plastics_g is not None else None,
                     spec.steel_g.range() if spec.steel_g is not None else None,
                     derivation, source)


def _total_factor(key: str, unit: str, covers: str, total: Range,
                  parts: list[tuple[str, Range]], note: str = "") -> Factor:
    terms = " + ".join(f"{name} {num(r.central)}" for name, r in parts) or "none"
    return Factor(key, total.central, unit, covers,
                  "Computed from the components of this set (each with its own source).",
                  f"sum of the components: {terms} = {num(total.central)} {unit}; low "
                  f"{num(total.low)}, high {num(total.high)}{note}",
                  None, None, None, total.low, total.high)


@dataclass(frozen=True)
class Totals:
    """A differential set evaluated for one protocol and grid."""

    components: tuple[Component, ...]
    co2e_kg: Range
    energy_kwh: Range
    factors: dict[str, Factor]  # the totals as per-scan factors, in the point format's order


def evaluate(spec: DifferentialFile, iodine_g: float, grid: GridIntensity) -> Totals:
    """The components for `iodine_g` of iodine per scan and the `grid`, and their totals."""
    components = tuple(_component(key, c, iodine_g, grid) for key, c in spec.components.items())
    co2e = _sum([c.co2e_kg for c in components])
    energy_parts = [(c.key, c.energy_kwh) for c in components if c.energy_kwh is not None]
    packaging = [(c.key, c.plastics_g) for c in components
                 if c.plastics_g is not None and c.category == "packaging"]
    tubing = [(c.key, c.plastics_g) for c in components
              if c.plastics_g is not None and c.category != "packaging"]
    steel = [(c.key, c.steel_g) for c in components if c.steel_g is not None]
    energy = _sum([r for _, r in energy_parts])
    return Totals(components, co2e, energy, {
        "co2e_kg": _total_factor(
            "co2e_kg", "kg CO2e/scan", "what contrast adds to a CT: every component's CO2e",
            co2e, [(c.key, c.co2e_kg) for c in components]),
        "packaging_g": _total_factor("packaging_g", "g/scan", "plastics of the packaging "
                                     "components", _sum([r for _, r in packaging]), packaging),
        "needle_steel_g": _total_factor("needle_steel_g", "g/scan", "steel of the needles and "
                                        "cannulas", _sum([r for _, r in steel]), steel),
        "tubing_plastic_g": _total_factor("tubing_plastic_g", "g/scan", "plastics of the "
                                          "injector set: syringes, tubing, connectors",
                                          _sum([r for _, r in tubing]), tubing),
        "energy_kwh": _total_factor(
            "energy_kwh", "kWh/scan", "the scanner's extra electricity for the contrast "
            "phase", energy, energy_parts,
            "; its CO2e is inside co2e_kg and is never added again"),
    })
