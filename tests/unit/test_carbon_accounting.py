"""Per-job avoided footprint: potential, confirmed and net."""

import pytest

from digital_contrast.carbon.accounting import (
    AvoidedFootprint,
    confirmed_avoided,
    net_kg_co2e,
    potential_avoided,
)
from digital_contrast.carbon.factors import FactorSet, GridIntensity, load_factor_set

GRID = GridIntensity("TST", 0.5, "a round test grid")


@pytest.fixture(scope="module")
def factors() -> FactorSet:
    return load_factor_set(grid=GRID)


@pytest.mark.req("SRS-CARB-013", "SRS-CARB-033")
def test_a_succeeded_job_carries_one_contrast_ct(factors: FactorSet) -> None:
    potential = potential_avoided("succeeded", factors)
    # The central differential: 0.6 + 0.1 + 0.043 x 35 g iodine + 0.15 + 0.3 kWh x 0.5 kg/kWh;
    # the 0.3 kWh is already inside it and not added again.
    assert potential.kg_co2e == pytest.approx(2.505) == factors.co2e_range.central
    assert potential.iodine_g == pytest.approx(35.0)
    assert potential.plastics_g == pytest.approx(210.0)  # 150 + 40 + 20 g
    assert potential.steel_g == pytest.approx(1.0)
    assert potential.energy_kwh == pytest.approx(0.3)
    assert potential.to_dict() == {"kg_co2e": potential.kg_co2e, "iodine_g": potential.iodine_g,
                                   "plastics_g": potential.plastics_g,
                                   "steel_g": potential.steel_g,
                                   "energy_kwh": potential.energy_kwh}


@pytest.mark.req("SRS-CARB-013")
@pytest.mark.parametrize("state", ["rejected", "failed", "queued", "running", ""])
def test_other_jobs_avoid_nothing(factors: FactorSet, state: str) -> None:
    assert potential_avoided(state, factors) == AvoidedFootprint.ZERO
    assert AvoidedFootprint.ZERO.to_dict() == {"kg_co2e": 0.0, "iodine_g": 0.0,
                                               "plastics_g": 0.0, "steel_g": 0.0,
                                               "energy_kwh": 0.0}


@pytest.mark.req("SRS-CARB-013")
def test_confirmed_only_when_the_site_reports(factors: FactorSet) -> None:
    potential = potential_avoided("succeeded", factors)
    assert confirmed_avoided(potential, True) == potential
    assert confirmed_avoided(potential, False) == AvoidedFootprint.ZERO
    assert confirmed_avoided(potential, None) is None


@pytest.mark.req("SRS-CARB-013")
def test_net_is_avoided_minus_emitted() -> None:
    assert net_kg_co2e(9.2, 0.004) == pytest.approx(9.196)
    assert net_kg_co2e(0.0, 0.004) == pytest.approx(-0.004)  # a failed job still cost energy
    assert net_kg_co2e(None, 0.004) is None  # outcome not reported
    assert net_kg_co2e(9.2, None) is None  # energy not measured: no net is claimed


@pytest.mark.req("SRS-CARB-013")
def test_footprints_add_and_scale(factors: FactorSet) -> None:
    one = potential_avoided("succeeded", factors)
    total = sum([one, one, AvoidedFootprint.ZERO, one], AvoidedFootprint.ZERO)
    assert total == one.scaled(3)
    assert total.kg_co2e == pytest.approx(7.515)
    assert total.iodine_g == pytest.approx(105.0)
    assert total.plastics_g == pytest.approx(630.0)
