"""The base class of every scenario model: unknown keys are errors, models are immutable."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A scenario model: rejects unknown keys, accepts field names and aliases, is frozen."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
