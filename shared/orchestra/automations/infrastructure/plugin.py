"""The ``infrastructure`` automation: warm capacity ahead of weekly demand peaks.

Imports stay light here; numpy and the Google clients load when a run needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from ...toolkit.cloudrun.automation import CloudRunMetricsAutomation
from .models import InfrastructureParams, InfrastructureSettings

if TYPE_CHECKING:
    from ...console.views import RunView
    from ...models import Run


class InfrastructureAutomation(CloudRunMetricsAutomation):
    name: ClassVar[str] = "infrastructure"
    description: ClassVar[str] = (
        "Build an hour-of-week demand profile from request counts and schedule Cloud Run min "
        "instances an hour ahead of peaks (floor at quiet hours), with a max-instances ceiling"
    )
    Settings: ClassVar[type[BaseModel]] = InfrastructureSettings
    Params: ClassVar[type[BaseModel]] = InfrastructureParams
    engine_module: ClassVar[str] = "orchestra.automations.infrastructure.engine"
    render_module: ClassVar[str] = "orchestra.automations.infrastructure.render"
    # Analysis reads request counts, the stored schedule and the service's configuration; storing
    # a schedule and scaling the service are actions.
    read_only_analysis: ClassVar[bool] = True

    def run_view(self, run: Run) -> RunView | None:
        """Per service: the hour-of-week demand heatmap with the min-instances schedule over it."""
        from .view import run_view

        return run_view(run.summary)
