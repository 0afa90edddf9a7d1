"""Helpers for test automations that stand in for a plugin handling threshold breaches."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestra.automation import BreachEvent
from orchestra.models import Mode, TriggerKind
from orchestra.runner import RunRequest


def focused_run_request(task: str, event: BreachEvent) -> RunRequest:
    """What the performance automation answers to a breach: an apply run focused on it."""
    params: dict[str, Any] = {"focus": event.focus}
    if event.service:
        params["service"] = event.service
    return RunRequest(
        task=task,
        environment=event.environment,
        mode=Mode.apply,
        params=params,
        trigger_kind=TriggerKind.alert,
        trigger_id=event.trigger_id,
        requested_by=event.requested_by,
        source_event=event.source_event,
    )


def install_fake_distribution(
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    name: str,
    entry_points: str,
    module: str,
    source: str,
) -> Iterator[Path]:
    """A distribution ``name`` (its ``entry_points.txt`` text, one module ``module`` of
    ``source``) installed in ``site`` and put first on sys.path; yields ``site``, and forgets the
    module once the test is done."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    (site / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    sys.modules.pop(module, None)
    yield site
    sys.modules.pop(module, None)
