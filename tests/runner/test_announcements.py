"""Announcement shapes and their one structured log line (the field contract metrics rely on)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator

import pytest
from orchestra.announcements import (
    LOGGER_NAME,
    Announcement,
    AnnouncementType,
    Announcer,
    InMemoryPublisher,
    announce_deployment_changed,
    installed,
)
from orchestra.clock import UTC, FakeClock, RandomIds
from orchestra.logs import JsonFormatter, TextFormatter
from orchestra.models import (
    Action,
    ActionStatus,
    DeadLetter,
    Finding,
    Mode,
    Risk,
    Run,
    RunError,
    RunStatus,
    Severity,
    TriggerKind,
)

START = dt.datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class Capture:
    """The ``orchestra`` logger's output through a formatter, at the default WARNING level."""

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)

    def lines(self) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if line]


@pytest.fixture
def json_log() -> Iterator[Capture]:
    capture = Capture(JsonFormatter())
    root = logging.getLogger("orchestra")
    old_level, old_propagate = root.level, root.propagate
    root.addHandler(capture.handler)
    root.setLevel(logging.WARNING)  # what configure_logging sets by default
    root.propagate = False
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)
        root.setLevel(old_level)
        root.propagate = old_propagate


def announcer(publisher: InMemoryPublisher | None = None) -> Announcer:
    return Announcer(
        source="//orchestra/test-project", clock=FakeClock(START), ids=RandomIds(7), publisher=publisher
    )


def make_run(**changes: object) -> Run:
    run = Run(
        id="cost-7f3a",
        task="cost",
        trigger_kind=TriggerKind.scheduled,
        trigger_id="sched-1",
        environment="production",
        mode=Mode.apply,
        automation_level=2,
        status=RunStatus.succeeded,
        created_at=START,
        started_at=START,
        finished_at=START + dt.timedelta(seconds=12.5),
        updated_at=START + dt.timedelta(seconds=12.5),
        findings=[
            Finding(id="anomaly:2026-03-01:p:BigQuery", severity=Severity.high, summary="spike"),
            Finding(id="anomaly:2026-03-01:p:Run", severity=Severity.medium, summary="spike"),
            Finding(id="budget:main:2026-03", severity=Severity.low, summary="on track"),
        ],
        actions=[
            Action(
                id="a1",
                description="lower min instances",
                risk=Risk.low,
                kind="k",
                status=ActionStatus.applied,
            ),
            Action(
                id="a2", description="cut", risk=Risk.high, kind="k", status=ActionStatus.awaiting_approval
            ),
            Action(id="a3", description="x", risk=Risk.low, kind="k", status=ActionStatus.rolled_back),
            Action(id="a4", description="y", risk=Risk.medium, kind="k", status=ActionStatus.failed),
            Action(id="a5", description="z", risk=Risk.low, kind="k", status=ActionStatus.skipped),
        ],
    )
    return run.model_copy(update=changes)


def test_run_finished_data_counts_every_action_status_and_finding_kind() -> None:
    published = InMemoryPublisher()
    event = announcer(published).run_finished(make_run())
    assert event.type == AnnouncementType.run_finished
    assert event.subject == "cost-7f3a"
    assert event.source == "//orchestra/test-project"
    assert event.time == START
    assert event.id.startswith("ev-")
    assert event.data == {
        "task": "cost",
        "environment": "production",
        "mode": "apply",
        "status": "succeeded",
        "trigger_kind": "scheduled",
        "origin": "remote",
        "counts": {
            "findings": 3,
            "actions": 5,
            "applied": 1,
            "rolled_back": 1,
            "awaiting_approval": 1,
            "failed": 1,
        },
        "finding_kinds": {"anomaly": 2, "budget": 1},
        "duration_seconds": 12.5,
        "reason": None,
    }
    assert published.published == [event]


def test_run_finished_reason_is_short_and_falls_back_to_the_error() -> None:
    run = make_run(
        status=RunStatus.failed,
        error=RunError(type="TransientError", message="backend said no\n" + "x" * 500),
        findings=[],
        actions=[],
    )
    reason = announcer().run_finished(run).data["reason"]
    assert reason.startswith("TransientError: backend said no x")
    assert len(reason) == 200
    assert "\n" not in reason


def test_ids_and_times_come_from_the_injected_sources() -> None:
    first = announcer().run_finished(make_run())
    second = announcer().run_finished(make_run())
    assert first.id == second.id  # same seed, same id
    other = Announcer(source="s", clock=FakeClock(START), ids=RandomIds(8)).run_finished(make_run())
    assert other.id != first.id


def test_awaiting_run_announces_finished_and_awaiting_with_the_waiting_actions() -> None:
    published = InMemoryPublisher()
    expires = START + dt.timedelta(hours=24)
    run = make_run(status=RunStatus.awaiting_approval, approval_expires_at=expires)
    announcer(published).run_stopped(run)
    assert [a.type for a in published.published] == [
        AnnouncementType.run_finished,
        AnnouncementType.approval_awaiting,
    ]
    awaiting = published.published[1]
    assert awaiting.subject == run.id
    assert awaiting.data == {
        "run_id": run.id,
        "task": "cost",
        "environment": "production",
        "actions": [{"id": "a2", "risk": "high", "summary": "cut"}],
        "expires_at": "2026-03-03T09:30:00.000000Z",
    }


def test_a_finished_run_announces_no_approval() -> None:
    published = InMemoryPublisher()
    announcer(published).run_stopped(make_run())
    assert [a.type for a in published.published] == [AnnouncementType.run_finished]


def test_breaker_deployment_and_dead_letter_shapes() -> None:
    published = InMemoryPublisher()
    ann = announcer(published)
    until = START + dt.timedelta(minutes=5)
    opened = ann.breaker_changed("automation:cost:production", opened=True, failures=3, open_until=until)
    closed = ann.breaker_changed("dependency:cloud-run", opened=False, failures=0, open_until=until)
    deployment = ann.deployment_changed(
        "dep-1",
        environment="staging",
        revision="abc123",
        from_state="approved",
        to_state="deploying",
        service="api",
    )
    letter = DeadLetter(
        id="m-42",
        message_id="m-42",
        origin="projects/p/subscriptions/s",
        delivery_attempt=5,
        received_at=START,
    )
    stored = ann.dead_letter_stored(letter)
    assert (opened.type, opened.subject, opened.data) == (
        AnnouncementType.breaker_opened,
        "automation:cost:production",
        {
            "key": "automation:cost:production",
            "scope": "automation",
            "failures": 3,
            "open_until": "2026-03-02T09:35:00.000000Z",
        },
    )
    assert closed.type == AnnouncementType.breaker_closed
    assert closed.data == {
        "key": "dependency:cloud-run",
        "scope": "dependency",
        "failures": 0,
        "open_until": None,
    }
    assert deployment.data == {
        "deployment_id": "dep-1",
        "service": "api",
        "environment": "staging",
        "revision": "abc123",
        "from_state": "approved",
        "to_state": "deploying",
    }
    assert (stored.type, stored.subject, stored.data) == (
        AnnouncementType.deadletter_stored,
        "m-42",
        {
            "dead_letter_id": "m-42",
            "origin": "projects/p/subscriptions/s",
            "message_id": "m-42",
            "delivery_attempt": 5,
        },
    )


def test_data_of_the_wrong_shape_is_refused_naming_the_type() -> None:
    from orchestra.announcements import DeadLetterStored

    with pytest.raises(TypeError, match="dev.orchestra.run.finished.v1 takes RunFinished data"):
        announcer().announce(
            AnnouncementType.run_finished,
            "x",
            DeadLetterStored(dead_letter_id="d", origin="o", message_id="m"),
        )


def test_json_log_line_carries_type_subject_and_nested_data_at_default_level(json_log: Capture) -> None:
    event = announcer().run_finished(make_run())
    (line,) = json_log.lines()
    payload = json.loads(line)  # what Cloud Logging stores as jsonPayload
    assert payload["severity"] == "NOTICE"
    assert payload["logger"] == LOGGER_NAME
    assert payload["announcement"] == "dev.orchestra.run.finished.v1"
    assert payload["subject"] == "cost-7f3a"
    assert payload["announcement_id"] == event.id
    assert payload["source"] == "//orchestra/test-project"
    assert payload["run_id"] == "cost-7f3a"
    assert payload["task"] == "cost"
    # The labels the log-based metrics extract.
    assert payload["data"]["task"] == "cost"
    assert payload["data"]["environment"] == "production"
    assert payload["data"]["status"] == "succeeded"
    assert payload["data"]["counts"]["applied"] == 1
    assert payload["data"]["finding_kinds"]["anomaly"] == 2
    assert payload["message"] == "dev.orchestra.run.finished.v1 cost-7f3a"


def test_json_log_line_is_written_even_when_orchestra_logs_only_errors(json_log: Capture) -> None:
    logging.getLogger("orchestra").setLevel(logging.ERROR)
    announcer().breaker_changed("automation:cost:production", opened=True, failures=3, open_until=START)
    (line,) = json_log.lines()
    payload = json.loads(line)
    assert payload["announcement"] == "dev.orchestra.breaker.opened.v1"
    assert payload["data"]["key"] == "automation:cost:production"
    assert "run_id" not in payload


def test_ordinary_lines_carry_no_announcement_fields(json_log: Capture) -> None:
    logging.getLogger("orchestra.runner").warning("plain", extra={"data": {"x": 1}})
    payload = json.loads(json_log.lines()[0])
    assert "announcement" not in payload
    assert "data" not in payload


def test_text_log_line_shows_the_type_subject_and_data() -> None:
    capture = Capture(TextFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(capture.handler)
    try:
        announcer().deployment_changed("dep-1", environment="staging", revision="abc", to_state="requested")
    finally:
        logger.removeHandler(capture.handler)
    (line,) = capture.lines()
    assert line == (
        "notice  orchestra.announcements: dev.orchestra.deployment.changed.v1 dep-1 "
        "deployment_id=dep-1 environment=staging revision=abc to_state=requested"
    )


def test_publish_failure_is_logged_and_counted_not_raised(json_log: Capture) -> None:
    ann = announcer(InMemoryPublisher(fail_with=ConnectionError("emulator down")))
    event = ann.run_finished(make_run())
    assert ann.failures == 1
    assert ann.published == 0
    lines = [json.loads(line) for line in json_log.lines()]
    assert [line["severity"] for line in lines] == ["NOTICE", "WARNING"]
    assert (
        "publishing dev.orchestra.run.finished.v1 cost-7f3a failed (ConnectionError: emulator down)"
        in (lines[1]["message"])
    )
    assert event.subject == "cost-7f3a"


def test_plugins_announce_deployments_through_the_installed_announcer() -> None:
    published = InMemoryPublisher()
    with installed(announcer(published)):
        announce_deployment_changed("dep-9", environment="production", revision="r1", to_state="succeeded")
    assert [(a.type, a.subject, a.data["to_state"]) for a in published.published] == [
        (AnnouncementType.deployment_changed, "dep-9", "succeeded")
    ]


def test_announcement_model_round_trips_through_json() -> None:
    event = announcer().dead_letter_stored(
        DeadLetter(id="d", message_id="m", origin="topic t", received_at=START)
    )
    assert Announcement.model_validate_json(event.model_dump_json()) == event


# ------------------------------------------------------------------ topic in effect


def test_topic_comes_from_the_environment_over_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestra.announcements import TOPIC_ENV, PubSubPublisher, build_announcer
    from orchestra.config import EventsConfig

    config = EventsConfig(topic="projects/orchestra-a/topics/from-config", publish_timeout_seconds=3)
    monkeypatch.delenv(TOPIC_ENV, raising=False)
    built = build_announcer(config)
    assert isinstance(built.publisher, PubSubPublisher)
    assert built.publisher.topic == "projects/orchestra-a/topics/from-config"
    assert built.publish_timeout == 3

    monkeypatch.setenv(TOPIC_ENV, "projects/orchestra-b/topics/from-env")
    assert build_announcer(config).publisher.topic == "projects/orchestra-b/topics/from-env"

    monkeypatch.setenv(TOPIC_ENV, "")  # set and empty: the log line only
    assert build_announcer(config).publisher is None


def test_a_bare_topic_name_takes_the_project_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestra.announcements import TOPIC_ENV, build_announcer
    from orchestra.config import EventsConfig
    from orchestra.errors import ConfigError

    monkeypatch.delenv(TOPIC_ENV, raising=False)
    for name in ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "PUBSUB_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        ConfigError, match=r"events.topic \(ORCHESTRA_EVENTS_TOPIC\): events topic 'evs' is a bare"
    ):
        build_announcer(EventsConfig(topic="evs"))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "orchestra-c")
    assert build_announcer(EventsConfig(topic="evs")).publisher.topic == "projects/orchestra-c/topics/evs"


def test_an_invalid_topic_in_the_environment_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestra.announcements import TOPIC_ENV, build_announcer
    from orchestra.config import EventsConfig
    from orchestra.errors import ConfigError

    monkeypatch.setenv(TOPIC_ENV, "projects/p/topics/has space s3cr3t")
    with pytest.raises(ConfigError) as caught:
        build_announcer(EventsConfig())
    assert "ORCHESTRA_EVENTS_TOPIC: not a Pub/Sub topic" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_the_configuration_refuses_a_malformed_topic_by_field() -> None:
    from orchestra.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="events.topic"):
        parse_config("environments: {development: {}}\nevents: {topic: 'projects/p/topics/'}\n", "t.yaml")
