"""Tissue labels of the procedural abdominal phantom (uint8 values of the label map)."""

from enum import IntEnum


class Label(IntEnum):
    """One value per tissue class; 0 is the air outside the body."""

    AIR = 0
    FAT_SUBCUTANEOUS = 1
    FAT_VISCERAL = 2
    MUSCLE = 3
    LIVER = 4
    SPLEEN = 5
    KIDNEY_CORTEX = 6
    KIDNEY_MEDULLA = 7
    BONE_CORTICAL = 8
    BONE_CANCELLOUS = 9
    SPINAL_CANAL = 10
    DISC = 11
    BOWEL_WALL = 12
    BOWEL_FLUID = 13
    BOWEL_AIR = 14
    AORTA_LUMEN = 15
    THROMBUS = 16
    CALCIFICATION = 17
    AORTIC_WALL = 18
    ILIAC_ARTERY_LUMEN = 19
    RENAL_ARTERY = 20
    IVC = 21
    RENAL_VEIN = 22
    ILIAC_VEIN = 23
    # Appended for phantom extensions (abdomen-pv); never painted in ordinary (aaa-cta) cases,
    # so the values above and every recorded case keep their meaning.
    PORTAL_VEIN = 24
    SPLENIC_VEIN = 25
    SUPERIOR_MESENTERIC_VEIN = 26
    HEPATIC_VEIN = 27
    PANCREAS = 28
    LIVER_CYST = 29
    LIVER_METASTASIS = 30
    GALLBLADDER = 31
    LUNG = 32
    IVC_INFRARENAL = 33


N_LABELS = len(Label)
N_BASE_LABELS = 24  # the labels of the base (aaa-cta) phantom: AIR .. ILIAC_VEIN

DESCRIPTIONS: dict[Label, str] = {
    Label.AIR: "air outside the body (gas inside bowel is BOWEL_AIR)",
    Label.FAT_SUBCUTANEOUS: "subcutaneous fat between skin and abdominal wall muscle",
    Label.FAT_VISCERAL: "intra-abdominal fat: mesenteric, retroperitoneal, perirenal, renal sinus",
    Label.MUSCLE: "skeletal muscle: abdominal wall, psoas, paraspinal, quadratus, gluteal",
    Label.LIVER: "liver parenchyma (right upper quadrant, upper slices only)",
    Label.SPLEEN: "spleen (left upper quadrant, posterolateral)",
    Label.KIDNEY_CORTEX: "renal cortex, including the columns between the pyramids",
    Label.KIDNEY_MEDULLA: "renal medulla (pyramids)",
    Label.BONE_CORTICAL: "cortical bone: vertebral shell, posterior elements, ribs, pelvis",
    Label.BONE_CANCELLOUS: "cancellous (trabecular) bone inside vertebrae, ribs and pelvis",
    Label.SPINAL_CANAL: "spinal canal contents (cord, cauda equina, CSF)",
    Label.DISC: "intervertebral disc",
    Label.BOWEL_WALL: "wall of stomach, small bowel and colon",
    Label.BOWEL_FLUID: "fluid content of bowel (below the air-fluid level)",
    Label.BOWEL_AIR: "gas inside bowel, anterior (non-dependent) part of a loop",
    Label.AORTA_LUMEN: "flowing blood in the abdominal aorta, from above the renals to the"
                       " bifurcation",
    Label.THROMBUS: "intraluminal thrombus of the aneurysm sac",
    Label.CALCIFICATION: "calcified plaque in the wall of the aorta or iliac arteries",
    Label.AORTIC_WALL: "arterial wall of the aorta and the common iliac arteries",
    Label.ILIAC_ARTERY_LUMEN: "flowing blood in the common/external iliac arteries",
    Label.RENAL_ARTERY: "renal artery lumen, aorta to renal hilum",
    Label.IVC: "inferior vena cava (flattened oval right of the aorta)",
    Label.RENAL_VEIN: "renal vein lumen; the left passes anterior to the aorta",
    Label.ILIAC_VEIN: "common iliac vein lumen, below the caval confluence",
    Label.PORTAL_VEIN: "main portal vein from the splenic-mesenteric confluence to the porta"
                       " hepatis, and its intrahepatic branches (abdomen-pv)",
    Label.SPLENIC_VEIN: "splenic vein along the back of the pancreas to the splenic hilum"
                        " (abdomen-pv)",
    Label.SUPERIOR_MESENTERIC_VEIN: "superior mesenteric vein, right of the midline, up to the"
                                    " confluence (abdomen-pv)",
    Label.HEPATIC_VEIN: "right, middle and left hepatic veins draining into the IVC below the"
                        " diaphragm (abdomen-pv)",
    Label.PANCREAS: "pancreas: head by the duodenum, neck, body over the aorta, tail towards"
                    " the splenic hilum (abdomen-pv)",
    Label.LIVER_CYST: "simple liver cyst: water density, no enhancement (abdomen-pv)",
    Label.LIVER_METASTASIS: "hypovascular metastasis-like liver lesion (abdomen-pv)",
    Label.GALLBLADDER: "gallbladder lumen, bile (abdomen-pv)",
    Label.LUNG: "lung base above the diaphragm (abdomen-pv)",
    Label.IVC_INFRARENAL: "inferior vena cava below the renal veins, where it is labelled"
                          " apart from the suprarenal IVC (abdomen-pv)",
}

# Outer extent of the aorta as a radiologist measures its diameter (outer wall to outer wall).
AORTA_OUTER_LABELS: tuple[Label, ...] = (
    Label.AORTA_LUMEN, Label.THROMBUS, Label.CALCIFICATION, Label.AORTIC_WALL)
ARTERIAL_LUMEN_LABELS: tuple[Label, ...] = (
    Label.AORTA_LUMEN, Label.ILIAC_ARTERY_LUMEN, Label.RENAL_ARTERY)
VENOUS_LABELS: tuple[Label, ...] = (Label.IVC, Label.RENAL_VEIN, Label.ILIAC_VEIN)
BLOOD_LABELS: tuple[Label, ...] = ARTERIAL_LUMEN_LABELS + VENOUS_LABELS
# The portal venous system (one connected tree in an abdomen-pv case) and the liver lesions.
PORTAL_SYSTEM_LABELS: tuple[Label, ...] = (
    Label.PORTAL_VEIN, Label.SPLENIC_VEIN, Label.SUPERIOR_MESENTERIC_VEIN)
LESION_LABELS: tuple[Label, ...] = (Label.LIVER_CYST, Label.LIVER_METASTASIS)
