"""Field markers that say how a scenario value changes under time compression and load scaling.

A real run may play a 3-hour match day in 9 minutes (``compress=20``) with 1 % of the users
(``load=0.01``). Rather than scattering that arithmetic over the code, every field whose value
depends on it carries one of the markers below, and :func:`scale_model` applies them all.

Rules (stated once, here):
- ``MATCH_TIME``: a position or span on the match timeline (wave points, spikes, chaos start and
  duration, budget windows, autoscaler periods and windows, recovery budgets) is divided by
  ``compress``. Request-level times (service times, think times, link RTT) are not: a bettor on a
  3G link is not faster because the day is compressed.
- ``LOAD``: a user or request count (peak users, bot-flood rate) is multiplied by ``load``.
- ``CAPACITY``: an instance count is multiplied by ``load``, rounded up, and kept at least 1, so a
  scaled-down day keeps the utilisation of the full-size one.

Physical durations are not compressed: a pod still takes seconds to start, a database still takes
``failover_s`` to promote its standby, a cache entry still lives ``ttl_s``, so an RTO budget
(``dr.rto_s``) keeps its value too. A model whose values are not plain numbers (a budget
expression such as ``recovery_time<120s``) scales them in a ``scaled_update`` method.
"""

from __future__ import annotations

import enum
import math
import typing
from typing import Annotated, Any

from pydantic import BaseModel, Field


class Scale(enum.Enum):
    """How a field reacts to :func:`scale_model`."""

    MATCH_TIME = "match_time"
    LOAD = "load"
    CAPACITY = "capacity"


MatchSeconds = Annotated[float, Field(ge=0), Scale.MATCH_TIME]
"""Seconds on the match timeline (divided by ``compress``)."""

PositiveMatchSeconds = Annotated[float, Field(gt=0), Scale.MATCH_TIME]
"""A strictly positive span on the match timeline (divided by ``compress``)."""

LoadCount = Annotated[float, Field(ge=0), Scale.LOAD]
"""A user or request-rate quantity (multiplied by ``load``)."""

InstanceCount = Annotated[int, Field(ge=0), Scale.CAPACITY]
"""An instance count (multiplied by ``load``, rounded up, at least 1 when it was at least 1)."""


def _scale_of(annotation: Any, metadata: list[Any]) -> Scale | None:
    for item in metadata:
        if isinstance(item, Scale):
            return item
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is Annotated:
            found = _scale_of(None, list(arg.__metadata__))
            if found is not None:
                return found
    return None


def _apply(value: Any, scale: Scale, compress: float, load: float) -> Any:
    if value is None:
        return None
    if scale is Scale.MATCH_TIME:
        return value / compress
    if scale is Scale.LOAD:
        return value * load
    # CAPACITY: never scale a non-zero count to zero, or a scaled day would have no servers.
    return max(1, math.ceil(value * load)) if value >= 1 else value


def _walk(value: Any, compress: float, load: float) -> Any:
    if isinstance(value, BaseModel):
        return scale_model(value, compress=compress, load=load)
    if isinstance(value, list):
        return [_walk(v, compress, load) for v in value]
    if isinstance(value, tuple):
        return tuple(_walk(v, compress, load) for v in value)
    if isinstance(value, dict):
        return {k: _walk(v, compress, load) for k, v in value.items()}
    return value


def scale_model(model: BaseModel, *, compress: float = 1.0, load: float = 1.0) -> Any:
    """Return a copy of ``model`` with every marked field scaled; unmarked fields are untouched."""
    if compress <= 0 or load <= 0:
        raise ValueError("compress and load must be positive")
    update: dict[str, Any] = {}
    custom = getattr(model, "scaled_update", None)
    if custom is not None:
        update.update(custom(compress=compress, load=load))
    for name, info in type(model).model_fields.items():
        if name in update:
            continue
        current = getattr(model, name)
        scale = _scale_of(info.annotation, list(info.metadata))
        update[name] = (
            _apply(current, scale, compress, load) if scale else _walk(current, compress, load)
        )
    return model.model_copy(update=update)
