"""The cascade's second-stage geometry: a patient-aligned crop, the connectivity rule and the
composition of both stages' enhancement."""

import numpy as np
import pytest

from digital_contrast.inference.lumen_step import LumenPrediction, compose, keep_connected
from digital_contrast.model.blood_reference import BloodReference
from digital_contrast.model.crop_grid import CropGrid, centre_xy, native_box, to_crop
from digital_contrast.model.lumen_stage import LUMEN, THROMBUS
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.labels import Label


@pytest.fixture(scope="module")
def case():
    return generate_case(20001, "small")


def _flipped(array: np.ndarray, affine: np.ndarray, axes: tuple[int, ...]
             ) -> tuple[np.ndarray, np.ndarray]:
    """The same anatomy stored with `axes` reversed (its affine adjusted to match)."""
    out, moved = array, affine.copy()
    for axis in axes:
        out = np.flip(out, axis)
        last = np.zeros(3)
        last[axis] = array.shape[axis] - 1
        moved[:3, 3] = moved[:3, :3] @ last + moved[:3, 3]
        moved[:3, axis] *= -1
    return np.ascontiguousarray(out), moved


@pytest.mark.req("SRS-INF-014")
@pytest.mark.parametrize("axes", [(0,), (1, 2), (0, 2)], ids=["slices-reversed", "prone",
                                                              "feet-first"])
def test_the_crop_shows_the_same_anatomy_however_the_series_is_stored(case, axes) -> None:
    aorta = case.labels == Label.AORTA_LUMEN
    centre = centre_xy(aorta, case.affine)
    grid = CropGrid.around(centre, (-150.0, -60.0), (2.0, 1.5, 1.5), (64, 64))
    reference = to_crop(case.ncct, case.affine, grid)
    array, affine = _flipped(case.ncct, case.affine, axes)
    assert centre_xy(_flipped(aorta, case.affine, axes)[0], affine) == pytest.approx(centre)
    assert np.abs(to_crop(array, affine, grid) - reference).max() < 0.5
    # Crop axes run superior, posterior, left: the spine lies behind the aorta (+y, row index).
    spine = to_crop((case.labels == Label.BONE_CANCELLOUS).astype(np.float32), case.affine,
                    grid, padding_value=0.0) > 0.5
    rows = np.nonzero(spine.any(axis=(0, 2)))[0]
    assert rows.size and rows.min() > grid.shape[1] // 2


def _probabilities(shape: tuple[int, int, int]) -> np.ndarray:
    p = np.zeros((3, *shape), dtype=np.float32)
    p[0] = 1.0
    p[:, :, 10:14, 10:14] = np.array([0.1, 0.9, 0.0])[:, None, None, None]  # the aorta
    p[:, 4:6, 25:27, 25:27] = np.array([0.2, 0.8, 0.0])[:, None, None, None]  # an island
    p[:, 8:12, 14:16, 10:14] = np.array([0.3, 0.0, 0.7])[:, None, None, None]  # thrombus
    return p


@pytest.mark.req("SRS-INF-013")
def test_lumen_not_connected_to_the_main_lumen_becomes_background() -> None:
    p = _probabilities((20, 32, 32))
    kept = keep_connected(p, 0.5)
    assert kept[LUMEN, 4:6, 25:27, 25:27].max() == 0.0
    assert kept[0, 4:6, 25:27, 25:27].min() == pytest.approx(1.0)
    np.testing.assert_array_equal(kept[LUMEN, :, 10:14, 10:14], p[LUMEN, :, 10:14, 10:14])
    np.testing.assert_array_equal(kept[THROMBUS], p[THROMBUS])
    np.testing.assert_allclose(kept.sum(axis=0), 1.0, atol=1e-6)


@pytest.mark.req("SRS-INF-013")
def test_stage_two_replaces_stage_one_around_its_lumen_and_thrombus_only(case) -> None:
    grid = CropGrid.around(centre_xy(case.labels == Label.AORTA_LUMEN, case.affine),
                           (-150.0, -110.0), (2.0, 1.5, 1.5), (32, 32))
    p = keep_connected(_probabilities(grid.shape), 0.5)
    first_stage = np.zeros(grid.shape, dtype=bool)
    first_stage[:, 14:24, 10:14] = True  # stage 1 draws lumen through and beyond the thrombus
    first_stage[:, 28:, 28:] = True  # and far from stage 2's aorta
    lumen = LumenPrediction(grid=grid, image=np.zeros(grid.shape, np.float32), probabilities=p,
                            blood=BloodReference(40.0, 500, 10.0), lumen_enhancement_hu=250.0,
                            thrombus_enhancement_hu=2.0, first_stage_aorta=first_stage)
    weight = lumen.region()
    assert weight[10, 19, 12] > 0.9  # overruled 6 mm beyond it (a soft seam: not quite 1)
    assert weight[10, 31, 31] == pytest.approx(0.0, abs=0.05)  # kept 20 mm away
    stage1 = np.full(case.ncct.shape, 7.0, dtype=np.float32)
    out = compose(stage1.copy(), lumen, case.affine)
    box = native_box(grid, case.affine, case.ncct.shape)
    outside = np.ones(out.shape, dtype=bool)
    outside[box] = False
    assert (out[outside] == 7.0).all()  # beyond the crop: stage 1, untouched
    rendered = out[box]
    assert rendered.max() == pytest.approx(0.9 * 250.0, rel=0.05)  # lumen core
    assert np.isclose(rendered, 7.0).mean() > 0.5  # most of the crop is beyond the rim
    assert rendered.min() >= 0.0


@pytest.mark.req("SRS-INF-013")
def test_thrombus_a_few_hu_from_blood_stands_out_in_the_regional_channel() -> None:
    import torch

    from digital_contrast.model.lumen_stage import LumenContrast, LumenStageConfig, lumen_input

    contrast = LumenContrast(kvp=(120.0,), lumen_hu=(300.0,), source="test")
    plain = LumenStageConfig(contrast=contrast)
    regional = LumenStageConfig(contrast=contrast, regional_sigma_mm=3.0)
    rng = np.random.default_rng(0)
    hu = 40.0 + rng.normal(0.0, 20.0, (24, 48, 48)).astype(np.float32)  # blood, noise 20 HU
    hu[:, :, 24:] -= 6.0  # thrombus 6 HU darker, less than a third of the voxel noise
    x = torch.from_numpy(hu)[None, None]
    assert lumen_input(x, torch.tensor([40.0]), plain).shape[1] == 2 == plain.in_channels
    channels = lumen_input(x, torch.tensor([40.0]), regional)[0].numpy()
    assert channels.shape[0] == 3 == regional.in_channels
    assert np.array_equal(channels[:2], lumen_input(x, torch.tensor([40.0]), plain)[0].numpy())
    blood, thrombus = channels[2][4:-4, 4:-4, 4:18], channels[2][4:-4, 4:-4, 30:44]
    raw_blood, raw_thrombus = channels[0][4:-4, 4:-4, 4:18], channels[0][4:-4, 4:-4, 30:44]
    separation = (blood.mean() - thrombus.mean()) / blood.std()
    assert separation > 3.0  # voxels of the regional channel tell thrombus from blood
    assert (raw_blood.mean() - raw_thrombus.mean()) / raw_blood.std() < 0.5  # raw voxels not
