"""Training pairs from the procedural phantom: NCCT in, enhancement (phase minus NCCT) out.

A case is fully defined by its phantom parameters, so the training data is a manifest of
parameter dicts; its canonical SHA-256 identifies the data of a run. The target is the
*noiseless* enhancement (noiseless phase minus noiseless NCCT): the network learns the
expected enhancement instead of chasing the noise of two independent acquisitions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, MetaTensor
from monai.transforms import (
    Compose,
    DeleteItemsd,
    EnsureTyped,
    MapTransform,
    RandWeightedCropd,
    SelectItemsd,
    Spacingd,
    SpatialPadd,
)

from digital_contrast.canonical_json import canonical_json
from digital_contrast.imaging.resampling import anti_alias
from digital_contrast.imaging.volume import AIR_HU
from digital_contrast.phantom.case import noiseless_images, render_case
from digital_contrast.phantom.labels import ARTERIAL_LUMEN_LABELS, BLOOD_LABELS, Label
from digital_contrast.phantom.parameters import PhantomParameters
from digital_contrast.phantom.sampling import sample_parameters

from .network import scale_input
from .network_config import NetworkConfig, output_scale_hu

GENERATOR = "digital_contrast.phantom"
TARGET_DEFINITION = "noiseless(phase) - noiseless(ncct), HU"
# Where sampling concentrates: every vessel and what surrounds the aortic lumen.
VESSEL_LABELS: tuple[Label, ...] = (
    *BLOOD_LABELS, Label.THROMBUS, Label.CALCIFICATION, Label.AORTIC_WALL)
# Lumen weighted in the loss: the arterial lumen is what an angiogram is read for.
LUMEN_LABELS: tuple[Label, ...] = ARTERIAL_LUMEN_LABELS
# Keys of a sample: network input, target, loss weight map (all one channel, same grid).
IMAGE, TARGET, LOSS_WEIGHT = "image", "target", "loss_weight"
LABELS, SAMPLE_WEIGHT, PARAMETERS, KVP = "labels", "sample_weight", "parameters", "kvp"
SEGMENT = "segment"  # class index per voxel (0 background), with segmentation classes


def ascii_json(value: Any) -> str:
    """Canonical JSON in ASCII: the data manifest is written and hashed in this form."""
    return canonical_json(value, ensure_ascii=True)


def data_manifest(training_seeds: Sequence[int], validation_seeds: Sequence[int] = (),
                  size: str = "small", target_phase: str = "arterial",
                  extension: str | None = None) -> dict[str, Any]:
    """Everything that defines the training data: generator, target and each case's parameters
    (`extension`: the use case's phantom extension, None for the base phantom)."""
    if set(training_seeds) & set(validation_seeds):
        raise ValueError("a seed cannot be both a training and a validation case")

    def cases(seeds: Sequence[int]) -> list[dict[str, Any]]:
        return [{"seed": int(s),
                 "parameters": sample_parameters(int(s), size, extension).to_dict()}
                for s in seeds]

    manifest = {"generator": GENERATOR, "size": size, "input": "ncct",
                "target_phase": target_phase, "target": TARGET_DEFINITION,
                "training": cases(training_seeds), "validation": cases(validation_seeds)}
    if extension is not None:  # a base manifest keeps its bytes, and so its hash
        manifest["extension"] = extension
    return manifest


def manifest_sha256(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(ascii_json(manifest).encode("ascii")).hexdigest()


class PhantomPaird(MapTransform):
    """{'parameters': dict} -> image (noisy NCCT), target (noiseless enhancement), labels, kVp.

    Arrays are (1, k, j, i) MetaTensors carrying the case affine, ready for `Spacingd`; image
    and target are low-passed for `spacing_mm` exactly as inference does.
    """

    def __init__(self, spacing_mm: tuple[float, float, float],
                 target_phase: str = "arterial") -> None:
        super().__init__(keys=[PARAMETERS])
        self.spacing_mm = spacing_mm
        self.target_phase = target_phase

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        case = render_case(PhantomParameters.from_dict(dict(data[PARAMETERS])))
        clean = noiseless_images(case.parameters, case.labels)
        enhancement = clean[self.target_phase] - clean["ncct"]
        affine = torch.from_numpy(case.affine)
        out = dict(data)
        out[KVP] = float(case.parameters.scanner.kvp)
        smooth = [anti_alias(a, case.affine, self.spacing_mm) for a in (case.ncct, enhancement)]
        for key, array in ((IMAGE, smooth[0]), (TARGET, smooth[1]), (LABELS, case.labels)):
            out[key] = MetaTensor(torch.from_numpy(np.ascontiguousarray(
                array[None], dtype=np.float32)), affine=affine.clone())
        return out


class WeightMapsd(MapTransform):
    """From the labels: the loss weight map and the patch-sampling weight map.

    loss_weight = 1 + lumen_weight [arterial lumen] + thrombus_weight [thrombus] + the extra
    weight of each label a use case emphasises: the plain L1 everywhere plus the extra terms.
    Thrombus looks like blood in the NCCT but must stay unenhanced, so errors there are what
    the weight makes expensive; a use case adds what it is read for (e.g. thin veins, lesions).
    sample_weight = 1 outside and `vessel_weight` inside vessels and the use case's sampled
    labels: patch centres are drawn in proportion to it. With `segment` (the labels of each
    segmentation class, in class order), the class index map (0: none of them).
    """

    def __init__(self, lumen_weight: float, thrombus_weight: float, vessel_weight: float,
                 extra_loss: Mapping[int, float] | None = None,
                 sampled: Sequence[int] = (), segment: Sequence[Sequence[int]] = ()) -> None:
        super().__init__(keys=[LABELS])
        self.lumen_weight, self.thrombus_weight = lumen_weight, thrombus_weight
        self.vessel_weight = vessel_weight
        self.extra_loss = dict(extra_loss or {})
        self.sampled = [*(int(v) for v in VESSEL_LABELS), *sampled]
        self.segment = [torch.tensor([int(v) for v in labels]) for labels in segment]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        labels = torch.as_tensor(data[LABELS]).round().to(torch.int64)
        lumen = torch.isin(labels, torch.tensor([int(v) for v in LUMEN_LABELS]))
        vessel = torch.isin(labels, torch.tensor(self.sampled))
        thrombus = labels == int(Label.THROMBUS)
        out = dict(data)
        weight = (1.0 + self.lumen_weight * lumen.float()
                  + self.thrombus_weight * thrombus.float())
        for label, extra in self.extra_loss.items():
            weight = weight + extra * (labels == label).float()
        out[LOSS_WEIGHT] = weight
        out[SAMPLE_WEIGHT] = 1.0 + (self.vessel_weight - 1.0) * vessel.float()
        if self.segment:
            classes = torch.zeros_like(labels, dtype=torch.uint8)
            for index, members in enumerate(self.segment, start=1):
                classes[torch.isin(labels, members)] = index
            out[SEGMENT] = classes
        return out


class ScaleHUd(MapTransform):
    """HU -> network units: `scale_input` on the image; the target over the HU per output
    unit at the case's tube voltage."""

    def __init__(self, network: NetworkConfig) -> None:
        super().__init__(keys=[IMAGE, TARGET])
        self.network = network

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        out[IMAGE] = scale_input(data[IMAGE], self.network)
        out[TARGET] = data[TARGET] / output_scale_hu(self.network, data[KVP])
        return out


def volume_transforms(network: NetworkConfig, min_size: Sequence[int], target_phase: str,
                      lumen_weight: float, thrombus_weight: float, vessel_weight: float,
                      extra_loss: Mapping[int, float] | None = None,
                      sampled: Sequence[int] = (),
                      segment: Sequence[Sequence[int]] = ()) -> list[Any]:
    """Deterministic part: render, resample to the working grid, pad, weight maps, scale."""
    return [
        PhantomPaird(network.spacing_mm, target_phase),
        Spacingd(keys=[IMAGE, TARGET, LABELS], pixdim=network.spacing_mm,
                 mode=("bilinear", "bilinear", "nearest"), padding_mode="border",
                 dtype=np.float32),
        # A volume smaller than a patch: air around the image, nothing around the rest.
        SpatialPadd(keys=[IMAGE], spatial_size=list(min_size), value=AIR_HU),
        SpatialPadd(keys=[TARGET, LABELS], spatial_size=list(min_size), value=0.0),
        WeightMapsd(lumen_weight, thrombus_weight, vessel_weight, extra_loss, sampled, segment),
        ScaleHUd(network),
    ]


def training_transforms(network: NetworkConfig, patch_size: Sequence[int],
                        patches_per_volume: int, target_phase: str, lumen_weight: float,
                        thrombus_weight: float, vessel_weight: float,
                        extra_loss: Mapping[int, float] | None = None,
                        sampled: Sequence[int] = (),
                        segment: Sequence[Sequence[int]] = ()) -> Compose:
    """Cached volume transforms, then vessel-weighted random patches as plain tensors."""
    keys = [IMAGE, TARGET, LOSS_WEIGHT, *([SEGMENT] if segment else [])]
    return Compose([
        *volume_transforms(network, patch_size, target_phase, lumen_weight, thrombus_weight,
                           vessel_weight, extra_loss, sampled, segment),
        DeleteItemsd(keys=[LABELS, PARAMETERS, KVP]),  # not needed for patches: smaller cache
        *patch_transforms(keys, patch_size, patches_per_volume),
    ])


def patch_transforms(keys: Sequence[str], patch_size: Sequence[int],
                     patches_per_volume: int) -> list[Any]:
    """The random tail: patches centred by the sampling weights, `keys` kept, plain tensors."""
    return [
        RandWeightedCropd(keys=list(keys), w_key=SAMPLE_WEIGHT, spatial_size=list(patch_size),
                          num_samples=patches_per_volume),
        SelectItemsd(keys=list(keys)),
        EnsureTyped(keys=list(keys), data_type="tensor", track_meta=False),
    ]


def validation_transforms(network: NetworkConfig, min_size: Sequence[int], target_phase: str,
                          lumen_weight: float, thrombus_weight: float, vessel_weight: float,
                          extra_loss: Mapping[int, float] | None = None,
                          sampled: Sequence[int] = (),
                          segment: Sequence[Sequence[int]] = ()) -> Compose:
    """Whole volumes on the working grid, with labels and loss weights for per-region errors."""
    keys = [IMAGE, TARGET, LABELS, LOSS_WEIGHT, *([SEGMENT] if segment else [])]
    return Compose([
        *volume_transforms(network, min_size, target_phase, lumen_weight, thrombus_weight,
                           vessel_weight, extra_loss, sampled, segment),
        SelectItemsd(keys=keys),
        EnsureTyped(keys=keys, data_type="tensor", track_meta=False),
    ])


def phantom_dataset(cases: Sequence[Mapping[str, Any]], transform: Compose,
                    num_workers: int = 1) -> CacheDataset:
    """A CacheDataset over manifest cases: rendering and resampling run once per case."""
    items = [{PARAMETERS: dict(c["parameters"])} for c in cases]
    # copy_cache=False: the random tail only crops, select and convert, never in place.
    return CacheDataset(items, transform=transform, num_workers=num_workers, progress=False,
                        copy_cache=False)
