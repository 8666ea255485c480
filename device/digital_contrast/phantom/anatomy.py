"""Label map of the phantom, painted slice by slice from analytic shapes in world mm.

Every shape is evaluated only inside its bounding window, so the cost scales with the anatomy
on a slice rather than the matrix size. Later shapes overwrite earlier ones, optionally only
over an `allowed` set of labels (bowel stays inside the peritoneal fat, organs do not eat the
abdominal wall).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from .labels import N_LABELS, Label
from .noise import SmoothField
from .parameters import PhantomParameters, rng_stream

L = Label
# Soft organs, bowel and muscles are drawn in smoothly warped coordinates so that they are not
# perfect ellipses; bone, vessels and the body outline are not (the aneurysm diameter stays
# exact). SD of the displacement, its grid and smoothing (grid cells):
WARP_MM, WARP_GRID_MM, WARP_SIGMA = 3.0, 12.0, 1.2
_BOWEL = (L.BOWEL_WALL, L.BOWEL_FLUID, L.BOWEL_AIR)


def _allow(*labels: Label) -> np.ndarray:
    lut = np.zeros(N_LABELS, dtype=bool)
    lut[list(labels)] = True
    return lut


_IN_CAVITY = _allow(L.FAT_VISCERAL)
_ORGAN_BED = _allow(L.FAT_VISCERAL, *_BOWEL)
_SOFT = _allow(L.FAT_VISCERAL, L.MUSCLE, L.LIVER, L.SPLEEN, *_BOWEL)
_KIDNEY_BED = _allow(L.FAT_VISCERAL, L.LIVER, L.SPLEEN, *_BOWEL)
_INSIDE_BODY = ~_allow(L.AIR)
_KIDNEY = _allow(L.KIDNEY_CORTEX, L.KIDNEY_MEDULLA)


def voxel_axes(p: PhantomParameters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World coordinates (z, y, x) in mm of the slice, row and column centres (float64)."""
    a = p.acquisition
    ps = a.pixel_spacing_mm
    xs = a.fov_center_x_mm + (np.arange(a.columns) - (a.columns - 1) / 2) * ps
    ys = a.fov_center_y_mm + (np.arange(a.rows) - (a.rows - 1) / 2) * ps
    zs = a.scan_bottom_z_mm + np.arange(a.n_slices) * a.slice_spacing_mm
    return zs, ys, xs


def affine(p: PhantomParameters) -> np.ndarray:
    """4x4 LPS affine: world = affine @ [k, j, i, 1] (k slice, j row, i column)."""
    zs, ys, xs = voxel_axes(p)
    a = np.zeros((4, 4))
    a[0, 2] = a[1, 1] = p.acquisition.pixel_spacing_mm
    a[2, 0] = p.acquisition.slice_spacing_mm
    a[:3, 3] = (xs[0], ys[0], zs[0])
    a[3, 3] = 1.0
    return a


def _bump(u: float, peak: float) -> float:
    """0 at u=0 and u=1, 1 at u=peak, zero slope at all three: a smooth fusiform profile."""
    if u <= 0.0 or u >= 1.0:
        return 0.0
    s = u / peak if u <= peak else (1.0 - u) / (1.0 - peak)
    return math.sin(math.pi * s / 2.0) ** 2


def _smoothstep(t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


class _Win(NamedTuple):
    rows: slice
    cols: slice
    x: np.ndarray  # world x of the window's pixels: (1, w), or (h, w) when warped
    y: np.ndarray  # world y: (h, 1), or (h, w) when warped
    true_y: np.ndarray  # unwarped world y (h, 1): gravity is not warped


class _Canvas:
    """One axial slice being painted."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray) -> None:
        self.xs, self.ys = xs, ys
        self.step = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
        self.lab = np.zeros((len(ys), len(xs)), dtype=np.uint8)
        self.warp: tuple[np.ndarray, np.ndarray] | None = None  # this slice's displacement
        self.warped = False  # whether shapes are drawn in the warped coordinates
        self.pad = 0.0

    def set_warp(self, wx: np.ndarray, wy: np.ndarray) -> None:
        self.warp = (wx, wy)
        self.pad = float(max(np.abs(wx).max(), np.abs(wy).max())) + self.step

    def window(self, x0: float, x1: float, y0: float, y1: float) -> _Win | None:
        s, xs, ys = self.step, self.xs, self.ys
        warp = self.warp if self.warped else None
        if warp is not None:
            x0, x1, y0, y1 = x0 - self.pad, x1 + self.pad, y0 - self.pad, y1 + self.pad
        i0 = max(math.floor((x0 - xs[0]) / s), 0)
        i1 = min(math.ceil((x1 - xs[0]) / s) + 1, len(xs))
        j0 = max(math.floor((y0 - ys[0]) / s), 0)
        j1 = min(math.ceil((y1 - ys[0]) / s) + 1, len(ys))
        if i0 >= i1 or j0 >= j1:
            return None
        x, y = xs[None, i0:i1], ys[j0:j1, None]
        if warp is not None:
            return _Win(slice(j0, j1), slice(i0, i1), x + warp[0][j0:j1, i0:i1],
                        y + warp[1][j0:j1, i0:i1], y)
        return _Win(slice(j0, j1), slice(i0, i1), x, y, y)

    def paint(self, win: _Win | None, mask: np.ndarray | None, label: Label,
              allowed: np.ndarray | None = None) -> None:
        if win is None or mask is None:
            return
        sub = self.lab[win.rows, win.cols]
        if allowed is not None:
            mask = mask & allowed[sub]
        sub[mask] = label

    def ellipse(self, cx: float, cy: float, a: float, b: float, angle: float = 0.0
                ) -> tuple[_Win | None, np.ndarray | None]:
        """Ellipse with semi-axis a along direction `angle` (radians from +x towards +y)."""
        if a <= 0 or b <= 0:
            return None, None
        r = max(a, b)
        win = self.window(cx - r, cx + r, cy - r, cy + r)
        if win is None:
            return None, None
        dx, dy = win.x - cx, win.y - cy
        if angle:
            c, s = math.cos(angle), math.sin(angle)
            dx, dy = dx * c + dy * s, dy * c - dx * s
        return win, (dx / a) ** 2 + (dy / b) ** 2 <= 1.0

    def capsule(self, p: tuple[float, float], q: tuple[float, float], r: float
                ) -> tuple[_Win | None, np.ndarray | None]:
        """2-D stadium: points within r of the segment p-q."""
        win = self.window(min(p[0], q[0]) - r, max(p[0], q[0]) + r,
                          min(p[1], q[1]) - r, max(p[1], q[1]) + r)
        if win is None:
            return None, None
        ux, uy = q[0] - p[0], q[1] - p[1]
        n2 = max(ux * ux + uy * uy, 1e-9)
        t = np.clip(((win.x - p[0]) * ux + (win.y - p[1]) * uy) / n2, 0.0, 1.0)
        return win, (win.x - p[0] - t * ux) ** 2 + (win.y - p[1] - t * uy) ** 2 <= r * r

    def tube(self, pts: np.ndarray, r: float, z: float
             ) -> tuple[_Win, np.ndarray, np.ndarray, np.ndarray] | None:
        """3-D polyline tube cut by the plane z: window, distance to the axis, and the x, y
        of the nearest axis point, per pixel."""
        segs = []
        x0 = y0 = math.inf
        x1 = y1 = -math.inf
        for a, b in itertools.pairwise(pts):
            dz = b[2] - a[2]
            if abs(dz) > 1e-9:  # parameter range where the axis is within r of the plane
                ta, tb = sorted(((z - r - a[2]) / dz, (z + r - a[2]) / dz))
                ta, tb = max(ta, 0.0), min(tb, 1.0)
                if ta > tb:
                    continue
            elif abs(a[2] - z) > r:
                continue
            else:
                ta, tb = 0.0, 1.0
            pa, pb = a + ta * (b - a), a + tb * (b - a)
            x0, x1 = min(x0, pa[0], pb[0]), max(x1, pa[0], pb[0])
            y0, y1 = min(y0, pa[1], pb[1]), max(y1, pa[1], pb[1])
            segs.append((a, b))
        if not segs:
            return None
        win = self.window(x0 - r, x1 + r, y0 - r, y1 + r)
        if win is None:
            return None
        best = near_x = near_y = None
        for a, b in segs:
            u = b - a
            n2 = max(float(u @ u), 1e-9)
            t = np.clip(((win.x - a[0]) * u[0] + (win.y - a[1]) * u[1] + (z - a[2]) * u[2]) / n2,
                        0.0, 1.0)
            nx, ny = a[0] + t * u[0], a[1] + t * u[1]
            d2 = (win.x - nx) ** 2 + (win.y - ny) ** 2 + (z - a[2] - t * u[2]) ** 2
            if best is None:
                best, near_x, near_y = d2, nx, ny
            else:
                closer = d2 < best
                best = np.where(closer, d2, best)
                near_x = np.where(closer, nx, near_x)
                near_y = np.where(closer, ny, near_y)
        shape = (win.rows.stop - win.rows.start, win.cols.stop - win.cols.start)
        return (win, np.sqrt(best), np.broadcast_to(near_x, shape),
                np.broadcast_to(near_y, shape))


class Anatomy:
    """Derived geometry of one case; `render` paints the label map."""

    def __init__(self, p: PhantomParameters) -> None:
        self.p = p
        inset = p.body.subcutaneous_fat_mm + p.body.abdominal_wall_muscle_mm
        self.cx, self.cy = p.body.body_center_x_mm, p.body.body_center_y_mm
        self.a_cav = p.body.body_width_mm / 2 - inset
        self.b_cav = p.body.body_depth_mm / 2 - inset
        self.z_r = p.aorta.renal_artery_z_mm
        self.z_bif = p.aorta.bifurcation_z_mm
        self.z_end = p.aorta.renal_artery_z_mm - 400.0  # far below any field of view
        self.wall = p.aorta.aortic_wall_mm
        self.r_il = p.aorta.iliac_diameter_mm / 2
        th = math.radians(p.aorta.thrombus_angle_deg)
        self.thrombus_dir = (math.cos(th), math.sin(th))
        rng = rng_stream(p.seed, "thrombus/lumen")  # phases of the lumen irregularity
        self.irr_phase = rng.uniform(0, 2 * math.pi, 2)
        self.bowel = [(loop[0], loop[1], loop[2], np.array(loop[3:]).reshape(4, 3))
                      for loop in p.bowel.bowel_loops]
        self._iliacs()
        self._kidneys()
        self._renal_vessels()

    # --- profiles along z ---------------------------------------------------------------------
    def spine_y(self, z: float) -> float:
        """Vertebral body centre y: the lumbar lordosis brings L3-L4 forward."""
        s = self.p.spine
        return s.vertebral_center_y_mm - s.lordosis_mm * math.exp(
            -(((z - (self.z_r - 90.0)) / 90.0) ** 2))

    def spine_front(self, z: float) -> float:
        return self.spine_y(z) - self.p.spine.vertebral_body_depth_mm / 2

    def _sac_u(self, z: float) -> float:
        return (self.p.aorta.aneurysm_top_z_mm - z) / self.p.aorta.aneurysm_length_mm

    def aorta_radius(self, z: float) -> float:
        """Outer radius of the aorta in the axial plane; 0 below the bifurcation."""
        a = self.p.aorta
        if z < self.z_bif:
            return 0.0
        if z >= self.z_r:
            t = _smoothstep((z - self.z_r) / 15.0)
            return (a.neck_diameter_mm + (a.suprarenal_diameter_mm - a.neck_diameter_mm) * t) / 2
        if z >= a.aneurysm_top_z_mm:
            return a.neck_diameter_mm / 2
        if z >= a.aneurysm_bottom_z_mm:
            u, f = self._sac_u(z), a.aneurysm_peak_fraction
            base = a.neck_diameter_mm + (a.distal_aorta_diameter_mm - a.neck_diameter_mm) * u
            base_peak = a.neck_diameter_mm + (a.distal_aorta_diameter_mm - a.neck_diameter_mm) * f
            return (base + (a.aneurysm_max_diameter_mm - base_peak) * _bump(u, f)) / 2
        return a.distal_aorta_diameter_mm / 2

    def aorta_center(self, z: float) -> tuple[float, float]:
        """The sac bulges forward and sideways; its back wall stays on the spine."""
        a = self.p.aorta
        x = a.aorta_x_mm + a.aneurysm_shift_x_mm * _bump(self._sac_u(z),
                                                         a.aneurysm_peak_fraction)
        y = self.spine_front(z) - a.aortic_gap_mm - max(self.aorta_radius(z),
                                                        a.distal_aorta_diameter_mm / 2)
        return x, y

    def thrombus_thickness(self, z: float) -> float:
        a = self.p.aorta
        if a.thrombus_shape == "none":
            return 0.0
        t = a.thrombus_max_thickness_mm * _bump(self._sac_u(z), a.aneurysm_peak_fraction) ** 0.7
        r_in = self.aorta_radius(z) - self.wall
        spare = r_in - 5.0  # keep a 10 mm lumen on every slice, not only at the peak
        return max(0.0, min(t, spare if a.thrombus_shape == "concentric" else 2 * spare))

    def ivc_center(self, z: float) -> tuple[float, float]:
        """Right of the aorta, pushed further right by a wide sac."""
        v = self.p.veins
        x = v.ivc_x_mm
        r = self.aorta_radius(z)
        if r > 0:
            x = min(x, self.aorta_center(z)[0] - r - 3.0 - v.ivc_width_mm / 2)
        return x, self.spine_front(z) - v.ivc_depth_mm / 2 - v.ivc_y_offset_mm

    # --- precomputed 3-D structures ---------------------------------------------------------
    def _iliacs(self) -> None:
        p = self.p
        bx, by = self.aorta_center(self.z_bif)
        z0 = self.z_bif + 0.5 * self.r_il
        drop = z0 - self.z_end
        tan = math.tan(math.radians(p.aorta.iliac_half_angle_deg))
        self.iliac_axes: dict[int, np.ndarray] = {}
        self.iliac_vein_axes: list[np.ndarray] = []
        # Round common iliac veins, a little thicker than the flat IVC.
        r_v = 0.6 * p.veins.ivc_depth_mm
        self.r_iliac_vein = r_v
        cx_conf, cy_conf = self.ivc_center(p.veins.iliac_confluence_z_mm)
        for side in (-1, 1):  # -1 patient right (x < 0), +1 left
            start = np.array([bx + side * 0.55 * self.r_il, by, z0])
            end = start + np.array([side * tan * drop, p.aorta.iliac_anterior_slope * drop, -drop])
            self.iliac_axes[side] = np.stack([start, end])
            v_start = np.array([cx_conf, cy_conf + 2.0, p.veins.iliac_confluence_z_mm + r_v])
            v_end = end + np.array([-side * 3.0, self.r_il + r_v + 1.0, 0.0])
            self.iliac_vein_axes.append(np.stack([v_start, v_end]))

    def _kidneys(self) -> None:
        o = self.p.organs
        th = math.radians(o.kidney_angle_deg)
        self.kidneys = []
        for side, x, y, z in ((1, o.left_kidney_x_mm, o.left_kidney_y_mm, o.left_kidney_z_mm),
                              (-1, o.right_kidney_x_mm, o.right_kidney_y_mm,
                               o.right_kidney_z_mm)):
            angle = -th if side == 1 else th  # long axis runs anterolaterally
            hilum_dir = (-side * math.sin(th), -math.cos(th))  # anteromedial
            b = o.kidney_depth_mm / 2
            hilum = np.array([x + hilum_dir[0] * 0.5 * b, y + hilum_dir[1] * 0.5 * b, z])
            self.kidneys.append((side, x, y, z, angle, hilum_dir, hilum))

    def _renal_vessels(self) -> None:
        p = self.p
        z_r = self.z_r
        ax, ay = self.aorta_center(z_r)
        r = self.aorta_radius(z_r)
        hil = {k[0]: k[6] for k in self.kidneys}
        ra = p.aorta.renal_artery_diameter_mm / 2
        rv = p.veins.renal_vein_diameter_mm / 2
        ivx, ivy = self.ivc_center(z_r - 4.0)
        self.renal_arteries = [
            np.array([[ax, ay, z_r], [ax + r + 6.0, ay + 4.0, z_r - 2.0], hil[1]]),
            np.array([[ax, ay, z_r - 1.0],
                      [ivx, ivy + p.veins.ivc_depth_mm / 2 + ra + 1.5, z_r - 4.0], hil[-1]]),
        ]
        z_lrv = z_r + p.veins.left_renal_vein_dz_mm
        lx, ly = self.aorta_center(z_lrv)
        front = ly - self.aorta_radius(z_lrv) - rv - 1.5  # crosses in front of the aorta
        cxv, cyv = self.ivc_center(z_lrv)
        z_rrv = p.organs.right_kidney_z_mm + 8.0
        rxv, ryv = self.ivc_center(z_rrv)
        self.renal_veins = [
            np.array([hil[1] + [0.0, -3.0, 2.0], [lx, front, z_lrv], [cxv, cyv, z_lrv]]),
            np.array([hil[-1] + [0.0, -3.0, 2.0], [rxv, ryv, z_rrv]]),
        ]

    # --- rendering ------------------------------------------------------------------------------
    def render(self, zs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        labels = np.empty((len(zs), len(ys), len(xs)), dtype=np.uint8)
        base = self._body_base(ys, xs)
        canvas = _Canvas(xs, ys)
        warp_x = SmoothField(self.p, "shape/x", WARP_GRID_MM, WARP_SIGMA, zs, ys, xs)
        warp_y = SmoothField(self.p, "shape/y", WARP_GRID_MM, WARP_SIGMA, zs, ys, xs)
        ext, state = None, None
        if self.p.extension is not None:  # a use case's structures, after the base anatomy
            from .extensions import get_extension

            ext = get_extension(self.p.extension.USE_CASE)
            state = ext.prepare(self)
        for k, z in enumerate(zs):
            canvas.lab[...] = base
            canvas.set_warp(WARP_MM * warp_x.chunk(k, k + 1)[0],
                            WARP_MM * warp_y.chunk(k, k + 1)[0])
            self._paint_slice(canvas, float(z))
            if ext is not None:
                ext.paint(self, state, canvas, float(z))
            labels[k] = canvas.lab
        if ext is not None:
            ext.finish(self, state, labels)
        return labels

    def _body_base(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Skin, subcutaneous fat, wall muscle and peritoneal fat: the same on every slice."""
        body = self.p.body
        dx = np.abs(xs[None, :] - self.cx)
        dy = ys[:, None] - self.cy
        expo = np.where(dy < 0, body.body_shape_exponent, body.body_posterior_exponent)
        base = np.zeros((len(ys), len(xs)), dtype=np.uint8)
        layers = ((0.0, L.FAT_SUBCUTANEOUS), (body.subcutaneous_fat_mm, L.MUSCLE),
                  (body.subcutaneous_fat_mm + body.abdominal_wall_muscle_mm, L.FAT_VISCERAL))
        for inset, label in layers:
            a, b = body.body_width_mm / 2 - inset, body.body_depth_mm / 2 - inset
            base[(dx / a) ** expo + (np.abs(dy) / b) ** expo <= 1.0] = label
        return base

    def _paint_slice(self, cv: _Canvas, z: float) -> None:
        cv.warped = True
        self._pelvis_soft(cv, z)
        self._bowel(cv, z)
        self._liver(cv, z)
        self._spleen(cv, z)
        self._muscles(cv, z)
        self._kidney(cv, z)
        cv.warped = False
        self._spine(cv, z)
        self._pelvis_bone(cv, z)
        self._ribs(cv, z)
        self._veins(cv, z)
        self._arteries(cv, z)

    def _bowel(self, cv: _Canvas, z: float) -> None:
        for radius, wall, air, pts in self.bowel:
            hit = cv.tube(pts, radius, z)
            if hit is None:
                continue
            win, d, _, _ = hit
            sub = cv.lab[win.rows, win.cols]
            own = (d <= radius) & _IN_CAVITY[sub]  # never over another loop
            r_in = radius - wall
            lumen = own & (d <= r_in)
            # Gas rises anteriorly (smaller y) to one horizontal level per loop.
            level = pts[:, 1].min() - r_in + 2.0 * r_in * air
            gas = lumen & (win.true_y < level)
            sub[own] = L.BOWEL_WALL
            sub[lumen & ~gas] = L.BOWEL_FLUID
            sub[gas] = L.BOWEL_AIR

    def liver_right_lobe(self, z: float) -> tuple[float, float, float, float, float] | None:
        """Right lobe's ellipse at z: centre x, y, semi-axes, angle (rad); None below it."""
        o = self.p.organs
        h = z - o.liver_inferior_z_mm
        if h <= 0:
            return None
        s = math.sqrt(min(h / 90.0, 1.0)) * o.liver_size
        ax, ay = 0.42 * self.a_cav * s, 0.78 * self.b_cav * s
        # The inferior tip of the right lobe is anterolateral; the lobe fills the flank higher up.
        x = self.cx - self.a_cav + ax + 4.0
        y = self.cy + o.liver_offset_y_mm - (1.0 - min(h / 90.0, 1.0)) * 0.35 * self.b_cav
        return x, y, ax, ay, math.radians(-10)

    def liver_left_lobe(self, z: float) -> tuple[float, float, float, float] | None:
        """Left lobe's ellipse at z (centre x, y, semi-axes); None where there is none."""
        o = self.p.organs
        h = z - o.liver_inferior_z_mm
        if not h > 60.0:  # left lobe crosses the midline anteriorly, higher up
            return None
        s2 = math.sqrt(min((h - 60.0) / 60.0, 1.0)) * o.liver_size
        return (self.cx + 0.05 * self.a_cav, self.cy - self.b_cav + 0.32 * self.b_cav * s2 + 6.0,
                0.55 * self.a_cav * s2, 0.3 * self.b_cav * s2)

    def _liver(self, cv: _Canvas, z: float) -> None:
        right = self.liver_right_lobe(z)
        if right is None:
            return
        cv.paint(*cv.ellipse(*right), L.LIVER, _ORGAN_BED)
        left = self.liver_left_lobe(z)
        if left is not None:
            cv.paint(*cv.ellipse(*left), L.LIVER, _ORGAN_BED)

    def _spleen(self, cv: _Canvas, z: float) -> None:
        o = self.p.organs
        half = o.spleen_length_mm / 2
        dz = z - (o.spleen_inferior_z_mm + half)
        if abs(dz) >= half:
            return
        s = math.sqrt(1.0 - (dz / half) ** 2)
        a, b = o.spleen_width_mm / 2 * s, o.spleen_thickness_mm / 2 * s
        # Long axis along the posterolateral wall; concave visceral surface faces anteromedially.
        tx, ty = -0.6, 0.8
        x = self.cx + 0.66 * self.a_cav
        y = self.cy + 0.36 * self.b_cav
        angle = math.atan2(ty, tx)
        win, mask = cv.ellipse(x, y, a, b, angle)
        if win is None or mask is None:
            return
        nx, ny = -0.8, -0.6
        cdx, cdy = x + nx * 1.6 * b - win.x, y + ny * 1.6 * b - win.y
        c, sn = math.cos(angle), math.sin(angle)
        u, v = cdx * c + cdy * sn, cdy * c - cdx * sn
        bite = (u / (0.9 * a)) ** 2 + (v / (1.05 * b)) ** 2 <= 1.0
        cv.paint(win, mask & ~bite, L.SPLEEN, _ORGAN_BED)

    def _muscles(self, cv: _Canvas, z: float) -> None:
        p, s = self.p, self.p.spine
        sx, y_vb = self.cx, self.spine_y(z)
        # Erector spinae fill the paravertebral gutters up to the subcutaneous fat.
        back = self.cy + p.body.body_depth_mm / 2 - p.body.subcutaneous_fat_mm
        for side in (-1, 1):
            cv.paint(*cv.ellipse(sx + side * (4.0 + s.paraspinal_width_mm),
                                 back - s.paraspinal_depth_mm + 3.0,
                                 s.paraspinal_width_mm, s.paraspinal_depth_mm), L.MUSCLE, _SOFT)
        r = self.psoas_radius(z)
        below = max(0.0, min(s.iliac_crest_z_mm - z, 80.0))
        for side in (-1, 1):
            if z > s.iliac_crest_z_mm:  # quadratus lumborum
                cv.paint(*cv.ellipse(sx + side * (s.vertebral_body_width_mm / 2 + 2 * r + 12.0),
                                     y_vb + 20.0, 15.0, 9.0, side * math.radians(25)),
                         L.MUSCLE, _SOFT)
            if r > 0:
                cv.paint(*cv.ellipse(sx + side * (s.vertebral_body_width_mm / 2 + 0.8 * r
                                                  + 0.3 * below),
                                     y_vb + 0.1 * r - 0.25 * below, r, 0.9 * r), L.MUSCLE, _SOFT)

    def psoas_radius(self, z: float) -> float:
        """Psoas arises at T12 and thickens caudally."""
        origin = self.z_r + 45.0
        if z > origin:
            return 0.0
        f = min(max(0.3 + 0.7 * (origin - z) / 140.0, 0.3), 1.0)
        return self.p.spine.psoas_max_radius_mm * f

    def _kidney(self, cv: _Canvas, z: float) -> None:
        o = self.p.organs
        c = o.kidney_length_mm / 2
        for side, x, y, zc, angle, hdir, _ in self.kidneys:
            dz = z - zc
            if abs(dz) >= c:
                continue
            s = math.sqrt(1.0 - (dz / c) ** 2)
            # Upper pole more medial and posterior.
            kx = x - side * 0.15 * dz
            ky = y + 0.1 * dz
            a, b = o.kidney_width_mm / 2 * s, o.kidney_depth_mm / 2 * s
            win, outer = cv.ellipse(kx, ky, a, b, angle)
            if win is None or outer is None:
                continue
            cv.paint(win, outer, L.KIDNEY_CORTEX, _KIDNEY_BED)
            ai, bi = a - o.kidney_cortex_mm, b - o.kidney_cortex_mm
            if ai > 1.0 and bi > 1.0:
                ca, sa = math.cos(angle), math.sin(angle)
                u = (win.x - kx) * ca + (win.y - ky) * sa
                v = (win.y - ky) * ca - (win.x - kx) * sa
                inner = (u / ai) ** 2 + (v / bi) ** 2 <= 1.0
                # Pyramids separated by cortical columns (of Bertin).
                pyramids = np.cos(5.0 * np.arctan2(v / bi, u / ai) + 0.7 * side) > -0.45
                sub = cv.lab[win.rows, win.cols]
                sub[inner & pyramids & (sub == L.KIDNEY_CORTEX)] = L.KIDNEY_MEDULLA
            if abs(dz) < 0.55 * c:  # renal sinus fat opening at the hilum
                sc = (kx + hdir[0] * 0.55 * b, ky + hdir[1] * 0.55 * b)
                cv.paint(*cv.ellipse(sc[0], sc[1], 0.42 * a, 0.55 * b, angle),
                         L.FAT_VISCERAL, _KIDNEY)

    def _bone(self, cv: _Canvas, cx: float, cy: float, a: float, b: float, angle: float = 0.0
              ) -> None:
        shell = self.p.spine.cortical_shell_mm
        cv.paint(*cv.ellipse(cx, cy, a, b, angle), L.BONE_CORTICAL, _INSIDE_BODY)
        cv.paint(*cv.ellipse(cx, cy, a - shell, b - shell, angle), L.BONE_CANCELLOUS,
                 _INSIDE_BODY)

    def _spine(self, cv: _Canvas, z: float) -> None:
        s = self.p.spine
        sx, y_vb = self.cx, self.spine_y(z)
        a, b = s.vertebral_body_width_mm / 2, s.vertebral_body_depth_mm / 2
        period = s.vertebral_period_mm
        f = (z - self.z_r - s.disc_offset_mm) % period  # height above the disc below
        body_h = period - s.disc_height_mm
        canal_y = y_vb + b + s.spinal_canal_depth_mm / 2 + 1.5
        ca, cb = s.spinal_canal_width_mm / 2, s.spinal_canal_depth_mm / 2
        if f < s.disc_height_mm:
            cv.paint(*cv.ellipse(sx, y_vb, a + 1.0, b + 1.0), L.DISC)
        else:
            fb = (f - s.disc_height_mm) / body_h  # 0 at the lower endplate, 1 at the upper
            if z < s.iliac_crest_z_mm - 45.0:  # S1: sacral alae towards the SI joints
                self._sacrum(cv, z, sx, y_vb, a)
            self._bone(cv, sx, y_vb, a, b)
            if 0.12 < fb < 0.95:  # pedicles and laminae
                cv.paint(*cv.ellipse(sx, canal_y, ca + 4.5, cb + 4.5), L.BONE_CORTICAL)
            if 0.25 < fb < 1.0:  # spinous process, angled down
                self._bone(cv, sx, canal_y + cb + 17.0, 3.8, 15.0)
            if 0.45 < fb < 0.75 and z > s.iliac_crest_z_mm - 25.0:  # transverse processes
                for side in (-1, 1):
                    self._bone(cv, sx + side * (a + 11.0), canal_y - 3.0, 15.0, 4.5,
                               -side * math.radians(10))
        cv.paint(*cv.ellipse(sx, canal_y, ca, cb), L.SPINAL_CANAL)

    def _sacrum(self, cv: _Canvas, z: float, sx: float, y_vb: float, a: float) -> None:
        hw = 10.0
        p0, p1 = (sx - a - 18.0, y_vb + 12.0), (sx + a + 18.0, y_vb + 12.0)
        cv.paint(*cv.capsule(p0, p1, hw), L.BONE_CORTICAL, _INSIDE_BODY)
        cv.paint(*cv.capsule(p0, p1, hw - self.p.spine.cortical_shell_mm), L.BONE_CANCELLOUS,
                 _INSIDE_BODY)

    def _wing(self, z: float, side: int) -> tuple[tuple[float, float], tuple[float, float],
                                                   float] | None:
        """Iliac wing below the crest: a plate from the lateral crest towards the SI joint."""
        p = self.p
        h = p.spine.iliac_crest_z_mm - z
        if h <= 0:
            return None
        g = min(max(h / 70.0, 0.12), 1.0)
        lat = (self.cx + side * (self.a_cav - 16.0), self.cy + 0.1 * self.b_cav)
        si = (self.cx + side * (p.spine.vertebral_body_width_mm / 2 + 24.0), self.spine_y(z) + 22.0)
        med = (lat[0] + (si[0] - lat[0]) * g, lat[1] + (si[1] - lat[1]) * g)
        return lat, med, 4.5 + 3.5 * g

    def _pelvis_soft(self, cv: _Canvas, z: float) -> None:
        for side in (-1, 1):
            wing = self._wing(z, side)
            if wing is not None:  # iliacus medially, gluteal muscles laterally
                lat, med, hw = wing
                cv.paint(*cv.capsule(lat, med, hw + 14.0), L.MUSCLE, _SOFT)

    def _pelvis_bone(self, cv: _Canvas, z: float) -> None:
        for side in (-1, 1):
            wing = self._wing(z, side)
            if wing is not None:
                lat, med, hw = wing
                cv.paint(*cv.capsule(lat, med, hw), L.BONE_CORTICAL, _INSIDE_BODY)
                cv.paint(*cv.capsule(lat, med, hw - 1.5 * self.p.spine.cortical_shell_mm),
                         L.BONE_CANCELLOUS, _INSIDE_BODY)

    def _ribs(self, cv: _Canvas, z: float) -> None:
        """Lower ribs descend from their vertebra around the flank: each appears where its
        oblique course crosses the slice, as an ellipse elongated along the body wall."""
        p = self.p
        inset = p.body.subcutaneous_fat_mm + p.body.abdominal_wall_muscle_mm / 2
        ra, rb = p.body.body_width_mm / 2 - inset, p.body.body_depth_mm / 2 - inset
        slope = p.spine.rib_slope_mm_per_rad
        phi0 = math.asin(min(60.0 / ra, 0.9))  # lateral to the paraspinal muscles

        def ring(phi: float, side: int) -> tuple[float, float]:
            sp, cp = math.sin(phi), math.cos(phi)
            e = p.body.body_posterior_exponent if cp > 0 else p.body.body_shape_exponent
            return (self.cx + side * ra * abs(sp) ** (2 / e),
                    self.cy + rb * math.copysign(abs(cp) ** (2 / e), cp))

        ends = (1.4, 1.9, 2.5, 2.75, 2.85, 2.9, 2.9)  # ribs 12, 11, 10, ... 6
        for i, end in enumerate(ends):
            head = self.z_r + (1.3 + i) * p.spine.vertebral_period_mm
            phi = phi0 + (head - z) / slope
            if not phi0 <= phi <= end:
                continue
            for side in (-1, 1):
                x, y = ring(phi, side)
                x2, y2 = ring(phi + 0.01, side)
                tx, ty = (x2 - x) / 0.01, (y2 - y) / 0.01
                speed = math.hypot(tx, ty)
                length = min(11.0 * speed / slope, 38.0)
                self._bone(cv, x, y, length / 2, 3.6, math.atan2(ty, tx))

    def _veins(self, cv: _Canvas, z: float) -> None:
        v = self.p.veins
        for axis in self.iliac_vein_axes:
            hit = cv.tube(axis, self.r_iliac_vein, z)
            if hit is not None:
                cv.paint(hit[0], hit[1] <= self.r_iliac_vein, L.ILIAC_VEIN)
        rv = v.renal_vein_diameter_mm / 2
        for axis in self.renal_veins:
            hit = cv.tube(axis, rv, z)
            if hit is not None:
                cv.paint(hit[0], hit[1] <= rv, L.RENAL_VEIN)
        if z >= v.iliac_confluence_z_mm:
            x, y = self.ivc_center(z)
            cv.paint(*cv.ellipse(x, y, v.ivc_width_mm / 2, v.ivc_depth_mm / 2), L.IVC)

    def _arteries(self, cv: _Canvas, z: float) -> None:
        p = self.p
        ra = p.aorta.renal_artery_diameter_mm / 2
        for axis in self.renal_arteries:
            hit = cv.tube(axis, ra, z)
            if hit is not None:
                cv.paint(hit[0], hit[1] <= ra, L.RENAL_ARTERY)
        wall_il = 0.6 * self.wall
        for side, axis in self.iliac_axes.items():
            hit = cv.tube(axis, self.r_il, z)
            if hit is None:
                continue
            win, d, nx, ny = hit
            cv.paint(win, d <= self.r_il, L.AORTIC_WALL)
            cv.paint(win, d <= self.r_il - wall_il, L.ILIAC_ARTERY_LUMEN)
            vessel = 1.0 if side == -1 else 2.0
            theta = np.degrees(np.arctan2(win.y - ny, win.x - nx))
            self._plaques(cv, win, z, d, theta, self.r_il - wall_il, self.r_il, vessel)
        r = self.aorta_radius(z)
        if r > 0:
            self._aorta(cv, z, r)

    def _aorta(self, cv: _Canvas, z: float, r: float) -> None:
        a = self.p.aorta
        x, y = self.aorta_center(z)
        win = cv.window(x - r - 1, x + r + 1, y - r - 1, y + r + 1)
        if win is None:
            return
        dx, dy = win.x - x, win.y - y
        rho = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dy, dx)
        r_in = r - self.wall
        cv.paint(win, rho <= r, L.AORTIC_WALL)
        t = self.thrombus_thickness(z)
        if t > 0.05:
            cv.paint(win, rho <= r_in, L.THROMBUS)
            irr = a.thrombus_irregularity_mm * t / max(a.thrombus_max_thickness_mm, 1e-6)
            wobble = irr * (0.6 * np.sin(2 * theta + self.irr_phase[0])
                            + 0.4 * np.sin(3 * theta + self.irr_phase[1]))
            if a.thrombus_shape == "concentric":
                r_l = np.clip(r_in - t + wobble, 4.5, r_in - 0.3)
                lumen = rho <= r_l
            else:  # crescent: the lumen is pushed against the wall opposite the thick side
                ox, oy = -self.thrombus_dir[0] * t / 2, -self.thrombus_dir[1] * t / 2
                lx, ly = dx - ox, dy - oy
                r_l = np.clip(r_in - t / 2 + 0.5 * wobble, 4.5, None)
                lumen = (lx * lx + ly * ly <= r_l * r_l) & (rho <= r_in)
            cv.paint(win, lumen, L.AORTA_LUMEN)
        else:
            cv.paint(win, rho <= r_in, L.AORTA_LUMEN)
        self._plaques(cv, win, z, rho, np.degrees(theta), r_in, r, 0.0)

    def _plaques(self, cv: _Canvas, win: _Win, z: float, rho: np.ndarray, theta_deg: np.ndarray,
                 r_in: float, r_out: float, vessel: float) -> None:
        """Intimal calcified arcs straddling the inner wall surface."""
        for zc, ang, arc, height, thick, ves in self.p.aorta.calcifications:
            dz = abs(z - zc)
            if ves != vessel or dz >= height / 2:
                continue
            half_arc = arc / 2 * math.sqrt(1.0 - (2 * dz / height) ** 2)
            diff = np.abs((theta_deg - ang + 180.0) % 360.0 - 180.0)
            radial = (rho >= r_in - 0.5 * thick) & (rho <= min(r_out, r_in + 0.5 * thick + 0.3))
            cv.paint(win, radial & (diff <= half_arc), L.CALCIFICATION)


def render_labels(p: PhantomParameters) -> np.ndarray:
    """uint8 label map, shape (n_slices, rows, columns), array order (k, j, i)."""
    zs, ys, xs = voxel_axes(p)
    return Anatomy(p).render(zs, ys, xs)
