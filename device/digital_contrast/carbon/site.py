"""The site's carbon settings, checked once at startup: the measurement configuration and the
avoided-footprint factor set in force. An invalid value stops the service or worker with
CONFIG_INVALID naming the setting, rather than measuring against a wrong grid or factors."""

from dataclasses import dataclass
from pathlib import Path

from digital_contrast.carbon.factors import (
    ContrastProtocol,
    FactorError,
    FactorSet,
    GridIntensity,
    grid_for,
    load_factor_set,
    packaged_factor_file,
)
from digital_contrast.carbon.meter import MeterConfig
from digital_contrast.config import Settings
from digital_contrast.errors import DigitalContrastError


@dataclass(frozen=True)
class SiteCarbon:
    meter: MeterConfig
    factors: FactorSet
    grid: GridIntensity  # the site's grid: the compute's emissions and the scanner energy's


def factor_file(settings: Settings) -> Path | None:
    """The factor set file the settings select (None: the packaged default)."""
    if settings.carbon_factor_set is None:
        return settings.carbon_factors_file
    if settings.carbon_factors_file is not None:
        raise DigitalContrastError("CONFIG_INVALID", "DC_CARBON_FACTOR_SET and "
                                   "DC_CARBON_FACTORS_FILE: set one of them, not both")
    try:
        return packaged_factor_file(settings.carbon_factor_set)
    except FactorError as exc:
        raise DigitalContrastError("CONFIG_INVALID",
                                   f"DC_CARBON_FACTOR_SET: {exc.detail}") from None


def site_carbon(settings: Settings) -> SiteCarbon:
    try:
        meter = MeterConfig(settings.carbon_country.upper(), settings.carbon_pue,
                            settings.carbon_force_cpu_power_w,
                            settings.carbon_force_ram_power_w).check()
        grid = grid_for(meter.country_iso_code)
    except ValueError as exc:
        raise DigitalContrastError("CONFIG_INVALID", f"DC_CARBON_COUNTRY: {exc}") from None
    path = factor_file(settings)
    setting = "DC_CARBON_FACTOR_SET" if settings.carbon_factor_set else "DC_CARBON_FACTORS_FILE"
    protocol = None
    if settings.contrast_volume_ml is not None or settings.contrast_iodine_mg_per_ml is not None:
        default = load_factor_set(path, grid=grid).protocol
        try:
            protocol = ContrastProtocol(settings.contrast_volume_ml or default.volume_ml,
                                        settings.contrast_iodine_mg_per_ml
                                        or default.iodine_mg_per_ml)
        except (ValueError, FactorError) as exc:
            detail = getattr(exc, "detail", None) or str(exc)
            raise DigitalContrastError(
                "CONFIG_INVALID", f"DC_CONTRAST_VOLUME_ML / DC_CONTRAST_IODINE_MG_PER_ML: "
                f"{detail}") from None
    try:
        factors = load_factor_set(path, protocol, grid)
    except FactorError as exc:
        raise DigitalContrastError("CONFIG_INVALID", f"{setting}: {exc.detail}") from None
    return SiteCarbon(meter, factors, grid)
