"""A first stage that also segments (veins and lesions for abdomen-pv): extra output channels
trained with Dice + cross-entropy beside the enhancement; inference reads the enhancement."""

from pathlib import Path

import numpy as np
import pytest
import torch

from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.synthesize import predict_enhancement
from digital_contrast.model.bundle import write_bundle
from digital_contrast.model.data import SEGMENT, WeightMapsd
from digital_contrast.model.network import build_network, enhancement_only
from digital_contrast.model.network_config import NetworkConfig
from digital_contrast.model.training import (
    InitialWeights,
    TrainingConfig,
    TrainingInitError,
    smoke_config,
    train,
)
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.labels import Label
from digital_contrast.usecases import load_use_case

CLASSES = {"lumen": ("AORTA_LUMEN", "ILIAC_ARTERY_LUMEN"), "thrombus": ("THROMBUS",)}


@pytest.mark.req("SRS-MOD-016")
def test_segmentation_classes_add_outputs_that_inference_never_sees() -> None:
    config = NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1,
                           segmentation_classes=("vein", "lesion"))
    assert config.out_channels == 4 and NetworkConfig().out_channels == 1
    network = build_network(config).eval()
    x = torch.zeros(1, 1, 8, 8, 8)
    assert network(x).shape[1] == 4
    only = enhancement_only(network, config)
    assert not only.training
    assert torch.equal(only(x), network(x)[:, :1])
    with pytest.raises(ValueError, match="distinct"):
        NetworkConfig(segmentation_classes=("vein", "vein"))


@pytest.mark.req("SRS-MOD-016")
def test_the_class_map_follows_the_labels_of_each_class() -> None:
    labels = torch.tensor([[[[int(Label.AORTA_LUMEN), int(Label.THROMBUS), int(Label.LIVER),
                              int(Label.ILIAC_ARTERY_LUMEN)]]]], dtype=torch.float32)
    out = WeightMapsd(0.0, 0.0, 1.0, segment=[(int(Label.AORTA_LUMEN),
                                               int(Label.ILIAC_ARTERY_LUMEN)),
                                              (int(Label.THROMBUS),)])({"labels": labels})
    assert out[SEGMENT].flatten().tolist() == [1, 2, 0, 1]
    assert SEGMENT not in WeightMapsd(0.0, 0.0, 1.0)({"labels": labels})


@pytest.mark.req("SRS-MOD-016")
@pytest.mark.parametrize(("changes", "message"), [
    ({"network": NetworkConfig(segmentation_classes=("vein",))}, "needs segmentation_labels"),
    ({"segmentation_labels": {"vein": ("NOT_A_LABEL",)}}, "unknown phantom labels"),
    ({"segmentation_labels": {"a": ("THROMBUS",), "b": ("THROMBUS",)}}, "its own"),
    ({"segmentation_labels": {"a": ()}}, "its own"),
])
def test_invalid_segmentation_configs_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**{**smoke_config().model_dump(), **changes})


@pytest.mark.req("SRS-MOD-016", "SRS-MOD-015")
def test_a_segmenting_network_trains_from_one_output_weights_and_synthesizes(
        tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    use_case = load_use_case("aaa-cta")
    base = {"steps_per_epoch": 4,
            "network": smoke_config().network.with_preprocessing(use_case.preprocessing)}
    plain = train(smoke_config(**base), uri, output_dir=tmp_path / "plain")
    initial = InitialWeights(path=str(plain.weights_path), sha256=plain.weights_sha256,
                             new_outputs=True)
    config = smoke_config(**base, segmentation_labels=CLASSES, initial_weights=initial)
    assert config.network.segmentation_classes == ("lumen", "thrombus")
    assert config.label_weights()["segment"] == ((int(Label.AORTA_LUMEN),
                                                  int(Label.ILIAC_ARTERY_LUMEN)),
                                                 (int(Label.THROMBUS),))
    tuned = train(config, uri, output_dir=tmp_path / "tuned")
    assert all(np.isfinite(tuned.step_losses))
    # Every tensor of the plain network was the starting point of the one that segments; the
    # output layers, of another shape, started fresh.
    fresh = build_network(config.network).state_dict()
    differing = [k for k, v in plain.state_dict.items() if v.shape != fresh[k].shape]
    assert differing and len(differing) < len(fresh) // 4

    # Without new_outputs the one-output weights do not fit, and a network with no new
    # outputs is refused them with new_outputs.
    strict = initial.model_copy(update={"new_outputs": False})
    with pytest.raises(TrainingInitError, match="does not fit"):
        train(config.model_copy(update={"initial_weights": strict}), uri,
              output_dir=tmp_path / "strict")
    same = smoke_config(**base, initial_weights=initial)
    with pytest.raises(TrainingInitError, match="fewer outputs"):
        train(same, uri, output_dir=tmp_path / "same")

    bundle = write_bundle(tmp_path / "bundle", use_case=use_case, model_version="0.0.1",
                          network=config.network, state_dict=tuned.state_dict, lumen_stage=None,
                          lumen_state_dict=None)
    cascade = Cascade.of(bundle)
    case = generate_case(3, "small")
    enhancement = predict_enhancement(Volume(case.ncct, case.affine), cascade,
                                      kvp=case.parameters.scanner.kvp)
    assert enhancement.shape == case.ncct.shape and np.isfinite(enhancement).all()
