"""Per-job avoided footprint: potential, confirmed and net (pure functions, no database).

- potential: a succeeded job could have spared the contrast part of one CT, so it carries the
  factor set's per-scan footprint (the central value; the set's low / central / high range is
  shown beside the totals); a rejected or failed job produced no usable series and avoids
  nothing.
- confirmed: only when the site reports that no contrast scan followed; unknown until then.
- net: avoided kg CO2e minus the job's own measured compute emissions. When either is unknown
  the net is unknown (None): a net we cannot compute is never claimed.

No double counting: `kg_co2e` (the factor set's co2e_kg) already includes the contrast scan's
extra energy. `energy_kwh` is reported as its own quantity and is never converted to CO2e and
added to `kg_co2e`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from digital_contrast.carbon.factors import FactorSet


@dataclass(frozen=True)
class AvoidedFootprint:
    kg_co2e: float = 0.0
    iodine_g: float = 0.0
    plastics_g: float = 0.0  # packaging + tubing
    steel_g: float = 0.0
    energy_kwh: float = 0.0  # already inside kg_co2e: never add its CO2e again

    ZERO: ClassVar[AvoidedFootprint]

    @classmethod
    def per_scan(cls, factors: FactorSet) -> AvoidedFootprint:
        """The footprint of one contrast CT under `factors`."""
        return cls(kg_co2e=factors.co2e_kg, iodine_g=factors.iodine_g,
                   plastics_g=factors.plastics_g, steel_g=factors.needle_steel_g,
                   energy_kwh=factors.energy_kwh)

    def scaled(self, k: float) -> AvoidedFootprint:
        return AvoidedFootprint(**{name: value * k for name, value in asdict(self).items()})

    def __add__(self, other: AvoidedFootprint) -> AvoidedFootprint:
        if not isinstance(other, AvoidedFootprint):
            return NotImplemented
        mine, theirs = asdict(self), asdict(other)
        return AvoidedFootprint(**{name: mine[name] + theirs[name] for name in mine})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


AvoidedFootprint.ZERO = AvoidedFootprint()


def potential_avoided(job_state: str, factors: FactorSet) -> AvoidedFootprint:
    """The factor set's per-scan footprint for a succeeded job; zero for any other state."""
    return AvoidedFootprint.per_scan(factors) if job_state == "succeeded" else AvoidedFootprint.ZERO


def confirmed_avoided(potential: AvoidedFootprint,
                      contrast_scan_avoided: bool | None) -> AvoidedFootprint | None:
    """`potential` when the site reports no contrast scan followed, zero when one did, None
    (unknown) when the site has not reported."""
    if contrast_scan_avoided is None:
        return None
    return potential if contrast_scan_avoided else AvoidedFootprint.ZERO


def net_kg_co2e(avoided_kg: float | None, emitted_kg: float | None) -> float | None:
    """Avoided minus emitted kg CO2e. None when the avoided footprint is unknown (not reported)
    or the emissions are (energy not measured): never claim a net that cannot be computed.
    A job that avoided nothing but used compute has a negative net."""
    if avoided_kg is None or emitted_kg is None:
        return None
    return avoided_kg - emitted_kg
