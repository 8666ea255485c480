"""abdomen-pv: the phantom extension of the synthetic portal-venous phase of the abdomen.

Adds to the base anatomy of a seed an upper-abdominal acquisition (whole cross-section, from
above the liver dome to below the kidneys), the liver dome with the lung bases above the
diaphragm, caudate lobe, portal venous system (superior mesenteric and splenic veins, their
confluence behind the pancreatic neck, the portal vein to the porta hepatis and its right and
left branches), hepatic veins draining into the IVC below the diaphragm, pancreas, duodenum,
gallbladder, simple liver lesions (cysts, hypovascular metastases), fatty and cirrhotic liver,
and literature values of every tissue in the three phases with their tube-voltage dependence.

Every value comes from streams named "abdomen-pv/..." so the base draws of the seed keep their
places; the base fields this use case changes (a normal aorta, and a shrunken liver with
splenomegaly in cirrhosis) are passed to the base sampler as overrides and recorded as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from ..anatomy import Anatomy, _allow, _Canvas, voxel_axes
from ..labels import Label
from ..noise import SmoothField
from ..parameters import (
    ExtensionGroup,
    PhantomParameters,
    bounded,
    check_value,
    one_of,
    rng_stream,
    rows_of,
)
from .base import PhantomExtension

L = Label
USE_CASE = "abdomen-pv"
LIVER_STATES: tuple[str, ...] = ("normal", "fatty", "cirrhotic", "fatty_cirrhotic")
# Frequencies of the liver variants. Steatosis is found on about a quarter of adult abdominal
# CTs (NAFLD prevalence ~25%, Younossi et al., Hepatology 2016); cirrhosis in a few to ~10% of
# a hospital CT population; both together are rarer.
LIVER_STATE_P: tuple[float, ...] = (0.60, 0.25, 0.12, 0.03)
LESION_LEN = 5  # type (0 cyst, 1 metastasis), centre x, y, z (world mm), diameter mm
MAX_LESIONS = 6
CYST, METASTASIS = 0.0, 1.0
LESION_TYPES = {CYST: L.LIVER_CYST, METASTASIS: L.LIVER_METASTASIS}
# Enhancement (HU above unenhanced) is proportional to iodine concentration, whose attenuation
# rises at low tube voltage; ~(120/kVp)^1.3 over 80-140 kVp, as for the arterial lumen of the
# base phantom (sampling.arterial_lumen_hu). Values below are stated at 120 kVp.
IODINE_KVP_EXPONENT = 1.3
SMALL_MATRIX, LARGE_SMALL_MATRIX, CLINICAL_MATRIX = 384, 448, 512
MAX_PIXEL_SPACING_MM = 1.0  # the abdomen-pv envelope: pixel spacing 0.5-1.0 mm
DOME_CAP_MM = 60.0  # height over which a hemidiaphragm narrows from the full cavity to its apex


def iodine_factor(kvp: float) -> float:
    """Enhancement at `kvp` relative to 120 kVp."""
    return (120.0 / kvp) ** IODINE_KVP_EXPONENT


@dataclass(frozen=True)
class AbdomenPVParameters(ExtensionGroup):
    """Anatomy and attenuation of the abdomen-pv extension; enhancements at 120 kVp."""

    USE_CASE: ClassVar[str] = USE_CASE
    liver_state: str = one_of(LIVER_STATES)
    # --- geometry (world mm; z relative to landmarks of the base anatomy where named) ---------
    liver_dome_z_mm: float = bounded(-2000.0, 2000.0)  # apex of the right hemidiaphragm
    left_dome_drop_mm: float = bounded(0.0, 40.0)  # left hemidiaphragm lower by this
    left_lobe_scale: float = bounded(0.8, 1.6)  # left lobe size over the base left lobe
    caudate_scale: float = bounded(0.6, 1.8)
    nodularity_mm: float = bounded(0.0, 5.0)  # amplitude of the nodular liver surface
    confluence_dz_mm: float = bounded(-20.0, 50.0)  # splenoportal confluence above renal a.
    confluence_dx_mm: float = bounded(5.0, 35.0)  # right of the aortic axis
    porta_dz_mm: float = bounded(20.0, 80.0)  # porta hepatis above the confluence
    hepatic_confluence_depth_mm: float = bounded(5.0, 40.0)  # hepatic veins' entry below dome
    portal_vein_diameter_mm: float = bounded(6.0, 22.0)
    splenic_vein_diameter_mm: float = bounded(4.0, 16.0)
    smv_diameter_mm: float = bounded(5.0, 16.0)
    hepatic_vein_diameter_mm: float = bounded(4.0, 16.0)
    pancreas_head_radius_mm: float = bounded(8.0, 22.0)
    pancreas_body_radius_mm: float = bounded(5.0, 15.0)
    duodenum_radius_mm: float = bounded(6.0, 20.0)
    gallbladder: bool = field()
    gallbladder_length_mm: float = bounded(30.0, 110.0)
    gallbladder_width_mm: float = bounded(15.0, 50.0)
    # --- unenhanced HU ---------------------------------------------------------------------
    liver_ncct_hu: float = bounded(-20.0, 80.0)
    liver_texture_hu: float = bounded(2.0, 15.0)  # heterogeneity (cirrhosis: coarse)
    pancreas_ncct_hu: float = bounded(15.0, 60.0)
    bile_hu: float = bounded(-5.0, 30.0)
    lung_hu: float = bounded(-950.0, -700.0)
    cyst_ncct_hu: float = bounded(-5.0, 25.0)
    metastasis_minus_liver_hu: float = bounded(-40.0, 0.0)
    # --- enhancement at 120 kVp, HU above unenhanced -------------------------------------------
    liver_enhancement_hu: float = bounded(15.0, 90.0)
    liver_arterial_enhancement_hu: float = bounded(0.0, 40.0)
    spleen_enhancement_hu: float = bounded(30.0, 120.0)
    kidney_cortex_enhancement_hu: float = bounded(60.0, 200.0)
    kidney_medulla_enhancement_hu: float = bounded(40.0, 200.0)
    pancreas_enhancement_hu: float = bounded(20.0, 110.0)
    pancreas_arterial_enhancement_hu: float = bounded(20.0, 160.0)
    portal_enhancement_hu: float = bounded(60.0, 220.0)
    portal_arterial_fraction: float = bounded(0.0, 1.0)  # arterial over PV enhancement
    splenic_vein_enhancement_hu: float = bounded(60.0, 230.0)
    smv_enhancement_hu: float = bounded(50.0, 220.0)
    hepatic_vein_enhancement_hu: float = bounded(40.0, 220.0)
    hepatic_vein_arterial_fraction: float = bounded(0.0, 0.5)
    ivc_suprarenal_enhancement_hu: float = bounded(40.0, 200.0)
    ivc_suprarenal_arterial_enhancement_hu: float = bounded(0.0, 150.0)
    ivc_infrarenal_enhancement_hu: float = bounded(10.0, 180.0)
    bowel_wall_enhancement_hu: float = bounded(20.0, 110.0)
    cyst_enhancement_hu: float = bounded(0.0, 8.0)
    metastasis_enhancement_fraction: float = bounded(0.0, 1.0)  # of the liver's enhancement
    lesion_count: int = bounded(0, MAX_LESIONS)
    lesions: tuple[tuple[float, ...], ...] = rows_of(LESION_LEN)

    def _check(self) -> None:
        if self.lesion_count != len(self.lesions):
            raise ValueError(f"{self._show('lesion_count')} but {len(self.lesions)} "
                             "extension.lesions are given")
        for lesion in self.lesions:
            if lesion[0] not in LESION_TYPES or not 5.0 <= lesion[4] <= 30.0:
                raise ValueError(f"extension.lesions {lesion}: needs type 0 (cyst) or 1 "
                                 "(metastasis) and a diameter of 5-30 mm")

    @property
    def fatty(self) -> bool:
        return self.liver_state in ("fatty", "fatty_cirrhotic")

    @property
    def cirrhotic(self) -> bool:
        return self.liver_state in ("cirrhotic", "fatty_cirrhotic")


_FIELDS = {f.name: f for f in fields(AbdomenPVParameters)}


class _Pick:
    """Sampled value unless overridden (validated at once, so derived values use it)."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides, self.values = overrides, {}  # type: dict[str, Any], dict[str, Any]

    def __call__(self, name: str, sampled: Any) -> Any:
        value = sampled
        if name in self.overrides:
            value = check_value(_FIELDS[name], self.overrides[name], f"extension.{name}")
        self.values[name] = value
        return value


def _u(r: np.random.Generator, lo: float, hi: float) -> float:
    return float(r.uniform(lo, hi))


def _state_draws(seed: int) -> tuple[str, dict[str, float]]:
    """The liver variant and the base fields it implies, from the "abdomen-pv/variant" stream;
    every draw is made whatever the variant, so the stream never shifts."""
    r = rng_stream(seed, f"{USE_CASE}/variant")
    state = LIVER_STATES[int(r.choice(len(LIVER_STATES), p=LIVER_STATE_P))]
    base = {
        # A portal-venous abdominal population has a normal-calibre aorta (the base anatomy's
        # aneurysm belongs to the aaa-cta use case): 17-22 mm, no sac, no thrombus.
        "neck_diameter_mm": _u(r, 17.0, 22.0),
        "aneurysm_bulge_mm": _u(r, 0.3, 1.5),
        "aneurysm_shift_x_mm": _u(r, -2.0, 3.0),
        # Cirrhosis: shrunken right lobe (base liver size) and splenomegaly (spleen length
        # > 13 cm; Bezerra et al., AJR 2005).
        "liver_size": _u(r, 0.72, 0.88),
        "spleen_length_mm": _u(r, 130.0, 165.0),
        "spleen_width_mm": _u(r, 100.0, 125.0),
        "spleen_thickness_mm": _u(r, 50.0, 65.0),
    }
    return state, base


class AbdomenPVExtension(PhantomExtension):
    """The hooks of the abdomen-pv use case."""

    use_case: ClassVar[str] = USE_CASE
    parameters: ClassVar[type[ExtensionGroup]] = AbdomenPVParameters
    case_prefix: ClassVar[str] = "PV"
    study_description: ClassVar[str] = "CT ABDOMEN"
    series_descriptions: ClassVar[dict[str, tuple[str, int | None]]] = {
        "ncct": ("ABD NON-CONTRAST", None),
        "arterial": ("ABD LATE ARTERIAL", 35),
        "portal_venous": ("ABD PORTAL VENOUS", 70),
    }
    blood_labels: ClassVar[tuple[Label, ...]] = (
        L.PORTAL_VEIN, L.SPLENIC_VEIN, L.SUPERIOR_MESENTERIC_VEIN, L.HEPATIC_VEIN,
        L.IVC_INFRARENAL)

    # --- sampling ---------------------------------------------------------------------------
    def base_overrides(self, seed: int) -> dict[str, Any]:
        state, d = _state_draws(seed)
        out: dict[str, Any] = {
            "neck_diameter_mm": d["neck_diameter_mm"],
            "aneurysm_max_diameter_mm": d["neck_diameter_mm"] + d["aneurysm_bulge_mm"],
            "aneurysm_shift_x_mm": d["aneurysm_shift_x_mm"],
            "thrombus_shape": "none",
        }
        if state in ("cirrhotic", "fatty_cirrhotic"):
            out.update({k: d[k] for k in ("liver_size", "spleen_length_mm", "spleen_width_mm",
                                          "spleen_thickness_mm")})
        return out

    def _anatomy(self, seed: int, v: dict[str, Any], pick: _Pick) -> None:
        """Size-independent geometry, stream "abdomen-pv/anatomy"."""
        r = rng_stream(seed, f"{USE_CASE}/anatomy")
        state, _ = _state_draws(seed)
        state = pick("liver_state", state)
        cirrhotic = state in ("cirrhotic", "fatty_cirrhotic")
        # Liver craniocaudal span 140-170 mm (right lobe, midclavicular line).
        pick("liver_dome_z_mm", v["liver_inferior_z_mm"] + _u(r, 140.0, 170.0))
        pick("left_dome_drop_mm", _u(r, 8.0, 20.0))
        u_left, u_caudate, u_nod = _u(r, 1.15, 1.4), _u(r, 1.3, 1.6), _u(r, 1.5, 3.5)
        pick("left_lobe_scale", u_left if cirrhotic else 1.0)
        pick("caudate_scale", u_caudate if cirrhotic else _u(r, 0.9, 1.1))
        pick("nodularity_mm", u_nod if cirrhotic else 0.0)
        pick("confluence_dz_mm", _u(r, 0.0, 15.0))  # about L1, just above the renal arteries
        pick("confluence_dx_mm", _u(r, 12.0, 20.0))
        pick("porta_dz_mm", _u(r, 40.0, 55.0))
        pick("hepatic_confluence_depth_mm", _u(r, 15.0, 25.0))
        # Portal vein calibre: normal up to 13 mm; > 13 mm suggests portal hypertension.
        pv_normal, pv_wide = _u(r, 10.0, 13.0), _u(r, 13.0, 17.0)
        pick("portal_vein_diameter_mm", pv_wide if cirrhotic else pv_normal)
        sv_normal, sv_wide = _u(r, 6.0, 9.0), _u(r, 9.0, 13.0)
        pick("splenic_vein_diameter_mm", sv_wide if cirrhotic else sv_normal)
        pick("smv_diameter_mm", _u(r, 8.0, 11.0))
        pick("hepatic_vein_diameter_mm", _u(r, 7.0, 10.0))
        pick("pancreas_head_radius_mm", _u(r, 12.0, 16.0))  # head AP ~25-30 mm
        pick("pancreas_body_radius_mm", _u(r, 8.0, 11.0))  # body ~16-22 mm
        pick("duodenum_radius_mm", _u(r, 10.0, 13.0))
        pick("gallbladder", float(r.random()) < 0.85)  # the rest after cholecystectomy
        pick("gallbladder_length_mm", _u(r, 60.0, 90.0))
        pick("gallbladder_width_mm", _u(r, 25.0, 35.0))

    def sample_acquisition(self, seed: int, size: str, values: dict[str, Any], pick: Any,
                           overrides: dict[str, Any]) -> None:
        v = values
        own = _Pick(overrides)
        self._anatomy(seed, v, own)
        r = rng_stream(seed, f"{USE_CASE}/acquisition/{size}")
        # The whole cross-section in the field of view: liver and spleen reach the flanks.
        extent = max(v["body_width_mm"] + 2 * abs(v["body_center_x_mm"]),
                     v["body_depth_mm"] + 2 * abs(v["body_center_y_mm"])) + 24.0
        if size == "small":
            matrix = SMALL_MATRIX if extent / SMALL_MATRIX <= 0.98 else LARGE_SMALL_MATRIX
            preferred = _u(r, 0.78, 0.92)
            # 3-5 mm reconstructions keep a small case at a few million voxels.
            thickness = float(r.choice([3.0, 4.0, 5.0], p=[0.1, 0.3, 0.6]))
        else:
            matrix = CLINICAL_MATRIX
            preferred = _u(r, 0.7, 0.85)
            thickness = float(r.choice([1.0, 1.25, 2.0], p=[0.4, 0.4, 0.2]))
        pick("rows", matrix)
        pick("columns", matrix)
        spacing_xy = min(math.ceil(max(preferred, extent / matrix) * 1000) / 1000,
                         MAX_PIXEL_SPACING_MM)
        pick("pixel_spacing_mm", spacing_xy)
        thickness = pick("slice_thickness_mm", thickness)
        spacing = pick("slice_spacing_mm", thickness)
        # From above the liver dome to below the lower pole of the lower kidney.
        top = own.values["liver_dome_z_mm"] + _u(r, 5.0, 15.0)
        lowest_pole = (min(v["right_kidney_z_mm"], v["left_kidney_z_mm"])
                       - v["kidney_length_mm"] / 2)
        bottom = lowest_pole - _u(r, 5.0, 20.0)
        pick("n_slices", math.ceil((top - bottom) / spacing) + 1)
        pick("scan_top_z_mm", top)
        pick("fov_center_x_mm", 0.0)
        pick("fov_center_y_mm", 0.0)
        pick("psf_sigma_z_mm", 0.42 * thickness)  # FWHM ~ slice thickness

    def sample(self, seed: int, base: PhantomParameters, overrides: dict[str, Any]
               ) -> ExtensionGroup:
        pick = _Pick(overrides)
        v = {name: getattr(getattr(base, group), name)
             for group in ("organs", "aorta", "veins") for name in
             (f.name for f in fields(getattr(base, group)))}
        self._anatomy(seed, v, pick)
        self._attenuation(seed, base, pick)
        self._lesions(seed, base, pick)
        return AbdomenPVParameters(**pick.values)

    def _attenuation(self, seed: int, base: PhantomParameters, pick: _Pick) -> None:
        """Stream "abdomen-pv/attenuation": unenhanced HU and enhancement at 120 kVp."""
        r = rng_stream(seed, f"{USE_CASE}/attenuation")
        h, state = base.intensities, pick.values["liver_state"]
        fatty = state in ("fatty", "fatty_cirrhotic")
        cirrhotic = state in ("cirrhotic", "fatty_cirrhotic")
        # Normal liver 50-65 HU unenhanced; steatosis: liver at least 10 HU below the spleen
        # (liver-spleen difference < -10 HU, Kodama et al., AJR 2007; Park et al., Radiology
        # 2006); cirrhotic parenchyma a little lower and coarse.
        u_normal, u_fat, u_cirr = _u(r, 50.0, 65.0), _u(r, 10.0, 35.0), _u(r, 45.0, 58.0)
        ncct = u_normal
        if cirrhotic:
            ncct = u_cirr
        if fatty:
            ncct = min(ncct, h.spleen_hu - u_fat)
        pick("liver_ncct_hu", ncct)
        # Portal-venous hepatic enhancement ~50-60 HU at 120 kVp (Heiken et al., Radiology
        # 1995; Bae, Radiology 2010: 50 HU is the target of an adequate PV study); spread SD 5.
        enhancement = float(np.clip(r.normal(55.0, 5.0), 42.0, 68.0))
        u_fat_keep, u_cirr_keep = _u(r, 0.9, 1.0), _u(r, 0.6, 0.8)
        if fatty:  # steatosis preserves enhancement (about)
            enhancement *= u_fat_keep
        if cirrhotic:  # fibrosis and portal hypertension reduce parenchymal enhancement
            enhancement *= u_cirr_keep
        pick("liver_enhancement_hu", enhancement)
        pick("liver_arterial_enhancement_hu", _u(r, 10.0, 25.0))  # late arterial, hepatic a.
        u_tex_normal, u_tex_cirr = _u(r, 3.0, 5.0), _u(r, 8.0, 12.0)
        pick("liver_texture_hu", u_tex_cirr if cirrhotic else u_tex_normal)
        # Spleen ~110-130 HU in the portal-venous phase at 120 kVp.
        pick("spleen_enhancement_hu", _u(r, 65.0, 80.0))
        # Nephrographic kidney: cortex 140-180 HU, medulla catching up at 70 s (Yuh & Cohan,
        # AJR 1999).
        cortex = pick("kidney_cortex_enhancement_hu", _u(r, 105.0, 135.0))
        pick("kidney_medulla_enhancement_hu", cortex - _u(r, 0.0, 15.0))
        # Pancreas 35-50 HU unenhanced, ~100 HU portal-venous, peaks in the late arterial
        # (pancreatic) phase (Tublin et al., AJR 1999).
        pick("pancreas_ncct_hu", _u(r, 38.0, 50.0))
        pancreas = pick("pancreas_enhancement_hu", _u(r, 50.0, 70.0))
        pick("pancreas_arterial_enhancement_hu", pancreas * _u(r, 1.2, 1.6))
        # Main portal vein ~170 HU at 70 s and 120 kVp (spread SD 10 HU; Bae 2010), reached
        # from the case's unenhanced blood.
        portal_hu = float(np.clip(r.normal(170.0, 10.0), 145.0, 195.0))
        portal = pick("portal_enhancement_hu", portal_hu - h.blood_hu)
        # Late arterial (~35 s): the portal vein is partly opacified (splenic return first).
        pick("portal_arterial_fraction", _u(r, 0.35, 0.65))
        pick("splenic_vein_enhancement_hu", portal + _u(r, 0.0, 10.0))
        pick("smv_enhancement_hu", portal - _u(r, 0.0, 15.0))
        # Hepatic veins a little behind the portal vein at 70 s; unopacified when arterial.
        pick("hepatic_vein_enhancement_hu", portal - _u(r, 5.0, 25.0))
        pick("hepatic_vein_arterial_fraction", _u(r, 0.0, 0.12))
        # IVC: above the renal veins the opacified renal (and hepatic) return mixes in
        # (140-170 HU); below, the later return from the legs keeps it lower (100-135 HU).
        pick("ivc_suprarenal_enhancement_hu", _u(r, 95.0, 125.0))
        pick("ivc_suprarenal_arterial_enhancement_hu", _u(r, 25.0, 60.0))
        pick("ivc_infrarenal_enhancement_hu", _u(r, 55.0, 90.0))
        pick("bowel_wall_enhancement_hu", _u(r, 45.0, 65.0))
        # Simple cyst: water, no enhancement beyond pseudo-enhancement of a few HU.
        # Hypovascular metastasis: a little below the liver, enhancing a fraction of it, so
        # hypoattenuating in the portal-venous phase (Sica & Ji, Radiology 2000).
        pick("bile_hu", _u(r, 0.0, 20.0))
        pick("lung_hu", _u(r, -880.0, -820.0))
        pick("cyst_ncct_hu", _u(r, 0.0, 15.0))
        pick("cyst_enhancement_hu", _u(r, 0.0, 4.0))
        pick("metastasis_minus_liver_hu", -_u(r, 5.0, 20.0))
        pick("metastasis_enhancement_fraction", _u(r, 0.2, 0.5))

    def _lesions(self, seed: int, base: PhantomParameters, pick: _Pick) -> None:
        """Stream "abdomen-pv/lesions": 0-4 lesions in the right lobe, drawn in full."""
        r = rng_stream(seed, f"{USE_CASE}/lesions")
        u_any, u_n = float(r.random()), int(r.integers(1, 5))
        raw = r.random((MAX_LESIONS, 5))
        count = 0 if u_any < 0.5 else u_n
        an = Anatomy(base)
        z_lo = base.organs.liver_inferior_z_mm + 45.0
        z_hi = pick.values["liver_dome_z_mm"] - 30.0
        lesions = []
        for u in raw[:count]:
            kind = CYST if u[0] < 0.55 else METASTASIS
            # Cysts are mostly small; metastases 8-30 mm.
            diameter = 5.0 + 25.0 * u[1] ** 1.5 if kind == CYST else 8.0 + 22.0 * u[1]
            z = z_lo + (z_hi - z_lo) * u[2]
            lobe = an.liver_right_lobe(z)
            assert lobe is not None  # z is above the liver's inferior tip
            x0, y0, a, b, angle = lobe
            rho, theta = 0.55 * math.sqrt(u[3]), 2 * math.pi * u[4]
            du, dv = rho * a * math.cos(theta), rho * b * math.sin(theta)
            x = x0 + du * math.cos(angle) - dv * math.sin(angle)
            y = y0 + du * math.sin(angle) + dv * math.cos(angle)
            lesions.append((kind, float(x), float(y), float(z), float(diameter)))
        lesions = pick("lesions", tuple(lesions))
        pick("lesion_count", len(lesions))

    # --- anatomy ----------------------------------------------------------------------------
    def prepare(self, anatomy: Anatomy) -> _Geometry:
        return _Geometry(anatomy)

    def paint(self, anatomy: Anatomy, state: Any, canvas: _Canvas, z: float) -> None:
        state.paint(canvas, z)

    def finish(self, anatomy: Anatomy, state: Any, labels: np.ndarray) -> None:
        state.finish(labels)

    # --- attenuation ------------------------------------------------------------------------
    def phase_values(self, p: PhantomParameters) -> dict[Label, tuple[float, float, float]]:
        e = p.extension
        assert isinstance(e, AbdomenPVParameters)
        h, k = p.intensities, iodine_factor(p.scanner.kvp)
        blood = h.blood_hu

        def tissue(ncct: float, arterial: float, portal: float) -> tuple[float, float, float]:
            """Enhancements at 120 kVp, scaled to the case's tube voltage."""
            return (ncct, ncct + arterial * k, ncct + portal * k)

        liver = e.liver_ncct_hu
        metastasis = liver + e.metastasis_minus_liver_hu
        # The base tissues' sampled values are taken as stated at 120 kVp and scaled too, so
        # that every enhancement of an abdomen-pv case follows the tube voltage (the arterial
        # lumen's value already does, sampling.arterial_lumen_hu).
        artery_pv = h.portal_venous_aorta_hu - blood
        wall = h.aortic_wall_hu
        return {
            L.MUSCLE: tissue(h.muscle_hu, h.muscle_arterial_delta_hu, h.muscle_portal_delta_hu),
            L.AORTA_LUMEN: (blood, h.arterial_lumen_hu, blood + artery_pv * k),
            L.ILIAC_ARTERY_LUMEN: (blood, h.arterial_lumen_hu, blood + artery_pv * k),
            L.RENAL_ARTERY: (blood, h.arterial_lumen_hu, blood + artery_pv * k),
            L.AORTIC_WALL: tissue(wall, h.aortic_wall_arterial_delta_hu,
                                  h.aortic_wall_portal_delta_hu),
            L.RENAL_VEIN: tissue(blood, h.renal_vein_arterial_hu - blood,
                                 h.renal_vein_portal_hu - blood),
            L.ILIAC_VEIN: tissue(blood, h.iliac_vein_arterial_hu - blood,
                                 h.iliac_vein_portal_hu - blood),
            L.LIVER: tissue(liver, e.liver_arterial_enhancement_hu, e.liver_enhancement_hu),
            L.SPLEEN: tissue(h.spleen_hu, h.spleen_arterial_hu - h.spleen_hu,
                             e.spleen_enhancement_hu),
            L.KIDNEY_CORTEX: tissue(h.kidney_cortex_hu,
                                    h.kidney_cortex_arterial_hu - h.kidney_cortex_hu,
                                    e.kidney_cortex_enhancement_hu),
            L.KIDNEY_MEDULLA: tissue(h.kidney_medulla_hu,
                                     h.kidney_medulla_arterial_hu - h.kidney_medulla_hu,
                                     e.kidney_medulla_enhancement_hu),
            L.BOWEL_WALL: tissue(h.bowel_wall_hu, h.bowel_wall_arterial_hu - h.bowel_wall_hu,
                                 e.bowel_wall_enhancement_hu),
            L.IVC: tissue(blood, e.ivc_suprarenal_arterial_enhancement_hu,
                          e.ivc_suprarenal_enhancement_hu),
            L.IVC_INFRARENAL: tissue(blood, h.iliac_vein_arterial_hu - blood,
                                     e.ivc_infrarenal_enhancement_hu),
            L.PORTAL_VEIN: tissue(blood, e.portal_enhancement_hu * e.portal_arterial_fraction,
                                  e.portal_enhancement_hu),
            L.SPLENIC_VEIN: tissue(blood,
                                   e.splenic_vein_enhancement_hu * e.portal_arterial_fraction,
                                   e.splenic_vein_enhancement_hu),
            L.SUPERIOR_MESENTERIC_VEIN: tissue(
                blood, 0.8 * e.smv_enhancement_hu * e.portal_arterial_fraction,
                e.smv_enhancement_hu),
            L.HEPATIC_VEIN: tissue(
                blood, e.hepatic_vein_enhancement_hu * e.hepatic_vein_arterial_fraction,
                e.hepatic_vein_enhancement_hu),
            L.PANCREAS: tissue(e.pancreas_ncct_hu, e.pancreas_arterial_enhancement_hu,
                               e.pancreas_enhancement_hu),
            L.LIVER_CYST: tissue(e.cyst_ncct_hu, 0.5 * e.cyst_enhancement_hu,
                                 e.cyst_enhancement_hu),
            L.LIVER_METASTASIS: tissue(
                metastasis,
                e.liver_arterial_enhancement_hu * e.metastasis_enhancement_fraction,
                e.liver_enhancement_hu * e.metastasis_enhancement_fraction),
            L.GALLBLADDER: (e.bile_hu,) * 3,
            L.LUNG: (e.lung_hu,) * 3,
        }

    def typical_overrides(self, p: PhantomParameters) -> dict[str, Any]:
        """The typical enhancements; the liver's by its variant and the portal system's from
        the case's unenhanced blood, both of which the NCCT shows."""
        e = p.extension
        assert isinstance(e, AbdomenPVParameters)
        liver = TYPICAL_PV["liver_enhancement_hu"]
        liver *= FATTY_KEEP if e.fatty else 1.0
        liver *= CIRRHOTIC_KEEP if e.cirrhotic else 1.0
        portal = TYPICAL_PORTAL_HU - p.intensities.blood_hu
        return TYPICAL_PV | {"liver_enhancement_hu": liver, "portal_enhancement_hu": portal,
                             "splenic_vein_enhancement_hu": portal + 5.0,
                             "smv_enhancement_hu": portal - 7.5,
                             "hepatic_vein_enhancement_hu": portal - 15.0}

    def texture(self, p: PhantomParameters) -> dict[Label, float]:
        e = p.extension
        assert isinstance(e, AbdomenPVParameters)
        return {L.LIVER: e.liver_texture_hu, L.PANCREAS: 5.0, L.LIVER_CYST: 1.5,
                L.LIVER_METASTASIS: 4.0, L.GALLBLADDER: 1.5, L.LUNG: 20.0, L.PORTAL_VEIN: 2.0,
                L.SPLENIC_VEIN: 2.0, L.SUPERIOR_MESENTERIC_VEIN: 2.0, L.HEPATIC_VEIN: 2.0,
                L.IVC_INFRARENAL: 2.0}


# Population-typical portal-venous enhancement (HU at 120 kVp, the phantom scales it by the
# case's kVp): the middle of each of this extension's sampled ranges, with the liver's
# reduction by its variant, which the NCCT shows (the validation oracle's knowledge).
TYPICAL_PV = {
    "liver_enhancement_hu": 55.0, "spleen_enhancement_hu": 72.5,
    "kidney_cortex_enhancement_hu": 120.0, "kidney_medulla_enhancement_hu": 112.5,
    "pancreas_enhancement_hu": 60.0, "ivc_suprarenal_enhancement_hu": 110.0,
    "ivc_infrarenal_enhancement_hu": 72.5, "bowel_wall_enhancement_hu": 55.0,
    "cyst_enhancement_hu": 2.0, "metastasis_enhancement_fraction": 0.35,
    # base tissues an abdomen-pv case scales by kVp
    "muscle_portal_delta_hu": 16.0, "portal_venous_aorta_hu": 175.0,
    "renal_vein_portal_hu": 165.0, "iliac_vein_portal_hu": 130.0,
    "aortic_wall_portal_delta_hu": 15.0,
}
TYPICAL_PORTAL_HU = 170.0  # main portal vein at 70 s; its enhancement is this minus blood
FATTY_KEEP, CIRRHOTIC_KEEP = 0.95, 0.70  # middles of the variants' enhancement factors

_BOWEL = (L.BOWEL_WALL, L.BOWEL_FLUID, L.BOWEL_AIR)
_ORGAN_BED = _allow(L.FAT_VISCERAL, *_BOWEL)
_LIVER_ONLY = _allow(L.LIVER)
_ABOVE_DIAPHRAGM = _allow(L.FAT_VISCERAL, L.LIVER, L.SPLEEN, *_BOWEL)
# Veins run through soft tissue and fat; never through bone, kidney, arteries or the IVC, so
# that the IVC keeps its outline where the hepatic veins join it.
_VEIN_BED = _allow(L.FAT_VISCERAL, L.LIVER, L.SPLEEN, L.PANCREAS, L.LIVER_CYST,
                   L.LIVER_METASTASIS, L.GALLBLADDER, L.MUSCLE, *_BOWEL, L.PORTAL_VEIN,
                   L.SPLENIC_VEIN, L.SUPERIOR_MESENTERIC_VEIN)
# Portal and hepatic branches interdigitate in the liver but never merge: where they would
# cross, the portal branch (painted first) keeps its voxels.
_PANCREAS_BED = _allow(L.FAT_VISCERAL, *_BOWEL)
_DUODENUM_BED = _allow(L.FAT_VISCERAL, L.BOWEL_FLUID, L.BOWEL_AIR)

Segment = tuple[np.ndarray, np.ndarray, float]  # from, to (world x, y, z), radius


def _seg(a: tuple[float, float, float], b: tuple[float, float, float], r: float) -> Segment:
    return np.array(a, dtype=float), np.array(b, dtype=float), float(r)


class _Geometry:
    """The extension's structures of one case in world mm, and how a slice is painted."""

    def __init__(self, an: Anatomy) -> None:
        p = an.p
        e = p.extension
        assert isinstance(e, AbdomenPVParameters)
        self.an, self.p, self.e = an, p, e
        zs, ys, xs = voxel_axes(p)
        self.z0, self.dz = float(zs[0]), p.acquisition.slice_spacing_mm
        self.nodules = (SmoothField(p, f"{USE_CASE}/nodules", 6.0, 0.8, zs, ys, xs)
                        if e.nodularity_mm > 0 else None)
        self.nodule_px = max(1, round(e.nodularity_mm / p.acquisition.pixel_spacing_mm))
        ivc_half_depth = p.veins.ivc_depth_mm / 2
        # --- portal venous system ----------------------------------------------------------
        z_c = an.z_r + e.confluence_dz_mm
        ax, ay = an.aorta_center(z_c)
        ar = an.aorta_radius(z_c)
        r_pv, r_sv, r_smv = (e.portal_vein_diameter_mm / 2, e.splenic_vein_diameter_mm / 2,
                             e.smv_diameter_mm / 2)
        _, ivy = an.ivc_center(z_c)
        # The left renal vein crosses in front of the aorta (behind the SMA); the splenic vein
        # and the confluence pass in front of it.
        z_lrv = an.z_r + p.veins.left_renal_vein_dz_mm
        rv = p.veins.renal_vein_diameter_mm / 2
        lrv_front = an.aorta_center(z_lrv)[1] - an.aorta_radius(z_lrv) - 2 * rv - 1.5
        # Confluence behind the pancreatic neck: right of the SMA/aorta, in front of the IVC.
        c = (ax - e.confluence_dx_mm, min(ay - ar - 12.0, ivy - ivc_half_depth - r_pv - 3.0,
                                          lrv_front - r_pv - 2.0), z_c)
        z_p = z_c + e.porta_dz_mm
        lx, ly, la, lb, _ = self._right_lobe(z_p)
        _, pvy = an.ivc_center(z_p)
        porta = (lx + 0.45 * la, min(ly - 0.2 * lb, pvy - ivc_half_depth - r_pv - 4.0), z_p)
        mid = (0.5 * (c[0] + porta[0]) - 4.0, 0.5 * (c[1] + porta[1]), 0.5 * (c[2] + porta[2]))
        r_branch = max(0.45 * r_pv, 3.0)
        right = (lx - 0.05 * la, ly + 0.05 * lb, z_p + 6.0)
        left1 = (porta[0] + 25.0, porta[1] - 15.0, z_p + 10.0)
        # The left branch stays well under the left hemidiaphragm (lung above it).
        z_left = min(max(z_p + 25.0, p.organs.liver_inferior_z_mm + 100.0),
                     e.liver_dome_z_mm - e.left_dome_drop_mm - 40.0)
        llx, lly, lla, _ = self._left_lobe(z_left)
        left2 = (llx + 0.15 * lla, lly, z_left)
        left3 = (llx + 0.55 * lla, lly - 5.0, z_left)
        ra_z, rp_z = z_p - 12.0, z_p + 8.0
        ra_l, rp_l = self._right_lobe(ra_z), self._right_lobe(rp_z)
        self.portal: list[Segment] = [
            _seg(c, mid, r_pv), _seg(mid, porta, r_pv),
            _seg(porta, right, 0.7 * r_pv),
            _seg(right, (ra_l[0] - 0.5 * ra_l[2], ra_l[1] - 0.4 * ra_l[3], ra_z), r_branch),
            _seg(right, (rp_l[0] - 0.5 * rp_l[2], rp_l[1] + 0.55 * rp_l[3], rp_z), r_branch),
            _seg(porta, left1, 0.6 * r_pv), _seg(left1, left2, r_branch),
            _seg(left2, left3, 3.0),
        ]
        # Splenic vein: from the confluence in front of the aorta, along the back of the
        # pancreas, to the splenic hilum on the spleen's anteromedial (visceral) surface.
        o = p.organs
        sx, sy = an.cx + 0.66 * an.a_cav, an.cy + 0.36 * an.b_cav
        # The hilum at the lower half of the spleen: the splenic vein rises only gently.
        sz = o.spleen_inferior_z_mm + 0.4 * o.spleen_length_mm
        half = o.spleen_thickness_mm / 2
        gap = 0.55 * half + r_sv + 1.0  # the concave visceral surface, where the vessels enter
        hilum = (sx - 0.8 * gap, sy - 0.6 * gap, sz)
        s1 = (ax, min(ay - ar - r_sv - 6.0, lrv_front - r_sv - 2.0), z_c + 4.0)
        s2 = (0.5 * (s1[0] + hilum[0]), min(s1[1], hilum[1]) - 4.0,
              0.5 * (s1[2] + hilum[2]))
        self.splenic: list[Segment] = [_seg(c, s1, r_sv), _seg(s1, s2, r_sv),
                                       _seg(s2, hilum, r_sv)]
        # SMV: descends right of the midline, in front of the third part of the duodenum.
        r_d = e.duodenum_radius_mm
        z_low = z_c - 80.0
        _, by = an.aorta_center(z_low)
        smv_low = (c[0] + 6.0, by - an.aorta_radius(z_low) - 2 * r_d - r_smv - 8.0, z_low)
        smv_mid = (c[0] + 3.0, 0.5 * (c[1] + smv_low[1]), z_c - 35.0)
        self.smv: list[Segment] = [_seg(c, smv_mid, r_smv), _seg(smv_mid, smv_low, r_smv)]
        # --- hepatic veins ----------------------------------------------------------------
        z_h = e.liver_dome_z_mm - e.hepatic_confluence_depth_mm
        hx, hy = an.ivc_center(z_h)
        r_hv = e.hepatic_vein_diameter_mm / 2
        # The three veins share a confluence that overlaps the IVC's anterior wall by 1 mm:
        # one tree, draining into the IVC (veins are not painted over the IVC itself).
        hub = (hx, hy - ivc_half_depth - r_hv + 1.0, z_h)
        z1, z2 = z_h - 8.0, z_h - 35.0
        r1, r2 = self._right_lobe(z1), self._right_lobe(z2)
        # The left vein ends in the left lobe well under the (lower) left hemidiaphragm.
        z_left_hv = min(z_h - 18.0, e.liver_dome_z_mm - e.left_dome_drop_mm - 35.0)
        l1 = self._left_lobe(z_left_hv)
        # The right vein first runs laterally in front of the IVC, then back into the right
        # lobe, so that it never crosses the IVC on its way.
        right0 = (hx - p.veins.ivc_width_mm / 2 - r_hv - 4.0, hub[1], z_h - 3.0)
        self.hepatic: list[Segment] = [
            _seg(hub, right0, r_hv),  # right
            _seg(right0, (r1[0] - 0.1 * r1[2], r1[1] + 0.1 * r1[3], z1), r_hv),
            _seg((r1[0] - 0.1 * r1[2], r1[1] + 0.1 * r1[3], z1),
                 (r2[0] - 0.65 * r2[2], r2[1], z2), max(0.65 * r_hv, 3.0)),
            _seg(hub, (hub[0] - 8.0, hub[1] - 22.0, z_h - 10.0), r_hv),  # middle
            _seg((hub[0] - 8.0, hub[1] - 22.0, z_h - 10.0),
                 (r2[0] + 0.4 * r2[2], r2[1] - 0.6 * r2[3], z2 - 5.0), max(0.65 * r_hv, 3.0)),
            _seg(hub, (hub[0] + 12.0, hub[1] - 20.0, z_h - 8.0), 0.85 * r_hv),  # left
            _seg((hub[0] + 12.0, hub[1] - 20.0, z_h - 8.0),
                 (l1[0] + 0.4 * l1[2], l1[1], z_left_hv), max(0.6 * r_hv, 3.0)),
        ]
        # --- pancreas and duodenum ----------------------------------------------------------
        rh, rb = e.pancreas_head_radius_mm, e.pancreas_body_radius_mm
        head = (c[0] - rh - 4.0, c[1] + 4.0, z_c - 22.0)
        neck = (c[0] + 3.0, c[1] - r_pv - rb + 3.0, z_c + 2.0)
        body = (s1[0] + 5.0, s1[1] - r_sv - rb + 2.0, s1[2] + 2.0)
        tail = (s2[0], s2[1] - r_sv - 0.9 * rb + 2.0, s2[2] + 2.0)
        tail_end = (hilum[0] - 0.3 * (hilum[0] - s2[0]), hilum[1] - r_sv - 0.8 * rb,
                    hilum[2] - 2.0)
        self.pancreas: list[Segment] = [
            _seg((head[0], head[1], head[2] - 14.0), head, rh), _seg(head, neck, 0.75 * rh),
            _seg(neck, body, rb), _seg(body, tail, rb), _seg(tail, tail_end, 0.8 * rb)]
        dx = head[0] - rh - r_d - 2.0
        d3z = head[2] - rh - r_d - 6.0
        d3x, d3y = an.aorta_center(d3z)
        d3y -= an.aorta_radius(d3z) + r_d + 2.0
        self.duodenum: list[Segment] = [
            _seg((head[0] + 5.0, head[1] - rh - r_d - 4.0, head[2] + 30.0),
                 (dx, head[1] - 8.0, head[2] + 22.0), r_d),
            _seg((dx, head[1] - 8.0, head[2] + 22.0), (dx, head[1], head[2] - 20.0), r_d),
            _seg((dx, head[1], head[2] - 20.0), (head[0], d3y, d3z), r_d),
            _seg((head[0], d3y, d3z), (d3x + 25.0, d3y, d3z + 12.0), r_d),
        ]
        # --- gallbladder: under the liver, anterior, medial part of the right lobe ----------
        self.gallbladder: tuple[float, float, float, float, float] | None = None
        if e.gallbladder:
            z_g = o.liver_inferior_z_mm + 10.0 + e.gallbladder_length_mm / 2
            gx, gy, ga, gb, _ = self._right_lobe(z_g)
            self.gallbladder = (gx + 0.45 * ga, gy - 0.45 * gb, z_g,
                                e.gallbladder_length_mm / 2, e.gallbladder_width_mm / 2)
        self.z_infrarenal = min(an.z_r + p.veins.left_renal_vein_dz_mm,
                                p.organs.right_kidney_z_mm + 8.0) - p.veins.renal_vein_diameter_mm

    def _right_lobe(self, z: float) -> tuple[float, float, float, float, float]:
        lobe = self.an.liver_right_lobe(z)
        if lobe is None:  # below the liver: its tip, for a structure that must reach it
            lobe = self.an.liver_right_lobe(self.p.organs.liver_inferior_z_mm + 5.0)
            assert lobe is not None
        return lobe

    def _left_lobe(self, z: float) -> tuple[float, float, float, float]:
        """The base left lobe, grown by left_lobe_scale towards the patient's left."""
        lobe = self.an.liver_left_lobe(max(z, self.p.organs.liver_inferior_z_mm + 61.0))
        assert lobe is not None
        x, y, a, b = lobe
        s = self.e.left_lobe_scale
        return x + (s - 1.0) * a, y + (s - 1.0) * b * 0.5, a * s, b * s

    # --- painting -------------------------------------------------------------------------
    def paint(self, cv: _Canvas, z: float) -> None:
        e = self.e
        cv.warped = True  # soft organs in the warped coordinates, like the base organs
        self._liver(cv, z)
        cv.warped = False
        self._lung(cv, z)
        if self.nodules is not None:
            self._nodular_surface(cv, z)
        for kind, x, y, lz, d in e.lesions:
            r, dz = d / 2, abs(z - lz)
            # Every lesion shows in at least its nearest slice (half its radius or more).
            if dz < max(r, self.dz / 2 + 1e-6):
                r_cut = max(math.sqrt(max(r * r - dz * dz, 0.0)), 0.5 * r)
                cv.paint(*cv.ellipse(x, y, r_cut, r_cut), LESION_TYPES[kind], _LIVER_ONLY)
        if self.gallbladder is not None:
            gx, gy, gz, gl, gw = self.gallbladder
            dz = z - gz
            if abs(dz) < gl:
                s = math.sqrt(1.0 - (dz / gl) ** 2)
                # Lesions are painted first and keep their outline (never covered).
                cv.paint(*cv.ellipse(gx, gy, gw * s, 0.85 * gw * s), L.GALLBLADDER,
                         _allow(L.LIVER, L.FAT_VISCERAL, *_BOWEL))
        self._tubes(cv, z, self.pancreas, L.PANCREAS, _PANCREAS_BED)
        self._duodenum(cv, z)
        for segments, label in ((self.splenic, L.SPLENIC_VEIN),
                                (self.smv, L.SUPERIOR_MESENTERIC_VEIN),
                                (self.portal, L.PORTAL_VEIN), (self.hepatic, L.HEPATIC_VEIN)):
            self._tubes(cv, z, segments, label, _VEIN_BED)
        if z < self.z_infrarenal:  # below the renal veins: the IVC without renal return
            cv.lab[cv.lab == L.IVC] = L.IVC_INFRARENAL

    def finish(self, labels: np.ndarray) -> None:
        """Each vessel tree and the pancreas as one connected piece: a fragment cut off by a
        neighbouring organ (a few voxels where a tube grazes a kidney pole or the lung) is
        given back to the tissue around it, so that every tree is continuous."""
        full = np.ones((3, 3, 3), dtype=bool)
        for tree in ((L.PORTAL_VEIN, L.SPLENIC_VEIN, L.SUPERIOR_MESENTERIC_VEIN),
                     (L.HEPATIC_VEIN,), (L.PANCREAS,)):
            mask = np.isin(labels, tree)
            comp, n = ndimage.label(mask, full)
            if n < 2:
                continue
            sizes = np.bincount(comp.ravel())[1:]
            keep = 1 + int(np.argmax(sizes))
            for index, region in enumerate(ndimage.find_objects(comp), start=1):
                if index == keep or region is None:
                    continue
                grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in region)
                piece = comp[grown] == index
                ring = ndimage.binary_dilation(piece, full) & ~mask[grown]
                around = labels[grown][ring]
                fill = np.bincount(around).argmax() if around.size else L.FAT_VISCERAL
                labels[grown][piece] = fill

    def _tubes(self, cv: _Canvas, z: float, segments: list[Segment], label: Label,
               allowed: np.ndarray) -> None:
        for a, b, r in segments:
            hit = cv.tube(np.stack([a, b]), r, z)
            if hit is not None:
                cv.paint(hit[0], hit[1] <= r, label, allowed)

    def _liver(self, cv: _Canvas, z: float) -> None:
        """Caudate lobe by the IVC (bridging right and left lobes below the dome), and the
        enlarged left lobe of cirrhosis."""
        an, e, p = self.an, self.e, self.p
        h = z - p.organs.liver_inferior_z_mm
        if h > 50.0 and z < e.liver_dome_z_mm:
            ivx, ivy = an.ivc_center(z)
            grow = math.sqrt(min((h - 50.0) / 40.0, 1.0)) * e.caudate_scale
            cv.paint(*cv.ellipse(ivx + 10.0, ivy - p.veins.ivc_depth_mm / 2 - 14.0 * grow,
                                 24.0 * grow, 18.0 * grow), L.LIVER, _ORGAN_BED)
        if e.left_lobe_scale > 1.0 and an.liver_left_lobe(z) is not None:
            cv.paint(*cv.ellipse(*self._left_lobe(z)), L.LIVER, _ORGAN_BED)

    def _lung(self, cv: _Canvas, z: float) -> None:
        """Above each hemidiaphragm the cavity holds lung: the abdomen narrows towards the two
        domes, the right one higher (over the liver)."""
        an, e = self.an, self.e
        tops = ((e.liver_dome_z_mm, an.cx - 0.45 * an.a_cav, an.cy),
                (e.liver_dome_z_mm - e.left_dome_drop_mm, an.cx + 0.45 * an.a_cav,
                 an.cy + 0.05 * an.b_cav))
        if z <= min(t[0] for t in tops) - DOME_CAP_MM:
            return
        win = cv.window(an.cx - an.a_cav, an.cx + an.a_cav, an.cy - an.b_cav, an.cy + an.b_cav)
        if win is None:
            return
        below = np.zeros(np.broadcast_shapes(win.x.shape, win.y.shape), dtype=bool)
        for apex, x0, y0 in tops:
            t = (z - (apex - DOME_CAP_MM)) / DOME_CAP_MM
            if t >= 1.0:
                continue
            f = math.sqrt(1.0 - max(t, 0.0) ** 2)
            below |= (((win.x - x0) / (0.75 * an.a_cav * f)) ** 2
                      + ((win.y - y0) / (1.3 * an.b_cav * f)) ** 2) <= 1.0
        cv.paint(win, ~below, L.LUNG, _ABOVE_DIAPHRAGM)

    def _nodular_surface(self, cv: _Canvas, z: float) -> None:
        """Cirrhosis: nodules bulge from the surface and the surface dips between them."""
        assert self.nodules is not None
        k = round((z - self.z0) / self.dz)
        field_k = self.nodules.chunk(k, k + 1)[0]
        lab = cv.lab
        liver = lab == L.LIVER
        if not liver.any():
            return
        n = self.nodule_px
        inner = liver & ~ndimage.binary_erosion(liver, iterations=n)
        outer = ndimage.binary_dilation(liver, iterations=n) & ~liver & (lab == L.FAT_VISCERAL)
        lab[outer & (field_k > 0.5)] = L.LIVER
        lab[inner & (field_k < -0.5)] = L.FAT_VISCERAL

    def _duodenum(self, cv: _Canvas, z: float) -> None:
        r = self.e.duodenum_radius_mm
        for a, b, _ in self.duodenum:
            hit = cv.tube(np.stack([a, b]), r, z)
            if hit is None:
                continue
            win, d, _, _ = hit
            cv.paint(win, d <= r, L.BOWEL_WALL, _DUODENUM_BED)
            cv.paint(win, d <= r - 2.0, L.BOWEL_FLUID, _allow(L.BOWEL_WALL))


EXTENSION = AbdomenPVExtension()
