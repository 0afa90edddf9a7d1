"""Registry of automations: name -> plugin class, imported only when first used.

Lazy import keeps the functions' cold start small: a function that only records dead letters
never imports numpy or git helpers.
"""

from __future__ import annotations

import importlib

from .automation import Automation
from .errors import UnknownTaskError
from .models import TASK_NAMES

# name -> "module:Class". Only automations that really work are listed.
BUILTIN: dict[str, str] = {
    "performance": "orchestra.automations.performance:PerformanceAutomation",
    "workspace": "orchestra.automations.workspace.plugin:WorkspaceAutomation",
    "infrastructure": "orchestra.automations.infrastructure:InfrastructureAutomation",
    "deployment": "orchestra.automations.deployment.plugin:DeploymentAutomation",
    "testing": "orchestra.automations.testing.plugin:TestingAutomation",
    "ai-services": "orchestra.automations.ai_services:AIServicesAutomation",
    "cost": "orchestra.automations.cost:CostAutomation",
}


class Registry:
    def __init__(self, builtin: dict[str, str]) -> None:
        self._paths = dict(builtin)
        self._classes: dict[str, type[Automation]] = {}

    def register(self, cls: type[Automation]) -> type[Automation]:
        self._classes[cls.name] = cls
        return cls

    def unregister(self, name: str) -> None:
        self._classes.pop(name, None)
        self._paths.pop(name, None)

    def names(self) -> list[str]:
        known = set(self._paths) | set(self._classes)
        ordered = [n for n in TASK_NAMES if n in known]
        return ordered + sorted(known - set(TASK_NAMES))

    def missing(self) -> list[str]:
        """Of the seven product automations, those not available yet."""
        names = set(self.names())
        return [n for n in TASK_NAMES if n not in names]

    def get_class(self, name: str) -> type[Automation] | None:
        if name in self._classes:
            return self._classes[name]
        path = self._paths.get(name)
        if path is None:
            return None
        module_name, _, attr = path.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        self._classes[name] = cls
        return cls

    def create(self, name: str) -> Automation:
        cls = self.get_class(name)
        if cls is None:
            if name in TASK_NAMES:
                raise UnknownTaskError(
                    f"automation {name!r} is not available yet; available: {', '.join(self.names())}",
                    where="task",
                )
            raise UnknownTaskError(
                f"unknown automation {name!r}; accepted: {', '.join(self.names())}", where="task"
            )
        return cls()


registry = Registry(BUILTIN)
