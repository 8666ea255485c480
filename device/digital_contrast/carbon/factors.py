"""Avoided-footprint factor sets: what one contrast-enhanced CT made unnecessary would have cost.

A factor set is one versioned YAML file. Two formats are read:

- a *differential* set (`kind: differential`; the packaged default
  `factors/contrast-differential-2026.1.yaml`; its schema and arithmetic: `carbon.differential`):
  the difference between a contrast-enhanced CT and the non-contrast CT it replaces, component
  by component, each with low / central / high values and a DOI source; the totals are
  computed, never typed;
- a *point* set (the format of 0.1.0, still accepted for a site's own file; the packaged
  `factors/product-brief-2026.1.yaml` keeps the product brief's figures in it): each factor states
  its value or the annual total it is derived from, its unit, what it covers, its source and a
  plausible range. Per-scan values derived from annual totals are computed here (annual total /
  annual contrast CTs, with an explicit unit conversion), never typed twice.

Iodine per scan is the contrast protocol's volume x concentration, not a share of an annual
pollution figure; annual iodine figures are evaluated against world iodine production and refused
with the reason kept for the audit trail. Text that is a placeholder (TBD, TODO, "to be
confirmed"...) is refused anywhere in a set.

No double counting: `co2e_kg` already includes the contrast scan's extra energy, so `energy_kwh`
is a quantity of its own and is never converted to CO2e and added to it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from digital_contrast.carbon.differential import DifferentialFile, evaluate
from digital_contrast.carbon.factor_types import (
    Component,
    Factor,
    GridIntensity,
    Ident,
    Plausible,
    Positive,
    ProtocolSpec,
    Range,
    StrictModel,
    Text,
    num,
)
from digital_contrast.errors import DigitalContrastError
from digital_contrast.yaml_lines import YamlLines

FACTOR_DIR = Path(__file__).with_name("factors")
DEFAULT_FACTOR_SET = "contrast-differential-2026.1"
PRODUCT_BRIEF_SET = "product-brief-2026.1"
DEFAULT_FACTOR_FILE = FACTOR_DIR / f"{DEFAULT_FACTOR_SET}.yaml"
PRODUCT_BRIEF_FILE = FACTOR_DIR / f"{PRODUCT_BRIEF_SET}.yaml"
CODE = "CARBON_FACTORS_INVALID"
# Words that mark a figure or its source as not yet filled in; refused wherever they appear.
PLACEHOLDER = re.compile(r"\b(TBD|TBC|TODO|FIXME|XXX|placeholder|lorem ipsum)\b"
                         r"|to be (confirmed|determined|defined|added|checked)", re.IGNORECASE)
Kind = Literal["differential", "average-ct", "point"]
KIND_LABELS: dict[str, str] = {
    "differential": "difference between a contrast-enhanced CT and the non-contrast CT it "
                    "replaces",
    "average-ct": "footprint of an average CT scan of any kind, NOT the extra footprint of "
                  "contrast (not a differential)",
    "point": "point figures without a range (a site's set in the 0.1.0 format)",
}

# Accepted contrast protocols; 10-300 mL x 100-400 mgI/mL = 1-120 g iodine.
VOLUME_ML_RANGE = (10.0, 300.0)
IODINE_MG_PER_ML_RANGE = (100.0, 400.0)

# The unit each per-scan factor must be stated in; a mismatch would silently scale it by 1000.
PER_SCAN_UNITS: dict[str, str] = {
    "co2e_kg": "kg CO2e/scan",
    "packaging_g": "g/scan",
    "needle_steel_g": "g/scan",
    "tubing_plastic_g": "g/scan",
    "energy_kwh": "kWh/scan",
    "iodine_g": "g/scan",
}
# (annual unit, per-scan unit) -> (multiplier applied before dividing by the annual scan count,
# what the multiplier is, for the derivation text).
CONVERSIONS: dict[tuple[str, str], tuple[float, str]] = {
    ("t/year", "g/scan"): (1e6, "g/t"),
    ("kg/year", "g/scan"): (1e3, "g/kg"),
    ("t CO2e/year", "kg CO2e/scan"): (1e3, "kg/t"),
    ("kWh/year", "kWh/scan"): (1.0, ""),
    ("MWh/year", "kWh/scan"): (1e3, "kWh/MWh"),
    ("GWh/year", "kWh/scan"): (1e6, "kWh/GWh"),
}
_MASS_PER_YEAR_IN_T = {"t/year": 1.0, "kg/year": 1e-3}


class FactorError(DigitalContrastError):
    """A factor set that cannot be used: unreadable, malformed, unsourced or implausible."""

    code = CODE


def annual_to_per_scan(total: float, total_unit: str, per_scan_unit: str,
                       annual_scans: float) -> float:
    """`total` per year spread over `annual_scans` scans, converted to `per_scan_unit`."""
    try:
        multiplier = CONVERSIONS[(total_unit, per_scan_unit)][0]
    except KeyError:
        known = ", ".join(f"{a} -> {b}" for a, b in CONVERSIONS)
        raise ValueError(f"no conversion from {total_unit!r} to {per_scan_unit!r}; "
                         f"known: {known}") from None
    return total * multiplier / annual_scans


@dataclass(frozen=True)
class ContrastProtocol:
    """The contrast dose a site's contrast CT would have given; iodine = volume x concentration."""

    volume_ml: float
    iodine_mg_per_ml: float

    def __post_init__(self) -> None:
        for name, value, (low, high), unit in (
                ("volume_ml", self.volume_ml, VOLUME_ML_RANGE, "mL"),
                ("iodine_mg_per_ml", self.iodine_mg_per_ml, IODINE_MG_PER_ML_RANGE, "mgI/mL")):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"contrast protocol {name} must be a number, got {value!r}")
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"contrast protocol {name} = {value:g} {unit} is outside the "
                                 f"plausible {low:g}-{high:g} {unit}")

    @property
    def iodine_g(self) -> float:
        return self.volume_ml * self.iodine_mg_per_ml / 1000.0


@dataclass(frozen=True)
class RejectedFigure:
    """A figure that was considered and refused, with the evaluation that refused it."""

    name: str
    annual_total: float
    annual_unit: str
    per_scan: float
    per_scan_unit: str
    source: str
    reason: str


@dataclass(frozen=True)
class FactorSet:
    """Per-scan avoided footprint of one contrast CT, with where every number comes from."""

    id: str
    version: str
    title: str
    description: str
    source_file: str  # file name, not a server path
    sha256: str  # of the file's bytes: an edited file under an unchanged version is detectable
    annual_contrast_ct: float | None  # point sets only: the count their annual totals share
    co2e_kg: float  # the central value: what each job's record stores
    packaging_g: float
    needle_steel_g: float
    tubing_plastic_g: float
    energy_kwh: float  # already included in co2e_kg: never add its CO2e again
    iodine_g: float
    protocol: ContrastProtocol
    protocol_origin: Literal["factor set default", "site protocol"]
    factors: tuple[Factor, ...]
    rejected: tuple[RejectedFigure, ...]
    kind: Kind = "point"
    co2e_kg_range: Range | None = None  # None: a point figure (low = central = high)
    energy_kwh_range: Range | None = None
    components: tuple[Component, ...] = ()
    grid: GridIntensity | None = None  # what the scanner energy was converted with

    @property
    def plastics_g(self) -> float:
        return self.packaging_g + self.tubing_plastic_g

    @property
    def co2e_range(self) -> Range:
        return self.co2e_kg_range or Range.point(self.co2e_kg)

    @property
    def energy_range(self) -> Range:
        return self.energy_kwh_range or Range.point(self.energy_kwh)

    @property
    def not_verified(self) -> tuple[str, ...]:
        """The components whose figures were not checked against their source."""
        return tuple(c.key for c in self.components if not c.source.verified)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "version": self.version, "title": self.title,
            "kind": self.kind, "kind_label": KIND_LABELS[self.kind],
            "description": self.description, "source_file": self.source_file,
            "sha256": self.sha256, "annual_contrast_ct": self.annual_contrast_ct,
            "range": {"co2e_kg": self.co2e_range.to_dict(),
                      "energy_kwh": self.energy_range.to_dict(),
                      "computed": self.co2e_kg_range is not None},
            "components": [c.to_dict() for c in self.components],
            "not_verified": list(self.not_verified),
            "scanner_energy_grid": None if self.grid is None else asdict(self.grid),
            "per_scan": {"co2e_kg": self.co2e_kg, "packaging_g": self.packaging_g,
                         "needle_steel_g": self.needle_steel_g,
                         "tubing_plastic_g": self.tubing_plastic_g,
                         "plastics_g": self.plastics_g, "energy_kwh": self.energy_kwh,
                         "iodine_g": self.iodine_g},
            "protocol": {**asdict(self.protocol), "origin": self.protocol_origin},
            "factors": [asdict(f) for f in self.factors],
            "rejected": [asdict(r) for r in self.rejected],
        }


# --- file schema (strict: a quoted number or an unquoted version is a type error) ---------------

class _Quantity(StrictModel):
    value: Positive
    unit: Text
    source: Text


class _AnnualTotal(StrictModel):
    value: Positive
    unit: Text


class _FactorSpec(StrictModel):
    value: Positive | None = None
    annual_total: _AnnualTotal | None = None
    unit: Text
    covers: Text
    source: Text
    plausible: Plausible

    @model_validator(mode="after")
    def _one_value(self) -> _FactorSpec:
        if (self.value is None) == (self.annual_total is None):
            raise ValueError("give exactly one of value or annual_total")
        return self


class _Factors(StrictModel):
    co2e_kg: _FactorSpec
    packaging_g: _FactorSpec
    needle_steel_g: _FactorSpec
    tubing_plastic_g: _FactorSpec
    energy_kwh: _FactorSpec


class _RejectedSpec(StrictModel):
    name: Text
    annual_total: _AnnualTotal
    source: Text


class _IodineSpec(StrictModel):
    unit: Text
    covers: Text
    per_scan_from_protocol: ProtocolSpec | None = None
    # Accepted by the schema only so that it is refused by evaluation, with the reason.
    annual_total: _Quantity | None = None
    plausible: Plausible
    world_production: _Quantity
    rejected_figures: list[_RejectedSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_value(self) -> _IodineSpec:
        if (self.per_scan_from_protocol is None) == (self.annual_total is None):
            raise ValueError("give per_scan_from_protocol (volume and concentration), "
                             "not annual_total")
        return self


class _FactorFile(StrictModel):
    id: Ident
    version: Ident
    kind: Literal["average-ct", "point"] = "point"
    title: Text
    description: Text
    annual_contrast_ct: _Quantity
    factors: _Factors
    iodine: _IodineSpec


# --- loading ---------------------------------------------------------------------------------


class _Loader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.where = YamlLines(text)

    def at(self, loc: tuple[str | int, ...], message: str) -> str:
        line = self.where.line(loc)
        where = ".".join(str(p) for p in loc) or "(file)"
        return f"{where}{f' (line {line})' if line else ''}: {message}"

    def fail(self, loc: tuple[str | int, ...], message: str) -> FactorError:
        return FactorError(CODE, f"{self.path}: {self.at(loc, message)}")

    def check_range(self, loc: tuple[str, ...], value: float, unit: str,
                    plausible: Plausible) -> None:
        if not plausible.min <= value <= plausible.max:
            raise self.fail(loc, f"{num(value)} {unit} is outside the plausible "
                                 f"{num(plausible.min)}-{num(plausible.max)} {unit} "
                                 f"({plausible.basis})")

    def factor(self, key: str, spec: _FactorSpec, scans: _Quantity) -> Factor:
        loc = ("factors", key)
        if spec.unit != PER_SCAN_UNITS[key]:
            raise self.fail((*loc, "unit"), f"unit must be {PER_SCAN_UNITS[key]!r}, "
                                            f"got {spec.unit!r}")
        if spec.annual_total is None:
            assert spec.value is not None  # the schema requires one of the two
            value, derivation = spec.value, f"stated per scan: {num(spec.value)} {spec.unit}"
            source = spec.source
        else:
            total = spec.annual_total
            try:
                value = annual_to_per_scan(total.value, total.unit, spec.unit, scans.value)
            except ValueError as exc:
                raise self.fail((*loc, "annual_total", "unit"), str(exc)) from None
            factor, per = CONVERSIONS[(total.unit, spec.unit)]
            scale = "" if factor == 1 else f" x {num(factor)} {per}"
            derivation = (f"{num(total.value)} {total.unit}{scale} / {num(scans.value)} "
                          f"scans/year = {num(value)} {spec.unit}")
            source = f"{spec.source} Annual contrast CTs: {scans.source}"
        self.check_range(loc, value, spec.unit, spec.plausible)
        return Factor(key, value, spec.unit, spec.covers, source, derivation,
                      spec.plausible.min, spec.plausible.max, spec.plausible.basis)

    def annual_iodine(self, loc: tuple[str | int, ...], name: str, total: _AnnualTotal,
                      source: str, scans: _Quantity, iodine: _IodineSpec) -> RejectedFigure:
        """Evaluates an annual iodine figure as a per-scan share; the reasons it is refused."""
        if total.unit not in _MASS_PER_YEAR_IN_T:
            raise self.fail((*loc, "unit"), f"unit must be one of {list(_MASS_PER_YEAR_IN_T)}")
        per_scan = annual_to_per_scan(total.value, total.unit, "g/scan", scans.value)
        total_t = total.value * _MASS_PER_YEAR_IN_T[total.unit]
        world = iodine.world_production
        reasons = [f"{num(total.value)} {total.unit} / {num(scans.value)} scans/year = "
                   f"{num(per_scan)} g iodine per scan"]
        if total_t > world.value:
            reasons.append(f"{num(total_t)} t/year exceeds world iodine production "
                           f"({num(world.value)} t/year, iodine.world_production), so it "
                           f"cannot all be iodine from contrast CT")
        if not iodine.plausible.min <= per_scan <= iodine.plausible.max:
            reasons.append(f"{num(per_scan)} g/scan is outside the plausible "
                           f"{num(iodine.plausible.min)}-{num(iodine.plausible.max)} g/scan")
        reasons.append("iodine per scan comes from the contrast protocol "
                       "(volume x concentration), not a share of an annual figure")
        return RejectedFigure(name, total.value, total.unit, per_scan, "g/scan", source,
                              "; ".join(reasons))

    def load(self, data: Any, sha256: str, protocol: ContrastProtocol | None) -> FactorSet:
        try:
            spec = _FactorFile.model_validate(data)
        except ValidationError as exc:
            problems = [self.at(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
            raise FactorError(CODE, f"{self.path}: {'; '.join(problems)}") from None
        scans, iodine = spec.annual_contrast_ct, spec.iodine
        if scans.unit != "scans/year":
            raise self.fail(("annual_contrast_ct", "unit"), "unit must be 'scans/year'")
        if iodine.world_production.unit != "t/year":
            raise self.fail(("iodine", "world_production", "unit"),
                            f"unit must be 't/year', got {iodine.world_production.unit!r}")
        if iodine.unit != PER_SCAN_UNITS["iodine_g"]:
            raise self.fail(("iodine", "unit"), "unit must be 'g/scan'")
        factors = {key: self.factor(key, getattr(spec.factors, key), scans)
                   for key in _Factors.model_fields}

        rejected = tuple(self.annual_iodine(("iodine", "rejected_figures", i, "annual_total"),
                                            r.name, r.annual_total, r.source, scans, iodine)
                         for i, r in enumerate(iodine.rejected_figures))
        if iodine.annual_total is not None:
            refused = self.annual_iodine(("iodine", "annual_total"), "iodine",
                                         _AnnualTotal(value=iodine.annual_total.value,
                                                      unit=iodine.annual_total.unit),
                                         iodine.annual_total.source, scans, iodine)
            raise self.fail(("iodine", "annual_total"), f"refused: {refused.reason}")

        protocol, origin, iodine_factor = self.protocol_iodine(iodine, protocol)
        return FactorSet(
            id=spec.id, version=spec.version, title=spec.title, description=spec.description,
            source_file=self.path.name, sha256=sha256, annual_contrast_ct=scans.value,
            co2e_kg=factors["co2e_kg"].value, packaging_g=factors["packaging_g"].value,
            needle_steel_g=factors["needle_steel_g"].value,
            tubing_plastic_g=factors["tubing_plastic_g"].value,
            energy_kwh=factors["energy_kwh"].value, iodine_g=protocol.iodine_g,
            protocol=protocol, protocol_origin=origin,
            factors=(*factors.values(), iodine_factor), rejected=rejected, kind=spec.kind)

    def load_differential(self, data: Any, sha256: str, protocol: ContrastProtocol | None,
                          grid: GridIntensity) -> FactorSet:
        """A differential set, its totals computed from the components for the protocol in
        force and the site's grid (`carbon.differential`)."""
        try:
            spec = DifferentialFile.model_validate(data)
        except ValidationError as exc:
            problems = [self.at(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
            raise FactorError(CODE, f"{self.path}: {'; '.join(problems)}") from None
        protocol, origin, iodine_factor = self.protocol_iodine(spec.iodine, protocol)
        totals = evaluate(spec, protocol.iodine_g, grid)
        self.check_range(("components",), totals.co2e_kg.central,
                         "kg CO2e/scan (central total)", spec.total_plausible)
        per_scan = {key: f.value for key, f in totals.factors.items()}
        return FactorSet(
            id=spec.id, version=spec.version, title=spec.title,
            description=f"{spec.description} Comparison: {spec.comparison}",
            source_file=self.path.name, sha256=sha256, annual_contrast_ct=None,
            co2e_kg=per_scan["co2e_kg"], packaging_g=per_scan["packaging_g"],
            needle_steel_g=per_scan["needle_steel_g"],
            tubing_plastic_g=per_scan["tubing_plastic_g"], energy_kwh=per_scan["energy_kwh"],
            iodine_g=protocol.iodine_g, protocol=protocol, protocol_origin=origin,
            factors=(*totals.factors.values(), iodine_factor), rejected=(),
            kind="differential", co2e_kg_range=totals.co2e_kg,
            energy_kwh_range=totals.energy_kwh, components=totals.components, grid=grid)

    def protocol_iodine(self, iodine: Any, protocol: ContrastProtocol | None
                        ) -> tuple[ContrastProtocol, Literal["factor set default",
                                                             "site protocol"], Factor]:
        """The protocol in force (the site's, else the file's default) and its iodine factor;
        `iodine` is the file's iodine section (unit, covers, per_scan_from_protocol,
        plausible)."""
        default = iodine.per_scan_from_protocol
        assert default is not None  # the schema requires one of the two
        origin: Literal["factor set default", "site protocol"] = "site protocol"
        if protocol is None:
            origin = "factor set default"
            try:
                protocol = ContrastProtocol(default.volume_ml.value,
                                            default.concentration_mg_per_ml.value)
            except ValueError as exc:
                raise self.fail(("iodine", "per_scan_from_protocol"), str(exc)) from None
            source = (f"Volume: {default.volume_ml.source} "
                      f"Concentration: {default.concentration_mg_per_ml.source}")
        else:
            source = "The site's contrast protocol (site configuration)."
        self.check_range(("iodine",), protocol.iodine_g, iodine.unit, iodine.plausible)
        return protocol, origin, Factor(
            "iodine_g", protocol.iodine_g, iodine.unit, iodine.covers, source,
            f"{num(protocol.volume_ml)} mL x {num(protocol.iodine_mg_per_ml)} mgI/mL / "
            f"1,000 mg/g = {num(protocol.iodine_g)} g/scan ({origin})",
            iodine.plausible.min, iodine.plausible.max, iodine.plausible.basis)


def placeholders(data: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Where `data` holds text (or a key) that is a placeholder rather than a figure or source."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and PLACEHOLDER.search(key):
                yield (*loc, key)
            yield from placeholders(value, (*loc, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from placeholders(value, (*loc, i))
    elif isinstance(data, str) and PLACEHOLDER.search(data):
        yield loc


def packaged_factor_sets() -> dict[str, Path]:
    """The factor sets shipped with the package, by name (file stem: id-version)."""
    return {path.stem: path for path in sorted(FACTOR_DIR.glob("*.yaml"))}


def packaged_factor_file(name: str) -> Path:
    """The packaged set called `name` (e.g. 'product-brief-2026.1'); FactorError otherwise."""
    sets = packaged_factor_sets()
    if name not in sets:
        raise FactorError(CODE, f"no packaged factor set {name!r}; packaged: "
                                f"{', '.join(sets)}")
    return sets[name]


def load_factor_set(path: Path | None = None,
                    protocol: ContrastProtocol | None = None,
                    grid: GridIntensity | None = None) -> FactorSet:
    """The factor set in `path` (None: the packaged default), iodine from `protocol` (None: the
    file's default protocol), the scanner energy of a differential set converted with `grid`
    (None: the grid of DEFAULT_COUNTRY in CodeCarbon's energy mix). Raises FactorError
    (CARBON_FACTORS_INVALID) naming the file and the factor when the file is missing,
    unreadable, malformed, unsourced, a placeholder or implausible."""
    path = Path(path) if path is not None else DEFAULT_FACTOR_FILE
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FactorError(CODE, f"{path}: cannot read the factor set: {exc}") from None
    loader = _Loader(path, text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise FactorError(CODE, f"{path}{at}: not valid YAML: "
                                f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise FactorError(CODE, f"{path}: a factor set is a YAML mapping")
    for loc in placeholders(data):
        raise loader.fail(loc, "a placeholder is not a figure or a source; give the real "
                               "value and where it comes from")
    sha256 = hashlib.sha256(raw).hexdigest()
    if data.get("kind") == "differential":
        return loader.load_differential(data, sha256, protocol, grid or default_grid())
    return loader.load(data, sha256, protocol)


def grid_for(country_iso_code: str) -> GridIntensity:
    """The country's grid as the compute's emissions use it (CodeCarbon's bundled energy mix);
    ValueError for a country the mix does not have."""
    from digital_contrast.carbon.measure import grid_intensity  # pulls no codecarbon import

    kg, source = grid_intensity(country_iso_code)
    return GridIntensity(country_iso_code.upper(), kg, source)


def default_grid() -> GridIntensity:
    """The grid of DEFAULT_COUNTRY (the settings' default)."""
    from digital_contrast.carbon.measure import DEFAULT_COUNTRY

    return grid_for(DEFAULT_COUNTRY)
