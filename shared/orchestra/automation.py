"""The automation plugin contract.

An automation is a named plugin with a settings model (from the config file), a parameter model
(from the trigger), an ``analyze`` step that returns findings and proposed actions, and, for each
action kind it proposes, ``prepare`` / ``apply`` / ``verify`` / ``rollback``. The runner owns
everything else: dedupe, leases, retries, breakers, gates, recording.

Actions are stored as data (``kind`` + ``params`` + ``rollback``) so that a different process can
finish or undo them after a crash: handlers must work from the stored action alone.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .models import Action, Finding

if TYPE_CHECKING:
    from .clock import Clock, IdSource
    from .config import Config, EnvironmentConfig
    from .models import Run
    from .store.base import StateStore


T = TypeVar("T")


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Analysis(BaseModel):
    model_config = ConfigDict(extra="forbid")

    findings: list[Finding] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    summary: dict[str, Any] = Field(default_factory=dict, description="automation-specific report")


class Verification(BaseModel):
    ok: bool
    evidence: dict[str, Any] = Field(default_factory=dict)


@dataclass
class RunContext:
    """What an automation sees while it works on one run."""

    run: Run
    config: Config
    environment: EnvironmentConfig
    settings: Any
    params: Any
    store: StateStore
    clock: Clock
    ids: IdSource
    log: logging.LoggerAdapter[logging.Logger]
    heartbeat: Callable[[], None] = field(default=lambda: None)
    progress: Callable[[str], None] = field(default=lambda message: None)
    owner: str = "unknown"

    def call_dependency(self, dependency: str, fn: Callable[[], T]) -> T:
        """Call an external API or tool behind its circuit breaker (``dependency:<name>``)."""
        from .breaker import call_dependency

        return call_dependency(self.store, self.config.runner.breaker, self.clock, self.owner, dependency, fn)


class Automation(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    Params: ClassVar[type[BaseModel]] = NoParams

    @abstractmethod
    def analyze(self, ctx: RunContext) -> Analysis:
        """Look, never touch: return findings and the actions that would help."""

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        """Capture what rollback needs (stored before apply). Empty means nothing to undo."""
        return {}

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        raise NotImplementedError(f"{self.name}: action kind {action.kind!r} cannot be applied")

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        return Verification(ok=True)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        """Undo ``apply`` using ``action.rollback``; must be safe to call twice."""

    def render(self, run: Run, console: Any) -> None:
        """Optional: print the automation-specific part of ``run.summary`` (a rich Console)."""
