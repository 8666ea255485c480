"""The one base of the package's data schemas: validated once, then immutable and exact."""

from pydantic import BaseModel, ConfigDict


class FrozenSchema(BaseModel):
    """A pydantic schema that refuses unknown fields (a misspelt key is an error, not a silent
    default) and cannot be changed after validation. A subclass that sets `model_config` adds
    to this configuration: pydantic merges it with the base's."""

    model_config = ConfigDict(extra="forbid", frozen=True)
