"""PNG previews of a map: NCCT | synthetic | map over NCCT, in the axial, coronal and sagittal
planes through the aneurysm's widest slice.

Rendered with matplotlib's object-oriented API on the Agg canvas (no pyplot state: safe in
workers and threads). Every panel carries the synthetic-image warning; no header text (patient
name, IDs, dates) is ever drawn. The layout is fixed in pixels so that every preview has the
same size and tests can find the colour bar and the warnings.
"""

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from textwrap import wrap

import numpy as np
from matplotlib import colormaps, font_manager, ft2font
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from scipy import ndimage

from digital_contrast.explain.outputs.spec import EVIDENCE, MapOutputError, MapSpec
from digital_contrast.explain.region import aortic_component
from digital_contrast.imaging.volume import Volume

VIEWS: tuple[str, ...] = ("axial", "coronal", "sagittal")
# Layout in pixels, origin at the top left of the image.
WIDTH, HEIGHT, DPI = 1500, 560, 100
PANEL_SIZE = 440
PANEL_TOP = 44
PANEL_LEFTS = (20, 475, 930)  # NCCT, synthetic, map overlay
COLORBAR_LEFT, COLORBAR_WIDTH = 1395, 22  # spans the panels' height
WARNING_BAND = 28  # black band across the top of each panel holding the warning
FOOTER_TOP = PANEL_TOP + PANEL_SIZE + 12
BACKGROUND = "black"
WARNING_COLOR = "#ffd400"
# NCCT and synthetic in one fixed soft-tissue window (W 600 / L 150 HU): comparable across cases.
WINDOW_LOW_HU, WINDOW_HIGH_HU = -150.0, 450.0
SEQUENTIAL_CMAP, DIVERGING_CMAP = "inferno", "berlin"  # perceptually uniform
# The overlay is transparent below 5 % of the colour scale and opaque (0.85) from 20 %.
ALPHA_FROM, ALPHA_FULL, ALPHA_MAX = 0.05, 0.20, 0.85
LUMEN_HU = 150.0  # enhancement at or above this reads as opacified lumen


def panel_box(index: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) in pixels of panel `index` (0 NCCT, 1 synthetic, 2 map)."""
    return PANEL_LEFTS[index], PANEL_TOP, PANEL_SIZE, PANEL_SIZE


def warning_box(index: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the warning band of panel `index`."""
    return PANEL_LEFTS[index], PANEL_TOP, PANEL_SIZE, WARNING_BAND


def colorbar_box() -> tuple[int, int, int, int]:
    return COLORBAR_LEFT, PANEL_TOP, COLORBAR_WIDTH, PANEL_SIZE


@cache
def warning_text() -> str:
    """`SYNTHETIC <en dash> NO CONTRAST GIVEN`; a plain hyphen where the font has no en dash."""
    path = font_manager.findfont(font_manager.FontProperties())
    dash = "\u2013" if ft2font.FT2Font(path).get_char_index(0x2013) else "-"
    return f"SYNTHETIC {dash} NO CONTRAST GIVEN"


def preview_center(enhancement: np.ndarray, spacing_mm: Sequence[float],
                   threshold_hu: float = LUMEN_HU) -> tuple[int, int, int]:
    """(k, j, i) through the aneurysm's widest cross-section.

    The aorta is the enhanced component spanning the most slices (kidneys and bowel wall are
    short along the body axis). Its widest slice is where the largest inscribed circle is
    largest, so that a branch leaving in-plane (renal arteries) does not count as width; the
    in-plane centre is the centroid of the cross-section's piece that holds that circle.
    Falls back to the volume centre when nothing is enhanced.
    """
    if enhancement.ndim != 3:
        raise MapOutputError(f"enhancement must be 3-D, not {enhancement.ndim}-D")
    centre = tuple(n // 2 for n in enhancement.shape)
    aorta = aortic_component(enhancement >= threshold_hu)
    if not aorta.any():
        return centre  # type: ignore[return-value]
    box = ndimage.find_objects(aorta.astype(np.int8))[0]
    best: tuple[float, int, int, int, int] | None = None  # radius, area, k, j, i
    for k in range(box[0].start, box[0].stop):
        section = aorta[k, box[1], box[2]]
        if not section.any():
            continue
        # Padded: the component touches its bounding box, and the EDT needs the edge outside.
        depth = ndimage.distance_transform_edt(np.pad(section, 1), sampling=spacing_mm[1:])
        j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
        found = (float(depth[j, i]), int(section.sum()), k, int(j) - 1, int(i) - 1)
        if best is None or found[:2] > best[:2]:  # ties: the larger area, then the lower k
            best = found
    _, _, k, j, i = best  # type: ignore[misc]
    pieces, _ = ndimage.label(aorta[k, box[1], box[2]])
    cj, ci = ndimage.center_of_mass(pieces == pieces[j, i])
    return k, round(cj) + box[1].start, round(ci) + box[2].start


def patient_orientation(image_orientation: Sequence[float], view: str) -> tuple[str, str]:
    """PatientOrientation (0020,0020) of a rendered view: the patient directions of increasing
    column and increasing row. Coronal and sagittal views are drawn head up."""
    row_dir = [float(v) for v in image_orientation[:3]]
    col_dir = [float(v) for v in image_orientation[3:6]]
    if view == "axial":
        return _direction_letter(row_dir), _direction_letter(col_dir)
    if view == "coronal":
        return _direction_letter(row_dir), "F"
    if view == "sagittal":
        return _direction_letter(col_dir), "F"
    raise MapOutputError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")


def _direction_letter(vector: Sequence[float]) -> str:
    axis = int(np.argmax(np.abs(vector)))
    return ("RL", "AP", "FH")[axis][int(vector[axis] > 0)]  # LPS: +x L, +y P, +z H


def render_previews(ncct: Volume, synthetic: Volume, values: np.ndarray, spec: MapSpec,
                    center: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """{"axial", "coronal", "sagittal"}: (HEIGHT, WIDTH, 3) uint8 RGB images."""
    if synthetic.shape != ncct.shape or values.shape != ncct.shape:
        raise MapOutputError(f"NCCT {ncct.shape}, synthetic {synthetic.shape} and map "
                             f"{values.shape} must share one grid")
    if not all(0 <= c < n for c, n in zip(center, ncct.shape, strict=True)):
        raise MapOutputError(f"preview centre {center} lies outside the volume {ncct.shape}")
    values = np.asarray(values, dtype=np.float32)
    norm, cmap = _color_scale(values)
    head_up = ncct.direction[2, 0] > 0  # increasing slice index runs towards the head
    return {view: _render_view(view, ncct, synthetic.array, values, spec, center, norm, cmap,
                               head_up) for view in VIEWS}


def write_png(image: np.ndarray, path: Path) -> Path:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise MapOutputError(f"a preview must be an (H, W, 3) uint8 image, not {image.shape} "
                             f"{image.dtype}")
    path = Path(path)
    Image.fromarray(image).save(path, format="PNG")
    return path


def _color_scale(values: np.ndarray) -> tuple[Normalize, str]:
    """One scale for all three views; robust to a few extreme voxels and to a map that is zero
    almost everywhere (only the aorta's region is computed)."""
    magnitude = np.abs(values[values != 0])
    top = float(np.percentile(magnitude, 99.5)) if magnitude.size else 0.0
    top = top if top > 0 else 1.0
    if float(values.min()) < 0:
        return Normalize(-top, top), DIVERGING_CMAP
    return Normalize(0.0, top), SEQUENTIAL_CMAP


def _plane(array: np.ndarray, view: str, center: tuple[int, int, int],
           head_up: bool) -> np.ndarray:
    k, j, i = center
    if view == "axial":
        return array[k]
    plane = array[:, j, :] if view == "coronal" else array[:, :, i]
    return plane[::-1] if head_up else plane


def _extent(view: str, shape: tuple[int, int, int],
            spacing: tuple[float, float, float]) -> tuple[float, float, float, float]:
    """Image extent in mm (left, right, bottom, top): the true aspect ratio of each plane."""
    (nk, nj, ni), (sk, sj, si) = shape, spacing
    rows, cols = {"axial": (nj * sj, ni * si), "coronal": (nk * sk, ni * si),
                  "sagittal": (nk * sk, nj * sj)}[view]
    return 0.0, cols, rows, 0.0


def _render_view(view: str, ncct: Volume, synthetic: np.ndarray, values: np.ndarray,
                 spec: MapSpec, center: tuple[int, int, int], norm: Normalize, cmap: str,
                 head_up: bool) -> np.ndarray:
    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, facecolor=BACKGROUND)
    canvas = FigureCanvasAgg(fig)
    extent = _extent(view, ncct.shape, ncct.spacing)
    base = _plane(ncct.array, view, center, head_up)
    overlay = _overlay(_plane(values, view, center, head_up), norm, cmap)
    titles = ("NCCT (acquired)", "Synthetic contrast (AI)", f"{spec.title} map on NCCT")
    layers = ([base], [_plane(synthetic, view, center, head_up)], [base, overlay])
    for index, (title, images) in enumerate(zip(titles, layers, strict=True)):
        ax = fig.add_axes(_figure_rect(panel_box(index)), facecolor=BACKGROUND)
        for image in images:
            gray = image.ndim == 2
            ax.imshow(image, cmap="gray" if gray else None, vmin=WINDOW_LOW_HU,
                      vmax=WINDOW_HIGH_HU, extent=extent, interpolation="nearest")
        _fit_below_warning(ax, extent)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{title} - {view}", color="white", fontsize=11, pad=4)
        _draw_warning(ax)
    cax = fig.add_axes(_figure_rect(colorbar_box()))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_label(spec.unit_meaning, color="white", fontsize=10)
    bar.ax.tick_params(colors="white", labelsize=9)
    footer = wrap(f"{spec.title} map: {spec.description.rstrip('.')}. {EVIDENCE}. One colour "
                  "scale for the three views; transparent where the map is near 0.", 190)
    fig.text(PANEL_LEFTS[0] / WIDTH, 1 - FOOTER_TOP / HEIGHT, "\n".join(footer[:3]),
             color="white", fontsize=10, va="top", ha="left")
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    if rgb.shape != (HEIGHT, WIDTH, 3):  # a changed backend or DPI must not go unnoticed
        raise RuntimeError(f"preview rendered at {rgb.shape}, expected {(HEIGHT, WIDTH, 3)}")
    return rgb


def _fit_below_warning(ax: Axes, extent: tuple[float, float, float, float]) -> None:
    """Equal mm per pixel on both axes (true aspect ratio), the image centred in the panel
    below its warning band, so the band hides no anatomy; the margins stay black."""
    _, cols_mm, rows_mm, _ = extent
    room = PANEL_SIZE - WARNING_BAND
    px_per_mm = min(PANEL_SIZE / cols_mm, room / rows_mm)
    span = PANEL_SIZE / px_per_mm  # the square panel's side in mm
    left = (cols_mm - span) / 2
    top = -WARNING_BAND / px_per_mm - (room / px_per_mm - rows_mm) / 2
    ax.set_aspect("auto")
    ax.set_xlim(left, left + span)
    ax.set_ylim(top + span, top)  # rows run downwards


def _overlay(plane: np.ndarray, norm: Normalize, cmap: str) -> np.ndarray:
    rgba = colormaps[cmap](norm(plane))
    scale = max(abs(float(norm.vmin)), abs(float(norm.vmax)))
    strength = np.abs(plane) / scale
    rgba[..., 3] = ALPHA_MAX * np.clip((strength - ALPHA_FROM) / (ALPHA_FULL - ALPHA_FROM), 0, 1)
    return rgba


def _draw_warning(ax: Axes) -> None:
    band = WARNING_BAND / PANEL_SIZE
    ax.add_patch(Rectangle((0, 1 - band), 1, band, transform=ax.transAxes, facecolor="black",
                           edgecolor="none", zorder=5, clip_on=False))
    ax.text(0.5, 1 - band / 2, warning_text(), transform=ax.transAxes, ha="center",
            va="center", color=WARNING_COLOR, fontsize=12, fontweight="bold", zorder=6)


def _figure_rect(box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    left, top, width, height = box
    return left / WIDTH, 1 - (top + height) / HEIGHT, width / WIDTH, height / HEIGHT
