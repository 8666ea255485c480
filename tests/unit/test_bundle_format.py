"""Bundle format 2: both stages of the cascade in one hashed bundle; format 1 is refused."""

import json
import shutil
from pathlib import Path

import pytest

from digital_contrast.model.bundle import (
    BUNDLE_FORMAT,
    LUMEN_WEIGHTS,
    MANIFEST,
    BundleError,
    read_bundle,
)
from digital_contrast.usecases import load_use_case
from tests.support.models import tiny_bundle

REPO = Path(__file__).resolve().parents[2]
# The single-network reference model of protocol v4's evaluation, kept with its report.
FORMAT_1 = REPO / "validation" / "reports" / "models" / "aaa-cta" / "1.0.0" / "bundle"


@pytest.mark.req("SRS-MOD-010")
def test_a_format_1_bundle_is_refused_before_its_weights_are_read(tmp_path: Path) -> None:
    assert json.loads((FORMAT_1 / MANIFEST).read_text())["format"] == \
        "digital-contrast-bundle/1"
    with pytest.raises(BundleError) as info:
        read_bundle(FORMAT_1)
    assert info.value.code == "BUNDLE_FORMAT_UNSUPPORTED"
    assert BUNDLE_FORMAT in info.value.detail and "digital-contrast-bundle/1" in \
        info.value.detail


@pytest.mark.req("SRS-MOD-010")
def test_the_hash_covers_both_stages(tmp_path: Path) -> None:
    bundle = tiny_bundle(tmp_path / "a", load_use_case("aaa-cta"))
    assert bundle.manifest.format == BUNDLE_FORMAT
    assert bundle.manifest.lumen_stage.contrast.source
    changed = tmp_path / "b"
    shutil.copytree(bundle.folder, changed)
    data = bytearray((changed / LUMEN_WEIGHTS).read_bytes())
    data[-200] ^= 1
    (changed / LUMEN_WEIGHTS).write_bytes(bytes(data))
    assert read_bundle(changed).sha256 != bundle.sha256
    (changed / LUMEN_WEIGHTS).unlink()
    with pytest.raises(BundleError) as info:
        read_bundle(changed)
    assert info.value.code == "BUNDLE_INVALID"


@pytest.mark.req("SRS-MOD-010")
def test_weights_registered_under_two_names_are_stored_once() -> None:
    import torch

    from digital_contrast.model.lumen_stage import LumenStageConfig, build_lumen_network
    from digital_contrast.model.network import load_state_dict_bytes, state_dict_bytes

    manifest = json.loads((REPO / "validation" / "reports" / "models" / "aaa-cta" / "2.0.0" /
                           "bundle" / MANIFEST).read_text())
    stage = LumenStageConfig.model_validate(manifest["lumen_stage"])
    assert stage.norm == "batch"  # bundles that do not name their norm were trained so
    network = build_lumen_network(stage.model_copy(update={"norm": "instance"}))
    network = network.to(memory_format=torch.channels_last_3d)  # as trained: copies on save
    state = network.state_dict()
    distinct = {v.data_ptr(): v for v in state.values()}
    assert len(distinct) < len(state)  # DynUNet keeps its skip layers twice
    data = state_dict_bytes(state)
    once = sum(v.numel() * v.element_size() for v in distinct.values())
    assert once <= len(data) < once + sum(v.numel() * v.element_size()
                                          for v in state.values()) - once
    rebuilt = build_lumen_network(stage.model_copy(update={"norm": "instance"}))
    rebuilt.load_state_dict(load_state_dict_bytes(data), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(),
                                                 state.values(), strict=True))
