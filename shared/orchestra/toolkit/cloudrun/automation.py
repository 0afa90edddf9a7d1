"""The base class of automations acting on one Cloud Run service's settings from its metrics.

Imports stay light here; numpy and the Google clients load when a run needs them.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from ...automation import Analysis, Automation, RunContext, Verification
from ...models import Action, Run


class CloudRunMetricsAutomation(Automation):
    """An automation that reads a service's metrics and changes its Cloud Run settings.

    The work lives in ``engine_module`` (``analyze``,
    ``prepare``, ``apply``, ``verify``, ``rollback``) and ``render_module`` (``render``), imported
    on first use so that loading the plugin never pulls in numpy or the Google clients.
    """

    engine_module: ClassVar[str]
    render_module: ClassVar[str]

    def __init__(self, *, monitoring_client: Any = None, run_client: Any = None) -> None:
        # Injected in tests; None means the real Google clients, created on first use.
        self.monitoring_client = monitoring_client
        self.run_client = run_client

    def _engine(self) -> Any:
        return importlib.import_module(self.engine_module)

    def analyze(self, ctx: RunContext) -> Analysis:
        return self._engine().analyze(
            ctx, monitoring_client=self.monitoring_client, run_client=self.run_client
        )

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        return self._engine().prepare(ctx, action, self.run_client)

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        return self._engine().apply(ctx, action, self.run_client)

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        return self._engine().verify(ctx, action, self.monitoring_client, self.run_client)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        evidence = self._engine().rollback(ctx, action, self.run_client)
        action.result = {**action.result, "rollback": evidence}

    def render(self, run: Run, console: Any) -> None:
        importlib.import_module(self.render_module).render(run, console)
