"""The ``performance`` automation: sustained threshold breaches -> Cloud Run setting changes.

Imports stay light here (pydantic models only); numpy and the Google clients load when a run
analyses, applies or verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ...automation import BreachEvent, EventKind, WatchSource
from ...errors import InputError
from ...toolkit.cloudrun.automation import CloudRunMetricsAutomation
from .models import PerformanceParams, PerformanceSettings

if TYPE_CHECKING:
    from ...config import Config
    from ...console.views import RunView
    from ...models import Run
    from ...runner import RunRequest


class PerformanceAutomation(CloudRunMetricsAutomation):
    name: ClassVar[str] = "performance"
    description: ClassVar[str] = (
        "Find sustained CPU, memory, P95 latency and error-rate breaches in Cloud Run metrics and "
        "change vCPU, memory, concurrency, min/max instances or startup CPU boost to fix them"
    )
    Settings: ClassVar[type[BaseModel]] = PerformanceSettings
    Params: ClassVar[type[BaseModel]] = PerformanceParams
    engine_module: ClassVar[str] = "orchestra.automations.performance.engine"
    render_module: ClassVar[str] = "orchestra.automations.performance.render"
    handles: ClassVar[frozenset[EventKind]] = frozenset({EventKind.breach})
    # Analysis reads metrics (files or Cloud Monitoring) and the service's configuration (YAML or
    # an Admin API get) and previews the diff in memory; Cloud Run changes only happen in apply.
    read_only_analysis: ClassVar[bool] = True

    @classmethod
    def request_for_event(cls, kind: EventKind, event: BaseModel, config: Config) -> RunRequest | None:
        """A breach (Monitoring incident or the controller's watch) -> a run focused on it."""
        from ...models import Mode, TriggerKind
        from ...runner import RunRequest

        if kind != EventKind.breach or not isinstance(event, BreachEvent):
            return None
        params: dict[str, Any] = {"focus": event.focus}
        if event.service:
            params["service"] = event.service
        return RunRequest(
            task=cls.name,
            environment=event.environment,
            mode=Mode.apply,
            params=params,
            trigger_kind=TriggerKind.alert,
            trigger_id=event.trigger_id,
            requested_by=event.requested_by,
            source_event=event.source_event,
        )

    @classmethod
    def watch_source(cls, config: Config, services: Sequence[str]) -> WatchSource:
        """``automations.performance.settings``' Cloud Monitoring source for the metrics watch."""
        settings: dict[str, Any] = config.automation(cls.name).settings
        if settings.get("source") != "cloud-monitoring":
            raise InputError(
                f"--watch-metrics needs live metrics: set automations.{cls.name}.settings.source to "
                "cloud-monitoring (with project and services), or pass --metric NAME=PATH files",
                where="--watch-metrics",
            )
        chosen = list(services) or list(settings.get("services") or [])
        if not chosen:
            raise InputError(
                f"no service to watch: set automations.{cls.name}.settings.services or pass --service",
                where="--watch-metrics",
            )
        spec = {
            "type": "cloud-monitoring",
            "project": settings.get("project"),
            "region": settings.get("region"),
            "alignment_seconds": settings.get("alignment_seconds", 60),
        }
        return WatchSource(spec=spec, services=chosen)

    def run_view(self, run: Run) -> RunView | None:
        """Per metric: the stored series, threshold, breach episodes and any change's after window."""
        from .view import run_view

        return run_view(run)
