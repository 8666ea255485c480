"""What a use case is: intended use, exclusions, target phase, envelope, model and protocol."""

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from digital_contrast.frozen_schema import FrozenSchema

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3)]
Range = tuple[float, float]


class Phase(StrEnum):
    ARTERIAL = "arterial"
    PORTAL_VENOUS = "portal_venous"


def _ordered(name: str, value: Range) -> None:
    if not value[0] <= value[1]:
        raise ValueError(f"{name}: lower bound {value[0]} above upper bound {value[1]}")


class Envelope(FrozenSchema):
    """The intended-use envelope: what an input must be for the model's output to be meant."""

    min_age_years: int = Field(18, ge=0)
    body_parts: list[Text] = Field(min_length=1)  # accepted BodyPartExamined values
    min_coverage_mm: float = Field(gt=0)  # extent along the slice normal
    slice_thickness_mm: Range
    pixel_spacing_mm: Range
    kvp: Range
    kernels: list[Text] = Field(min_length=1)  # regular expressions, matched in full
    # Image checks, in HU unless stated.
    max_unenhanced_blood_hu: float = 110.0  # smoothed aortic blood above this = contrast given
    min_vessel_diameter_mm: float = 10.0  # a bright blob smaller than this is calcium or noise
    contrast_slice_fraction: float = Field(0.3, gt=0, le=1)  # of slices with a spine found
    metal_hu: float = 2500.0
    max_metal_voxels: int = Field(3, ge=0)
    oral_contrast_min_ml: float = Field(2.0, gt=0)
    # Whole words in ImageType, SeriesDescription, ImageComments ('-' and '_' read as spaces).
    vnc_markers: list[Text] = Field(default_factory=lambda: [
        "VNC", "VUE", "VIRTUAL NON CONTRAST", "VIRTUAL NONCONTRAST", "VIRTUAL UNENHANCED",
        "VIRTUAL PLAIN"])

    @model_validator(mode="after")
    def _ranges(self) -> "Envelope":
        for name in ("slice_thickness_mm", "pixel_spacing_mm", "kvp"):
            _ordered(name, getattr(self, name))
        return self


class Preprocessing(FrozenSchema):
    """What the use case's model must assume; a bundle's network config must match it
    (see digital_contrast.model.network for the meaning of each field)."""

    working_spacing_mm: tuple[float, float, float]  # (slice, row, column)
    hu_window: Range
    detail_window: Range | None = None
    iodine_kvp_exponent: float | None = Field(None, gt=0)
    tissue_gate_hu: tuple[float, float, float, float] | None = None

    @model_validator(mode="after")
    def _valid(self) -> "Preprocessing":
        if min(self.working_spacing_mm) <= 0:
            raise ValueError("working spacing must be positive")
        _ordered("hu_window", self.hu_window)
        if self.detail_window is not None:
            _ordered("detail_window", self.detail_window)
        return self

    def network_fields(self) -> dict[str, Any]:
        """The same settings under the network config's field names."""
        return {"spacing_mm": self.working_spacing_mm, "hu_window": self.hu_window,
                "detail_window": self.detail_window,
                "iodine_kvp_exponent": self.iodine_kvp_exponent,
                "tissue_gate_hu": self.tissue_gate_hu}


class ExplainPolicy(FrozenSchema):
    """How explanation judges a result of this use case."""

    # Above this share of uncertain scored region (the synthesized lumen; for a model of the
    # first stage alone the enhanced tissue), a result is labelled LOW CONFIDENCE.
    max_uncertain_lumen_fraction: float = Field(0.25, gt=0, le=1)
    # The calibration's error that matters: a scored voxel off by more than this reads wrong.
    calibration_error_hu: float = Field(50.0, gt=0)


class UseCase(FrozenSchema):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{2,40}$")]
    title: Text
    intended_use: Text
    intended_users: list[Text] = Field(min_length=1)
    exclusions: list[Text] = Field(min_length=1)
    target_phase: Phase
    model_name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{2,60}$")]
    validation_protocol: Text
    preprocessing: Preprocessing
    envelope: Envelope
    evidence: Text  # what the model's evidence is, stated on every result
    # What the output must not be used for, stated in every output: each synthetic image, each
    # map, the result record and the job in the API.
    notice: Text | None = None
    explain: ExplainPolicy = ExplainPolicy()
