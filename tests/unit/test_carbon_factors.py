"""Point factor sets (the 0.1.0 format; the packaged product-brief set): derivation from the
cited figures, validation, iodine. The differential default: test_carbon_differential.py."""

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from digital_contrast.carbon.factors import (
    PRODUCT_BRIEF_FILE,
    ContrastProtocol,
    FactorError,
    FactorSet,
    annual_to_per_scan,
    load_factor_set,
)
from tests.support.nested import delete_at as _del
from tests.support.nested import set_at as _set

Data = dict[str, Any]


def _default() -> Data:
    return yaml.safe_load(PRODUCT_BRIEF_FILE.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: Data, name: str = "site-factors.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def default_set() -> FactorSet:
    """The product brief's set: the point format's reference file (no longer the default)."""
    return load_factor_set(PRODUCT_BRIEF_FILE)


@pytest.mark.req("SRS-CARB-010")
def test_default_set_derives_per_scan_values_from_the_cited_totals(
        default_set: FactorSet) -> None:
    assert (default_set.id, default_set.version) == ("product-brief", "2026.1")
    assert default_set.source_file == "product-brief-2026.1.yaml"
    assert default_set.kind == "average-ct"
    assert default_set.annual_contrast_ct == 180_000_000
    assert default_set.co2e_kg == 9.2  # stated per scan, used as is
    # 42,000 t/year x 1e6 g/t / 180e6 scans/year
    assert default_set.packaging_g == pytest.approx(233.333333, rel=1e-6)
    assert default_set.needle_steel_g == pytest.approx(5.0)  # 900 t
    assert default_set.tubing_plastic_g == pytest.approx(500.0)  # 90,000 t
    assert default_set.plastics_g == pytest.approx(733.333333, rel=1e-6)
    assert default_set.energy_kwh == pytest.approx(0.833333, rel=1e-6)  # 150e6 kWh / 180e6
    assert default_set.iodine_g == pytest.approx(35.0)  # 100 mL x 350 mgI/mL


@pytest.mark.req("SRS-CARB-010")
@pytest.mark.parametrize(("total", "unit", "per_scan_unit", "expected"), [
    (42_000, "t/year", "g/scan", 233.333333),
    (900, "t/year", "g/scan", 5.0),
    (900_000, "kg/year", "g/scan", 5.0),
    (150_000_000, "kWh/year", "kWh/scan", 0.833333),
    (150_000, "MWh/year", "kWh/scan", 0.833333),
    (1_656_000, "t CO2e/year", "kg CO2e/scan", 9.2),
])
def test_unit_conversion_annual_to_per_scan(total: float, unit: str, per_scan_unit: str,
                                            expected: float) -> None:
    assert annual_to_per_scan(total, unit, per_scan_unit, 180e6) == pytest.approx(
        expected, rel=1e-6)


@pytest.mark.req("SRS-CARB-010")
def test_unit_conversion_refuses_an_unknown_unit_pair() -> None:
    with pytest.raises(ValueError, match="no conversion from 't/year' to 'kWh/scan'"):
        annual_to_per_scan(900, "t/year", "kWh/scan", 180e6)


@pytest.mark.req("SRS-CARB-010")
def test_every_factor_is_described_with_unit_source_and_derivation(
        default_set: FactorSet) -> None:
    by_key = {f.key: f for f in default_set.factors}
    assert list(by_key) == ["co2e_kg", "packaging_g", "needle_steel_g", "tubing_plastic_g",
                            "energy_kwh", "iodine_g"]
    for f in default_set.factors:
        assert f.unit and f.covers and f.source and f.derivation and f.plausible_basis
        assert f.plausible_min <= f.value <= f.plausible_max
    assert by_key["packaging_g"].derivation == (
        "42,000 t/year x 1,000,000 g/t / 180,000,000 scans/year = 233.333 g/scan")
    assert by_key["energy_kwh"].derivation == (
        "150,000,000 kWh/year / 180,000,000 scans/year = 0.833333 kWh/scan")
    # The 9.2 kg is McAlister et al.'s average CT; the brief's own figures say they are unsourced.
    assert "doi:10.1016/j.lanwpc.2022.100459" in by_key["co2e_kg"].source
    assert "table not verified" in by_key["co2e_kg"].source
    assert "the brief gives no primary reference" in by_key["needle_steel_g"].source
    assert "180 million" in by_key["needle_steel_g"].source  # the annual count is cited too
    assert "no double counting" in default_set.description
    data = json.loads(json.dumps(default_set.to_dict()))
    assert data["per_scan"]["plastics_g"] == pytest.approx(733.333333, rel=1e-6)
    assert data["protocol"] == {"volume_ml": 100, "iodine_mg_per_ml": 350,
                                "origin": "factor set default"}
    assert len(data["factors"]) == 6 and data["rejected"][0]["name"] == "iodine contamination"


@pytest.mark.req("SRS-CARB-011")
def test_the_200000_t_iodine_figure_is_evaluated_and_refused(default_set: FactorSet) -> None:
    (rejected,) = default_set.rejected
    assert (rejected.annual_total, rejected.annual_unit) == (200_000, "t/year")
    assert rejected.per_scan == pytest.approx(1111.111111, rel=1e-6)  # 200,000 t / 180e6
    assert "1,111.11 g iodine per scan" in rejected.reason
    assert "200,000 t/year exceeds world iodine production (35,000 t/year" in rejected.reason
    assert "outside the plausible 1-120 g/scan" in rejected.reason
    assert default_set.iodine_g == 35.0  # the valid set still loads, iodine from the protocol


@pytest.mark.req("SRS-CARB-011")
def test_world_production_comparison_uses_the_stated_production(tmp_path: Path) -> None:
    data = _default()
    data["iodine"]["world_production"]["value"] = 250_000
    (rejected,) = load_factor_set(_write(tmp_path, data)).rejected
    assert "exceeds world iodine production" not in rejected.reason
    assert "outside the plausible" in rejected.reason


@pytest.mark.req("SRS-CARB-011")
def test_a_set_using_the_200000_t_figure_as_its_iodine_factor_is_refused(
        tmp_path: Path) -> None:
    data = _default()
    del data["iodine"]["per_scan_from_protocol"]
    data["iodine"]["annual_total"] = {"value": 200_000, "unit": "t/year",
                                      "source": "product brief"}
    path = _write(tmp_path, data)
    with pytest.raises(FactorError) as err:
        load_factor_set(path)
    assert err.value.code == "CARBON_FACTORS_INVALID"
    assert str(path) in err.value.detail and "iodine.annual_total" in err.value.detail
    assert "1,111.11 g iodine per scan" in err.value.detail
    assert "exceeds world iodine production" in err.value.detail


@pytest.mark.req("SRS-CARB-012")
def test_a_plausible_annual_iodine_share_is_refused_too(tmp_path: Path) -> None:
    data = _default()
    del data["iodine"]["per_scan_from_protocol"]
    # 6,300 t / 180e6 = 35 g: plausible, below world production, and still not a protocol.
    data["iodine"]["annual_total"] = {"value": 6_300, "unit": "t/year", "source": "a guess"}
    with pytest.raises(FactorError) as err:
        load_factor_set(_write(tmp_path, data))
    assert "35 g iodine per scan" in err.value.detail
    assert "exceeds world" not in err.value.detail
    assert "comes from the contrast protocol" in err.value.detail


@pytest.mark.req("SRS-CARB-011")
@pytest.mark.parametrize(("edit", "where", "why"), [
    pytest.param(_del("factors", "packaging_g", "source"), "factors.packaging_g.source",
                 "Field required", id="missing-source"),
    pytest.param(_set("annual_contrast_ct", "source", value=""), "annual_contrast_ct.source",
                 "at least 3 characters", id="empty-source"),
    pytest.param(_del("iodine", "per_scan_from_protocol", "volume_ml", "source"),
                 "iodine.per_scan_from_protocol.volume_ml.source", "Field required",
                 id="missing-protocol-source"),
    pytest.param(_set("factors", "co2e_kg", "value", value=-9.2), "factors.co2e_kg.value",
                 "greater than 0", id="negative-value"),
    pytest.param(_set("factors", "needle_steel_g", "annual_total", "value", value=0),
                 "factors.needle_steel_g.annual_total.value", "greater than 0",
                 id="zero-annual-total"),
    pytest.param(_set("factors", "energy_kwh", "kwh_per_scan", value=1.0),
                 "factors.energy_kwh.kwh_per_scan", "Extra inputs are not permitted",
                 id="unknown-field"),
    pytest.param(_set("factors", "iodine_g", value={"value": 35}), "factors.iodine_g",
                 "Extra inputs are not permitted", id="unknown-factor"),
    pytest.param(_set("factors", "co2e_kg", "value", value="9.2"), "factors.co2e_kg.value",
                 "valid number", id="wrong-type-quoted-number"),
    pytest.param(_set("version", value=2026.1), "version", "valid string",
                 id="wrong-type-unquoted-version"),
    pytest.param(_set("factors", "co2e_kg", "annual_total", value={"value": 1, "unit": "t/year"}),
                 "factors.co2e_kg", "exactly one of value or annual_total", id="value-and-total"),
    pytest.param(_set("factors", "tubing_plastic_g", "annual_total", "unit", value="kg/year"),
                 "factors.tubing_plastic_g", "0.5 g/scan is outside the plausible 10-2,000 g/scan",
                 id="out-of-range"),
    pytest.param(_set("factors", "co2e_kg", "value", value=92.0), "factors.co2e_kg",
                 "outside the plausible 1-50 kg CO2e/scan", id="out-of-range-stated"),
    pytest.param(_set("factors", "packaging_g", "unit", value="kg/scan"),
                 "factors.packaging_g.unit", "unit must be 'g/scan'", id="wrong-per-scan-unit"),
    pytest.param(_set("factors", "energy_kwh", "annual_total", "unit", value="kcal/year"),
                 "factors.energy_kwh.annual_total.unit", "no conversion from 'kcal/year'",
                 id="unknown-annual-unit"),
    pytest.param(_set("iodine", "per_scan_from_protocol", "volume_ml", "value", value=500),
                 "iodine.per_scan_from_protocol", "volume_ml = 500 mL is outside",
                 id="default-protocol-out-of-range"),
    pytest.param(_set("iodine", "plausible", value={"min": 50, "max": 10, "basis": "upside down"}),
                 "iodine.plausible", "min 50.0 is not below max 10.0", id="inverted-range"),
])
def test_invalid_factor_sets_are_refused_naming_file_and_factor(
        tmp_path: Path, edit: Callable[[Data], None], where: str, why: str) -> None:
    data = _default()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(FactorError) as err:
        load_factor_set(path)
    assert err.value.code == "CARBON_FACTORS_INVALID"
    assert str(path) in err.value.detail
    assert where in err.value.detail and why in err.value.detail


@pytest.mark.req("SRS-CARB-011")
def test_the_error_gives_the_yaml_line(tmp_path: Path) -> None:
    data = _default()
    data["factors"]["co2e_kg"]["value"] = -9.2
    path = _write(tmp_path, data)
    line = path.read_text().splitlines().index("    value: -9.2") + 1
    with pytest.raises(FactorError, match=rf"factors\.co2e_kg\.value \(line {line}\)"):
        load_factor_set(path)


@pytest.mark.req("SRS-CARB-011")
def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "no-such-factors.yaml"
    with pytest.raises(FactorError) as err:
        load_factor_set(path)
    assert err.value.code == "CARBON_FACTORS_INVALID"
    assert "no-such-factors.yaml" in err.value.detail and "cannot read" in err.value.detail


@pytest.mark.req("SRS-CARB-011")
@pytest.mark.parametrize("text", ["id: contrast-ct\nfactors: {co2e_kg: [9.2\n",
                                  "- just\n- a list\n", ""])
def test_broken_yaml_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FactorError) as err:
        load_factor_set(path)
    assert err.value.code == "CARBON_FACTORS_INVALID"
    assert "broken.yaml" in err.value.detail


@pytest.mark.req("SRS-CARB-012")
def test_iodine_from_a_site_protocol(tmp_path: Path) -> None:
    protocol = ContrastProtocol(volume_ml=80, iodine_mg_per_ml=300)
    assert protocol.iodine_g == pytest.approx(24.0)
    factors = load_factor_set(PRODUCT_BRIEF_FILE, protocol=protocol)
    assert factors.iodine_g == pytest.approx(24.0)
    assert factors.protocol == protocol and factors.protocol_origin == "site protocol"
    iodine = factors.factors[-1]
    assert iodine.key == "iodine_g" and iodine.value == pytest.approx(24.0)
    assert iodine.derivation == "80 mL x 300 mgI/mL / 1,000 mg/g = 24 g/scan (site protocol)"
    assert factors.co2e_kg == 9.2  # nothing else changes


@pytest.mark.req("SRS-CARB-012")
def test_a_site_protocol_outside_the_file_iodine_range_is_refused(tmp_path: Path) -> None:
    data = _default()
    data["iodine"]["plausible"]["max"] = 60
    path = _write(tmp_path, data)
    assert load_factor_set(path).iodine_g == 35.0
    with pytest.raises(FactorError, match=r"iodine.*120 g/scan is outside the plausible 1-60"):
        load_factor_set(path, ContrastProtocol(volume_ml=300, iodine_mg_per_ml=400))


@pytest.mark.req("SRS-CARB-012")
@pytest.mark.parametrize(("volume", "concentration", "field"), [
    (0, 350, "volume_ml"), (-100, 350, "volume_ml"), (500, 350, "volume_ml"),
    (math.nan, 350, "volume_ml"), (100, 50, "iodine_mg_per_ml"),
    (100, 3500, "iodine_mg_per_ml"), ("100", 350, "volume_ml"), (True, 350, "volume_ml"),
])
def test_implausible_protocols_are_refused(volume: Any, concentration: Any, field: str) -> None:
    with pytest.raises(ValueError, match=f"contrast protocol {field}"):
        ContrastProtocol(volume_ml=volume, iodine_mg_per_ml=concentration)


@pytest.mark.req("SRS-CARB-014")
def test_a_site_factor_set_overrides_the_default(tmp_path: Path,
                                                 default_set: FactorSet) -> None:
    data = _default()
    data["id"], data["version"] = "st-elsewhere-lca", "2025.3-site"
    data["factors"]["co2e_kg"]["value"] = 12.5
    data["factors"]["co2e_kg"]["source"] = "St Elsewhere life-cycle assessment 2025"
    factors = load_factor_set(_write(tmp_path, data, "st-elsewhere.yaml"))
    assert (factors.id, factors.version) == ("st-elsewhere-lca", "2025.3-site")
    assert factors.source_file == "st-elsewhere.yaml"
    assert factors.to_dict()["id"] == "st-elsewhere-lca"
    assert factors.to_dict()["version"] == "2025.3-site"
    assert factors.co2e_kg == 12.5
    assert factors.factors[0].source == "St Elsewhere life-cycle assessment 2025"
    assert factors.sha256 != default_set.sha256


@pytest.mark.req("SRS-CARB-014")
def test_a_site_factor_set_is_validated_like_the_default(tmp_path: Path) -> None:
    data = _default()
    data["id"] = "st-elsewhere-lca"
    data["factors"]["needle_steel_g"]["annual_total"]["value"] = 900_000  # kg typed as t
    path = _write(tmp_path, data, "st-elsewhere.yaml")
    with pytest.raises(FactorError, match=r"st-elsewhere\.yaml: factors\.needle_steel_g"):
        load_factor_set(path)
