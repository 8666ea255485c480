"""Differential factor sets (contrast CT minus non-contrast CT): totals computed from the
components with their ranges, refusals, the labelled product-brief set and its selection."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from digital_contrast.carbon.factors import (
    DEFAULT_FACTOR_FILE,
    PRODUCT_BRIEF_FILE,
    ContrastProtocol,
    FactorError,
    GridIntensity,
    load_factor_set,
    packaged_factor_sets,
)
from digital_contrast.carbon.site import site_carbon
from digital_contrast.config import Settings
from digital_contrast.errors import DigitalContrastError
from tests.support.nested import delete_at as _del
from tests.support.nested import set_at as _set

Data = dict[str, Any]
GRID = GridIntensity("TST", 0.5, "a round test grid")
SOURCE = {"citation": "A. Author. A study of contrast consumables. J Test 2020;1:1-9.",
          "doi": "10.1234/test.5678", "locator": "table not verified", "verified": False}


def _small_set() -> Data:
    """Three components whose totals are easy to compute by hand."""
    return {
        "id": "hand-computed", "version": "1", "kind": "differential",
        "title": "Hand-computed differential", "description": "Three components.",
        "comparison": "contrast CT minus non-contrast CT",
        "components": {
            "syringes": {"category": "consumables", "covers": "syringes and tubing",
                         "co2e_kg": {"low": 0.2, "central": 0.5, "high": 1.0},
                         "plastics_g": {"low": 50, "central": 100, "high": 200},
                         "steel_g": {"low": 0.5, "central": 1, "high": 2},
                         "derivation": "mass x emission factor", "source": dict(SOURCE)},
            "agent": {"category": "contrast_agent", "covers": "the contrast agent",
                      "co2e_kg_per_g_iodine": {"low": 0.01, "central": 0.02, "high": 0.05},
                      "derivation": "per g of iodine", "source": dict(SOURCE)},
            "scanner": {"category": "energy", "covers": "the extra phase",
                        "energy_kwh": {"low": 0.1, "central": 0.4, "high": 1.0},
                        "derivation": "minutes x power",
                        "source": {**SOURCE, "locator": "Table 2", "verified": True}},
        },
        "total_plausible": {"min": 0.1, "max": 20, "basis": "sanity bound for the test"},
        "iodine": {"unit": "g/scan", "covers": "iodine of one dose",
                   "per_scan_from_protocol": {
                       "volume_ml": {"value": 100, "source": "test protocol volume"},
                       "concentration_mg_per_ml": {"value": 300,
                                                   "source": "test protocol agent"}},
                   "plausible": {"min": 1, "max": 120, "basis": "protocol range"}},
    }


def _write(tmp_path: Path, data: Data, name: str = "diff.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.req("SRS-CARB-033")
def test_the_loader_computes_low_central_high_totals(tmp_path: Path) -> None:
    factors = load_factor_set(_write(tmp_path, _small_set()), grid=GRID)
    # 30 g iodine (100 mL x 300 mgI/mL): agent 0.3 / 0.6 / 1.5 kg; scanner 0.1 / 0.4 / 1.0 kWh
    # x 0.5 kg/kWh = 0.05 / 0.2 / 0.5 kg; syringes 0.2 / 0.5 / 1.0 kg.
    r = factors.co2e_range
    assert (r.low, r.central, r.high) == pytest.approx((0.55, 1.3, 3.0))
    assert factors.co2e_kg == pytest.approx(1.3)  # what each job stores: the central value
    # Energy is its own quantity: its CO2e is inside the 1.3 kg, never added a second time.
    e = factors.energy_range
    assert (e.low, e.central, e.high) == pytest.approx((0.1, 0.4, 1.0))
    assert factors.energy_kwh == pytest.approx(0.4)
    assert factors.co2e_kg != pytest.approx(1.3 + 0.4 * GRID.kg_co2e_per_kwh)
    assert (factors.tubing_plastic_g, factors.packaging_g, factors.needle_steel_g) == (
        pytest.approx(100.0), 0.0, pytest.approx(1.0))
    by_key = {f.key: f for f in factors.factors}
    assert (by_key["co2e_kg"].low, by_key["co2e_kg"].high) == pytest.approx((0.55, 3.0))
    assert by_key["co2e_kg"].derivation.startswith(
        "sum of the components: syringes 0.5 + agent 0.6 + scanner 0.2 = 1.3 kg CO2e/scan")
    assert "never added again" in by_key["energy_kwh"].derivation
    scanner = {c.key: c for c in factors.components}["scanner"]
    assert "x 0.5 kg CO2e/kWh (TST grid, as for the compute)" in scanner.derivation
    assert factors.grid == GRID and factors.kind == "differential"


@pytest.mark.req("SRS-CARB-033")
def test_the_agent_scales_with_the_protocol_and_the_energy_with_the_grid(
        tmp_path: Path) -> None:
    path = _write(tmp_path, _small_set())
    base = load_factor_set(path, grid=GRID)
    more_iodine = load_factor_set(path, ContrastProtocol(100, 400), GRID)  # 40 g, not 30
    assert more_iodine.co2e_kg - base.co2e_kg == pytest.approx(10 * 0.02)
    dirtier = load_factor_set(path, grid=GridIntensity("TS2", 1.0, "a dirtier test grid"))
    assert dirtier.co2e_kg - base.co2e_kg == pytest.approx(0.4 * 0.5)
    assert dirtier.energy_kwh == base.energy_kwh  # the kWh do not depend on the grid


@pytest.mark.req("SRS-CARB-032", "SRS-CARB-033")
def test_the_default_set_is_the_contrast_differential_with_unverified_sources() -> None:
    factors = load_factor_set(grid=GRID)
    assert DEFAULT_FACTOR_FILE.name == "contrast-differential-2026.1.yaml"
    assert (factors.id, factors.version, factors.kind) == ("contrast-differential", "2026.1",
                                                            "differential")
    categories = {c.category for c in factors.components}
    assert categories == {"consumables", "packaging", "contrast_agent", "energy"}
    for c in factors.components:
        assert c.co2e_kg.low <= c.co2e_kg.central <= c.co2e_kg.high
        assert c.source.doi.startswith("10.") and c.covers and c.derivation
        # Written without access to the papers: every figure says so, and why.
        assert not c.source.verified and c.source.locator == "table not verified"
        assert c.source.text.endswith("not verified against the source.")
    assert factors.not_verified == tuple(c.key for c in factors.components)
    r = factors.co2e_range
    # 0.3 + 0.05 + 0.0086 x 35 + 0.05 + 0.1 x 0.5 | 0.6 + 0.1 + 0.043 x 35 + 0.15 + 0.3 x 0.5 |
    # 1.5 + 0.3 + 0.108 x 35 + 0.4 + 0.8 x 0.5
    assert (r.low, r.central, r.high) == pytest.approx((0.751, 2.505, 6.38))
    # Far below the 9.2 kg of a whole average CT: the non-contrast CT is still done.
    assert r.high < 9.2
    data = json.loads(json.dumps(factors.to_dict()))
    assert data["range"]["co2e_kg"] == pytest.approx(
        {"low": 0.751, "central": 2.505, "high": 6.38})
    assert data["range"]["computed"] is True and data["kind"] == "differential"
    assert data["not_verified"] == list(factors.not_verified)
    assert data["components"][0]["source"]["doi"] == "10.1148/radiol.240398"
    assert data["scanner_energy_grid"]["country_iso_code"] == "TST"
    assert data["per_scan"]["co2e_kg"] == pytest.approx(2.505)  # the 0.1.0 keys are kept


@pytest.mark.req("SRS-CARB-034")
@pytest.mark.parametrize(("edit", "where", "why"), [
    pytest.param(_set("components", "syringes", "co2e_kg", "low", value=0.8),
                 "components.syringes.co2e_kg", "needs low <= central <= high", id="low-above"),
    pytest.param(_set("components", "syringes", "co2e_kg", "high", value=0.4),
                 "components.syringes.co2e_kg", "needs low <= central <= high",
                 id="high-below"),
    pytest.param(_set("components", "syringes", "co2e_kg",
                      value={"low": 0, "central": 0, "high": 0}),
                 "components.syringes.co2e_kg", "adds nothing", id="all-zero"),
    pytest.param(_del("components", "syringes", "co2e_kg", "central"),
                 "components.syringes.co2e_kg.central", "Field required", id="no-central"),
    pytest.param(_del("components", "agent", "source", "doi"),
                 "components.agent.source.doi", "Field required", id="no-doi"),
    pytest.param(_set("components", "agent", "source", "doi",
                      value="https://example.org/paper"),
                 "components.agent.source.doi", "should match pattern", id="url-not-doi"),
    pytest.param(_del("components", "agent", "source"), "components.agent.source",
                 "Field required", id="no-source"),
    pytest.param(_set("components", "agent", "source", "verified", value=True),
                 "components.agent.source", "verified: true needs the table or figure",
                 id="verified-without-table"),
    pytest.param(_set("components", "agent", "source", "citation", value="TBD"),
                 "components.agent.source.citation", "a placeholder", id="placeholder-tbd"),
    pytest.param(_set("components", "syringes", "derivation",
                      value="Figure to be confirmed by the vendor."),
                 "components.syringes.derivation", "a placeholder",
                 id="placeholder-to-be-confirmed"),
    pytest.param(_set("components", "syringes", "energy_kwh",
                      value={"low": 0.1, "central": 0.2, "high": 0.3}),
                 "components.syringes", "exactly one of", id="two-footprints"),
    pytest.param(_set("components", "agent", "category", value="energy"),
                 "components.agent", "energy_kwh is the footprint of the energy category",
                 id="energy-category-without-kwh"),
    pytest.param(_set("components", "syringes", "co2e_kg",
                      value={"low": 20, "central": 40, "high": 80}),
                 "components", "outside the plausible 0.1-20", id="implausible-total"),
    pytest.param(_set("components", value={}), "components", "at least 1",
                 id="no-components"),
    pytest.param(_set("components", "syringes", "co2e_kg", "central", value="0.5"),
                 "components.syringes.co2e_kg.central", "valid number", id="quoted-number"),
])
def test_invalid_differential_sets_are_refused(tmp_path: Path, edit: Callable[[Data], None],
                                               where: str, why: str) -> None:
    data = _small_set()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(FactorError) as err:
        load_factor_set(path, grid=GRID)
    assert err.value.code == "CARBON_FACTORS_INVALID"
    assert str(path) in err.value.detail
    assert where in err.value.detail and why in err.value.detail, err.value.detail


@pytest.mark.req("SRS-CARB-034")
def test_a_placeholder_in_a_point_set_is_refused_too(tmp_path: Path) -> None:
    data = yaml.safe_load(PRODUCT_BRIEF_FILE.read_text(encoding="utf-8"))
    data["factors"]["packaging_g"]["source"] = "TODO: find the reference"
    path = _write(tmp_path, data, "site.yaml")
    line = path.read_text().splitlines().index("    source: 'TODO: find the reference'") + 1
    with pytest.raises(FactorError, match=rf"factors\.packaging_g\.source \(line {line}\): a "
                                          r"placeholder"):
        load_factor_set(path)


@pytest.mark.req("SRS-CARB-035")
def test_the_product_brief_set_is_kept_apart_and_clearly_labelled() -> None:
    brief = load_factor_set(PRODUCT_BRIEF_FILE)
    assert (brief.id, brief.version, brief.kind) == ("product-brief", "2026.1", "average-ct")
    assert brief.co2e_kg == 9.2 and brief.co2e_kg_range is None  # a point figure
    assert "average CT scan of any kind" in brief.title and "NOT a contrast" in brief.title
    data = brief.to_dict()
    assert "NOT the extra footprint of contrast" in data["kind_label"]
    assert data["range"] == {"co2e_kg": {"low": 9.2, "central": 9.2, "high": 9.2},
                             "energy_kwh": data["range"]["energy_kwh"], "computed": False}
    assert "doi:10.1016/j.lanwpc.2022.100459" in brief.factors[0].source
    assert set(packaged_factor_sets()) == {"contrast-differential-2026.1",
                                           "product-brief-2026.1"}


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **overrides)


@pytest.mark.req("SRS-CARB-035", "SRS-CARB-033")
def test_the_brief_set_is_selected_by_setting_and_the_differential_is_the_default(
        tmp_path: Path) -> None:
    default = site_carbon(_settings(tmp_path, carbon_country="AUS"))
    assert default.factors.id == "contrast-differential"
    # The scanner energy is converted with the site's grid, the compute's own.
    assert default.grid.country_iso_code == "AUS" and default.factors.grid == default.grid
    assert 0.3 < default.grid.kg_co2e_per_kwh < 1.5 and "CodeCarbon" in default.grid.source
    brief = site_carbon(_settings(tmp_path, carbon_factor_set="product-brief-2026.1"))
    assert (brief.factors.id, brief.factors.kind) == ("product-brief", "average-ct")


@pytest.mark.req("SRS-CARB-035")
@pytest.mark.parametrize(("overrides", "message"), [
    ({"carbon_factor_set": "contrast-ct-2026.1"},
     "DC_CARBON_FACTOR_SET: no packaged factor set 'contrast-ct-2026.1'; packaged: "
     "contrast-differential-2026.1, product-brief-2026.1"),
    ({"carbon_factor_set": "product-brief-2026.1", "carbon_factors_file": Path("x.yaml")},
     "DC_CARBON_FACTOR_SET and DC_CARBON_FACTORS_FILE: set one of them, not both"),
])
def test_a_wrong_factor_set_setting_stops_the_start(tmp_path: Path, overrides: Data,
                                                    message: str) -> None:
    with pytest.raises(DigitalContrastError) as err:
        site_carbon(_settings(tmp_path, **overrides))
    assert err.value.code == "CONFIG_INVALID" and err.value.detail == message
