"""Attenuation (HU) per label and phase, tissue texture and the system blur.

The noiseless image of a phase is: the label's HU for that phase, plus a smooth low-frequency
texture (a few HU in organs, more in bone) so tissues are not flat, then blurred by the
scanner's point-spread function so that edges show partial volume. Noise is added elsewhere.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .anatomy import voxel_axes
from .labels import BLOOD_LABELS, N_LABELS, Label
from .noise import SmoothField
from .parameters import PhantomParameters

PHASES: tuple[str, ...] = ("ncct", "arterial", "portal_venous")
AIR_HU = -1000.0
HU_MIN, HU_MAX = -1024.0, 3071.0

L = Label

# Texture SD (HU) of each tissue in the unenhanced image: parenchymal and marrow heterogeneity.
_TEXTURE_HU: dict[Label, float] = {
    L.AIR: 0.0, L.FAT_SUBCUTANEOUS: 4.0, L.FAT_VISCERAL: 6.0, L.MUSCLE: 4.0, L.LIVER: 4.0,
    L.SPLEEN: 3.0, L.KIDNEY_CORTEX: 4.0, L.KIDNEY_MEDULLA: 4.0, L.BONE_CORTICAL: 60.0,
    L.BONE_CANCELLOUS: 25.0, L.SPINAL_CANAL: 2.0, L.DISC: 4.0, L.BOWEL_WALL: 4.0,
    L.BOWEL_FLUID: 3.0, L.BOWEL_AIR: 5.0, L.AORTA_LUMEN: 1.5, L.THROMBUS: 5.0,
    L.CALCIFICATION: 80.0, L.AORTIC_WALL: 3.0, L.ILIAC_ARTERY_LUMEN: 1.5,
    L.RENAL_ARTERY: 1.5, L.IVC: 2.0, L.RENAL_VEIN: 2.0, L.ILIAC_VEIN: 2.0,
}
_ENHANCED_TEXTURE_FRACTION = 0.04  # heterogeneity of perfusion grows with enhancement
_SPLEEN_ARTERIAL_MOTTLE = 0.12  # arciform arterial-phase spleen, fraction of its enhancement
_CHUNK = 16  # slices per chunk when assembling, to bound temporaries


def phase_values(p: PhantomParameters) -> dict[str, np.ndarray]:
    """HU of every label in each phase: {phase: float64 array indexed by label value}."""
    h = p.intensities
    blood = h.blood_hu
    thrombus = blood + h.thrombus_minus_blood_hu
    table: dict[Label, tuple[float, float, float]] = {
        L.AIR: (AIR_HU, AIR_HU, AIR_HU),
        L.FAT_SUBCUTANEOUS: (h.fat_subcutaneous_hu,) * 3,
        L.FAT_VISCERAL: (h.fat_visceral_hu,) * 3,
        L.MUSCLE: (h.muscle_hu, h.muscle_hu + h.muscle_arterial_delta_hu,
                   h.muscle_hu + h.muscle_portal_delta_hu),
        L.LIVER: (h.liver_hu, h.liver_hu + h.liver_arterial_delta_hu,
                  h.portal_venous_liver_hu),
        L.SPLEEN: (h.spleen_hu, h.spleen_arterial_hu, h.spleen_portal_hu),
        L.KIDNEY_CORTEX: (h.kidney_cortex_hu, h.kidney_cortex_arterial_hu,
                          h.kidney_cortex_portal_hu),
        L.KIDNEY_MEDULLA: (h.kidney_medulla_hu, h.kidney_medulla_arterial_hu,
                           h.kidney_medulla_portal_hu),
        L.BONE_CORTICAL: (h.bone_cortical_hu,) * 3,
        L.BONE_CANCELLOUS: (h.bone_cancellous_hu,) * 3,
        L.SPINAL_CANAL: (h.spinal_canal_hu,) * 3,
        L.DISC: (h.disc_hu,) * 3,
        L.BOWEL_WALL: (h.bowel_wall_hu, h.bowel_wall_arterial_hu, h.bowel_wall_portal_hu),
        L.BOWEL_FLUID: (h.bowel_fluid_hu,) * 3,
        L.BOWEL_AIR: (AIR_HU,) * 3,
        L.AORTA_LUMEN: (blood, h.arterial_lumen_hu, h.portal_venous_aorta_hu),
        L.THROMBUS: (thrombus, thrombus + h.thrombus_enhancement_hu,
                     thrombus + h.thrombus_enhancement_hu),
        L.CALCIFICATION: (h.calcification_hu,) * 3,
        L.AORTIC_WALL: (h.aortic_wall_hu, h.aortic_wall_hu + h.aortic_wall_arterial_delta_hu,
                        h.aortic_wall_hu + h.aortic_wall_portal_delta_hu),
        L.ILIAC_ARTERY_LUMEN: (blood, h.arterial_lumen_hu, h.portal_venous_aorta_hu),
        L.RENAL_ARTERY: (blood, h.arterial_lumen_hu, h.portal_venous_aorta_hu),
        L.IVC: (blood, h.ivc_arterial_hu, h.ivc_portal_hu),
        L.RENAL_VEIN: (blood, h.renal_vein_arterial_hu, h.renal_vein_portal_hu),
        L.ILIAC_VEIN: (blood, h.iliac_vein_arterial_hu, h.iliac_vein_portal_hu),
    }
    if p.extension is not None:  # the use case's own labels, and base labels it changes
        from .extensions import get_extension

        table.update(get_extension(p.extension.USE_CASE).phase_values(p))
    # Labels outside the table are never painted in this case: they keep 0.
    out = {}
    for i, phase in enumerate(PHASES):
        lut = np.zeros(N_LABELS)
        for label, values in table.items():
            lut[label] = values[i]
        out[phase] = lut
    return out


def texture_amplitudes(p: PhantomParameters) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per phase and label: SD (HU) of the shared tissue texture and of the arterial spleen
    mottle. A region's mean departs from its tissue value by about these amounts."""
    values = phase_values(p)
    textures, blood = dict(_TEXTURE_HU), list(BLOOD_LABELS)
    if p.extension is not None:
        from .extensions import get_extension

        ext = get_extension(p.extension.USE_CASE)
        textures.update(ext.texture(p))
        blood += ext.blood_labels
    base = np.zeros(N_LABELS)
    for label, sd in textures.items():
        base[label] = sd
    out = {}
    for phase in PHASES:
        gain = np.abs(values[phase] - values["ncct"])
        # Flowing blood is well mixed: opacified lumen stays homogeneous.
        gain[[L.BOWEL_AIR, L.AIR, *blood]] = 0.0
        mottle = np.zeros(N_LABELS)
        if phase == "arterial":
            mottle[L.SPLEEN] = _SPLEEN_ARTERIAL_MOTTLE * gain[L.SPLEEN]
        out[phase] = (base + _ENHANCED_TEXTURE_FRACTION * gain, mottle)
    return out


def render_phases(p: PhantomParameters, labels: np.ndarray, blur: bool = True
                  ) -> dict[str, np.ndarray]:
    """Noiseless float32 HU images of all phases from a label map.

    With blur=False the images are the tissue values before the point-spread function (exact
    per-voxel values, used to check the intensity model).
    """
    zs, ys, xs = voxel_axes(p)
    values = phase_values(p)
    tex = texture_amplitudes(p)
    organ = SmoothField(p, "texture/organ", 8.0, 1.2, zs, ys, xs)
    mottle = SmoothField(p, "texture/spleen", 6.0, 0.8, zs, ys, xs)
    out = {ph: np.empty(labels.shape, dtype=np.float32) for ph in PHASES}
    luts = {ph: values[ph].astype(np.float32) for ph in PHASES}
    amps = {ph: (tex[ph][0].astype(np.float32), tex[ph][1].astype(np.float32)) for ph in PHASES}
    for k0 in range(0, labels.shape[0], _CHUNK):
        k1 = min(k0 + _CHUNK, labels.shape[0])
        lab = labels[k0:k1]
        f_organ = organ.chunk(k0, k1)
        f_mottle = mottle.chunk(k0, k1)
        for ph in PHASES:
            img = luts[ph][lab]
            img += amps[ph][0][lab] * f_organ
            if ph == "arterial":
                img += amps[ph][1][lab] * f_mottle
            out[ph][k0:k1] = img
    if blur:
        a, psf = p.acquisition, p.scanner.psf_sigma_mm
        sigma = (a.psf_sigma_z_mm / a.slice_spacing_mm, psf / a.pixel_spacing_mm,
                 psf / a.pixel_spacing_mm)
        for img in out.values():
            ndimage.gaussian_filter(img, sigma, output=img, mode="nearest", truncate=3.0)
    return out
