"""The site's carbon settings, checked once at startup: the measurement configuration and the
avoided-footprint factor set in force. An invalid value stops the service or worker with
CONFIG_INVALID naming the setting, rather than measuring against a wrong grid or factors."""

from dataclasses import dataclass

from digital_contrast.carbon.factors import (
    ContrastProtocol,
    FactorError,
    FactorSet,
    load_factor_set,
)
from digital_contrast.carbon.meter import MeterConfig
from digital_contrast.config import Settings
from digital_contrast.errors import DigitalContrastError


@dataclass(frozen=True)
class SiteCarbon:
    meter: MeterConfig
    factors: FactorSet


def site_carbon(settings: Settings) -> SiteCarbon:
    try:
        meter = MeterConfig(settings.carbon_country.upper(), settings.carbon_pue,
                            settings.carbon_force_cpu_power_w,
                            settings.carbon_force_ram_power_w).check()
    except ValueError as exc:
        raise DigitalContrastError("CONFIG_INVALID", f"DC_CARBON_COUNTRY: {exc}") from None
    protocol = None
    if settings.contrast_volume_ml is not None or settings.contrast_iodine_mg_per_ml is not None:
        default = load_factor_set(settings.carbon_factors_file).protocol
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
        factors = load_factor_set(settings.carbon_factors_file, protocol)
    except FactorError as exc:
        raise DigitalContrastError("CONFIG_INVALID",
                                   f"DC_CARBON_FACTORS_FILE: {exc.detail}") from None
    return SiteCarbon(meter, factors)
