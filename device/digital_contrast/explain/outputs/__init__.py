"""Outputs of an explainability map: a DICOM Parametric Map of the values, Secondary Capture
renderings and PNG previews for people, and NIfTI for research; written together, atomically,
and labelled as AI output of a synthetic image (docs/architecture.md, "Labelling")."""

from digital_contrast.explain.outputs.parametric_map import build_parametric_map
from digital_contrast.explain.outputs.previews import (
    preview_center,
    render_previews,
    write_png,
)
from digital_contrast.explain.outputs.secondary_capture import build_secondary_captures
from digital_contrast.explain.outputs.spec import EVIDENCE, MapOutputError, MapSpec
from digital_contrast.explain.outputs.writer import MapOutputs, write_map_outputs

__all__ = [
    "EVIDENCE",
    "MapOutputError",
    "MapOutputs",
    "MapSpec",
    "build_parametric_map",
    "build_secondary_captures",
    "preview_center",
    "render_previews",
    "write_map_outputs",
    "write_png",
]
