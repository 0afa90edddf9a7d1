"""Calls to external dependencies go through their circuit breakers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ..automation import RunContext

T = TypeVar("T")

# Source and actuator kinds that call a Google API; each has its own dependency breaker.
GOOGLE_API_KINDS = frozenset({"cloud-monitoring", "cloud-run-admin"})


def guarded(ctx: RunContext, kind: str | None, fn: Callable[[], T]) -> T:
    """Calls to Google APIs go through the dependency's circuit breaker; local files do not."""
    if kind is None or kind not in GOOGLE_API_KINDS:
        return fn()
    return ctx.call_dependency(kind, fn)
