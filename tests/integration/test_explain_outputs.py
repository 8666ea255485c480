"""Map outputs: Parametric Map, Secondary Captures, PNG previews and NIfTI, written atomically."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import ParametricMapStorage, SecondaryCaptureImageStorage

from digital_contrast import MANUFACTURER
from digital_contrast.explain.outputs import (
    EVIDENCE,
    MapOutputError,
    MapSpec,
    build_parametric_map,
    build_secondary_captures,
    preview_center,
    previews,
    render_previews,
    write_map_outputs,
    writer,
)
from digital_contrast.imaging.nifti import read_nifti
from digital_contrast.imaging.series_reader import read_series, volume_from_datasets
from digital_contrast.imaging.synthetic import SynthesizingModel
from digital_contrast.imaging.synthetic.sop import WARNING
from digital_contrast.imaging.volume import Volume
from digital_contrast.phantom.export import Phase
from tests.support.ct_series import ct_slices
from tests.support.dciodvfy import dciodvfy_errors

MODEL = SynthesizingModel("aaa-cta-test", "0.0.1", "a" * 64)
UNCERTAINTY = MapSpec("uncertainty", "tta", "[hnsf'U]", "Hounsfield unit",
                      "Voxel-wise standard deviation of the synthesized enhancement over 8 "
                      "test-time augmentations")
ATTRIBUTION = MapSpec("attribution", "integrated-gradients", "1", "no units",
                      "Integrated Gradients of the mean enhancement in the aortic lumen")


@pytest.fixture(scope="module")
def volumes(phantom_series: dict) -> tuple[Volume, Volume, Volume]:
    """NCCT, a stand-in synthetic image (the arterial phase on the NCCT's grid and source) and
    a smooth blob of map values centred on the aneurysm."""
    ncct = read_series(phantom_series[Phase.NCCT])
    synthetic = ncct.with_array(read_series(phantom_series[Phase.ARTERIAL]).array)
    k, j, i = preview_center(synthetic.array - ncct.array, ncct.spacing)
    kk, jj, ii = np.indices(ncct.shape, dtype=np.float32)
    sk, sj, si = ncct.spacing
    distance2 = ((kk - k) * sk) ** 2 + ((jj - j) * sj) ** 2 + ((ii - i) * si) ** 2
    values = ncct.with_array(30.0 * np.exp(-distance2 / (2 * 20.0**2)))
    return ncct, synthetic, values


@pytest.fixture(scope="module")
def written(volumes, tmp_path_factory: pytest.TempPathFactory) -> writer.MapOutputs:
    ncct, synthetic, values = volumes
    return write_map_outputs(tmp_path_factory.mktemp("map-outputs"), ncct=ncct,
                             synthetic=synthetic, values=values, spec=UNCERTAINTY, model=MODEL)


def small_volume(n: int = 4) -> Volume:
    """A tiny CT series without BodyPartExamined, for fast checks."""
    datasets, _ = ct_slices(n=n)
    return volume_from_datasets(datasets)


def small_map(volume: Volume) -> Volume:
    return volume.with_array(np.linspace(0, 5, volume.array.size, dtype=np.float32)
                             .reshape(volume.shape))


def code_values(sequence) -> list[str]:
    return [item.PurposeOfReferenceCodeSequence[0].CodeValue for item in sequence]


# --- Parametric Map -------------------------------------------------------------------------

@pytest.mark.req("SRS-EXP-010", "SRS-EXP-013")
def test_parametric_map_is_conformant_and_labelled(written, volumes) -> None:
    ncct, _, _ = volumes
    assert dciodvfy_errors(written.parametric_map) == []
    ds = pydicom.dcmread(written.parametric_map, stop_before_pixels=True)
    source = ncct.source.header
    assert ds.SOPClassUID == ParametricMapStorage and ds.Modality != "CT"
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "FrameOfReferenceUID",
                    "AccessionNumber"):
        assert ds[keyword].value == source[keyword].value, keyword
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert ds.SyntheticData == "YES"
    assert (ds.Manufacturer, ds.ManufacturerModelName) == (MANUFACTURER, "Digital Contrast")
    assert MODEL.label in ds.SoftwareVersions
    assert ds.SeriesDescription.startswith("SYNTH CONTRAST (AI) MAP UNCERTAINTY")
    assert len(ds.SeriesDescription) <= 64
    assert MODEL.label in ds.DerivationDescription
    assert "No contrast agent was administered" in ds.DerivationDescription
    assert "not CT image intensities" in ds.DerivationDescription
    assert WARNING in ds.ImageComments and EVIDENCE in ds.ImageComments
    assert ds.ContentLabel == "UNCERTAINTY"
    mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert mapping.MeasurementUnitsCodeSequence[0].CodeValue == "[hnsf'U]"
    assert mapping.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
    assert "109100" in code_values(ds.ContributingEquipmentSequence)  # synthesizing: us
    assert "109101" in code_values(ds.ContributingEquipmentSequence)  # acquisition: scanner


@pytest.mark.req("SRS-EXP-010")
def test_parametric_map_values_round_trip_frame_by_frame(written, volumes) -> None:
    ncct, _, values = volumes
    ds = pydicom.dcmread(written.parametric_map)
    frames = ds.pixel_array
    assert frames.dtype == np.float32 and frames.shape == values.shape
    uids = [s.sop_instance_uid for s in ncct.source.slices]
    order = []
    for index, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        reference = item.DerivationImageSequence[0].SourceImageSequence[0]
        k = uids.index(reference.ReferencedSOPInstanceUID)
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(position, ncct.source.slices[k].position, atol=1e-3)
        np.testing.assert_array_equal(frames[index], values.array[k])
        order.append(k)
    # One frame per slice, stacked along the slice axis (highdicom orders the stack by its
    # own normal, so the file runs in source order or exactly reversed).
    assert order in (list(range(len(uids))), list(range(len(uids)))[::-1])


@pytest.mark.req("SRS-EXP-010", "SRS-EXP-013")
def test_a_map_of_a_series_without_body_part_is_conformant(tmp_path: Path) -> None:
    volume = small_volume()
    pm = build_parametric_map(small_map(volume), ATTRIBUTION, MODEL)
    pm.save_as(tmp_path / "pm.dcm", enforce_file_format=True)
    assert dciodvfy_errors(tmp_path / "pm.dcm") == []
    assert pm.SpecificCharacterSet == "ISO_IR 192" and pm.ContentLabel == "ATTRIBUTION"


@pytest.mark.req("SRS-EXP-013")
def test_uids_are_deterministic_and_differ_between_maps() -> None:
    volume = small_volume()
    values = small_map(volume)
    first = build_parametric_map(values, UNCERTAINTY, MODEL)
    again = build_parametric_map(values, UNCERTAINTY, MODEL)
    other_kind = build_parametric_map(values, ATTRIBUTION, MODEL)
    other_model = build_parametric_map(values, UNCERTAINTY,
                                       SynthesizingModel("aaa-cta-test", "0.0.2", "b" * 64))
    keys = ("SeriesInstanceUID", "SOPInstanceUID")
    assert [first[k].value for k in keys] == [again[k].value for k in keys]
    assert (first.DimensionOrganizationSequence[0].DimensionOrganizationUID
            == again.DimensionOrganizationSequence[0].DimensionOrganizationUID)
    for other in (other_kind, other_model):
        assert all(first[k].value != other[k].value for k in keys)
    assert all(str(first[k].value).startswith("2.25.") for k in keys)

    image = np.zeros((8, 8, 3), np.uint8)
    renderings = {"axial": image, "coronal": image}
    sc_first = build_secondary_captures(renderings, volume.source, UNCERTAINTY, MODEL)
    sc_again = build_secondary_captures(renderings, volume.source, UNCERTAINTY, MODEL)
    sc_other = build_secondary_captures(renderings, volume.source, ATTRIBUTION, MODEL)
    assert [s.SOPInstanceUID for s in sc_first] == [s.SOPInstanceUID for s in sc_again]
    assert len({s.SOPInstanceUID for s in sc_first}) == 2
    assert sc_first[0].SeriesInstanceUID == sc_again[0].SeriesInstanceUID
    assert sc_first[0].SeriesInstanceUID not in (sc_other[0].SeriesInstanceUID,
                                                  first.SeriesInstanceUID)


# --- Secondary Captures ---------------------------------------------------------------------

@pytest.mark.req("SRS-EXP-011", "SRS-EXP-013")
def test_secondary_captures_are_conformant_and_labelled(written, volumes) -> None:
    ncct, _, _ = volumes
    source = ncct.source.header
    expected_orientation = {"axial": ["L", "P"], "coronal": ["L", "F"],
                            "sagittal": ["P", "F"]}
    series = set()
    for view, path in written.secondary_captures.items():
        assert dciodvfy_errors(path) == [], view
        ds = pydicom.dcmread(path)
        series.add(ds.SeriesInstanceUID)
        assert ds.SOPClassUID == SecondaryCaptureImageStorage and ds.Modality != "CT"
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert (ds.PatientID, ds.PatientName) == (source.PatientID, source.PatientName)
        assert ds.SyntheticData == "YES" and ds.BurnedInAnnotation == "NO"
        assert ds.Manufacturer == MANUFACTURER
        assert ds.SeriesDescription.startswith("SYNTH CONTRAST (AI) MAP UNCERTAINTY")
        assert len(ds.SeriesDescription) <= 64
        assert WARNING in ds.ImageComments and EVIDENCE in ds.ImageComments
        assert list(ds.PatientOrientation) == expected_orientation[view]
        assert len(ds.SourceImageSequence) == len(ncct.source.slices)
        # The DICOM rendering is exactly the PNG preview.
        with Image.open(written.previews[view]) as png:
            np.testing.assert_array_equal(ds.pixel_array, np.asarray(png))
    assert series == {written.sc_series_instance_uid}
    assert written.sc_series_instance_uid != written.pm_series_instance_uid


# --- PNG previews ---------------------------------------------------------------------------

def crop(image: np.ndarray, box: tuple[int, int, int, int], inset: int = 0) -> np.ndarray:
    left, top, width, height = box
    return image[top + inset:top + height - inset, left + inset:left + width - inset]


def warning_drawn(band: np.ndarray) -> bool:
    """Yellow text on an otherwise black band: some text pixels, the rest dark."""
    text = (band[..., 0] > 180) & (band[..., 1] > 140) & (band[..., 2] < 100)
    return 0.02 < text.mean() < 0.5 and float(band[~text].mean()) < 60


@pytest.mark.req("SRS-EXP-012")
def test_previews_have_a_fixed_size_and_show_images(written) -> None:
    for view, path in written.previews.items():
        with Image.open(path) as png:
            assert png.size == (previews.WIDTH, previews.HEIGHT) and png.mode == "RGB", view
            image = np.asarray(png)
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200, view
        for index in range(3):
            panel = crop(image, previews.panel_box(index), inset=previews.WARNING_BAND)
            assert panel.std() > 20, (view, index)
        overlay = crop(image, previews.panel_box(2)).astype(int)
        assert (np.abs(overlay[..., 0] - overlay[..., 2]) > 60).any(), view  # the colour map
        footer = image[previews.FOOTER_TOP:, :previews.COLORBAR_LEFT]
        assert (footer.min(axis=2) > 200).sum() > 500, view  # the footer's white text


@pytest.mark.req("SRS-EXP-012")
def test_colour_bar_runs_monotonically(written) -> None:
    with Image.open(written.previews["axial"]) as png:
        image = np.asarray(png).astype(float)
    left, top, width, height = previews.colorbar_box()
    column = image[top + 3:top + height - 3, left + width // 2]
    luminance = column @ np.array([0.2126, 0.7152, 0.0722])
    upward = luminance[::-1]  # the colour bar's low end is at the bottom
    assert np.all(np.diff(upward) >= -2.0)
    assert upward[-1] - upward[0] > 150
    assert len(np.unique(column, axis=0)) > 50


@pytest.mark.req("SRS-EXP-012")
def test_warning_is_burned_into_every_panel(written, volumes, monkeypatch) -> None:
    for view, path in written.previews.items():
        with Image.open(path) as png:
            image = np.asarray(png)
        for index in range(3):
            band = crop(image, previews.warning_box(index), inset=2)
            assert warning_drawn(band), (view, index)
    # The check can fail: without the text the bands are blank.
    monkeypatch.setattr(previews, "warning_text", lambda: "")
    ncct, synthetic, values = volumes
    center = preview_center(synthetic.array - ncct.array, ncct.spacing)
    blank = render_previews(ncct, synthetic, values.array, UNCERTAINTY, center)["axial"]
    assert not any(warning_drawn(crop(blank, previews.warning_box(i), inset=2))
                   for i in range(3))


@pytest.mark.req("SRS-EXP-012")
def test_previews_draw_nothing_from_the_header(volumes) -> None:
    ncct, synthetic, values = volumes
    anonymous = Volume(array=ncct.array, affine=ncct.affine)  # no source, no header
    center = (ncct.shape[0] // 2, ncct.shape[1] // 2, ncct.shape[2] // 2)
    with_header = render_previews(ncct, synthetic, values.array, UNCERTAINTY, center)
    without = render_previews(anonymous, synthetic, values.array, UNCERTAINTY, center)
    for view in previews.VIEWS:
        np.testing.assert_array_equal(with_header[view], without[view])


@pytest.mark.req("SRS-EXP-012")
def test_preview_center_is_the_widest_slice_of_the_aorta() -> None:
    shape, spacing = (40, 64, 64), (2.5, 0.8, 0.8)
    kk, jj, ii = np.indices(shape)
    enhancement = np.zeros(shape, np.float32)
    radius = 4 + 7 * np.exp(-((kk - 25) ** 2) / 18.0)  # a tube with a bulge at slice 25
    enhancement[(jj - 30) ** 2 + (ii - 34) ** 2 <= radius**2] = 300
    enhancement[10, 29:32, 34:64] = 300  # a thin renal artery leaving in-plane
    kidney = (jj[3:8] - 12) ** 2 + (ii[3:8] - 12) ** 2 <= 14**2  # wider, but short
    enhancement[3:8][kidney] = 300
    enhancement[:, 60:64, 0:4] = 100  # long, but below the lumen threshold
    assert preview_center(enhancement, spacing) == pytest.approx((25, 30, 34), abs=1)
    assert preview_center(np.zeros(shape, np.float32), spacing) == (20, 32, 32)


# --- Writing and refusals -------------------------------------------------------------------

@pytest.mark.req("SRS-EXP-014")
def test_outputs_are_written_together_and_never_twice(written, volumes) -> None:
    ncct, synthetic, values = volumes
    record = written.to_dict()
    assert record["parametric_map"] == "uncertainty-tta/parametric_map.dcm"
    assert (record["secondary_captures"]["coronal"]
            == "uncertainty-tta/secondary_capture/coronal.dcm")
    assert record["previews"]["sagittal"] == "uncertainty-tta/preview_sagittal.png"
    assert record["nifti"] == "uncertainty-tta/uncertainty-tta.nii.gz"
    for relative in (record["parametric_map"], record["nifti"],
                     *record["secondary_captures"].values(), *record["previews"].values()):
        assert (written.root / relative).is_file(), relative
    assert sorted(p.name for p in written.root.iterdir()) == ["uncertainty-tta"]
    nifti = read_nifti(written.nifti)
    np.testing.assert_array_equal(nifti.array, values.array)
    np.testing.assert_allclose(nifti.affine, values.affine, atol=1e-4)

    again = write_map_outputs(written.root, ncct=ncct, synthetic=synthetic, values=values,
                              spec=UNCERTAINTY, model=MODEL)
    assert not again.created and again.to_dict() == record
    with pytest.raises(MapOutputError, match="never written over another"):
        write_map_outputs(written.root, ncct=ncct, synthetic=synthetic, values=values,
                          spec=UNCERTAINTY, model=SynthesizingModel("other", "1", "c" * 64))


@pytest.mark.req("SRS-EXP-014")
def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, volumes, monkeypatch) -> None:
    ncct, synthetic, values = volumes

    def broken_png(image: np.ndarray, path: Path) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(writer, "write_png", broken_png)
    with pytest.raises(OSError, match="disk full"):
        write_map_outputs(tmp_path, ncct=ncct, synthetic=synthetic, values=values,
                          spec=UNCERTAINTY, model=MODEL)
    assert list(tmp_path.iterdir()) == []  # neither uncertainty-tta/ nor a temporary folder


@pytest.mark.req("SRS-EXP-014")
def test_bad_inputs_are_refused_with_a_code(tmp_path: Path) -> None:
    volume = small_volume()
    values = small_map(volume)
    with pytest.raises(MapOutputError, match="no source series") as refused:
        build_parametric_map(Volume(array=values.array, affine=values.affine), UNCERTAINTY,
                             MODEL)
    assert refused.value.code == "EXP_MAP_OUTPUT" and isinstance(refused.value, ValueError)
    narrower = Volume(array=values.array[:, :-1, :].copy(), affine=values.affine,
                      source=values.source)
    with pytest.raises(MapOutputError, match="differs from the source series"):
        build_parametric_map(narrower, UNCERTAINTY, MODEL)
    shifted = values.affine.copy()
    shifted[:3, 3] += 5.0
    with pytest.raises(MapOutputError, match="position, orientation or pixel spacing"):
        build_parametric_map(Volume(array=values.array, affine=shifted, source=values.source),
                             UNCERTAINTY, MODEL)
    with pytest.raises(MapOutputError, match="NaN or infinite"):
        build_parametric_map(values.with_array(np.full(values.shape, np.nan, np.float32)),
                             UNCERTAINTY, MODEL)
    other_grid = small_volume(n=5)
    with pytest.raises(MapOutputError, match="not on the map's grid"):
        write_map_outputs(tmp_path, ncct=volume, synthetic=other_grid, values=values,
                          spec=UNCERTAINTY, model=MODEL)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MapOutputError, match="renderings must be named"):
        build_secondary_captures({"oblique": np.zeros((4, 4, 3), np.uint8)}, volume.source,
                                 UNCERTAINTY, MODEL)


@pytest.mark.req("SRS-EXP-014")
@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "saliency"}, "map kind must be one of"),
    ({"method": ""}, "'method' must be a non-empty string"),
    ({"method": "Integrated Gradients"}, "lower-case words joined by hyphens"),
    ({"unit_code": " "}, "'unit_code' must be a non-empty string"),
    ({"unit_meaning": ""}, "'unit_meaning' must be a non-empty string"),
    ({"description": ""}, "'description' must be a non-empty string"),
])
def test_an_incomplete_spec_is_refused(fields: dict, message: str) -> None:
    arguments = {"kind": "uncertainty", "method": "tta", "unit_code": "[hnsf'U]",
                 "unit_meaning": "Hounsfield unit", "description": "SD over 8 samples"}
    with pytest.raises(MapOutputError, match=message):
        MapSpec(**{**arguments, **fields})
    assert MapSpec(**arguments).slug == "uncertainty-tta"
    assert ATTRIBUTION.slug == "attribution-integrated-gradients"


@pytest.mark.req("SRS-LOG-002")
def test_a_one_component_patient_name_is_copied_and_never_quoted_in_a_warning() -> None:
    import warnings

    datasets, _ = ct_slices(n=4, patient_name="SMITHSONIAN")
    source = volume_from_datasets(datasets).source
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (sc,) = build_secondary_captures({"axial": np.zeros((8, 8, 3), np.uint8)}, source,
                                         UNCERTAINTY, MODEL)
    assert str(sc.PatientName) == "SMITHSONIAN"
    assert not [w for w in caught if "SMITHSONIAN" in str(w.message)]
