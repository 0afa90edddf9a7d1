"""Helpers for test automations that stand in for a plugin handling threshold breaches."""

from __future__ import annotations

from typing import Any

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
