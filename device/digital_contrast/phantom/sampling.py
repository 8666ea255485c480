"""How a seed becomes a case: every parameter drawn from named random streams, in a fixed
order, from published ranges (narrower than the valid ranges of `parameters`).

Anatomy is sampled from size-independent streams, so the "small" and the "clinical" case of one
seed show the same body; only the acquisition geometry differs. Keep each draw where it is:
moving, adding or removing one changes every later value of its stream, and so the cases.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any

import numpy as np

from .parameters import (
    FIELDS,
    MAX_PLAQUES,
    PLAQUE_LEN,
    SIZES,
    PhantomParameters,
    check_value,
    max_thrombus_thickness_mm,
    rng_stream,
)

SMALL_MATRIX = 256
CLINICAL_MATRIX = 512
SMALL_MIN_SLICES, SMALL_MAX_SLICES = 48, 64


class _Picker:
    """Takes a sampled value unless the caller overrode it; the draw happens either way, so an
    override never shifts the other sampled values."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self.values: dict[str, Any] = {}

    def __call__(self, name: str, sampled: Any) -> Any:
        value = sampled
        if name in self.overrides:  # checked now, before anything is derived from it
            group, declared = FIELDS[name]
            value = check_value(declared, self.overrides[name], f"{group}.{name}")
        self.values[name] = value
        return value


def sample_parameters(seed: int, size: str = "small", extension: str | None = None,
                      **overrides: Any) -> PhantomParameters:
    """The case of `seed` at `size`; overrides, by field name, replace sampled values
    (validated). With `extension` (a use case id such as "abdomen-pv") the case also carries
    that extension: the same base draws, its own acquisition and its own parameter group."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    for reserved in ("seed", "size"):
        if reserved in overrides:
            raise ValueError(f"{reserved} is an argument of sample_parameters, not an override")
    ext = None
    ext_overrides: dict[str, Any] = {}
    if extension is not None:
        from .extensions import get_extension  # lazy: extensions import this module's helpers

        ext = get_extension(extension)
        own = {f.name for f in fields(ext.parameters)}
        ext_overrides = {k: v for k, v in overrides.items() if k in own}
        # The extension's own choices of base fields, drawn from its streams; callers win.
        overrides = {**ext.base_overrides(seed),
                     **{k: v for k, v in overrides.items() if k not in own}}
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown phantom parameter(s): {', '.join(unknown)}")
    pick = _Picker(overrides)
    pick("seed", seed)
    pick("size", size)
    _sample_scanner(rng_stream(seed, "scanner"), pick)
    _sample_aorta(rng_stream(seed, "aorta"), pick)
    _sample_body(rng_stream(seed, "body"), pick)
    _sample_spine(rng_stream(seed, "spine"), pick)
    _sample_thrombus(rng_stream(seed, "thrombus"), pick)
    _sample_calcifications(rng_stream(seed, "calcification"), pick)
    _sample_veins(rng_stream(seed, "veins"), pick)
    _sample_organs(rng_stream(seed, "organs"), pick)
    _sample_bowel(rng_stream(seed, "bowel"), pick)
    _sample_hu(rng_stream(seed, "attenuation"), pick)
    if ext is None:
        _sample_acquisition(rng_stream(seed, f"acquisition/{size}"), pick, size)
        return PhantomParameters.from_fields(pick.values)
    ext.sample_acquisition(seed, size, pick.values, pick, ext_overrides)
    base = PhantomParameters.from_fields(pick.values)
    return replace(base, extension=ext.sample(seed, base, ext_overrides))


def _u(r: np.random.Generator, lo: float, hi: float) -> float:
    return float(r.uniform(lo, hi))


def _sample_scanner(r: np.random.Generator, pick: _Picker) -> None:
    pick("kvp", float(r.choice([80.0, 100.0, 120.0, 140.0], p=[0.15, 0.4, 0.4, 0.05])))
    pick("noise_sd_hu", _u(r, 8.0, 30.0))
    pick("noise_sigma_px", _u(r, 0.8, 1.2))
    pick("noise_sigma_z_px", _u(r, 0.3, 0.6))
    pick("psf_sigma_mm", _u(r, 0.5, 0.8))


def _sample_body(r: np.random.Generator, pick: _Picker) -> None:
    v = pick.values
    width = pick("body_width_mm", _u(r, 300.0, 380.0))
    depth = float(np.clip(width * _u(r, 0.66, 0.8), 220.0, 280.0))
    pick("body_shape_exponent", _u(r, 2.1, 2.6))
    pick("body_posterior_exponent", _u(r, 2.6, 3.4))
    pick("body_center_x_mm", _u(r, -8.0, 8.0))
    pick("body_center_y_mm", _u(r, -12.0, 12.0))
    fat = _u(r, 10.0, 40.0)
    muscle = pick("abdominal_wall_muscle_mm", _u(r, 7.0, 13.0))
    # The peritoneal cavity in front of the spine must hold the sac: depth ~ 2 fat + wall +
    # posterior stack (~88 mm) + sac + 25 mm. Fat yields first, then the body grows.
    stack = muscle + 88.0 + v["aneurysm_max_diameter_mm"] + 25.0
    fat = pick("subcutaneous_fat_mm", float(np.clip((280.0 - stack) / 2, 8.0, fat)))
    pick("body_depth_mm", max(depth, 2 * fat + stack))


def _sample_spine(r: np.random.Generator, pick: _Picker) -> None:
    v = pick.values
    pick("renal_artery_z_mm", _u(r, -170.0, -110.0))
    # Vertebral body sits behind a fixed stack of canal, laminae and paraspinal muscle.
    back = v["body_center_y_mm"] + v["body_depth_mm"] / 2 - v["subcutaneous_fat_mm"]
    pick("vertebral_center_y_mm", back - _u(r, 66.0, 78.0))
    pick("vertebral_body_width_mm", _u(r, 40.0, 50.0))
    pick("vertebral_body_depth_mm", _u(r, 28.0, 35.0))
    period = pick("vertebral_period_mm", _u(r, 30.0, 35.0))
    pick("disc_height_mm", _u(r, 8.0, 11.0))
    pick("disc_offset_mm", _u(r, 0.0, 1.0) * period)
    pick("cortical_shell_mm", _u(r, 1.2, 2.0))
    pick("lordosis_mm", _u(r, 0.0, 10.0))
    pick("spinal_canal_width_mm", _u(r, 18.0, 23.0))
    pick("spinal_canal_depth_mm", _u(r, 13.0, 17.0))
    pick("psoas_max_radius_mm", _u(r, 16.0, 25.0))
    pick("paraspinal_width_mm", _u(r, 20.0, 27.0))
    pick("paraspinal_depth_mm", _u(r, 20.0, 27.0))
    pick("rib_slope_mm_per_rad", _u(r, 28.0, 40.0))
    # The iliac crests and the aortic bifurcation both lie at about L4.
    bif = (v["renal_artery_z_mm"] - v["neck_length_mm"] - v["aneurysm_length_mm"]
           - v["distal_aorta_length_mm"])
    pick("iliac_crest_z_mm", bif + _u(r, -10.0, 15.0))
    pick("aorta_x_mm", v["body_center_x_mm"] + _u(r, 2.0, 12.0))
    pick("aortic_gap_mm", _u(r, 1.0, 4.0))


def _sample_aorta(r: np.random.Generator, pick: _Picker) -> None:
    neck = pick("neck_diameter_mm", _u(r, 18.0, 26.0))
    pick("suprarenal_diameter_mm", neck + _u(r, 0.5, 3.0))
    neck_len = pick("neck_length_mm", _u(r, 10.0, 35.0))
    # Skewed towards the common 30-55 mm aneurysms but reaching 80 mm.
    dmax = pick("aneurysm_max_diameter_mm", 30.0 + 50.0 * float(r.beta(1.3, 1.9)))
    distal_len = pick("distal_aorta_length_mm", _u(r, 5.0, 30.0))
    # Larger sacs are longer; renal-to-bifurcation stays <= ~145 mm so "small" fits 64 slices.
    length = _u(r, 40.0, 70.0) + 0.9 * (dmax - 30.0)
    pick("aneurysm_length_mm", float(np.clip(length, 45.0, max(45.0, 145.0 - neck_len
                                                                   - distal_len))))
    pick("aneurysm_peak_fraction", _u(r, 0.35, 0.65))
    pick("aneurysm_shift_x_mm", _u(r, -4.0, 12.0))
    pick("distal_aorta_diameter_mm", min(_u(r, 14.0, 20.0), neck))
    pick("aortic_wall_mm", _u(r, 1.5, 2.5))
    pick("iliac_diameter_mm", _u(r, 9.0, 14.0))
    pick("iliac_half_angle_deg", _u(r, 18.0, 32.0))
    pick("iliac_anterior_slope", _u(r, -0.25, -0.05))


def _sample_thrombus(r: np.random.Generator, pick: _Picker) -> None:
    v = pick.values
    u_shape, u_thick = float(r.random()), float(r.random())
    shape = pick("thrombus_shape", "none" if u_shape < 0.2 else
                 "concentric" if u_shape < 0.6 else "eccentric")
    limit = max_thrombus_thickness_mm(shape, v["aneurysm_max_diameter_mm"], v["aortic_wall_mm"])
    thick = 0.0 if shape == "none" else 1.0 + (max(limit, 1.0) - 1.0) * u_thick**0.8
    pick("thrombus_max_thickness_mm", thick)
    # Thrombus most often lines the anterior / anterolateral sac (world angle 270 = anterior).
    pick("thrombus_angle_deg", float((270.0 + r.normal(0.0, 45.0)) % 360.0))
    pick("thrombus_irregularity_mm", _u(r, 0.0, 2.0))


def _sample_calcifications(r: np.random.Generator, pick: _Picker) -> None:
    v = pick.values
    count = pick("calcification_count", int(r.integers(1, 16)))
    pick("calcification_hu", _u(r, 400.0, 1000.0))
    raw = r.random((MAX_PLAQUES, PLAQUE_LEN))  # drawn in full so a count override shifts nothing
    z_r = v["renal_artery_z_mm"]
    top = z_r - v["neck_length_mm"]
    bif = top - v["aneurysm_length_mm"] - v["distal_aorta_length_mm"]
    plaques = []
    for i in range(count):
        u = raw[i]
        if i == 0:  # one plaque is always in the sac wall
            z = top - v["aneurysm_length_mm"] * (0.2 + 0.6 * u[0])
        else:
            z = bif - 45.0 + (z_r - 3.0 - bif + 45.0) * u[0]
        vessel = 0.0 if z >= bif - 1.0 else (1.0 if u[5] < 0.5 else 2.0)
        plaques.append((float(z), 360.0 * float(u[1]), 15.0 + 55.0 * float(u[2]),
                        2.0 + 8.0 * float(u[3]), 1.0 + 1.5 * float(u[4]), vessel))
    given = pick("calcifications", tuple(plaques))
    if "calcifications" in pick.overrides and "calcification_count" not in pick.overrides:
        pick.values["calcification_count"] = len(given)


def _sample_veins(r: np.random.Generator, pick: _Picker) -> None:
    v = pick.values
    width = pick("ivc_width_mm", _u(r, 20.0, 28.0))
    pick("ivc_depth_mm", _u(r, 10.0, 16.0))
    pick("ivc_x_mm", v["aorta_x_mm"] - v["neck_diameter_mm"] / 2 - _u(r, 4.0, 10.0) - width / 2)
    pick("ivc_y_offset_mm", _u(r, -2.0, 6.0))
    bif = (v["renal_artery_z_mm"] - v["neck_length_mm"] - v["aneurysm_length_mm"]
           - v["distal_aorta_length_mm"])
    pick("iliac_confluence_z_mm", bif - _u(r, 5.0, 25.0))
    pick("renal_artery_diameter_mm", _u(r, 5.0, 7.0))
    pick("renal_vein_diameter_mm", _u(r, 8.0, 12.0))
    pick("left_renal_vein_dz_mm", _u(r, -3.0, 10.0))


def _sample_organs(r: np.random.Generator, pick: _Picker) -> None:
    v = pick.values
    z_r, cx, y_vb = v["renal_artery_z_mm"], v["body_center_x_mm"], v["vertebral_center_y_mm"]
    pick("liver_inferior_z_mm", z_r + _u(r, -45.0, -5.0))
    pick("liver_size", _u(r, 0.85, 1.15))
    pick("liver_offset_y_mm", _u(r, -10.0, 15.0))
    pick("spleen_inferior_z_mm", z_r + _u(r, -15.0, 12.0))
    pick("spleen_length_mm", _u(r, 90.0, 125.0))
    pick("spleen_width_mm", _u(r, 80.0, 110.0))
    pick("spleen_thickness_mm", _u(r, 35.0, 50.0))
    pick("left_kidney_x_mm", cx + _u(r, 64.0, 80.0))
    pick("left_kidney_y_mm", y_vb + _u(r, -5.0, 12.0))
    pick("left_kidney_z_mm", z_r + _u(r, -8.0, 8.0))
    pick("right_kidney_x_mm", cx - _u(r, 64.0, 80.0))
    pick("right_kidney_y_mm", y_vb + _u(r, -5.0, 12.0))
    pick("right_kidney_z_mm", z_r - _u(r, 5.0, 20.0))
    pick("kidney_length_mm", _u(r, 100.0, 120.0))
    pick("kidney_width_mm", _u(r, 52.0, 62.0))
    pick("kidney_depth_mm", _u(r, 38.0, 46.0))
    pick("kidney_angle_deg", _u(r, 25.0, 50.0))
    pick("kidney_cortex_mm", _u(r, 5.0, 8.0))


def _sample_bowel(r: np.random.Generator, pick: _Picker) -> None:
    """Stomach, colon and small-bowel loops as tubes through 4 control points (world mm).

    Loops keep a near-constant y so one horizontal air-fluid level per loop is physical.
    """
    v = pick.values
    cx, cy, z_r = v["body_center_x_mm"], v["body_center_y_mm"], v["renal_artery_z_mm"]
    inset = v["subcutaneous_fat_mm"] + v["abdominal_wall_muscle_mm"]
    a_cav = v["body_width_mm"] / 2 - inset  # half-width of the peritoneal cavity
    front = cy - v["body_depth_mm"] / 2 + inset  # anterior inner surface of the wall
    y_back = v["vertebral_center_y_mm"] - v["vertebral_body_depth_mm"] / 2 - 35.0
    loops: list[tuple[float, ...]] = []

    def tube(radius: float, wall: float, air: float, pts: list[tuple[float, float, float]]
             ) -> None:
        loops.append((radius, wall, air, *[float(c) for p in pts for c in p]))

    def jitter(s: float) -> float:
        return float(r.normal(0.0, s))

    # Stomach: large, left upper quadrant, anterior to the spleen, gastric air anterior.
    rs = _u(r, 35.0, 45.0)
    tube(rs, _u(r, 3.0, 5.0), _u(r, 0.15, 0.35),
         [(cx + 35 + jitter(5), front + rs + 20, z_r + 40), (cx + 50, front + rs + 28, z_r + 80),
          (cx + 62, front + rs + 35, z_r + 120), (cx + 70, front + rs + 40, z_r + 160)])
    # Ascending (right flank) and descending (left flank, more posterior) colon.
    for side, y_shift, z_hi in ((-1.0, _u(r, -15.0, 10.0), 10.0), (1.0, _u(r, 5.0, 30.0), 50.0)):
        rc = _u(r, 18.0, 25.0)
        x = cx + side * (a_cav - rc - _u(r, 6.0, 14.0))
        y = cy + y_shift
        tube(rc, _u(r, 1.5, 2.5), _u(r, 0.2, 0.6),
             [(x + jitter(4), y + jitter(3), z_r + z) for z in (-210.0, -140.0, -60.0, z_hi)])
    # Transverse colon: anterior, sagging between the flexures.
    rt = _u(r, 18.0, 24.0)
    zt = z_r + _u(r, -20.0, 40.0)
    yt = front + rt + _u(r, 5.0, 15.0)
    tube(rt, _u(r, 1.5, 2.5), _u(r, 0.15, 0.5),
         [(cx - 0.65 * a_cav, yt + 8, zt + 15), (cx - 0.2 * a_cav, yt, zt - 10),
          (cx + 0.25 * a_cav, yt, zt - 8), (cx + 0.65 * a_cav, yt + 8, zt + 25)])
    # Small bowel: random walks in the anterior cavity; the first loop always holds gas and
    # sits in front of the aorta so that even the small field of view shows an air-fluid level.
    n_small = int(r.integers(14, 23))
    for i in range(n_small):
        rr = _u(r, 9.0, 14.0)
        wall = _u(r, 1.5, 2.5)
        u_air, air_frac = float(r.random()), _u(r, 0.1, 0.5)
        air = _u(r, 0.3, 0.6) if i == 0 else (air_frac if u_air < 0.25 else 0.0)
        y_lo, y_hi = front + rr + 4.0, max(front + rr + 5.0, y_back - rr)
        if i == 0:
            p = np.array([v["aorta_x_mm"] + _u(r, -40, 40), _u(r, y_lo, y_hi) - 10.0,
                          z_r + _u(r, -80, -25)])
        else:
            p = np.array([cx + _u(r, -0.7, 0.7) * a_cav, _u(r, y_lo, y_hi),
                          z_r + _u(r, -240, 30)])
        pts = [p.copy()]
        for _ in range(3):
            ang, step = _u(r, 0.0, 2 * math.pi), _u(r, 30.0, 55.0)
            p = p + np.array([step * math.cos(ang), jitter(5.0), step * math.sin(ang)])
            p[0] = np.clip(p[0], cx - a_cav + rr + 5, cx + a_cav - rr - 5)
            p[1] = np.clip(p[1], y_lo, y_hi)
            pts.append(p.copy())
        tube(rr, wall, air, [tuple(q) for q in pts])
    pick("bowel_loops", tuple(loops))


BOLUS_RANGE = (0.85, 1.2)  # invisible in the NCCT: no model can know a case's bolus


def arterial_lumen_hu(bolus: float, kvp: float) -> float:
    """Arterial aortic lumen HU. Iodine attenuation rises at low tube voltage (~(120/kVp)^1.3
    over 80-140 kVp)."""
    return float(np.clip(280.0 * bolus * (120.0 / kvp) ** 1.3, 250.0, 450.0))


def _sample_hu(r: np.random.Generator, pick: _Picker) -> None:
    """Published attenuation ranges (HU), unenhanced / arterial / portal-venous."""
    v = pick.values
    pick("fat_subcutaneous_hu", _u(r, -115.0, -90.0))
    pick("fat_visceral_hu", _u(r, -105.0, -80.0))
    pick("muscle_hu", _u(r, 40.0, 55.0))
    pick("muscle_arterial_delta_hu", _u(r, 8.0, 14.0))
    pick("muscle_portal_delta_hu", _u(r, 12.0, 20.0))
    pick("liver_hu", _u(r, 50.0, 65.0))
    pick("liver_arterial_delta_hu", _u(r, 10.0, 25.0))
    pick("portal_venous_liver_hu", _u(r, 100.0, 120.0))
    pick("spleen_hu", _u(r, 40.0, 50.0))
    pick("spleen_arterial_hu", _u(r, 100.0, 130.0))
    pick("spleen_portal_hu", _u(r, 110.0, 130.0))
    cortex = pick("kidney_cortex_hu", _u(r, 30.0, 40.0))
    pick("kidney_medulla_hu", cortex - _u(r, 0.0, 5.0))
    pick("kidney_cortex_arterial_hu", _u(r, 150.0, 200.0))
    pick("kidney_medulla_arterial_hu", _u(r, 60.0, 100.0))
    cortex_pv = pick("kidney_cortex_portal_hu", _u(r, 140.0, 170.0))
    pick("kidney_medulla_portal_hu", float(np.clip(cortex_pv + _u(r, -8.0, 8.0), 140.0, 170.0)))
    pick("bone_cortical_hu", _u(r, 700.0, 1200.0))
    pick("bone_cancellous_hu", _u(r, 150.0, 300.0))
    pick("disc_hu", _u(r, 70.0, 90.0))
    pick("spinal_canal_hu", _u(r, 10.0, 20.0))
    pick("bowel_wall_hu", _u(r, 35.0, 45.0))
    pick("bowel_wall_arterial_hu", _u(r, 80.0, 100.0))
    pick("bowel_wall_portal_hu", _u(r, 90.0, 110.0))
    pick("bowel_fluid_hu", _u(r, 0.0, 20.0))
    u_anaemic, u_blood = float(r.random()), float(r.random())
    anaemic = pick("anaemic", u_anaemic < 0.15)
    blood = pick("blood_hu", 25.0 + 10.0 * u_blood if anaemic else 35.0 + 20.0 * u_blood)
    pick("thrombus_minus_blood_hu", _u(r, -10.0, 15.0))
    pick("thrombus_enhancement_hu", _u(r, 0.0, 5.0))
    bolus = pick("bolus_factor", _u(r, *BOLUS_RANGE))
    pick("arterial_lumen_hu", arterial_lumen_hu(bolus, v["kvp"]))
    pick("portal_venous_aorta_hu", _u(r, 150.0, 200.0))
    pick("ivc_arterial_hu", _u(r, 70.0, 120.0))  # infrarenal mixing of opacified renal return
    pick("ivc_portal_hu", _u(r, 130.0, 170.0))
    pick("renal_vein_arterial_hu", _u(r, 150.0, 200.0))  # early renal venous return
    pick("renal_vein_portal_hu", _u(r, 150.0, 180.0))
    pick("iliac_vein_arterial_hu", blood + _u(r, 3.0, 15.0))  # legs return late
    pick("iliac_vein_portal_hu", _u(r, 110.0, 150.0))
    pick("aortic_wall_hu", _u(r, 40.0, 50.0))
    pick("aortic_wall_arterial_delta_hu", _u(r, 5.0, 15.0))
    pick("aortic_wall_portal_delta_hu", _u(r, 10.0, 20.0))


def _sample_acquisition(r: np.random.Generator, pick: _Picker, size: str) -> None:
    v = pick.values
    z_r = v["renal_artery_z_mm"]
    bif = (z_r - v["neck_length_mm"] - v["aneurysm_length_mm"] - v["distal_aorta_length_mm"])
    if size == "small":
        # Targeted vascular reconstruction: clinical pixels and slices, reduced FOV and range.
        pick("rows", SMALL_MATRIX)
        pick("columns", SMALL_MATRIX)
        pick("pixel_spacing_mm", round(_u(r, 0.7, 0.9), 3))
        options = [2.0, 2.5, 3.0]
        preferred = int(r.integers(0, 3))
        top = z_r + _u(r, 20.0, 30.0)
        bottom = bif - _u(r, 15.0, 30.0)
        thickness = options[-1]
        for t in options[preferred:]:
            thickness = t
            if math.ceil((top - bottom) / t) + 1 <= SMALL_MAX_SLICES:
                break
        thickness = pick("slice_thickness_mm", thickness)
        spacing = pick("slice_spacing_mm", thickness)
        n = math.ceil((top - bottom) / spacing) + 1
        pick("n_slices", max(SMALL_MIN_SLICES, n))
        pick("scan_top_z_mm", top)
        pick("fov_center_x_mm", (v["aorta_x_mm"] + v["body_center_x_mm"]) / 2 + _u(r, -5, 5))
        pick("fov_center_y_mm",
             v["vertebral_center_y_mm"] - v["vertebral_body_depth_mm"] / 2 + _u(r, -15.0, 0.0))
    else:
        pick("rows", CLINICAL_MATRIX)
        pick("columns", CLINICAL_MATRIX)
        # The whole cross-section must fit in the field of view.
        need = (v["body_width_mm"] + 2 * abs(v["body_center_x_mm"]) + 24.0) / CLINICAL_MATRIX
        pick("pixel_spacing_mm", math.ceil(max(_u(r, 0.65, 0.85), need) * 1000) / 1000)
        thickness = pick("slice_thickness_mm", float(r.choice([1.0, 1.25], p=[0.6, 0.4])))
        spacing = pick("slice_spacing_mm", thickness)
        coverage = _u(r, 250.0, 320.0)
        n = pick("n_slices", round(coverage / spacing))
        bottom = bif - _u(r, 40.0, 90.0)
        pick("scan_top_z_mm", min(bottom + (n - 1) * spacing, z_r + 140.0))
        pick("fov_center_x_mm", 0.0)
        pick("fov_center_y_mm", 0.0)
    pick("psf_sigma_z_mm", 0.42 * v["slice_thickness_mm"])  # FWHM ~ slice thickness
