"""Every number that defines a phantom case, sampled deterministically from a seed.

World coordinates are DICOM patient coordinates (LPS, mm): +x patient left, +y posterior,
+z superior. Anatomy is sampled from size-independent random streams, so the "small" and the
"clinical" case of one seed show the same body; only the acquisition geometry differs.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

SIZES: tuple[str, ...] = ("small", "clinical")
THROMBUS_SHAPES: tuple[str, ...] = ("none", "concentric", "eccentric")
MIN_LUMEN_DIAMETER_MM = 10.0  # thrombus never narrows the aneurysm lumen below this
MAX_THROMBUS_MM = 25.0
SMALL_MATRIX = 256
CLINICAL_MATRIX = 512
SMALL_MIN_SLICES, SMALL_MAX_SLICES = 48, 64
BOWEL_LOOP_LEN = 15  # radius, wall, air fraction, then 4 control points (x, y, z)
PLAQUE_LEN = 6  # z, angle deg, arc deg, height, thickness, vessel (0 aorta, 1 right, 2 left)
MAX_PLAQUES = 30

# Fields that depend on the requested size; everything else is the same body for both sizes.
ACQUISITION_FIELDS: frozenset[str] = frozenset({
    "size", "rows", "columns", "n_slices", "pixel_spacing_mm", "slice_thickness_mm",
    "slice_spacing_mm", "fov_center_x_mm", "fov_center_y_mm", "scan_top_z_mm",
    "psf_sigma_z_mm"})


def rng_stream(seed: int, name: str) -> np.random.Generator:
    """Independent named random stream: adding a stream or a draw elsewhere shifts nothing."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))


def max_thrombus_thickness_mm(shape: str, max_diameter_mm: float, wall_mm: float) -> float:
    """Thickest thrombus that still leaves a lumen of MIN_LUMEN_DIAMETER_MM at the widest level.

    A concentric rind narrows the lumen from all sides; an eccentric crescent pushes the lumen
    against the opposite wall, so it may be twice as thick for the same lumen.
    """
    if shape == "none":
        return 0.0
    spare = max_diameter_mm / 2.0 - wall_mm - MIN_LUMEN_DIAMETER_MM / 2.0
    if shape == "eccentric":
        spare *= 2.0
    return min(MAX_THROMBUS_MM, spare)


# Inclusive validity ranges. Sampling uses narrower, published ranges; these bounds admit
# deliberate variants (a child, a normal aorta, a poor bolus) but reject nonsense.
_RANGES: dict[str, tuple[float, float]] = {
    "seed": (0, 2**63 - 1),
    "rows": (32, 1024), "columns": (32, 1024), "n_slices": (4, 1024),
    "pixel_spacing_mm": (0.3, 1.5), "slice_thickness_mm": (0.5, 6.0),
    "slice_spacing_mm": (0.3, 6.0),
    "fov_center_x_mm": (-250.0, 250.0), "fov_center_y_mm": (-250.0, 250.0),
    "scan_top_z_mm": (-2000.0, 2000.0),
    "kvp": (70.0, 150.0), "noise_sd_hu": (8.0, 30.0), "noise_sigma_px": (0.5, 2.5),
    "noise_sigma_z_px": (0.0, 2.0), "psf_sigma_mm": (0.2, 1.5), "psf_sigma_z_mm": (0.0, 4.0),
    "body_width_mm": (120.0, 520.0), "body_depth_mm": (90.0, 420.0),
    "body_shape_exponent": (1.8, 3.5), "body_posterior_exponent": (1.8, 5.0),
    "body_center_x_mm": (-50.0, 50.0), "body_center_y_mm": (-50.0, 50.0),
    "subcutaneous_fat_mm": (2.0, 90.0), "abdominal_wall_muscle_mm": (2.0, 30.0),
    "renal_artery_z_mm": (-1500.0, 1500.0), "vertebral_center_y_mm": (-250.0, 250.0),
    "vertebral_body_width_mm": (15.0, 65.0), "vertebral_body_depth_mm": (10.0, 50.0),
    "vertebral_period_mm": (12.0, 45.0), "disc_height_mm": (2.0, 16.0),
    "disc_offset_mm": (0.0, 45.0), "cortical_shell_mm": (0.5, 4.0), "lordosis_mm": (0.0, 20.0),
    "spinal_canal_width_mm": (8.0, 30.0), "spinal_canal_depth_mm": (6.0, 25.0),
    "psoas_max_radius_mm": (5.0, 40.0), "paraspinal_width_mm": (8.0, 45.0),
    "paraspinal_depth_mm": (8.0, 40.0), "rib_slope_mm_per_rad": (10.0, 80.0),
    "iliac_crest_z_mm": (-2000.0, 2000.0),
    "aorta_x_mm": (-60.0, 60.0), "aortic_gap_mm": (0.0, 15.0),
    "suprarenal_diameter_mm": (6.0, 40.0), "neck_diameter_mm": (6.0, 36.0),
    "neck_length_mm": (0.0, 80.0), "aneurysm_max_diameter_mm": (6.0, 100.0),
    "aneurysm_length_mm": (10.0, 220.0), "aneurysm_peak_fraction": (0.2, 0.8),
    "aneurysm_shift_x_mm": (-25.0, 25.0), "distal_aorta_diameter_mm": (5.0, 36.0),
    "distal_aorta_length_mm": (0.0, 80.0), "aortic_wall_mm": (0.5, 4.0),
    "iliac_diameter_mm": (3.0, 30.0), "iliac_half_angle_deg": (5.0, 50.0),
    "iliac_anterior_slope": (-0.6, 0.3),
    "thrombus_max_thickness_mm": (0.0, MAX_THROMBUS_MM), "thrombus_angle_deg": (0.0, 360.0),
    "thrombus_irregularity_mm": (0.0, 4.0),
    "calcification_count": (0, MAX_PLAQUES), "calcification_hu": (300.0, 1600.0),
    "ivc_width_mm": (6.0, 45.0), "ivc_depth_mm": (3.0, 35.0), "ivc_x_mm": (-120.0, 60.0),
    "ivc_y_offset_mm": (-20.0, 20.0), "iliac_confluence_z_mm": (-2000.0, 2000.0),
    "renal_artery_diameter_mm": (2.0, 12.0), "renal_vein_diameter_mm": (3.0, 20.0),
    "left_renal_vein_dz_mm": (-30.0, 30.0),
    "liver_inferior_z_mm": (-2000.0, 2000.0), "liver_size": (0.4, 1.6),
    "liver_offset_y_mm": (-40.0, 40.0),
    "spleen_inferior_z_mm": (-2000.0, 2000.0), "spleen_length_mm": (40.0, 220.0),
    "spleen_width_mm": (30.0, 160.0), "spleen_thickness_mm": (15.0, 80.0),
    "left_kidney_x_mm": (10.0, 160.0), "right_kidney_x_mm": (-160.0, -10.0),
    "left_kidney_y_mm": (-150.0, 200.0), "right_kidney_y_mm": (-150.0, 200.0),
    "left_kidney_z_mm": (-2000.0, 2000.0), "right_kidney_z_mm": (-2000.0, 2000.0),
    "kidney_length_mm": (40.0, 160.0), "kidney_width_mm": (20.0, 90.0),
    "kidney_depth_mm": (15.0, 70.0), "kidney_angle_deg": (0.0, 80.0),
    "kidney_cortex_mm": (2.0, 15.0),
    "fat_subcutaneous_hu": (-130.0, -70.0), "fat_visceral_hu": (-130.0, -70.0),
    "muscle_hu": (30.0, 65.0), "muscle_arterial_delta_hu": (0.0, 30.0),
    "muscle_portal_delta_hu": (0.0, 30.0),
    "liver_hu": (30.0, 80.0), "liver_arterial_delta_hu": (0.0, 40.0),
    "portal_venous_liver_hu": (100.0, 120.0),
    "spleen_hu": (30.0, 60.0), "spleen_arterial_hu": (60.0, 180.0),
    "spleen_portal_hu": (80.0, 160.0),
    "kidney_cortex_hu": (20.0, 50.0), "kidney_medulla_hu": (15.0, 50.0),
    "kidney_cortex_arterial_hu": (100.0, 260.0), "kidney_medulla_arterial_hu": (40.0, 140.0),
    "kidney_cortex_portal_hu": (100.0, 220.0), "kidney_medulla_portal_hu": (100.0, 220.0),
    "bone_cortical_hu": (500.0, 1800.0), "bone_cancellous_hu": (80.0, 450.0),
    "disc_hu": (50.0, 110.0), "spinal_canal_hu": (0.0, 35.0),
    "bowel_wall_hu": (25.0, 60.0), "bowel_wall_arterial_hu": (50.0, 140.0),
    "bowel_wall_portal_hu": (60.0, 140.0), "bowel_fluid_hu": (-5.0, 30.0),
    "blood_hu": (25.0, 55.0), "thrombus_minus_blood_hu": (-10.0, 15.0),
    "thrombus_enhancement_hu": (0.0, 10.0), "bolus_factor": (0.5, 1.5),
    "arterial_lumen_hu": (150.0, 600.0), "portal_venous_aorta_hu": (100.0, 260.0),
    "ivc_arterial_hu": (30.0, 200.0), "ivc_portal_hu": (80.0, 220.0),
    "renal_vein_arterial_hu": (60.0, 260.0), "renal_vein_portal_hu": (80.0, 240.0),
    "iliac_vein_arterial_hu": (20.0, 200.0), "iliac_vein_portal_hu": (60.0, 220.0),
    "aortic_wall_hu": (25.0, 70.0), "aortic_wall_arterial_delta_hu": (0.0, 40.0),
    "aortic_wall_portal_delta_hu": (0.0, 40.0),
}


@dataclass(frozen=True)
class PhantomParameters:
    """All numbers of one case. Positions are world LPS mm; HU values are per phase."""

    # --- identity and acquisition -----------------------------------------------------------
    seed: int
    size: str
    rows: int
    columns: int
    n_slices: int
    pixel_spacing_mm: float
    slice_thickness_mm: float
    slice_spacing_mm: float
    fov_center_x_mm: float  # world x, y of the image centre
    fov_center_y_mm: float
    scan_top_z_mm: float  # world z of the most superior slice (k = n_slices - 1)
    kvp: float
    noise_sd_hu: float  # per-case "dose": SD of the correlated noise
    noise_sigma_px: float  # in-plane Gaussian correlation of the noise, pixels
    noise_sigma_z_px: float  # through-plane correlation of the noise, slices
    psf_sigma_mm: float  # in-plane system blur
    psf_sigma_z_mm: float  # slice sensitivity profile as a Gaussian sigma
    # --- body wall ------------------------------------------------------------------------------
    body_width_mm: float
    body_depth_mm: float
    body_shape_exponent: float  # superellipse exponent of the anterior half
    body_posterior_exponent: float  # flatter back of a supine patient
    body_center_x_mm: float
    body_center_y_mm: float
    subcutaneous_fat_mm: float
    abdominal_wall_muscle_mm: float
    # --- spine and musculoskeletal --------------------------------------------------------
    renal_artery_z_mm: float  # anatomical landmark: origin of the renal arteries
    vertebral_center_y_mm: float
    vertebral_body_width_mm: float
    vertebral_body_depth_mm: float
    vertebral_period_mm: float
    disc_height_mm: float
    disc_offset_mm: float  # a disc starts this far above the renal artery level (mod period)
    cortical_shell_mm: float
    lordosis_mm: float
    spinal_canal_width_mm: float
    spinal_canal_depth_mm: float
    psoas_max_radius_mm: float
    paraspinal_width_mm: float
    paraspinal_depth_mm: float
    rib_slope_mm_per_rad: float
    iliac_crest_z_mm: float
    # --- aorta and iliac arteries -----------------------------------------------------------
    aorta_x_mm: float
    aortic_gap_mm: float  # fat between aortic wall and vertebral body
    suprarenal_diameter_mm: float
    neck_diameter_mm: float
    neck_length_mm: float
    aneurysm_max_diameter_mm: float  # outer wall to outer wall, axial plane
    aneurysm_length_mm: float
    aneurysm_peak_fraction: float
    aneurysm_shift_x_mm: float  # lateral bulge of the sac (tortuosity)
    distal_aorta_diameter_mm: float
    distal_aorta_length_mm: float
    aortic_wall_mm: float
    iliac_diameter_mm: float
    iliac_half_angle_deg: float
    iliac_anterior_slope: float  # mm anterior (-y) per mm descent is negative
    thrombus_shape: str
    thrombus_max_thickness_mm: float
    thrombus_angle_deg: float  # direction of the thickest part (world xy, 270 = anterior)
    thrombus_irregularity_mm: float
    calcification_count: int
    calcification_hu: float
    calcifications: tuple[tuple[float, ...], ...]
    # --- veins --------------------------------------------------------------------------------
    ivc_width_mm: float
    ivc_depth_mm: float
    ivc_x_mm: float
    ivc_y_offset_mm: float
    iliac_confluence_z_mm: float
    renal_artery_diameter_mm: float
    renal_vein_diameter_mm: float
    left_renal_vein_dz_mm: float
    # --- organs ---------------------------------------------------------------------------------
    liver_inferior_z_mm: float
    liver_size: float
    liver_offset_y_mm: float
    spleen_inferior_z_mm: float
    spleen_length_mm: float
    spleen_width_mm: float
    spleen_thickness_mm: float
    left_kidney_x_mm: float
    left_kidney_y_mm: float
    left_kidney_z_mm: float
    right_kidney_x_mm: float
    right_kidney_y_mm: float
    right_kidney_z_mm: float
    kidney_length_mm: float
    kidney_width_mm: float
    kidney_depth_mm: float
    kidney_angle_deg: float
    kidney_cortex_mm: float
    bowel_loops: tuple[tuple[float, ...], ...]
    # --- attenuation (HU) -----------------------------------------------------------------
    fat_subcutaneous_hu: float
    fat_visceral_hu: float
    muscle_hu: float
    muscle_arterial_delta_hu: float
    muscle_portal_delta_hu: float
    liver_hu: float
    liver_arterial_delta_hu: float
    portal_venous_liver_hu: float
    spleen_hu: float
    spleen_arterial_hu: float
    spleen_portal_hu: float
    kidney_cortex_hu: float
    kidney_medulla_hu: float
    kidney_cortex_arterial_hu: float
    kidney_medulla_arterial_hu: float
    kidney_cortex_portal_hu: float
    kidney_medulla_portal_hu: float
    bone_cortical_hu: float
    bone_cancellous_hu: float
    disc_hu: float
    spinal_canal_hu: float
    bowel_wall_hu: float
    bowel_wall_arterial_hu: float
    bowel_wall_portal_hu: float
    bowel_fluid_hu: float
    blood_hu: float
    anaemic: bool
    thrombus_minus_blood_hu: float
    thrombus_enhancement_hu: float
    bolus_factor: float
    arterial_lumen_hu: float
    portal_venous_aorta_hu: float
    ivc_arterial_hu: float
    ivc_portal_hu: float
    renal_vein_arterial_hu: float
    renal_vein_portal_hu: float
    iliac_vein_arterial_hu: float
    iliac_vein_portal_hu: float
    aortic_wall_hu: float
    aortic_wall_arterial_delta_hu: float
    aortic_wall_portal_delta_hu: float

    _TUPLE_FIELDS: ClassVar[dict[str, int]] = {
        "calcifications": PLAQUE_LEN, "bowel_loops": BOWEL_LOOP_LEN}

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, f.type, getattr(self, f.name)))
        self._validate()

    # -- derived anatomy shared by the renderer and the tests -------------------------------
    @property
    def aneurysm_top_z_mm(self) -> float:
        return self.renal_artery_z_mm - self.neck_length_mm

    @property
    def aneurysm_bottom_z_mm(self) -> float:
        return self.aneurysm_top_z_mm - self.aneurysm_length_mm

    @property
    def bifurcation_z_mm(self) -> float:
        return self.aneurysm_bottom_z_mm - self.distal_aorta_length_mm

    @property
    def scan_bottom_z_mm(self) -> float:
        return self.scan_top_z_mm - (self.n_slices - 1) * self.slice_spacing_mm

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_slices, self.rows, self.columns)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = [list(row) for row in value] if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhantomParameters:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        missing = sorted(names - set(d))
        if unknown or missing:
            raise ValueError(f"phantom parameters: unknown {unknown}, missing {missing}")
        return cls(**d)

    def _validate(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {self.size!r}")
        if self.thrombus_shape not in THROMBUS_SHAPES:
            raise ValueError(
                f"thrombus_shape must be one of {THROMBUS_SHAPES}, got {self.thrombus_shape!r}")
        for name, (lo, hi) in _RANGES.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"{name}={value!r} is outside the valid range [{lo}, {hi}]")
        if self.neck_diameter_mm > self.aneurysm_max_diameter_mm:
            raise ValueError(
                f"neck_diameter_mm={self.neck_diameter_mm} exceeds "
                f"aneurysm_max_diameter_mm={self.aneurysm_max_diameter_mm}")
        t = self.thrombus_max_thickness_mm
        if self.thrombus_shape == "none":
            if t != 0.0:
                raise ValueError(f"thrombus_max_thickness_mm={t} must be 0 when thrombus_shape"
                                 " is 'none'")
        else:
            limit = max_thrombus_thickness_mm(
                self.thrombus_shape, self.aneurysm_max_diameter_mm, self.aortic_wall_mm)
            if not 1.0 <= t <= limit:
                raise ValueError(
                    f"thrombus_max_thickness_mm={t} must be in [1, {limit:.2f}] for a "
                    f"{self.thrombus_shape} thrombus in a {self.aneurysm_max_diameter_mm:.1f} mm"
                    f" aneurysm (lumen >= {MIN_LUMEN_DIAMETER_MM} mm)")
        if self.anaemic and self.blood_hu > 35.0:
            raise ValueError(f"blood_hu={self.blood_hu} is not anaemic (25-35 HU)")
        if not self.anaemic and self.blood_hu < 35.0:
            raise ValueError(f"blood_hu={self.blood_hu} needs anaemic=True (normal 35-55 HU)")
        if self.calcification_count != len(self.calcifications):
            raise ValueError(f"calcification_count={self.calcification_count} but "
                             f"{len(self.calcifications)} calcifications are given")
        for plaque in self.calcifications:
            if plaque[5] not in (0.0, 1.0, 2.0) or plaque[4] <= 0 or plaque[3] <= 0:
                raise ValueError(f"calcification {plaque}: needs height, thickness > 0 and "
                                 "vessel 0 (aorta), 1 (right iliac) or 2 (left iliac)")
        for loop in self.bowel_loops:
            if not (2.0 <= loop[0] <= 80.0 and 0.5 <= loop[1] < loop[0] and 0 <= loop[2] <= 1):
                raise ValueError(f"bowel loop {loop[:3]}: needs radius 2-80 mm, wall 0.5 mm to"
                                 " radius, air fraction 0-1")


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Plain Python values of the declared type, so that cases serialise and compare exactly."""
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind == "bool":
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{name} must be a bool, got {value!r}")
        return bool(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer | float):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if float(value) != int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return int(value)
    if kind == "float":
        if isinstance(value, bool | np.bool_) or not isinstance(
                value, int | float | np.integer | np.floating):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return float(value)
    width = PhantomParameters._TUPLE_FIELDS[name]
    try:
        rows = tuple(tuple(float(x) for x in row) for row in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a list of rows of {width} numbers") from exc
    if any(len(row) != width or not all(map(math.isfinite, row)) for row in rows):
        raise ValueError(f"{name}: every row needs {width} finite numbers")
    return rows


_FIELD_NAMES: frozenset[str] = frozenset(f.name for f in fields(PhantomParameters))
_FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in fields(PhantomParameters)}


class _Picker:
    """Takes a sampled value unless the caller overrode it; the draw happens either way, so an
    override never shifts the other sampled values."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self.values: dict[str, Any] = {}

    def __call__(self, name: str, sampled: Any) -> Any:
        value = sampled
        if name in self.overrides:  # checked now, before anything is derived from it
            value = _coerce(name, _FIELD_TYPES[name], self.overrides[name])
            lo, hi = _RANGES.get(name, (-math.inf, math.inf))
            if not isinstance(value, str | tuple) and not lo <= value <= hi:
                raise ValueError(f"{name}={value!r} is outside the valid range [{lo}, {hi}]")
        self.values[name] = value
        return value


def sample_parameters(seed: int, size: str = "small", **overrides: Any) -> PhantomParameters:
    """The case of `seed` at `size`; overrides replace sampled values (validated)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    unknown = sorted(set(overrides) - _FIELD_NAMES)
    if unknown:
        raise ValueError(f"unknown phantom parameter(s): {', '.join(unknown)}")
    for reserved in ("seed", "size"):
        if reserved in overrides:
            raise ValueError(f"{reserved} is an argument of sample_parameters, not an override")
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
    _sample_acquisition(rng_stream(seed, f"acquisition/{size}"), pick, size)
    return PhantomParameters(**pick.values)


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
    bolus = pick("bolus_factor", _u(r, 0.85, 1.2))
    # Iodine attenuation rises at low tube voltage (~(120/kVp)^1.3 over 80-140 kVp).
    pick("arterial_lumen_hu",
         float(np.clip(280.0 * bolus * (120.0 / v["kvp"]) ** 1.3, 250.0, 450.0)))
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
