"""One phantom case: label map and the three co-registered acquisitions (NCCT, CTA, PV)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .anatomy import affine, render_labels
from .intensities import HU_MAX, HU_MIN, PHASES, render_phases
from .noise import correlated_noise
from .parameters import PhantomParameters, rng_stream
from .sampling import sample_parameters


@dataclass(frozen=True, eq=False)
class PhantomCase:
    """Arrays are (n_slices, rows, columns) = (k, j, i); k runs inferior to superior."""

    parameters: PhantomParameters
    labels: np.ndarray  # uint8 Label values
    ncct: np.ndarray  # float32 HU, unenhanced, with noise
    arterial: np.ndarray  # float32 HU, arterial-phase CTA, own noise
    portal_venous: np.ndarray  # float32 HU, portal-venous CECT, own noise
    affine: np.ndarray  # 4x4 float64 LPS mm: world = affine @ [k, j, i, 1]
    spacing: tuple[float, float, float]  # (slice, row, column) spacing in mm

    def phase(self, name: str) -> np.ndarray:
        """The image of a phase by name: 'ncct', 'arterial' or 'portal_venous'."""
        if name not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        image: np.ndarray = getattr(self, name)
        return image


def noiseless_images(parameters: PhantomParameters, labels: np.ndarray | None = None,
                     blur: bool = True) -> dict[str, np.ndarray]:
    """The noise-free images of every phase ({'ncct', 'arterial', 'portal_venous'}: float32).

    Each noisy image of the case is exactly this plus its noise, clipped to [-1024, 3071].
    """
    if labels is None:
        labels = render_labels(parameters)
    return render_phases(parameters, labels, blur=blur)


def render_case(parameters: PhantomParameters) -> PhantomCase:
    """The case defined by explicit parameters (e.g. read back from a manifest)."""
    p, scanner, grid = parameters, parameters.scanner, parameters.acquisition
    labels = render_labels(p)
    images = render_phases(p, labels)
    for phase, image in images.items():
        # Each phase is a separate acquisition: independent noise from its own stream.
        noise = correlated_noise(image.shape, scanner.noise_sd_hu, scanner.noise_sigma_px,
                                 scanner.noise_sigma_z_px, rng_stream(p.seed, f"noise/{phase}"))
        image += noise
        del noise
        np.clip(image, HU_MIN, HU_MAX, out=image)
    return PhantomCase(
        parameters=p, labels=labels, ncct=images["ncct"], arterial=images["arterial"],
        portal_venous=images["portal_venous"], affine=affine(p),
        spacing=(grid.slice_spacing_mm, grid.pixel_spacing_mm, grid.pixel_spacing_mm))


def generate_case(seed: int, size: str = "small", extension: str | None = None,
                  **overrides: Any) -> PhantomCase:
    """Sample the parameters of `seed` (with overrides) and render the case; `extension`
    names a use case's phantom extension (e.g. "abdomen-pv"), None for the base phantom."""
    return render_case(sample_parameters(seed, size, extension, **overrides))
