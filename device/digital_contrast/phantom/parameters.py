"""Every number that defines a phantom case, in one frozen record per group of anatomy or
acquisition, each field declared with its valid range.

World coordinates are DICOM patient coordinates (LPS, mm): +x patient left, +y posterior,
+z superior. Field names are unique across groups, so a field is also addressed by its name
alone (overrides of `sample_parameters`); messages name it as group.field.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import Field, dataclass, field, fields
from typing import Any, ClassVar, Self

import numpy as np

SIZES: tuple[str, ...] = ("small", "clinical")
THROMBUS_SHAPES: tuple[str, ...] = ("none", "concentric", "eccentric")
MIN_LUMEN_DIAMETER_MM = 10.0  # thrombus never narrows the aneurysm lumen below this
MAX_THROMBUS_MM = 25.0
BOWEL_LOOP_LEN = 15  # radius, wall, air fraction, then 4 control points (x, y, z)
PLAQUE_LEN = 6  # z, angle deg, arc deg, height, thickness, vessel (0 aorta, 1 right, 2 left)
MAX_PLAQUES = 30


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


# --- field declarations -------------------------------------------------------------------------
# Valid ranges are inclusive. Sampling uses narrower, published ranges; these bounds admit
# deliberate variants (a child, a normal aorta, a poor bolus) but reject nonsense.
def bounded(low: float, high: float) -> Any:
    """A number valid in [low, high]."""
    return field(metadata={"range": (low, high)})


def one_of(choices: tuple[str, ...]) -> Any:
    """A string from `choices`."""
    return field(metadata={"choices": choices})


def rows_of(width: int) -> Any:
    """Rows of `width` finite numbers (plaques, bowel loops)."""
    return field(metadata={"row_width": width})


def check_value(f: Field[Any], value: Any, name: str) -> Any:
    """`value` as the plain Python type that `f` declares (so that cases serialise and compare
    exactly), within its declared range or choices; a ValueError naming `name` otherwise."""
    width = f.metadata.get("row_width")
    if width is not None:
        return _rows(name, value, width)
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    value = _COERCE[kind](name, value)
    if "range" in f.metadata:
        lo, hi = f.metadata["range"]
        if not lo <= value <= hi:
            raise ValueError(f"{name}={value!r} is outside the valid range [{lo}, {hi}]")
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer | float):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


_COERCE = {"bool": _bool, "str": _str, "int": _int, "float": _float}


def _rows(name: str, value: Any, width: int) -> tuple[tuple[float, ...], ...]:
    try:
        rows = tuple(tuple(float(x) for x in row) for row in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a list of rows of {width} numbers") from exc
    if any(len(row) != width or not all(map(math.isfinite, row)) for row in rows):
        raise ValueError(f"{name}: every row needs {width} finite numbers")
    return rows


def _plain(value: Any) -> Any:
    return [list(row) for row in value] if isinstance(value, tuple) else value


def _keys_match(what: str, given: dict[str, Any], names: set[str]) -> None:
    unknown, missing = sorted(set(given) - names), sorted(names - set(given))
    if unknown or missing:
        raise ValueError(f"{what}: unknown {unknown}, missing {missing}")


# --- the records --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Group:
    """Base of the group records: values coerced and range-checked on construction."""

    GROUP: ClassVar[str]

    def __post_init__(self) -> None:
        for f in fields(self):
            value = check_value(f, getattr(self, f.name), f"{self.GROUP}.{f.name}")
            object.__setattr__(self, f.name, value)
        self._check()

    def _check(self) -> None:
        """Rules that tie fields of the group together (none by default)."""

    def _show(self, name: str) -> str:
        return f"{self.GROUP}.{name}={getattr(self, name)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        _keys_match(f"phantom parameters.{cls.GROUP}", d, {f.name for f in fields(cls)})
        return cls(**d)


@dataclass(frozen=True)
class ScannerParameters(_Group):
    """Scanner and dose, the same for both sizes."""

    GROUP: ClassVar[str] = "scanner"
    kvp: float = bounded(70.0, 150.0)
    noise_sd_hu: float = bounded(4.0, 45.0)  # per-case "dose": SD of the correlated noise
    noise_sigma_px: float = bounded(0.5, 2.5)  # in-plane Gaussian correlation of the noise
    noise_sigma_z_px: float = bounded(0.0, 2.0)  # through-plane correlation, slices
    psf_sigma_mm: float = bounded(0.2, 1.5)  # in-plane system blur


@dataclass(frozen=True)
class AcquisitionParameters(_Group):
    """Image grid and slice profile: the only group that depends on the size."""

    GROUP: ClassVar[str] = "acquisition"
    rows: int = bounded(32, 1024)
    columns: int = bounded(32, 1024)
    n_slices: int = bounded(4, 1024)
    pixel_spacing_mm: float = bounded(0.3, 1.5)
    slice_thickness_mm: float = bounded(0.5, 6.0)
    slice_spacing_mm: float = bounded(0.3, 6.0)
    fov_center_x_mm: float = bounded(-250.0, 250.0)  # world x, y of the image centre
    fov_center_y_mm: float = bounded(-250.0, 250.0)
    scan_top_z_mm: float = bounded(-2000.0, 2000.0)  # world z of slice k = n_slices - 1
    psf_sigma_z_mm: float = bounded(0.0, 4.0)  # slice sensitivity profile as a Gaussian sigma

    @property
    def scan_bottom_z_mm(self) -> float:
        return self.scan_top_z_mm - (self.n_slices - 1) * self.slice_spacing_mm

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_slices, self.rows, self.columns)


@dataclass(frozen=True)
class BodyParameters(_Group):
    """Body outline and wall."""

    GROUP: ClassVar[str] = "body"
    body_width_mm: float = bounded(120.0, 520.0)
    body_depth_mm: float = bounded(90.0, 420.0)
    body_shape_exponent: float = bounded(1.8, 3.5)  # superellipse exponent, anterior half
    body_posterior_exponent: float = bounded(1.8, 5.0)  # flatter back of a supine patient
    body_center_x_mm: float = bounded(-50.0, 50.0)
    body_center_y_mm: float = bounded(-50.0, 50.0)
    subcutaneous_fat_mm: float = bounded(2.0, 90.0)
    abdominal_wall_muscle_mm: float = bounded(2.0, 30.0)


@dataclass(frozen=True)
class SpineParameters(_Group):
    """The lumbar spine and what is placed by it: pelvis, lower ribs, psoas, paraspinal
    muscles."""

    GROUP: ClassVar[str] = "spine"
    vertebral_center_y_mm: float = bounded(-250.0, 250.0)
    vertebral_body_width_mm: float = bounded(15.0, 65.0)
    vertebral_body_depth_mm: float = bounded(10.0, 50.0)
    vertebral_period_mm: float = bounded(12.0, 45.0)
    disc_height_mm: float = bounded(2.0, 16.0)
    disc_offset_mm: float = bounded(0.0, 45.0)  # a disc starts this far above the renal level
    cortical_shell_mm: float = bounded(0.5, 4.0)
    lordosis_mm: float = bounded(0.0, 20.0)
    spinal_canal_width_mm: float = bounded(8.0, 30.0)
    spinal_canal_depth_mm: float = bounded(6.0, 25.0)
    psoas_max_radius_mm: float = bounded(5.0, 40.0)
    paraspinal_width_mm: float = bounded(8.0, 45.0)
    paraspinal_depth_mm: float = bounded(8.0, 40.0)
    rib_slope_mm_per_rad: float = bounded(10.0, 80.0)
    iliac_crest_z_mm: float = bounded(-2000.0, 2000.0)


@dataclass(frozen=True)
class AortaParameters(_Group):
    """Aorta with its aneurysm, renal and iliac arteries, thrombus and calcified plaque."""

    GROUP: ClassVar[str] = "aorta"
    renal_artery_z_mm: float = bounded(-1500.0, 1500.0)  # landmark: origin of the renals
    aorta_x_mm: float = bounded(-60.0, 60.0)
    aortic_gap_mm: float = bounded(0.0, 15.0)  # fat between aortic wall and vertebral body
    suprarenal_diameter_mm: float = bounded(6.0, 40.0)
    neck_diameter_mm: float = bounded(6.0, 36.0)
    neck_length_mm: float = bounded(0.0, 80.0)
    aneurysm_max_diameter_mm: float = bounded(6.0, 100.0)  # outer wall to outer wall, axial
    aneurysm_length_mm: float = bounded(10.0, 220.0)
    aneurysm_peak_fraction: float = bounded(0.2, 0.8)
    aneurysm_shift_x_mm: float = bounded(-25.0, 25.0)  # lateral bulge of the sac (tortuosity)
    distal_aorta_diameter_mm: float = bounded(5.0, 36.0)
    distal_aorta_length_mm: float = bounded(0.0, 80.0)
    aortic_wall_mm: float = bounded(0.5, 4.0)
    iliac_diameter_mm: float = bounded(3.0, 30.0)
    iliac_half_angle_deg: float = bounded(5.0, 50.0)
    iliac_anterior_slope: float = bounded(-0.6, 0.3)  # mm anterior (-y) per mm descent
    renal_artery_diameter_mm: float = bounded(2.0, 12.0)
    thrombus_shape: str = one_of(THROMBUS_SHAPES)
    thrombus_max_thickness_mm: float = bounded(0.0, MAX_THROMBUS_MM)
    thrombus_angle_deg: float = bounded(0.0, 360.0)  # thickest part, world xy, 270 = anterior
    thrombus_irregularity_mm: float = bounded(0.0, 4.0)
    calcification_count: int = bounded(0, MAX_PLAQUES)
    calcifications: tuple[tuple[float, ...], ...] = rows_of(PLAQUE_LEN)

    @property
    def aneurysm_top_z_mm(self) -> float:
        return self.renal_artery_z_mm - self.neck_length_mm

    @property
    def aneurysm_bottom_z_mm(self) -> float:
        return self.aneurysm_top_z_mm - self.aneurysm_length_mm

    @property
    def bifurcation_z_mm(self) -> float:
        return self.aneurysm_bottom_z_mm - self.distal_aorta_length_mm

    def _check(self) -> None:
        if self.neck_diameter_mm > self.aneurysm_max_diameter_mm:
            raise ValueError(f"{self._show('neck_diameter_mm')} exceeds "
                             f"{self._show('aneurysm_max_diameter_mm')}")
        t = self.thrombus_max_thickness_mm
        if self.thrombus_shape == "none":
            if t != 0.0:
                raise ValueError(f"{self._show('thrombus_max_thickness_mm')} must be 0 when "
                                 "aorta.thrombus_shape is 'none'")
        else:
            limit = max_thrombus_thickness_mm(
                self.thrombus_shape, self.aneurysm_max_diameter_mm, self.aortic_wall_mm)
            if not 1.0 <= t <= limit:
                raise ValueError(
                    f"{self._show('thrombus_max_thickness_mm')} must be in [1, {limit:.2f}] "
                    f"for a {self.thrombus_shape} thrombus in a "
                    f"{self.aneurysm_max_diameter_mm:.1f} mm aneurysm "
                    f"(lumen >= {MIN_LUMEN_DIAMETER_MM} mm)")
        if self.calcification_count != len(self.calcifications):
            raise ValueError(f"{self._show('calcification_count')} but "
                             f"{len(self.calcifications)} aorta.calcifications are given")
        for plaque in self.calcifications:
            if plaque[5] not in (0.0, 1.0, 2.0) or plaque[4] <= 0 or plaque[3] <= 0:
                raise ValueError(f"aorta.calcifications {plaque}: needs height, thickness > 0 "
                                 "and vessel 0 (aorta), 1 (right iliac) or 2 (left iliac)")


@dataclass(frozen=True)
class VeinParameters(_Group):
    """Inferior vena cava, renal and common iliac veins."""

    GROUP: ClassVar[str] = "veins"
    ivc_width_mm: float = bounded(6.0, 45.0)
    ivc_depth_mm: float = bounded(3.0, 35.0)
    ivc_x_mm: float = bounded(-120.0, 60.0)
    ivc_y_offset_mm: float = bounded(-20.0, 20.0)
    iliac_confluence_z_mm: float = bounded(-2000.0, 2000.0)
    renal_vein_diameter_mm: float = bounded(3.0, 20.0)
    left_renal_vein_dz_mm: float = bounded(-30.0, 30.0)


@dataclass(frozen=True)
class OrganParameters(_Group):
    """Liver, spleen and kidneys."""

    GROUP: ClassVar[str] = "organs"
    liver_inferior_z_mm: float = bounded(-2000.0, 2000.0)
    liver_size: float = bounded(0.4, 1.6)
    liver_offset_y_mm: float = bounded(-40.0, 40.0)
    spleen_inferior_z_mm: float = bounded(-2000.0, 2000.0)
    spleen_length_mm: float = bounded(40.0, 220.0)
    spleen_width_mm: float = bounded(30.0, 160.0)
    spleen_thickness_mm: float = bounded(15.0, 80.0)
    left_kidney_x_mm: float = bounded(10.0, 160.0)
    left_kidney_y_mm: float = bounded(-150.0, 200.0)
    left_kidney_z_mm: float = bounded(-2000.0, 2000.0)
    right_kidney_x_mm: float = bounded(-160.0, -10.0)
    right_kidney_y_mm: float = bounded(-150.0, 200.0)
    right_kidney_z_mm: float = bounded(-2000.0, 2000.0)
    kidney_length_mm: float = bounded(40.0, 160.0)
    kidney_width_mm: float = bounded(20.0, 90.0)
    kidney_depth_mm: float = bounded(15.0, 70.0)
    kidney_angle_deg: float = bounded(0.0, 80.0)
    kidney_cortex_mm: float = bounded(2.0, 15.0)


@dataclass(frozen=True)
class BowelParameters(_Group):
    """Stomach, colon and small bowel as tubes through 4 control points."""

    GROUP: ClassVar[str] = "bowel"
    bowel_loops: tuple[tuple[float, ...], ...] = rows_of(BOWEL_LOOP_LEN)

    def _check(self) -> None:
        for loop in self.bowel_loops:
            if not (2.0 <= loop[0] <= 80.0 and 0.5 <= loop[1] < loop[0] and 0 <= loop[2] <= 1):
                raise ValueError(f"bowel.bowel_loops {loop[:3]}: needs radius 2-80 mm, wall "
                                 "0.5 mm to radius, air fraction 0-1")


@dataclass(frozen=True)
class IntensityParameters(_Group):
    """Attenuation (HU) of each tissue per phase: unenhanced, arterial, portal-venous."""

    GROUP: ClassVar[str] = "intensities"
    fat_subcutaneous_hu: float = bounded(-130.0, -70.0)
    fat_visceral_hu: float = bounded(-130.0, -70.0)
    muscle_hu: float = bounded(30.0, 65.0)
    muscle_arterial_delta_hu: float = bounded(0.0, 30.0)
    muscle_portal_delta_hu: float = bounded(0.0, 30.0)
    liver_hu: float = bounded(30.0, 80.0)
    liver_arterial_delta_hu: float = bounded(0.0, 40.0)
    portal_venous_liver_hu: float = bounded(100.0, 120.0)
    spleen_hu: float = bounded(30.0, 60.0)
    spleen_arterial_hu: float = bounded(60.0, 180.0)
    spleen_portal_hu: float = bounded(80.0, 160.0)
    kidney_cortex_hu: float = bounded(20.0, 50.0)
    kidney_medulla_hu: float = bounded(15.0, 50.0)
    kidney_cortex_arterial_hu: float = bounded(100.0, 260.0)
    kidney_medulla_arterial_hu: float = bounded(40.0, 140.0)
    kidney_cortex_portal_hu: float = bounded(100.0, 220.0)
    kidney_medulla_portal_hu: float = bounded(100.0, 220.0)
    bone_cortical_hu: float = bounded(500.0, 1800.0)
    bone_cancellous_hu: float = bounded(80.0, 450.0)
    disc_hu: float = bounded(50.0, 110.0)
    spinal_canal_hu: float = bounded(0.0, 35.0)
    bowel_wall_hu: float = bounded(25.0, 60.0)
    bowel_wall_arterial_hu: float = bounded(50.0, 140.0)
    bowel_wall_portal_hu: float = bounded(60.0, 140.0)
    bowel_fluid_hu: float = bounded(-5.0, 30.0)
    blood_hu: float = bounded(15.0, 70.0)
    anaemic: bool = field()
    thrombus_minus_blood_hu: float = bounded(-20.0, 25.0)
    thrombus_enhancement_hu: float = bounded(0.0, 10.0)
    bolus_factor: float = bounded(0.5, 1.5)
    arterial_lumen_hu: float = bounded(150.0, 600.0)
    portal_venous_aorta_hu: float = bounded(100.0, 260.0)
    ivc_arterial_hu: float = bounded(30.0, 200.0)
    ivc_portal_hu: float = bounded(80.0, 220.0)
    renal_vein_arterial_hu: float = bounded(60.0, 260.0)
    renal_vein_portal_hu: float = bounded(80.0, 240.0)
    iliac_vein_arterial_hu: float = bounded(10.0, 200.0)
    iliac_vein_portal_hu: float = bounded(60.0, 220.0)
    aortic_wall_hu: float = bounded(25.0, 70.0)
    aortic_wall_arterial_delta_hu: float = bounded(0.0, 40.0)
    aortic_wall_portal_delta_hu: float = bounded(0.0, 40.0)
    calcification_hu: float = bounded(300.0, 1600.0)

    def _check(self) -> None:
        if self.anaemic and self.blood_hu > 35.0:
            raise ValueError(f"{self._show('blood_hu')} is not anaemic (35 HU or less)")
        if not self.anaemic and self.blood_hu < 35.0:
            raise ValueError(f"{self._show('blood_hu')} needs intensities.anaemic=True "
                             "(normal from 35 HU)")


@dataclass(frozen=True)
class ExtensionGroup(_Group):
    """Base of the parameter group of a phantom extension (one use case's anatomy and values,
    `digital_contrast.phantom.extensions`). Absent from ordinary cases, so that their
    parameters, and every record computed from them, stay as they were."""

    GROUP: ClassVar[str] = "extension"
    USE_CASE: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The use case first, then the fields: enough to find the record again."""
        return {"use_case": self.USE_CASE, **super().to_dict()}


# Group name -> record, in the order of PhantomParameters.
GROUPS: dict[str, type[_Group]] = {cls.GROUP: cls for cls in (
    ScannerParameters, AcquisitionParameters, BodyParameters, SpineParameters, AortaParameters,
    VeinParameters, OrganParameters, BowelParameters, IntensityParameters)}


@dataclass(frozen=True)
class PhantomParameters:
    """All numbers of one case: identity, then one record per group. The small and the clinical
    case of a seed differ in `size` and `acquisition` only."""

    seed: int = bounded(0, 2**63 - 1)
    size: str = one_of(SIZES)
    scanner: ScannerParameters = field()
    acquisition: AcquisitionParameters = field()
    body: BodyParameters = field()
    spine: SpineParameters = field()
    aorta: AortaParameters = field()
    veins: VeinParameters = field()
    organs: OrganParameters = field()
    bowel: BowelParameters = field()
    intensities: IntensityParameters = field()
    # A use case's extension (e.g. abdomen-pv); None for ordinary cases, which then serialise
    # exactly as before extensions existed.
    extension: ExtensionGroup | None = None

    def __post_init__(self) -> None:
        for name in ("seed", "size"):
            f = _TOP_FIELDS[name]
            object.__setattr__(self, name, check_value(f, getattr(self, name), name))
        for name, cls in GROUPS.items():
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"{name} must be a {cls.__name__}, got "
                                 f"{type(getattr(self, name)).__name__}")
        if self.extension is not None and not isinstance(self.extension, ExtensionGroup):
            raise ValueError(f"extension must be an ExtensionGroup, got "
                             f"{type(self.extension).__name__}")

    @property
    def use_case(self) -> str | None:
        """The extension's use case id, None for an ordinary case."""
        return None if self.extension is None else self.extension.USE_CASE

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: {'seed', 'size', group: {field: value}} (tuples become lists), and
        'extension': {'use_case', field: value} only when the case has one."""
        out = {"seed": self.seed, "size": self.size,
               **{name: getattr(self, name).to_dict() for name in GROUPS}}
        if self.extension is not None:
            out["extension"] = self.extension.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhantomParameters:
        """The inverse of `to_dict`; unknown or missing keys are named per group."""
        optional = {"extension"} & set(d)
        _keys_match("phantom parameters", d, {"seed", "size", *GROUPS, *optional})
        for name in (*GROUPS, *optional):
            if not isinstance(d[name], dict):
                raise ValueError(f"phantom parameters: {name} must be a mapping of its fields")
        extension = None
        if optional:
            from .extensions import get_extension  # the registry imports this module

            values = dict(d["extension"])
            extension = get_extension(values.pop("use_case", "")).parameters.from_dict(values)
        return cls(seed=d["seed"], size=d["size"],
                   **{name: group.from_dict(d[name]) for name, group in GROUPS.items()},
                   extension=extension)

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> PhantomParameters:
        """From one flat mapping of every field name (unique across groups) to its value."""
        _keys_match("phantom parameters", values, set(FIELDS) | {"seed", "size"})
        return cls(seed=values["seed"], size=values["size"],
                   **{name: group(**{f.name: values[f.name] for f in fields(group)})
                      for name, group in GROUPS.items()})


_TOP_FIELDS: dict[str, Field[Any]] = {f.name: f for f in fields(PhantomParameters)}
# Field name -> (group, declaration). Names are unique across groups (checked here), so a
# flat name addresses one field.
FIELDS: dict[str, tuple[str, Field[Any]]] = {
    f.name: (name, f) for name, group in GROUPS.items() for f in fields(group)}
if len(FIELDS) != sum(len(fields(g)) for g in GROUPS.values()):
    raise TypeError("phantom parameter field names must be unique across groups")
if list(_TOP_FIELDS)[2:-1] != list(GROUPS):
    raise TypeError("PhantomParameters must list every group of GROUPS, in order")
