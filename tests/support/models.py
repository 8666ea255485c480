"""Tiny, untrained bundles for registry and inference tests (behaviour, not quality)."""

from pathlib import Path

import torch

from digital_contrast.model.bundle import Bundle, write_bundle
from digital_contrast.model.network import NetworkConfig, build_network
from digital_contrast.model.validation_record import Criterion, ValidationRecord
from digital_contrast.usecases import UseCase


def tiny_network(use_case: UseCase) -> NetworkConfig:
    return NetworkConfig(channels=(4, 8), strides=(2,), num_res_units=0
                         ).with_preprocessing(use_case.preprocessing)


def tiny_bundle(folder: Path, use_case: UseCase, *, seed: int = 0,
                model_version: str = "0.0.1") -> Bundle:
    config = tiny_network(use_case)
    torch.manual_seed(seed)
    network = build_network(config)
    return write_bundle(folder, use_case=use_case, model_version=model_version,
                        network=config, state_dict=network.state_dict(),
                        provenance={"note": "untrained test bundle"})


def record_for(bundle: Bundle, *, passing: bool = True) -> ValidationRecord:
    return ValidationRecord(
        bundle_sha256=bundle.sha256, use_case=bundle.manifest.use_case,
        model_name=bundle.manifest.model_name, model_version=bundle.manifest.model_version,
        protocol="validation/protocols/test.yaml", protocol_sha256="0" * 64,
        dataset="test fixture", evidence="untrained test bundle",
        criteria=[Criterion(metric="lumen_dice", op=">=", threshold=0.9,
                            value=0.95 if passing else 0.5)])
