"""Evidence about a bundle's explanations, kept in its validation record: the uncertainty
calibration (which test-time augmentation, which threshold, how well it tracked real error) and
the attribution sanity checks that decide which methods the service may offer."""

import json
from pathlib import Path

from pydantic import Field

from digital_contrast.errors import DigitalContrastError
from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.keys.signing import unverified_payload


class TTASettings(FrozenSchema):
    """How test-time-augmentation samples are drawn: part of what a calibration is valid for."""

    samples: int = Field(8, ge=2)
    max_shift_voxels: int = Field(1, ge=0, le=4)  # whole working-grid voxels
    gain_sd: float = Field(0.01, ge=0.0)  # relative HU gain
    offset_sd_hu: float = Field(3.0, ge=0.0)
    noise_sd_hu: float = Field(6.0, ge=0.0)  # added on the working grid
    seed: int = Field(0, ge=0)


class UncertaintyCalibration(FrozenSchema):
    """Threshold on the TTA spread chosen so that, per case, the fraction of synthesized lumen
    above it matches the fraction whose enhancement error exceeds `error_hu`."""

    tta: TTASettings
    error_hu: float = Field(gt=0)
    threshold_hu: float = Field(ge=0)
    dataset: str  # e.g. "phantom seeds 8000-8011 (held out), small size"
    cases: list[tuple[float, float]]  # (uncertain fraction, erroneous fraction) per case
    mean_abs_fraction_error: float  # mean |uncertain - erroneous| over the cases
    spearman_cases: float  # rank agreement of the two fractions across cases
    voxel_auc: float  # how well the spread ranks erroneous lumen voxels (0.5 = chance)


class SanityCheck(FrozenSchema):
    """One attribution method's sanity checks (Adebayo et al. 2018) on phantom cases."""

    method: str
    randomisation_spearman: float  # vs the same network with re-initialised weights
    max_randomisation_spearman: float
    aorta_mass_ratio: float  # attribution mass share in aorta + 10 mm / that region's volume share
    min_aorta_mass_ratio: float
    cases: int

    @property
    def passed(self) -> bool:
        return (self.randomisation_spearman <= self.max_randomisation_spearman
                and self.aorta_mass_ratio >= self.min_aorta_mass_ratio)


class ExplainEvidence(FrozenSchema):
    uncertainty: UncertaintyCalibration
    sanity: list[SanityCheck] = Field(default_factory=list)

    def sanity_of(self, method: str) -> SanityCheck | None:
        return next((c for c in self.sanity if c.method == method), None)


class ExplainFile(FrozenSchema):
    """The explain evidence of one bundle as a file (`model calibrate --out`), to be carried
    into the bundle's next validation record by `validate --explain-from`."""

    bundle_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    explain: ExplainEvidence | None

    @classmethod
    def read(cls, path: Path) -> "ExplainFile":
        """From a calibration file or from a validation record (signed or not: the signature is
        not what makes the evidence, the validation that carries it will sign it)."""
        try:
            data = unverified_payload(json.loads(Path(path).read_text("utf-8")))
            return cls.model_validate({k: data.get(k) for k in ("bundle_sha256", "explain")})
        except (OSError, ValueError, AttributeError):  # pydantic's ValidationError included
            raise DigitalContrastError("EXPLAIN_FILE_INVALID", f"{path} is not a calibration "
                                       "file or validation record") from None
