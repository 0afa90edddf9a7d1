"""Event kinds: the core asks the registry who handles a push or a breach, never names an
automation; the same breach translator serves Monitoring incidents and the continuous watch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from orchestra.automation import (
    Analysis,
    Automation,
    BreachEvent,
    Collection,
    EventContext,
    EventKind,
    EventOutcome,
    RunContext,
)
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.events.github import handle_github
from orchestra.inputs import Origin
from orchestra.models import Mode, TriggerKind
from orchestra.registry import Registry, breach_request
from orchestra.runner import RunRequest
from orchestra.store.sqlite import SqliteStateStore
from pydantic import BaseModel, ConfigDict

from tests.functions.conftest import fixture_json
from tests.plugins.helpers import focused_run_request

CONFIG = parse_config(
    "environments:\n  development: {}\n  production: {}\n"
    "thresholds:\n  cpu: {metric: cpu, above: 70, for_minutes: 15, focus: cpu}\n"
)


class FixParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    focus: str | None = None
    service: str | None = None
    metrics: dict[str, str] = {}


class Fixer(Automation):
    """An operator's automation that takes over threshold breaches."""

    name = "fixer"
    Params = FixParams
    handles: ClassVar[frozenset[EventKind]] = frozenset({EventKind.breach})

    @classmethod
    def request_for_event(cls, kind: EventKind, event: BaseModel, config: Any) -> RunRequest | None:
        assert isinstance(event, BreachEvent)
        return focused_run_request(cls.name, event)

    def analyze(self, ctx: RunContext) -> Analysis:
        return Analysis(summary={"focus": ctx.params.focus})


class Announcer(Automation):
    """An operator's automation that handles pushes by recording them, no deployment involved."""

    name = "announcer"
    handles: ClassVar[frozenset[EventKind]] = frozenset({EventKind.push})
    collections = (Collection(name="announcements", retention="runner.retention.runs_days"),)
    seen: ClassVar[list[str]] = []

    @classmethod
    def handle_event(cls, kind: EventKind, event: BaseModel, ctx: EventContext) -> EventOutcome:
        ref = getattr(event, "ref", "")
        cls.seen.append(ref)
        if ref.startswith("refs/tags/"):
            return EventOutcome(status="ignored", reason=f"{ref}: tags are not announced")
        return EventOutcome(reason=f"announced {ref}", payload={"announced": True}, extra={"announced": ref})

    def analyze(self, ctx: RunContext) -> Analysis:
        return Analysis()


def _event(**overrides: Any) -> BreachEvent:
    values: dict[str, Any] = {
        "rule": "cpu",
        "metric": "cpu",
        "focus": "cpu",
        "environment": "production",
        "service": "api",
        "trigger_id": "inc-1:open",
        "requested_by": "alert:cpu-policy",
        "source_event": "inc-1",
    }
    return BreachEvent(**{**values, **overrides})


def test_the_registry_routes_each_kind_to_the_plugin_that_declares_it() -> None:
    reg = Registry({})
    assert reg.handler(EventKind.breach) is None
    reg.register(Fixer)
    reg.register(Announcer)
    assert reg.handler(EventKind.breach) is Fixer
    assert reg.handler(EventKind.push) is Announcer
    reg.unregister("fixer")
    assert reg.handler(EventKind.breach) is None


def test_builtins_declare_their_kinds() -> None:
    reg = Registry()
    breach, push = reg.handler(EventKind.breach), reg.handler(EventKind.push)
    assert breach is not None and breach.name == "performance"
    assert push is not None and push.name == "deployment"
    assert [c.name for c in reg.collections()] == ["test_results"]


def test_breach_translator_names_no_automation() -> None:
    reg = Registry({})
    assert breach_request(reg, CONFIG, _event()) is None
    reg.register(Fixer)
    remote = breach_request(reg, CONFIG, _event())
    assert remote is not None
    assert (remote.task, remote.mode, remote.origin, remote.trigger_kind) == (
        "fixer",
        Mode.apply,
        Origin.remote,
        TriggerKind.alert,
    )
    assert remote.params == {"focus": "cpu", "service": "api"}
    assert (remote.environment, remote.trigger_id, remote.requested_by) == (
        "production",
        "inc-1:open",
        "alert:cpu-policy",
    )
    local = breach_request(
        reg,
        CONFIG,
        _event(service=None),
        mode=Mode.analyze,
        automation_level=2,
        origin=Origin.local,
        extra_params={"metrics": {"cpu": "/m.csv"}, "focus": "overridden"},
    )
    assert local is not None
    assert (local.mode, local.automation_level, local.origin) == (Mode.analyze, 2, Origin.local)
    # The handler's own params win over the trigger's extras.
    assert local.params == {"metrics": {"cpu": "/m.csv"}, "focus": "cpu"}


def test_alerts_and_the_watch_use_the_breach_handler(tmp_path: Path) -> None:
    import datetime as dt

    from orchestra.continuous import Breach, MetricsWatch, WatchSettings
    from orchestra.events.alerts import map_incident, parse_notification, request_for

    from tests.functions.test_alerts import CLOUD_RUN_CPU

    reg = Registry({})
    reg.register(Fixer)
    config = parse_config(
        "environments:\n  development: {}\n"
        "thresholds:\n  cpu: {metric: cpu, above: 70, for_minutes: 15, focus: cpu}\n"
    )
    incident = parse_notification(CLOUD_RUN_CPU).incident
    request = request_for(incident, map_incident(incident, config), config, reg)
    assert request is not None and request.task == "fixer" and request.params["focus"] == "cpu"

    watch = MetricsWatch(config, "development", WatchSettings(reader=object(), services=["api"]))  # type: ignore[arg-type]
    start = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)
    breach = Breach("cpu", "api", "cpu", 70.0, 15.0, start, start, 91.0)
    watched = watch.request_for(breach, mode=Mode.apply, automation_level=1, owner="c1", registry=reg)
    assert watched is not None and watched.task == "fixer"
    assert watched.origin == Origin.local and watched.requested_by == "controller:c1"
    assert (
        watch.request_for(breach, mode=Mode.apply, automation_level=1, owner="c1", registry=Registry({}))
        is None
    )


@pytest.fixture
def app(tmp_path: Path) -> Any:
    from orchestra.app import build_app

    reg = Registry({})
    reg.register(Announcer)
    store = SqliteStateStore(tmp_path / "state.db")
    built = build_app(config=CONFIG, store=store, clock=FakeClock(), ids=RandomIds(3), registry=reg)
    yield built
    store.close()


def test_a_push_goes_to_the_plugin_that_handles_pushes(app: Any) -> None:
    Announcer.seen.clear()
    data = fixture_json("push-with-new-branch.payload.json")
    handled = handle_github(app, event_name="push", delivery_id="d-1", data=data)
    assert handled.status == "accepted", handled.reason
    assert handled.extra == {"announced": data["ref"]}
    assert handled.record.payload["announced"] is True
    tag = handle_github(app, event_name="push", delivery_id="d-2", data=_push("refs/tags/v1"))
    assert tag.status == "ignored" and tag.reason == "refs/tags/v1: tags are not announced"
    assert Announcer.seen == [data["ref"], "refs/tags/v1"]
    again = handle_github(app, event_name="push", delivery_id="d-1", data=data)
    assert again.status == "duplicate" and len(Announcer.seen) == 2


def test_a_push_with_no_handler_is_recorded_as_ignored(tmp_path: Path) -> None:
    from orchestra.app import build_app

    store = SqliteStateStore(tmp_path / "state.db")
    try:
        bare = build_app(
            config=CONFIG, store=store, clock=FakeClock(), ids=RandomIds(3), registry=Registry({})
        )
        handled = handle_github(bare, event_name="push", delivery_id="d-9", data=_push("refs/heads/main"))
        assert handled.status == "ignored"
        assert handled.reason == "no registered automation handles pushes"
    finally:
        store.close()


def test_purge_covers_the_collections_plugins_declare(tmp_path: Path) -> None:
    from orchestra.clock import FakeClock as Clock

    store = SqliteStateStore(tmp_path / "state.db")
    try:
        store.put("announcements", "old", {"id": "old", "expires_at": "2000-01-01T00:00:00.000000Z"})
        store.put("announcements", "new", {"id": "new", "expires_at": "2999-01-01T00:00:00.000000Z"})
        now = Clock().now()
        assert store.purge_expired(now) == 0  # not a core collection
        assert store.purge_expired(now, [c.name for c in Announcer.collections]) == 1
        assert store.get("announcements", "old") is None and store.get("announcements", "new") is not None
    finally:
        store.close()


def _push(ref: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": "a" * 40,
        "repository": {"full_name": "acme/app"},
        "pusher": {"name": "alice", "email": "alice@example.com"},
        "sender": {"login": "alice"},
    }
