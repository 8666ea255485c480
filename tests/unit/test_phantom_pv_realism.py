"""Realism of the abdomen-pv phantom extension: geometry, anatomy, values, variants, lesions.

Values are checked on the per-case tissue tables across many seeds (cheap: parameters only);
anatomy on the label maps of four seeds, one per liver state; images on one rendered case.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from digital_contrast.phantom.anatomy import render_labels, voxel_axes
from digital_contrast.phantom.case import noiseless_images
from digital_contrast.phantom.extensions import get_extension, use_cases
from digital_contrast.phantom.extensions.abdomen_pv import (
    AbdomenPVParameters,
    iodine_factor,
)
from digital_contrast.phantom.intensities import phase_values, texture_amplitudes
from digital_contrast.phantom.labels import (
    LESION_LABELS,
    N_BASE_LABELS,
    PORTAL_SYSTEM_LABELS,
    Label,
)
from digital_contrast.phantom.parameters import PhantomParameters
from digital_contrast.phantom.sampling import sample_parameters

L = Label
PV = "abdomen-pv"
N_SEEDS = 400  # parameters only: ~0.6 s
# One case per liver state (found by seed): normal, cirrhotic, fatty, fatty and cirrhotic.
LABEL_SEEDS = {"normal": 4, "cirrhotic": 1, "fatty": 9, "fatty_cirrhotic": 20}
FULL = np.ones((3, 3, 3), dtype=bool)


@pytest.fixture(scope="module")
def population() -> list[PhantomParameters]:
    return [sample_parameters(seed, "small", PV) for seed in range(N_SEEDS)]


@pytest.fixture(scope="module")
def at_120() -> list[PhantomParameters]:
    """Cases at the reference tube voltage, where the published values are stated."""
    return [sample_parameters(seed, "small", PV, kvp=120.0) for seed in range(N_SEEDS)]


@pytest.fixture(scope="module")
def label_maps() -> dict[str, tuple[PhantomParameters, np.ndarray]]:
    out = {}
    for state, seed in LABEL_SEEDS.items():
        p = sample_parameters(seed, "small", PV)
        assert p.extension is not None and p.extension.liver_state == state
        out[state] = (p, render_labels(p))
    return out


def _ext(p: PhantomParameters) -> AbdomenPVParameters:
    assert isinstance(p.extension, AbdomenPVParameters)
    return p.extension


def _world(p: PhantomParameters, mask: np.ndarray) -> np.ndarray:
    """World (x, y, z) of the voxels of a mask, one row each."""
    zs, ys, xs = voxel_axes(p)
    k, j, i = np.nonzero(mask)
    return np.stack([xs[i], ys[j], zs[k]], axis=1)


def _components(mask: np.ndarray) -> int:
    return int(ndimage.label(mask, FULL)[1])


def _touch(a: np.ndarray, b: np.ndarray) -> bool:
    return bool((ndimage.binary_dilation(a, FULL) & b).any())


# --- SRS-PHA-011 geometry -------------------------------------------------------------------
@pytest.mark.req("SRS-PHA-011")
def test_acquisition_covers_the_upper_abdomen_inside_the_envelope(population: list) -> None:
    for p in population[:60]:
        a, e = p.acquisition, _ext(p)
        assert (a.rows, a.columns) in ((384, 384), (448, 448))
        assert 0.5 <= a.pixel_spacing_mm <= 1.0 and a.slice_thickness_mm in (3.0, 4.0, 5.0)
        # Whole cross-section in the field of view: the body outline, with a margin.
        fov = a.rows * a.pixel_spacing_mm
        assert p.body.body_width_mm + 2 * abs(p.body.body_center_x_mm) < fov
        assert p.body.body_depth_mm + 2 * abs(p.body.body_center_y_mm) < fov
        # From above the liver dome to below the lower pole of the lower kidney.
        assert a.scan_top_z_mm >= e.liver_dome_z_mm + 5.0
        pole = min(p.organs.left_kidney_z_mm, p.organs.right_kidney_z_mm) - (
            p.organs.kidney_length_mm / 2)
        assert a.scan_bottom_z_mm <= pole - 5.0
        assert 160.0 <= a.n_slices * a.slice_spacing_mm <= 300.0
        assert a.shape[0] * a.shape[1] * a.shape[2] < 20e6
    clinical = sample_parameters(3, "clinical", PV)
    assert clinical.acquisition.rows == 512 and clinical.acquisition.slice_thickness_mm <= 2.0
    assert clinical.acquisition.pixel_spacing_mm <= 1.0
    # The same body and the same extension anatomy at both sizes.
    small = population[3].to_dict()
    big = clinical.to_dict()
    assert {k for k in small if small[k] != big[k]} == {"size", "acquisition"}


@pytest.mark.req("SRS-PHA-011", "SRS-PHA-012")
def test_ordinary_cases_carry_no_extension_and_paint_no_new_label() -> None:
    assert use_cases() == ("aaa-cta", PV)
    for seed in (0, 5):
        p = sample_parameters(seed, "small")
        assert p.extension is None and "extension" not in p.to_dict()
        assert p.use_case is None
    pv = sample_parameters(5, "small", PV)
    base = sample_parameters(5, "small")
    # The PV case of a seed is the same patient: landmarks, scanner and blood are the base's.
    for group, name in (("aorta", "renal_artery_z_mm"), ("organs", "left_kidney_z_mm"),
                        ("scanner", "kvp"), ("scanner", "noise_sd_hu"),
                        ("intensities", "blood_hu")):
        assert getattr(getattr(pv, group), name) == getattr(getattr(base, group), name)
    # ...with a normal aorta (no aneurysm, no thrombus), as in a portal-venous population.
    assert pv.aorta.aneurysm_max_diameter_mm - pv.aorta.neck_diameter_mm <= 1.5
    assert pv.aorta.thrombus_shape == "none"


# --- SRS-PHA-012 parameters -----------------------------------------------------------------
@pytest.mark.req("SRS-PHA-012")
def test_extension_parameters_round_trip_and_are_checked(population: list) -> None:
    p = population[10]
    d = json.loads(json.dumps(p.to_dict()))
    assert d["extension"]["use_case"] == PV and p.use_case == PV
    assert PhantomParameters.from_dict(d) == p
    assert d["extension"]["lesion_count"] == len(d["extension"]["lesions"]) == 4
    # Extension fields are overridden by name like base fields, and checked.
    forced = sample_parameters(10, "small", PV, liver_state="cirrhotic", lesions=[],
                               lesion_count=0)
    assert _ext(forced).liver_state == "cirrhotic" and _ext(forced).lesions == ()
    with pytest.raises(ValueError, match=r"extension\.portal_vein_diameter_mm=40\.0 is outside"):
        sample_parameters(1, "small", PV, portal_vein_diameter_mm=40.0)
    with pytest.raises(ValueError, match="unknown phantom parameter"):
        sample_parameters(1, "small", PV, portal_colour=1)
    with pytest.raises(ValueError, match="unknown phantom parameter"):  # not without the ext.
        sample_parameters(1, "small", liver_state="fatty")
    with pytest.raises(ValueError, match="no phantom extension for use case 'knee'"):
        sample_parameters(1, "small", "knee")
    with pytest.raises(ValueError, match=r"extension\.lesions .* diameter of 5-30 mm"):
        PhantomParameters.from_dict({**d, "extension": {
            **d["extension"], "lesions": [[0.0, 1.0, 2.0, 3.0, 50.0]] * 4}})
    with pytest.raises(ValueError, match="no phantom extension"):
        PhantomParameters.from_dict({**d, "extension": {**d["extension"], "use_case": "x"}})
    assert get_extension(PV).parameters is AbdomenPVParameters


# --- SRS-PHA-009 values -----------------------------------------------------------------------
# (label, NCCT range, PV range) at 120 kVp, for normal livers (variants are tested apart).
PUBLISHED_120: list[tuple[Label, tuple[float, float], tuple[float, float]]] = [
    (L.LIVER, (50.0, 65.0), (92.0, 133.0)),
    (L.SPLEEN, (40.0, 50.0), (105.0, 130.0)),
    (L.KIDNEY_CORTEX, (30.0, 40.0), (135.0, 175.0)),
    (L.KIDNEY_MEDULLA, (25.0, 40.0), (120.0, 175.0)),
    (L.PANCREAS, (38.0, 50.0), (88.0, 120.0)),
    (L.PORTAL_VEIN, (25.0, 55.0), (145.0, 195.0)),
    (L.SPLENIC_VEIN, (25.0, 55.0), (145.0, 205.0)),
    (L.SUPERIOR_MESENTERIC_VEIN, (25.0, 55.0), (130.0, 195.0)),
    (L.HEPATIC_VEIN, (25.0, 55.0), (120.0, 190.0)),
    (L.IVC, (25.0, 55.0), (120.0, 180.0)),
    (L.IVC_INFRARENAL, (25.0, 55.0), (80.0, 145.0)),
    (L.BOWEL_WALL, (35.0, 45.0), (80.0, 110.0)),
    (L.GALLBLADDER, (0.0, 20.0), (0.0, 20.0)),
    (L.LIVER_CYST, (0.0, 15.0), (0.0, 19.0)),
    (L.LUNG, (-880.0, -820.0), (-880.0, -820.0)),
]


@pytest.mark.req("SRS-PHA-009")
def test_tissue_values_at_120_kvp_in_published_ranges(at_120: list) -> None:
    for p in at_120:
        if _ext(p).liver_state != "normal":
            continue
        values = phase_values(p)
        for label, (n_lo, n_hi), (pv_lo, pv_hi) in PUBLISHED_120:
            assert n_lo <= values["ncct"][label] <= n_hi, (label.name, p.seed)
            assert pv_lo <= values["portal_venous"][label] <= pv_hi, (label.name, p.seed)
        # Every new label has a value in every phase: no label falls back to 0 HU.
        for label in range(N_BASE_LABELS, len(Label)):
            assert all(values[ph][label] != 0.0 for ph in values) or label == L.GALLBLADDER


@pytest.mark.req("SRS-PHA-009")
def test_liver_enhancement_and_portal_vein_central_values(at_120: list) -> None:
    normal = [p for p in at_120 if _ext(p).liver_state == "normal"]
    gain = np.array([phase_values(p)["portal_venous"][L.LIVER] - phase_values(p)["ncct"][L.LIVER]
                     for p in normal])
    assert 52.0 <= float(np.median(gain)) <= 58.0  # ~50-60 HU at 120 kVp
    assert 3.5 <= float(gain.std()) <= 7.0 and gain.min() >= 42.0 and gain.max() <= 68.0
    portal = np.array([phase_values(p)["portal_venous"][L.PORTAL_VEIN] for p in at_120])
    assert 165.0 <= float(np.median(portal)) <= 175.0 and 5.0 <= float(portal.std()) <= 14.0
    # The portal vein outshines the liver, and the spleen the liver, as in the PV phase.
    for p in normal[:50]:
        v = phase_values(p)["portal_venous"]
        assert v[L.PORTAL_VEIN] > v[L.LIVER] + 40.0 and abs(v[L.SPLEEN] - v[L.LIVER]) < 40.0


@pytest.mark.req("SRS-PHA-009")
def test_enhancement_follows_tube_voltage() -> None:
    gains = {}
    for kvp in (80.0, 100.0, 120.0, 140.0):
        v = phase_values(sample_parameters(12, "small", PV, kvp=kvp))
        gains[kvp] = {label: v["portal_venous"][label] - v["ncct"][label]
                      for label in (L.PORTAL_VEIN, L.LIVER, L.PANCREAS, L.KIDNEY_CORTEX,
                                    L.SPLEEN, L.AORTA_LUMEN, L.RENAL_VEIN, L.MUSCLE,
                                    L.BOWEL_WALL, L.IVC)}
        # Unenhanced tissue does not depend on the enhancement scaling.
        assert v["ncct"][L.PORTAL_VEIN] == sample_parameters(12).intensities.blood_hu
    for label in gains[120.0]:  # the base tissues of the case follow the voltage too
        assert gains[80.0][label] == pytest.approx(gains[120.0][label] * 1.5 ** 1.3, rel=1e-9)
        assert gains[80.0][label] > gains[100.0][label] > gains[120.0][label] > gains[140.0][
            label]
    assert iodine_factor(140.0) == pytest.approx((120 / 140) ** 1.3)
    low = phase_values(sample_parameters(12, "small", PV, kvp=80.0))["portal_venous"]
    assert low[L.PORTAL_VEIN] > 230.0  # ~170 HU at 120 kVp becomes > 230 HU at 80 kVp


@pytest.mark.req("SRS-PHA-009")
def test_arterial_phase_of_the_new_labels(at_120: list) -> None:
    for p in at_120[:100]:
        v = phase_values(p)
        art, pv, ncct = v["arterial"], v["portal_venous"], v["ncct"]
        # Late arterial: portal vein partly opacified, hepatic veins nearly not, pancreas at
        # its peak (pancreatic phase), liver below its portal-venous value.
        assert ncct[L.PORTAL_VEIN] + 30.0 < art[L.PORTAL_VEIN] < pv[L.PORTAL_VEIN]
        assert art[L.HEPATIC_VEIN] - ncct[L.HEPATIC_VEIN] <= 0.12 * (
            pv[L.HEPATIC_VEIN] - ncct[L.HEPATIC_VEIN]) + 1e-9
        assert art[L.PANCREAS] > pv[L.PANCREAS]
        assert ncct[L.LIVER] < art[L.LIVER] < pv[L.LIVER]
        assert art[L.IVC_INFRARENAL] - ncct[L.IVC_INFRARENAL] < 20.0  # legs return late


# --- SRS-PHA-010 variants and lesions ---------------------------------------------------------
@pytest.mark.req("SRS-PHA-010")
def test_liver_variants_at_their_frequencies_with_their_properties(population: list) -> None:
    states = Counter(_ext(p).liver_state for p in population)
    expected = {"normal": 0.60, "fatty": 0.25, "cirrhotic": 0.12, "fatty_cirrhotic": 0.03}
    for state, fraction in expected.items():  # within ~3.5 binomial SDs
        sd = np.sqrt(fraction * (1 - fraction) / N_SEEDS)
        assert abs(states[state] / N_SEEDS - fraction) <= 3.5 * sd + 1e-9, states
    by_state: dict[str, list[PhantomParameters]] = {s: [] for s in expected}
    for p in population:
        by_state[_ext(p).liver_state].append(p)
    for p in by_state["fatty"] + by_state["fatty_cirrhotic"]:
        assert p.intensities.spleen_hu - _ext(p).liver_ncct_hu >= 10.0  # liver below spleen
    for p in by_state["normal"]:
        assert _ext(p).liver_ncct_hu >= p.intensities.spleen_hu  # never below the spleen
    for p in by_state["cirrhotic"]:  # a little lower, but not fatty
        assert p.intensities.spleen_hu - _ext(p).liver_ncct_hu < 10.0
    enhancement = {s: float(np.median([_ext(p).liver_enhancement_hu for p in ps]))
                   for s, ps in by_state.items()}
    assert enhancement["fatty"] >= 0.88 * enhancement["normal"]  # about preserved
    assert enhancement["cirrhotic"] <= 0.82 * enhancement["normal"]  # reduced
    for p in by_state["cirrhotic"] + by_state["fatty_cirrhotic"]:
        e = _ext(p)
        assert p.organs.spleen_length_mm >= 130.0  # splenomegaly
        assert e.portal_vein_diameter_mm >= 13.0  # portal hypertension
        assert p.organs.liver_size <= 0.88 and e.left_lobe_scale >= 1.15  # right lobe shrunk
        assert e.caudate_scale >= 1.3 and e.nodularity_mm >= 1.5 and e.liver_texture_hu >= 8
    for p in by_state["normal"]:
        e = _ext(p)
        assert e.portal_vein_diameter_mm <= 13.0 and e.nodularity_mm == 0.0
        assert p.organs.spleen_length_mm <= 125.0


@pytest.mark.req("SRS-PHA-010")
def test_lesions_recorded_with_type_size_and_contrast_sign(population: list) -> None:
    counts = Counter(_ext(p).lesion_count for p in population)
    assert 0.4 <= counts[0] / N_SEEDS <= 0.6 and max(counts) <= 4
    kinds = Counter(row[0] for p in population for row in _ext(p).lesions)
    assert kinds[0.0] > 50 and kinds[1.0] > 50  # both cysts and metastases occur
    for p in population:
        v = phase_values(p)
        for kind, _, _, _, diameter in _ext(p).lesions:
            assert 5.0 <= diameter <= 30.0
            label = L.LIVER_CYST if kind == 0.0 else L.LIVER_METASTASIS
            before = v["ncct"][label] - v["ncct"][L.LIVER]
            after = v["portal_venous"][label] - v["portal_venous"][L.LIVER]
            # Hypoattenuating in the PV phase, and more conspicuous than unenhanced.
            assert after < -15.0 and abs(after) > abs(before) + 10.0, (p.seed, label.name)
            if label == L.LIVER_METASTASIS:
                assert before < 0.0  # a little below the liver unenhanced
            else:
                assert 0.0 <= v["ncct"][label] <= 15.0
                assert v["portal_venous"][label] - v["ncct"][label] <= 4.0 * iodine_factor(80)


@pytest.mark.req("SRS-PHA-010")
def test_lesions_are_retrievable_from_the_label_map(label_maps: dict) -> None:
    seen = 0
    for p, lab in label_maps.values():
        zs, ys, xs = voxel_axes(p)
        for kind, x, y, z, diameter in _ext(p).lesions:
            label = L.LIVER_CYST if kind == 0.0 else L.LIVER_METASTASIS
            k = int(np.argmin(np.abs(zs - z)))
            j, i = int(np.argmin(np.abs(ys - y))), int(np.argmin(np.abs(xs - x)))
            r = max(2, int(diameter / 2 / p.acquisition.pixel_spacing_mm) // 2)
            assert (lab[k, j - r:j + r + 1, i - r:i + r + 1] == label).any(), (p.seed, kind)
            seen += 1
        lesion = np.isin(lab, LESION_LABELS)
        if lesion.any():  # inside the liver (a subcapsular one also touches the fat outside)
            ring = ndimage.binary_dilation(lesion, FULL) & ~lesion
            inside = np.isin(lab[ring], [L.LIVER, L.PORTAL_VEIN, L.HEPATIC_VEIN, L.GALLBLADDER])
            assert inside.mean() > 0.6, p.seed
    assert seen >= 3


# --- SRS-PHA-008 anatomy ----------------------------------------------------------------------
@pytest.mark.req("SRS-PHA-008")
def test_every_new_structure_is_painted(label_maps: dict) -> None:
    for state, (p, lab) in label_maps.items():
        present = set(np.unique(lab).tolist())
        expected = {L.PORTAL_VEIN, L.SPLENIC_VEIN, L.SUPERIOR_MESENTERIC_VEIN, L.HEPATIC_VEIN,
                    L.PANCREAS, L.LUNG, L.IVC, L.IVC_INFRARENAL, L.LIVER, L.SPLEEN,
                    L.KIDNEY_CORTEX, L.KIDNEY_MEDULLA, L.BOWEL_WALL}
        if _ext(p).gallbladder:
            expected.add(L.GALLBLADDER)
        assert expected <= present, (state, sorted(expected - present))
        assert L.THROMBUS not in present  # normal aorta


@pytest.mark.req("SRS-PHA-008")
def test_vein_trees_are_continuous_and_join_their_parent_veins(label_maps: dict) -> None:
    for state, (p, lab) in label_maps.items():
        portal = lab == L.PORTAL_VEIN
        system = np.isin(lab, PORTAL_SYSTEM_LABELS)
        hepatic = lab == L.HEPATIC_VEIN
        assert _components(portal) == 1 and _components(system) == 1, state
        assert _components(hepatic) == 1, state
        assert _touch(portal, lab == L.SPLENIC_VEIN) and _touch(
            portal, lab == L.SUPERIOR_MESENTERIC_VEIN)
        assert _touch(hepatic, lab == L.IVC)  # the hepatic veins drain into the IVC
        # The splenic vein reaches the splenic hilum.
        assert _distance_mm(p, lab == L.SPLENIC_VEIN, lab == L.SPLEEN) <= 10.0, state
        # Branches reach both lobes: right and left of the IVC within the liver.
        ivc_x = _world(p, lab == L.IVC)[:, 0].mean()
        for tree in (portal, hepatic):
            x = _world(p, tree)[:, 0]
            assert x.min() < ivc_x - 40.0 and x.max() > ivc_x + 15.0, state
        # Intrahepatic: most of each tree is surrounded by liver.
        for tree in (portal, hepatic):
            ring = ndimage.binary_dilation(tree, FULL) & ~tree
            assert np.mean(lab[ring] == L.LIVER) > 0.3, state


def _distance_mm(p: PhantomParameters, a: np.ndarray, b: np.ndarray) -> float:
    """Closest distance between two masks' voxel centres."""
    return float(cKDTree(_world(p, b)).query(_world(p, a))[0].min())


@pytest.mark.req("SRS-PHA-008")
def test_organs_and_veins_in_plausible_positions(label_maps: dict) -> None:
    for p, lab in label_maps.values():
        e = _ext(p)
        c = {label: _world(p, lab == label) for label in (
            L.PANCREAS, L.SUPERIOR_MESENTERIC_VEIN, L.AORTA_LUMEN, L.SPLEEN, L.LIVER,
            L.PORTAL_VEIN, L.HEPATIC_VEIN, L.IVC, L.LUNG, L.IVC_INFRARENAL, L.RENAL_VEIN)}
        pancreas = c[L.PANCREAS]
        aorta_x = c[L.AORTA_LUMEN][:, 0].mean()
        # Head right of the SMV, tail left of the aorta towards the spleen, body in front of
        # the aorta.
        assert pancreas[:, 0].min() < c[L.SUPERIOR_MESENTERIC_VEIN][:, 0].mean() - 10.0
        assert pancreas[:, 0].max() > aorta_x + 40.0
        assert pancreas[:, 1].mean() < c[L.AORTA_LUMEN][:, 1].mean()
        # Hepatic veins high, near the dome; the portal vein enters the liver lower down.
        assert c[L.HEPATIC_VEIN][:, 2].max() <= e.liver_dome_z_mm
        assert c[L.HEPATIC_VEIN][:, 2].max() >= e.liver_dome_z_mm - 45.0
        assert c[L.PORTAL_VEIN][:, 2].mean() < c[L.HEPATIC_VEIN][:, 2].mean()
        # Portal vein in front of the IVC; liver right, spleen left.
        assert c[L.PORTAL_VEIN][:, 1].mean() < c[L.IVC][:, 1].mean()
        assert c[L.LIVER][:, 0].mean() < aorta_x < c[L.SPLEEN][:, 0].mean()
        # Dome: no liver above it, lung only near and above the dome.
        assert c[L.LIVER][:, 2].max() <= e.liver_dome_z_mm + p.acquisition.slice_spacing_mm
        assert c[L.LUNG][:, 2].min() >= e.liver_dome_z_mm - e.left_dome_drop_mm - 60.0
        # The infrarenal IVC lies below the renal veins.
        assert c[L.IVC_INFRARENAL][:, 2].max() < c[L.RENAL_VEIN][:, 2].max()


@pytest.mark.req("SRS-PHA-008", "SRS-PHA-010")
def test_cirrhotic_liver_is_small_nodular_with_a_large_spleen(label_maps: dict) -> None:
    normal_p, normal = label_maps["normal"]
    cirr_p, cirr = label_maps["cirrhotic"]

    def volume_ml(p: PhantomParameters, lab: np.ndarray, label: Label) -> float:
        a = p.acquisition
        return float((lab == label).sum() * a.pixel_spacing_mm ** 2 * a.slice_spacing_mm / 1e3)

    def roughness(lab: np.ndarray) -> float:
        """Liver surface voxels per liver voxel: a nodular surface has more of them."""
        liver = lab == L.LIVER
        st = np.zeros((1, 3, 3), dtype=bool)
        st[0] = True
        opened = ndimage.binary_opening(liver, st, iterations=2)
        return float((liver ^ opened).sum() / liver.sum())

    assert volume_ml(cirr_p, cirr, L.SPLEEN) > 1.5 * volume_ml(normal_p, normal, L.SPLEEN)
    assert roughness(cirr) > 1.5 * roughness(normal)


# --- SRS-PHA-009 rendered images ----------------------------------------------------------------
@pytest.mark.req("SRS-PHA-009")
def test_rendered_case_shows_the_tissue_values(label_maps: dict) -> None:
    p, lab = label_maps["fatty"]
    tissue = noiseless_images(p, lab, blur=False)
    values = phase_values(p)
    organ, _ = texture_amplitudes(p)["portal_venous"]
    for label in (L.LIVER, L.SPLEEN, L.PANCREAS, L.PORTAL_VEIN, L.HEPATIC_VEIN, L.KIDNEY_CORTEX):
        for phase in ("ncct", "portal_venous"):
            median = float(np.median(tissue[phase][lab == label]))
            assert median == pytest.approx(values[phase][label], abs=3 * organ[label] + 1.0)
    liver = lab == L.LIVER
    spleen = lab == L.SPLEEN
    # Fatty liver: darker than the spleen unenhanced by >= 10 HU, as measured in the image.
    assert np.median(tissue["ncct"][spleen]) - np.median(tissue["ncct"][liver]) >= 9.0
    # Fat, bone and lung are not enhanced.
    for label in (L.FAT_VISCERAL, L.BONE_CORTICAL, L.LUNG, L.GALLBLADDER):
        mask = lab == label
        if mask.any():
            np.testing.assert_array_equal(tissue["portal_venous"][mask], tissue["ncct"][mask])
