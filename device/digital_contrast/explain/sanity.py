"""Sanity checks of attribution methods (after Adebayo et al. 2018, "Sanity checks for saliency
maps"), run on phantom cases whose anatomy is known. A method that fails is not offered: the
bounds are fixed here, never tuned until a method passes.

- Model randomisation: the map of the trained network must differ from the map of the same
  architecture with re-initialised weights (Spearman rank correlation of |attribution|).
- Localisation: the attribution mass inside the aorta plus 10 mm must be at least 3 times that
  region's share of the crop volume.
"""

from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SpatialResample
from scipy import ndimage, stats

from digital_contrast.explain.attribution import AttributionSettings, Method, attribute
from digital_contrast.explain.region import aortic_component, predicted_lumen
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.synthesize import predict_working
from digital_contrast.model.explain_evidence import SanityCheck
from digital_contrast.model.network import build_network, enhancement_only
from digital_contrast.model.network_config import NetworkConfig
from digital_contrast.phantom.case import PhantomCase, generate_case
from digital_contrast.phantom.labels import Label

MAX_RANDOMISATION_SPEARMAN = 0.3
MIN_AORTA_MASS_RATIO = 3.0
AORTA_MARGIN_MM = 10.0
AORTA_LABELS = (Label.AORTA_LUMEN, Label.THROMBUS, Label.AORTIC_WALL, Label.CALCIFICATION)


def randomised_copy(config: NetworkConfig, seed: int = 12345) -> torch.nn.Module:
    """The same architecture with freshly initialised weights (the 'independent
    randomisation' of Adebayo et al.)."""
    torch.manual_seed(seed)
    network = build_network(config).eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return enhancement_only(network, config)


def aorta_region(case: PhantomCase, affine: torch.Tensor, shape: Sequence[int],
                 spacing_mm: Sequence[float]) -> np.ndarray:
    """The phantom's aorta (lumen, thrombus, wall, calcium) plus 10 mm, on the working grid."""
    aorta = np.isin(case.labels, [int(v) for v in AORTA_LABELS]).astype(np.float32)
    source = MetaTensor(torch.from_numpy(aorta[None]), affine=torch.from_numpy(case.affine))
    working = SpatialResample(mode="nearest", padding_mode="zeros")(
        source, dst_affine=affine, spatial_size=tuple(shape)).as_tensor()[0].numpy() > 0.5
    distance = ndimage.distance_transform_edt(~working, sampling=tuple(spacing_mm))
    return distance <= AORTA_MARGIN_MM


def check_case(seed: int, method: Method, cascade: Cascade, random_network: torch.nn.Module,
               settings: AttributionSettings | None = None) -> tuple[float, float]:
    """(randomisation Spearman, aorta mass ratio) of `method` on one phantom case."""
    case = generate_case(seed, "small")
    volume = Volume(case.ncct, case.affine)
    network, config = cascade.network, cascade.network_config
    prediction = predict_working(volume, cascade, case.parameters.scanner.kvp)
    trained = attribute(prediction, network, config, method, settings=settings)
    # The same target region for the random network: only the weights differ.
    target = aortic_component(predicted_lumen(prediction))
    random = attribute(prediction, random_network, config, method, target=target,
                       settings=settings)
    a, b = np.abs(trained.values).ravel(), np.abs(random.values).ravel()
    spearman = float(stats.spearmanr(a, b).statistic)
    region = aorta_region(case, prediction.image.affine, prediction.image.shape[1:],
                          config.spacing_mm)[trained.crop.slices]
    mass = np.abs(trained.values)
    mass_share = float(mass[region].sum() / max(mass.sum(), 1e-12))
    volume_share = float(region.mean())
    ratio = mass_share / volume_share if volume_share else float("nan")
    return (0.0 if np.isnan(spearman) else spearman), ratio


def run_sanity_checks(cascade: Cascade, seeds: Sequence[int],
                      methods: Sequence[Method] = tuple(Method),
                      settings: AttributionSettings | None = None) -> list[SanityCheck]:
    """Each method on each case; a method's figures are its worst case."""
    random_network = randomised_copy(cascade.network_config)
    checks = []
    for method in methods:
        results = [check_case(s, method, cascade, random_network, settings)
                   for s in seeds]
        checks.append(SanityCheck(
            method=method.value,
            randomisation_spearman=round(max(r[0] for r in results), 4),
            max_randomisation_spearman=MAX_RANDOMISATION_SPEARMAN,
            aorta_mass_ratio=round(min(r[1] for r in results), 4),
            min_aorta_mass_ratio=MIN_AORTA_MASS_RATIO, cases=len(results)))
    return checks
