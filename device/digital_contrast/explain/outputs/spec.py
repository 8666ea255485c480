"""What a map is: its kind, method, unit and a one-line description, as every output names it."""

import re
from dataclasses import dataclass
from typing import Literal, get_args

from digital_contrast.errors import DigitalContrastError

MapKind = Literal["uncertainty", "attribution"]
KINDS: tuple[str, ...] = get_args(MapKind)
# The reference model's evidence, said on every map output (architecture: "Models").
EVIDENCE = "Reference model trained on a procedural phantom; not clinically validated"
_METHOD = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")  # becomes part of file names and UIDs
_LO_MAX = 64


class MapOutputError(DigitalContrastError, ValueError):
    """A map, its spec or its source that cannot be written as a labelled output."""

    code = "EXP_MAP_OUTPUT"

    def __init__(self, detail: str) -> None:
        super().__init__(None, detail)


@dataclass(frozen=True)
class MapSpec:
    """A voxel-wise map of a synthetic image, e.g. TTA uncertainty in HU or an attribution."""

    kind: MapKind
    method: str  # "tta", "integrated-gradients", "saliency", "occlusion", ...
    unit_code: str  # UCUM: "[hnsf'U]" for HU, "1" for dimensionless
    unit_meaning: str  # "Hounsfield unit", "no units"
    description: str  # one line for people, e.g. "Voxel-wise SD of ... over 8 TTA samples"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MapOutputError(f"map kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        for name in ("method", "unit_code", "unit_meaning", "description"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise MapOutputError(f"map spec field {name!r} must be a non-empty string")
        if not _METHOD.match(self.method):
            raise MapOutputError(f"map method {self.method!r} must be lower-case words joined "
                                 "by hyphens (it names files and derives UIDs)")
        if len(self.unit_meaning) > _LO_MAX:  # CodeMeaning is LO
            raise MapOutputError(f"unit meaning is longer than {_LO_MAX} characters")
        if "\n" in self.description or "\r" in self.description:
            raise MapOutputError("map description must be a single line")

    @property
    def slug(self) -> str:
        """`<kind>-<method>`: the output folder and file name, and a part of every UID."""
        return f"{self.kind}-{self.method}"

    @property
    def title(self) -> str:
        """`Uncertainty (tta)`: how panels and headers name the map."""
        return f"{self.kind.capitalize()} ({self.method})"
