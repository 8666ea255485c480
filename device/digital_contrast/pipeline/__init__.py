"""The clinical path, composed once: read -> conformity -> locked model -> synthesize ->
confidence -> attribution -> labelled series and maps. Jobs, the command line and validation
all run it, so validation exercises exactly what a clinical job runs."""

from digital_contrast.pipeline.attribution_step import AttributionRequest, AttributionStep
from digital_contrast.pipeline.clinical_path import ClinicalResult, ModelLoader, run_clinical_path
from digital_contrast.pipeline.reexplanation import Reexplanation, reexplain

__all__ = ["AttributionRequest", "AttributionStep", "ClinicalResult", "ModelLoader",
           "Reexplanation", "reexplain", "run_clinical_path"]
