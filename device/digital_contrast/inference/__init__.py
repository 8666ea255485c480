"""The locked inference core: a verified, validated bundle turns an NCCT volume into a synthetic
contrast-enhanced volume, deterministically. One entry point: `synthesize`."""

from digital_contrast.inference.locked_model import LockedModel
from digital_contrast.inference.synthesize import SynthesisResult, synthesize

__all__ = ["LockedModel", "SynthesisResult", "synthesize"]
