"""The deployments page says when each environment's deployment window next opens, computed
from the deployment automation's settings at the console's (fixed) clock; a deployment that waits
for it says so."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import flask.testing
import pytest
from orchestra.app import App, build_app
from orchestra.automation import Analysis, Automation, GateStatus
from orchestra.automations.deployment.approvals import approve
from orchestra.automations.deployment.plugin import WINDOW_GATE, DeploymentAutomation
from orchestra.automations.deployment.requests import deployment_settings, request_deployment
from orchestra.automations.deployment.state import DeploymentState, get_deployment
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import Config, parse_config
from orchestra.console import pages
from orchestra.console.app import create_console
from orchestra.console.auth import LocalAuth
from orchestra.models import Mode, RunStatus, TriggerKind
from orchestra.registry import Registry
from orchestra.runner import RunRequest

UTC = dt.UTC
# Thursday 2026-01-08 17:00 UTC: an hour after production's Mon-Thu 09:00-16:00 window closed.
THURSDAY_17 = dt.datetime(2026, 1, 8, 17, 0, tzinfo=UTC)
MONDAY_9 = dt.datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
SHA = "a" * 40

CONFIG = {
    "default_environment": "development",
    "environments": {
        "development": {"automation_level": 1},
        "staging": {"automation_level": 3},
        "production": {"automation_level": 3, "protected": True},
    },
    "automations": {
        "deployment": {
            "settings": {
                "environments": {
                    # production keeps its default window (Mon-Thu 09:00-16:00 UTC) and approval
                    "staging": {
                        "freezes": [
                            {
                                "start": "2026-01-01T00:00:00Z",
                                "end": "2026-01-10T12:00:00Z",
                                "reason": "year-end <freeze>",
                            }
                        ]
                    },
                }
            }
        }
    },
}


def _config() -> Config:
    return parse_config(json.dumps(CONFIG), "deployments-page-config")


@dataclass
class Console:
    app: App
    clock: FakeClock
    client: flask.testing.FlaskClient

    def page(self) -> str:
        response = self.client.get("/deployments")
        assert response.status_code == 200, response.text
        return response.text


def _registry(*extra: type[Automation]) -> Registry:
    registry = Registry()
    registry.register(DeploymentAutomation)
    for cls in extra:
        registry.register(cls)
    return registry


def _console(tmp_path: Path, registry: Registry) -> Iterator[Console]:
    clock = FakeClock(THURSDAY_17)
    app = build_app(
        config=_config(),
        store_url=f"sqlite:///{tmp_path / 'state.db'}",
        clock=clock,
        ids=RandomIds(7),
        registry=registry,
    )
    # The session has a clock of its own: the page's clock moves days ahead, the session does not.
    auth = LocalAuth("user:operator", FakeClock(THURSDAY_17))
    web = create_console(lambda: app, auth)
    client = web.test_client()
    assert client.get(f"/login?token={auth.issue_login_token()}").status_code == 303
    try:
        yield Console(app=app, clock=clock, client=client)
    finally:
        app.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from _console(tmp_path, _registry())


def _waiting_deployment(console: Console) -> str:
    """A production deployment requested by alice, approved by bob, then held by a deployment run
    after the window closed."""
    app, clock = console.app, console.clock
    requested = request_deployment(
        app.store,
        clock,
        app.ids,
        environment="production",
        ref="refs/heads/main",
        revision=SHA,
        repository="acme/shop",
        requested_by="user:alice",
        source_event="test:push-1",
    )
    settings = deployment_settings(app.config)
    approve(app.store, clock, settings, requested.id, "user:bob", "ship it", config=app.config)
    run = app.runner.submit(
        RunRequest(
            task="deployment",
            environment="production",
            mode=Mode.apply,
            automation_level=3,
            trigger_kind=TriggerKind.scheduled,
            trigger_id="window-test",
            requested_by="scheduler",
        )
    ).run
    assert run.status == RunStatus.succeeded and run.actions == [], run.reason
    assert get_deployment(app.store, requested.id).state == DeploymentState.waiting_for_window
    return requested.id


def _section(page: str, environment: str) -> str:
    match = re.search(rf'<ul class="gates" data-environment="{environment}">(.*?)</ul>', page, re.S)
    assert match, f"no gates listed for {environment}:\n{page}"
    return match.group(1)


def test_a_waiting_deployment_shows_the_next_opening_of_its_window(console: Console) -> None:
    dep_id = _waiting_deployment(console)
    page = console.page()
    production = _section(page, "production")
    assert 'data-open="no"' in production
    assert "outside deployment window (mon,tue,wed,thu 09:00-16:00 UTC)" in production
    opening = '<time class="next-open" datetime="2026-01-12T09:00:00.000000Z">2026-01-12 09:00:00 UTC</time>'
    assert opening in production
    assert "(in 3 d 16 h)" in production
    current = re.search(r'<p class="current">(.*?)</p>', page, re.S)
    assert current and "<strong>waiting for window</strong>" in current.group(1)
    assert "2026-01-12 09:00:00 UTC" in current.group(1)
    assert dep_id in page and "window opens 2026-01-12 09:00:00 UTC" in page

    # The same page an hour and a half before the opening counts down from the console's clock.
    console.clock.set(MONDAY_9 - dt.timedelta(minutes=90))
    assert "(in 1 h 30 min)" in _section(console.page(), "production")

    # Once the window is open the page says so; the deployment goes out at the next run.
    console.clock.set(MONDAY_9 + dt.timedelta(minutes=1))
    production = _section(console.page(), "production")
    assert 'data-open="yes"' in production and "inside window mon,tue,wed,thu 09:00-16:00 UTC" in production
    assert "next-open" not in production


def test_every_environment_has_its_own_gate(console: Console) -> None:
    page = console.page()
    staging = _section(page, "staging")
    # A freeze names its end, escaped, and the next opening is when it ends (no window there).
    assert "change freeze until 2026-01-10T12:00:00.000000Z: year-end &lt;freeze&gt;" in staging
    assert "<freeze>" not in page
    assert 'datetime="2026-01-10T12:00:00.000000Z"' in staging and "(in 1 d 19 h)" in staging
    development = _section(page, "development")
    assert 'data-open="yes"' in development and "no deployment window configured: any time" in development
    # No deployment waits anywhere: nothing claims to wait for a window.
    assert "waiting for window" not in page


def test_the_gates_come_from_the_settings_in_effect(console: Console) -> None:
    gates = pages.environment_gates(console.app, "production", THURSDAY_17)
    assert gates.errors == [] and [g.automation for g in gates.gates] == ["deployment"]
    (gate,) = gates.gates
    assert gate.status.name == WINDOW_GATE and not gate.status.open
    assert gate.status.next_open == MONDAY_9 and gates.next_open == MONDAY_9 and gate.opens_in == "3 d 16 h"
    inside = pages.environment_gates(console.app, "production", MONDAY_9)
    assert inside.gates[0].status.open and inside.next_open is None and inside.gates[0].opens_in is None


@pytest.mark.parametrize(
    ("minutes", "said"),
    [
        (0.5, "< 1 min"),
        (4, "4 min"),
        (60, "1 h"),
        (185, "3 h 5 min"),
        (2 * 1440, "2 d"),
        (1440 + 61, "1 d 1 h"),
    ],
)
def test_waits_are_said_the_way_people_say_them(minutes: float, said: str) -> None:
    assert pages.duration(dt.timedelta(minutes=minutes)) == said


class _BrokenGates(Automation):
    """An approvable plugin whose gates fail: the page still shows the deployment window."""

    name = "broken-gates"
    approvable: ClassVar[tuple[str, ...]] = ("ticket",)

    @classmethod
    def environment_gates(cls, config: Config, environment: str, now: dt.datetime) -> list[GateStatus]:
        raise RuntimeError("secret /etc/shadow content")

    def analyze(self, ctx: Any) -> Analysis:
        return Analysis()


def test_a_failing_plugin_is_named_and_never_hides_the_page(tmp_path: Path) -> None:
    for console in _console(tmp_path, _registry(_BrokenGates)):
        page = console.page()
        production = _section(page, "production")
        assert "outside deployment window" in production
        assert (
            "the broken-gates automation could not tell its gates for production (RuntimeError)" in production
        )
        assert "shadow" not in page


def test_the_deployment_waits_for_the_latest_opening_of_its_closed_gates(tmp_path: Path) -> None:
    later = MONDAY_9 + dt.timedelta(days=1)

    class Board(_BrokenGates):
        name = "board"

        @classmethod
        def environment_gates(cls, config: Config, environment: str, now: dt.datetime) -> list[GateStatus]:
            return [GateStatus(name="change board", open=False, reason="meets on Tuesdays", next_open=later)]

    for console in _console(tmp_path, _registry(Board)):
        gates = pages.environment_gates(console.app, "production", THURSDAY_17)
        assert sorted(g.automation for g in gates.gates) == ["board", "deployment"]
        assert gates.next_open == later
