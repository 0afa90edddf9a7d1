"""The ``performance`` automation: sustained threshold breaches -> Cloud Run setting changes.

Imports stay light here (pydantic models only); numpy and the Google clients load when a run
analyses, applies or verifies.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from ...toolkit.cloudrun.automation import CloudRunMetricsAutomation
from .models import PerformanceParams, PerformanceSettings


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
