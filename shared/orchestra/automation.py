"""The automation plugin contract.

An automation is a named plugin with a settings model (from the config file), a parameter model
(from the trigger), an ``analyze`` step that returns findings and proposed actions, and, for each
action kind it proposes, ``prepare`` / ``apply`` / ``verify`` / ``rollback``. The runner owns
everything else: dedupe, leases, retries, breakers, gates, recording.

Actions are stored as data (``kind`` + ``params`` + ``rollback``) so that a different process can
finish or undo them after a crash: handlers must work from the stored action alone.

A plugin also brings what the core would otherwise have to know about it, all optional:

- ``default_schedule`` / ``default_environments``: used when ``automations.<name>`` in the
  configuration sets no ``schedule`` / ``environments``;
- ``cli()``: a click command or group mounted under ``orchestra``;
- ``handles`` + ``request_for_event()``: the :class:`EventKind` s the plugin turns into runs (a
  GitHub push, a threshold breach); the event functions and the continuous controller ask the
  registry which plugin handles a kind;
- ``collections``: store collections the plugin writes, with their retention, so that the
  store's expiry sweep and Firestore's TTL policies cover them;
- ``health_checks()``: extra checks for ``orchestra health`` and the controller's ``/healthz``.

Plugins are discovered through the ``orchestra.automations`` entry-point group (see
:mod:`orchestra.registry`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .models import Action, Finding

if TYPE_CHECKING:
    import click

    from .clock import Clock, IdSource
    from .config import Config, EnvironmentConfig
    from .health import Check
    from .models import Run
    from .runner import RunRequest
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


class EventKind(StrEnum):
    """Events the core knows how to receive and hands to the plugin that declares it handles them."""

    push = "push"
    """A GitHub ``push`` webhook: the event is a :class:`PushEvent`."""
    breach = "breach"
    """A threshold breach (a Monitoring incident, or the continuous watch) asking for a focused
    run: the event is a :class:`BreachEvent`."""


class PushEvent(BaseModel):
    """A verified GitHub push, as the webhook receiver parsed it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery: str = Field(description="X-GitHub-Delivery id")
    payload: dict[str, Any] = Field(description="the push payload, already checked by the receiver")
    requested_by: str | None = None


class BreachEvent(BaseModel):
    """A metric past a configured threshold rule, from Cloud Monitoring or the continuous watch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str = Field(description="name of the rule in the configuration's thresholds")
    metric: str
    focus: str = Field(description="what the run should concentrate on (the rule's focus)")
    environment: str
    service: str | None = None
    value: float | None = None
    threshold: float | None = None
    trigger_id: str = Field(description="idempotency key: one run per breach episode or incident")
    source_event: str | None = None
    requested_by: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="source-specific facts to record")


class Collection(BaseModel):
    """A store collection a plugin writes; documents carry ``expires_at`` set from ``retention_days``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    retention_days: int = Field(ge=1, le=3650)


class Automation(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    Params: ClassVar[type[BaseModel]] = NoParams
    default_schedule: ClassVar[str | None] = None
    """Cron (5 fields, UTC) used when the configuration lists the automation without a schedule."""
    default_environments: ClassVar[tuple[str, ...]] = ()
    """Scheduled runs target these (those configured) when the configuration names none."""
    handles: ClassVar[frozenset[EventKind]] = frozenset()
    """Event kinds :meth:`request_for_event` turns into runs."""
    collections: ClassVar[tuple[Collection, ...]] = ()

    @classmethod
    def cli(cls) -> click.Command | Sequence[click.Command] | None:
        """A command or group (or several) mounted under ``orchestra``; asked only when the
        command line names a command the core does not have, or lists them all (``--help``)."""
        return None

    @classmethod
    def request_for_event(cls, kind: EventKind, event: BaseModel, config: Config) -> RunRequest | None:
        """The run an event of a kind in :attr:`handles` asks for, or None when it asks for none.
        Raise :class:`~orchestra.errors.InputError` naming the field when the event is unusable."""
        return None

    @classmethod
    def health_checks(cls, config: Config, store: StateStore, clock: Clock) -> list[Check]:
        """Extra health checks (e.g. a backlog this plugin keeps); the default has none."""
        return []

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
