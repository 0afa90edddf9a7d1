"""Runs, approvals, breakers and deployments announce themselves through the application's
announcer (real runner, SQLite store, in-memory publisher)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from orchestra import announcements
from orchestra.announcements import AnnouncementType, InMemoryPublisher
from orchestra.app import App, build_app
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import Config
from orchestra.logs import JsonFormatter
from orchestra.models import Mode, RunStatus
from orchestra.runner import RunRequest
from orchestra.store.sqlite import SqliteStateStore

from tests.runner.automations import build_registry

T = AnnouncementType


@pytest.fixture
def published() -> InMemoryPublisher:
    return InMemoryPublisher()


@pytest.fixture
def app(
    runner_config: Config, clock: FakeClock, tmp_path: Path, published: InMemoryPublisher
) -> Iterator[App]:
    previous = announcements.install(None)
    store = SqliteStateStore(tmp_path / "state.db")
    application = build_app(
        config=runner_config,
        store=store,
        clock=clock,
        ids=RandomIds(11),
        registry=build_registry(),
        publisher=published,
    )
    try:
        yield application
    finally:
        application.close()
        announcements.install(previous)


def tuner(tmp_path: Path, **params: object) -> dict[str, object]:
    return {"target": str(tmp_path / "target.json"), "counter": str(tmp_path / "count.log"), **params}


def test_build_app_installs_its_announcer_for_the_process(app: App) -> None:
    assert announcements.current() is app.announcer
    assert app.runner.announcer is app.announcer


def test_a_succeeded_run_announces_run_finished(app: App, published: InMemoryPublisher) -> None:
    outcome = app.runner.submit(RunRequest(task="noop", trigger_id="t-1"))
    [event] = published.published
    assert event.type == T.run_finished
    assert event.subject == outcome.run.id
    assert event.source.startswith("//orchestra/")
    assert event.time == app.clock.now()
    assert event.data["status"] == "succeeded"
    assert event.data["task"] == "noop"
    assert event.data["environment"] == "development"
    assert event.data["mode"] == "analyze"
    assert event.data["trigger_kind"] == "manual"
    assert event.data["counts"]["findings"] == 1
    assert event.data["finding_kinds"] == {"noop.ok": 1}
    assert event.data["duration_seconds"] == 0.0


def test_a_duplicate_trigger_announces_nothing_more(app: App, published: InMemoryPublisher) -> None:
    app.runner.submit(RunRequest(task="noop", trigger_id="t-1"))
    again = app.runner.submit(RunRequest(task="noop", trigger_id="t-1"))
    assert again.duplicate
    assert len(published.published) == 1


def test_awaiting_approval_then_approved(app: App, published: InMemoryPublisher, tmp_path: Path) -> None:
    run = app.runner.submit(
        RunRequest(
            task="tuner",
            environment="production",
            mode=Mode.apply,
            automation_level=3,
            params=tuner(tmp_path, risks=["high"]),
            requested_by="user:alice",
        )
    ).run
    assert run.status == RunStatus.awaiting_approval
    assert [e.type for e in published.published] == [T.run_finished, T.approval_awaiting]
    finished, awaiting = published.published
    assert finished.data["status"] == "awaiting_approval"
    assert finished.data["counts"]["awaiting_approval"] == 1
    assert awaiting.subject == run.id
    assert awaiting.data["actions"] == [{"id": "set-0", "risk": "high", "summary": "set key0 to 1"}]
    assert awaiting.data["expires_at"] == "2026-01-05T13:00:00.000000Z"  # approval_ttl_hours: 1

    app.runner.approve(run.id, "user:bob")
    last = published.published[-1]
    assert (last.type, last.subject, last.data["status"]) == (T.run_finished, run.id, "succeeded")
    assert last.data["counts"]["applied"] == 1
    assert len(published.of_type(T.approval_awaiting)) == 1


def test_rejected_run_announces_skipped(app: App, published: InMemoryPublisher, tmp_path: Path) -> None:
    run = app.runner.submit(
        RunRequest(
            task="tuner",
            environment="production",
            mode=Mode.apply,
            automation_level=3,
            params=tuner(tmp_path, risks=["high"]),
            requested_by="user:alice",
        )
    ).run
    app.runner.reject(run.id, "user:bob", "not today")
    last = published.published[-1]
    assert (last.type, last.data["status"]) == (T.run_finished, "skipped")
    assert "not today" in last.data["reason"]


def test_failed_verification_announces_rolled_back(
    app: App, published: InMemoryPublisher, tmp_path: Path
) -> None:
    app.runner.submit(
        RunRequest(task="tuner", mode=Mode.apply, automation_level=3, params=tuner(tmp_path, verify_ok=False))
    )
    [event] = published.of_type(T.run_finished)
    assert event.data["status"] == "rolled_back"
    assert event.data["counts"]["rolled_back"] == 1
    assert event.data["reason"].startswith("verification of set-0 failed; rolled back")


def test_breaker_opens_skips_and_closes(app: App, published: InMemoryPublisher, clock: FakeClock) -> None:
    failing = {"permanent_failure": True}
    app.runner.submit(RunRequest(task="noop", params=failing))
    assert published.of_type(T.breaker_opened) == []  # one failure of two
    app.runner.submit(RunRequest(task="noop", params=failing))
    [opened] = published.of_type(T.breaker_opened)
    assert opened.subject == "automation:noop:development"
    assert opened.data == {
        "key": "automation:noop:development",
        "scope": "automation",
        "failures": 2,
        "open_until": "2026-01-05T12:01:00.000000Z",  # open_seconds: 60
    }
    skipped = app.runner.submit(RunRequest(task="noop")).run
    assert skipped.status == RunStatus.skipped
    last = published.published[-1]
    assert (last.type, last.subject, last.data["status"]) == (T.run_finished, skipped.id, "skipped")
    assert last.data["reason"].startswith("circuit automation:noop:development open since")

    clock.advance(61)
    app.runner.submit(RunRequest(task="noop"))
    [closed] = published.of_type(T.breaker_closed)
    assert closed.data == {
        "key": "automation:noop:development",
        "scope": "automation",
        "failures": 0,
        "open_until": None,
    }
    statuses = [e.data["status"] for e in published.of_type(T.run_finished)]
    assert statuses == ["failed", "failed", "skipped", "succeeded"]


def test_failed_probe_announces_opened_again(
    app: App, published: InMemoryPublisher, clock: FakeClock
) -> None:
    for _ in range(2):
        app.runner.submit(RunRequest(task="noop", params={"permanent_failure": True}))
    clock.advance(61)
    app.runner.submit(RunRequest(task="noop", params={"permanent_failure": True}))
    assert [e.data["failures"] for e in published.of_type(T.breaker_opened)] == [2, 3]
    assert published.of_type(T.breaker_closed) == []


def test_resetting_an_open_breaker_announces_closed(app: App, published: InMemoryPublisher) -> None:
    from orchestra.breaker import CircuitBreaker

    for _ in range(2):
        app.runner.submit(RunRequest(task="noop", params={"permanent_failure": True}))
    breaker = CircuitBreaker(app.store, "automation:noop:development", app.config.runner.breaker, app.clock)
    breaker.reset()
    breaker.reset()  # already closed: nothing to announce
    assert [e.subject for e in published.of_type(T.breaker_closed)] == ["automation:noop:development"]


def test_a_publisher_failure_leaves_the_run_unchanged(app: App, published: InMemoryPublisher) -> None:
    published.fail_with = TimeoutError("publish timed out after 2.0 s")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(announcements.LOGGER_NAME)
    logger.addHandler(handler)
    try:
        outcome = app.runner.submit(RunRequest(task="noop"))
    finally:
        logger.removeHandler(handler)
    assert outcome.run.status == RunStatus.succeeded
    assert app.store.get_run(outcome.run.id).status == RunStatus.succeeded
    assert app.announcer.failures == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["severity"] for line in lines] == ["NOTICE", "WARNING"]
    assert lines[0]["announcement"] == "dev.orchestra.run.finished.v1"
    assert "failed (TimeoutError: publish timed out after 2.0 s)" in lines[1]["message"]


def test_deployment_state_changes_announce(app: App, published: InMemoryPublisher) -> None:
    from orchestra.automations.deployment.state import Deployment, DeploymentState, save_new, transition

    now = app.clock.now()
    deployment = Deployment(
        id="dep-1",
        environment="staging",
        ref="refs/heads/develop",
        revision="abc123",
        repository="acme/api",
        requested_by="github:alice",
        created_at=now,
        updated_at=now,
    )
    assert save_new(app.store, deployment)
    moved = transition(app.store, app.clock, deployment, DeploymentState.cancelled, actor="user:bob")
    events = published.of_type(T.deployment_changed)
    assert [(e.subject, e.data["from_state"], e.data["to_state"]) for e in events] == [
        ("dep-1", None, "requested"),
        ("dep-1", "requested", str(moved.state)),
    ]
    assert events[0].data["service"] == "acme/api"
    assert events[0].data["revision"] == "abc123"


def test_expired_approval_announces_skipped(
    app: App, published: InMemoryPublisher, tmp_path: Path, clock: FakeClock
) -> None:
    run = app.runner.submit(
        RunRequest(
            task="tuner",
            environment="production",
            mode=Mode.apply,
            automation_level=3,
            params=tuner(tmp_path, risks=["high"]),
        )
    ).run
    clock.advance(dt.timedelta(hours=2).total_seconds())
    app.runner.expire_approvals()
    last = published.published[-1]
    assert (last.type, last.subject, last.data["status"]) == (T.run_finished, run.id, "skipped")
    assert last.data["reason"].startswith("approval expired at")
