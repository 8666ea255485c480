"""The synthetic (derived) CT series: labelling, provenance, atomic output (architecture.md)."""

from digital_contrast.imaging.synthetic.content import SynthesizingModel
from digital_contrast.imaging.synthetic.sop import build_synthetic_series, series_description
from digital_contrast.imaging.synthetic.writer import SyntheticSeries, write_synthetic_series

__all__ = [
           "SynthesizingModel",
           "SyntheticSeries",
           "build_synthetic_series",
           "series_description",
           "write_synthetic_series",
]
