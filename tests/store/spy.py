"""Recording a state store's writes: every write primitive it is asked for, in order."""

from __future__ import annotations

from typing import Any

import pytest
from orchestra.store.base import StateStore

# The adapters' write primitives: every change to the store goes through one of them.
WRITE_PRIMITIVES = ("_create", "_put", "_update_if", "_delete", "_create_all", "_write_all")


def record_writes(
    store: StateStore, monkeypatch: pytest.MonkeyPatch, into: list[str] | None = None
) -> list[str]:
    """Append the name of each write primitive called on ``store`` to ``into`` (a new list when
    none is given, so other events may be interleaved with the writes) and return it. A batch that
    an adapter writes through its single-document primitives is recorded as each of them."""
    calls: list[str] = [] if into is None else into
    for name in WRITE_PRIMITIVES:
        inner = getattr(store, name)

        def recorded(*args: Any, _name: str = name, _inner: Any = inner, **kwargs: Any) -> Any:
            calls.append(_name)
            return _inner(*args, **kwargs)

        monkeypatch.setattr(store, name, recorded)
    return calls
