"""Threshold breaches -> the focused run the automation that handles breaches asks for.

One translator for both places a breach comes from: a Cloud Monitoring incident
(:mod:`orchestra.events.alerts`) and the continuous controller's own metrics watch
(:mod:`orchestra.continuous`). Which automation runs is the registry's answer to "who handles
:attr:`~orchestra.automation.EventKind.breach`", never a name written here.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..automation import Automation, BreachEvent, EventKind
from ..inputs import Origin
from ..models import Mode

if TYPE_CHECKING:
    from ..config import Config
    from ..registry import Registry
    from ..runner import RunRequest

NO_HANDLER = "no registered automation handles threshold breaches"


def breach_handler(registry: Registry) -> type[Automation] | None:
    return registry.handler(EventKind.breach)


def breach_request(
    registry: Registry,
    config: Config,
    event: BreachEvent,
    *,
    mode: Mode = Mode.apply,
    automation_level: int | None = None,
    origin: Origin = Origin.remote,
    extra_params: dict[str, Any] | None = None,
) -> RunRequest | None:
    """The run ``event`` asks for, in ``mode`` at ``automation_level``, or None when no automation
    handles breaches or the handler asks for nothing. ``extra_params`` (a local trigger's input
    files) come first: the handler's own parameters win."""
    plugin = breach_handler(registry)
    if plugin is None:
        return None
    request = plugin.request_for_event(EventKind.breach, event, config)
    if request is None:
        return None
    return dataclasses.replace(
        request,
        mode=mode,
        automation_level=automation_level,
        origin=origin,
        params={**(extra_params or {}), **request.params},
    )
