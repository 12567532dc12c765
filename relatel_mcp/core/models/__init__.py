"""Pydantic argument models, one module per API area. tools.yaml names them by class name."""

from __future__ import annotations

from . import calls, contacts, employees, m2m, statistics
from .common import Args, ById, NoArgs

MODELS: dict[str, type[Args]] = {
    cls.__name__: cls
    for module in (contacts, employees, calls, statistics, m2m)
    for cls in vars(module).values()
    if isinstance(cls, type)
    and issubclass(cls, Args)
    and cls is not Args
    and not cls.__name__.startswith("_")
}
MODELS.update(NoArgs=NoArgs, ById=ById)

__all__ = ["MODELS", "Args"]
