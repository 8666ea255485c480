"""The hooks a phantom extension implements (see the package docstring).

Imports the generic phantom modules for type checking only: they call these hooks, so a run-time
import either way would make a circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..labels import Label

if TYPE_CHECKING:
    import numpy as np

    from ..anatomy import Anatomy, _Canvas
    from ..parameters import ExtensionGroup, PhantomParameters


class PhantomExtension:
    """Hooks of one use case's extension; subclasses override what they need."""

    use_case: ClassVar[str]
    parameters: ClassVar[type[ExtensionGroup]]
    case_prefix: ClassVar[str]  # case ids: prefix + 6-digit seed (the base uses "PH")
    study_description: ClassVar[str]
    series_descriptions: ClassVar[dict[str, tuple[str, int | None]]]  # phase -> (text, delay)
    blood_labels: ClassVar[tuple[Label, ...]] = ()  # well-mixed blood: no texture gain

    def base_overrides(self, seed: int) -> dict[str, Any]:
        """Values of base fields that this use case sets (drawn from its own streams, so the
        base draws keep their places); caller overrides still win."""
        return {}

    def sample_acquisition(self, seed: int, size: str, values: dict[str, Any], pick: Any,
                           overrides: dict[str, Any]) -> None:
        """Pick every acquisition field (values: the base fields sampled so far; overrides:
        the caller's values of this extension's fields)."""
        raise NotImplementedError

    def sample(self, seed: int, base: PhantomParameters, overrides: dict[str, Any]
               ) -> ExtensionGroup:
        """The extension's parameter group for the (complete) base parameters."""
        raise NotImplementedError

    def prepare(self, anatomy: Anatomy) -> Any:
        """Geometry derived once per case, handed to `paint` (None by default)."""
        return None

    def paint(self, anatomy: Anatomy, state: Any, canvas: _Canvas, z: float) -> None:
        """Paint the slice at world z after the base anatomy."""

    def finish(self, anatomy: Anatomy, state: Any, labels: np.ndarray) -> None:
        """Change the complete label map in place (3-D rules, e.g. connectivity)."""

    def phase_values(self, p: PhantomParameters) -> dict[Label, tuple[float, float, float]]:
        """HU (ncct, arterial, portal_venous) of the labels this extension sets or changes."""
        return {}

    def texture(self, p: PhantomParameters) -> dict[Label, float]:
        """Unenhanced texture SD (HU) of labels this extension sets or changes."""
        return {}

    def typical_overrides(self, p: PhantomParameters) -> dict[str, Any]:
        """What an ideal model could know of a case's enhancement (the oracle of a validation
        floor): population-typical values of the fields no NCCT shows, from what it does."""
        return {}
