"""Use cases as configuration: intended use, exclusions, envelope, model and protocol."""

from digital_contrast.usecases.catalog import UseCaseError, load_use_case, use_cases
from digital_contrast.usecases.schema import Envelope, Phase, Preprocessing, UseCase

__all__ = ["Envelope", "Phase", "Preprocessing", "UseCase", "UseCaseError", "load_use_case",
           "use_cases"]
