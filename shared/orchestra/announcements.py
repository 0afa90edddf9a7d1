"""Announcements: what the controller tells the world when something worth knowing happens.

Each announcement is written as ONE structured log line, always, and — when an events topic is
configured — published as a CloudEvent (structured JSON mode) to Pub/Sub.

Field contract (stable: log-based metrics and subscribers depend on it)
-----------------------------------------------------------------------
The log line is emitted by the logger ``orchestra.announcements`` at severity ``NOTICE``; that
logger has its own level, so the line is written whatever the ``orchestra`` log level is. In the
JSON log format (:class:`orchestra.logs.JsonFormatter`, the format on Google Cloud) the line's
top-level fields are, besides ``severity``/``message``/``time``/``logger``:

- ``announcement``: the type, e.g. ``dev.orchestra.run.finished.v1``
  (Cloud Logging: ``jsonPayload.announcement``);
- ``subject``: what it is about (``jsonPayload.subject``);
- ``announcement_id``: the CloudEvent id; ``source``: the CloudEvent source;
- ``data``: a nested JSON object, the type's data below (``jsonPayload.data.task``, ...);
- ``run_id`` and ``task`` for run and approval announcements (as on every run log line).

Types, subjects and ``data`` (every field always present; ``null`` where unknown):

``dev.orchestra.run.finished.v1`` — subject: the run id. A run stopped working: it succeeded,
failed, was rolled back, was skipped (breaker open, rejected, approval expired), or now awaits
approval (it announces again with its final status after the approval)::

    task, environment, mode (analyze|apply), status (succeeded|failed|rolled_back|skipped|
    awaiting_approval), trigger_kind, origin (local|remote),
    counts: {findings, actions, applied, rolled_back, awaiting_approval, failed},
    finding_kinds: {<kind>: count}   # a finding's kind is its id up to the first ":"
                                     # (the cost automation's anomalies: finding_kinds.anomaly)
    duration_seconds (float|null), reason (str|null, at most 200 characters)

``dev.orchestra.approval.awaiting.v1`` — subject: the run id::

    run_id, task, environment,
    actions: [{id, risk (low|medium|high), summary}], expires_at (ISO 8601 UTC|null)

``dev.orchestra.deployment.changed.v1`` — subject: the deployment id::

    deployment_id, service (str|null), environment, revision, from_state (null when created),
    to_state

``dev.orchestra.breaker.opened.v1`` / ``dev.orchestra.breaker.closed.v1`` — subject: the breaker
key (``automation:<task>:<environment>`` or ``dependency:<name>``)::

    key, scope (automation|dependency|other), failures, open_until (ISO 8601 UTC|null)

``dev.orchestra.deadletter.stored.v1`` — subject: the dead letter id::

    dead_letter_id, origin (the subscription, or the topic), message_id,
    delivery_attempt (int|null)

A new field may be added to a type's data; renaming or removing one makes a new type (``.v2``).

Publishing never decides a run's result: a publisher that fails or is slower than
``events.publish_timeout_seconds`` is logged (``orchestra.announcements`` warning) and counted
(:attr:`Announcer.failures`), and the caller goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .clock import Clock, IdSource, RandomIds, SystemClock
from .config import TOPIC_PATTERN
from .errors import ConfigError
from .models import Timestamp, format_timestamp

if TYPE_CHECKING:
    from .config import EventsConfig
    from .models import DeadLetter, Run

LOGGER_NAME = "orchestra.announcements"
NOTICE = 25  # Cloud Logging's NOTICE: between INFO and WARNING
logging.addLevelName(NOTICE, "NOTICE")

TOPIC_ENV = "ORCHESTRA_EVENTS_TOPIC"
SOURCE_ENV = "ORCHESTRA_EVENTS_SOURCE"
CONTENT_TYPE = "application/cloudevents+json"
REASON_MAX = 200


def announcements_logger() -> logging.Logger:
    """The logger announcements are written to: its own level, so they pass whatever the
    ``orchestra`` level (default WARNING) is; its records go to the ``orchestra`` handlers."""
    logger = logging.getLogger(LOGGER_NAME)
    if logger.level == logging.NOTSET or logger.level > NOTICE:
        logger.setLevel(NOTICE)
    return logger


class AnnouncementType(StrEnum):
    run_finished = "dev.orchestra.run.finished.v1"
    approval_awaiting = "dev.orchestra.approval.awaiting.v1"
    deployment_changed = "dev.orchestra.deployment.changed.v1"
    breaker_opened = "dev.orchestra.breaker.opened.v1"
    breaker_closed = "dev.orchestra.breaker.closed.v1"
    deadletter_stored = "dev.orchestra.deadletter.stored.v1"


class _Data(BaseModel):
    # Each kind's model is built when first announced, not at import.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class RunCounts(_Data):
    findings: int = 0
    actions: int = 0
    applied: int = 0
    rolled_back: int = 0
    awaiting_approval: int = 0
    failed: int = 0


class RunFinished(_Data):
    task: str
    environment: str
    mode: str
    status: str
    trigger_kind: str
    origin: str
    counts: RunCounts
    finding_kinds: dict[str, int] = Field(default_factory=dict)
    duration_seconds: float | None = None
    reason: str | None = Field(None, max_length=REASON_MAX)


class AwaitingAction(_Data):
    id: str
    risk: str
    summary: str


class ApprovalAwaiting(_Data):
    run_id: str
    task: str
    environment: str
    actions: list[AwaitingAction]
    expires_at: Timestamp | None = None


class DeploymentChanged(_Data):
    deployment_id: str
    service: str | None = None
    environment: str
    revision: str
    from_state: str | None = None
    to_state: str


class BreakerChanged(_Data):
    key: str
    scope: Literal["automation", "dependency", "other"]
    failures: int
    open_until: Timestamp | None = None


class DeadLetterStored(_Data):
    dead_letter_id: str
    origin: str
    message_id: str
    delivery_attempt: int | None = None


DATA_MODELS: dict[AnnouncementType, type[_Data]] = {
    AnnouncementType.run_finished: RunFinished,
    AnnouncementType.approval_awaiting: ApprovalAwaiting,
    AnnouncementType.deployment_changed: DeploymentChanged,
    AnnouncementType.breaker_opened: BreakerChanged,
    AnnouncementType.breaker_closed: BreakerChanged,
    AnnouncementType.deadletter_stored: DeadLetterStored,
}


class Announcement(BaseModel):
    """One announcement: the CloudEvent's attributes and its data (JSON-ready)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    id: str
    type: AnnouncementType
    source: str
    subject: str
    time: Timestamp
    data: dict[str, Any]

    def log_fields(self) -> dict[str, Any]:
        """The structured fields of the announcement's log line (see the module docstring)."""
        fields: dict[str, Any] = {
            "announcement": self.type.value,
            "announcement_id": self.id,
            "source": self.source,
            "subject": self.subject,
            "data": self.data,
        }
        if self.type in (AnnouncementType.run_finished, AnnouncementType.approval_awaiting):
            fields["run_id"] = self.subject
            fields["task"] = self.data.get("task")
        return fields

    def cloudevent_attributes(self) -> dict[str, str]:
        return {
            "id": self.id,
            "type": self.type.value,
            "source": self.source,
            "subject": self.subject,
            "time": format_timestamp(self.time),
            "datacontenttype": "application/json",
        }


# --------------------------------------------------------------------------------- publishers


class EventPublisher(Protocol):
    """Where announcements go besides the log. ``publish`` returns once the announcement is
    accepted, or raises; it must not block longer than ``timeout`` seconds."""

    def publish(self, announcement: Announcement, timeout: float) -> None: ...

    def close(self) -> None: ...


class InMemoryPublisher:
    """Keeps what it is given (tests); ``fail_with`` makes every publish raise it."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.published: list[Announcement] = []
        self.fail_with = fail_with

    def publish(self, announcement: Announcement, timeout: float) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.published.append(announcement)

    def of_type(self, kind: AnnouncementType) -> list[Announcement]:
        return [a for a in self.published if a.type == kind]

    def close(self) -> None:
        return None


def to_cloudevent_json(announcement: Announcement) -> tuple[dict[str, str], bytes]:
    """The announcement as a CloudEvent in structured JSON mode: the headers
    (``content-type: application/cloudevents+json``) and the body."""
    # Imported here: the cloudevents library is needed only when publishing.
    from cloudevents.conversion import to_structured
    from cloudevents.http import CloudEvent

    event = CloudEvent(announcement.cloudevent_attributes(), announcement.data)
    headers, body = to_structured(event)
    return dict(headers), body


def topic_path(topic: str, project: str | None = None) -> str:
    """``projects/P/topics/T`` from a full path, or from a name and the project (``project``, else
    ``GOOGLE_CLOUD_PROJECT``, ``GCP_PROJECT`` or ``PUBSUB_PROJECT_ID``)."""
    if topic.startswith("projects/"):
        return topic
    project = (
        project
        or os.environ.get("GOOGLE_CLOUD_PROJECT")
        or os.environ.get("GCP_PROJECT")
        or os.environ.get("PUBSUB_PROJECT_ID")
    )
    if not project:
        raise ValueError(
            f"events topic {topic!r} is a bare name and no project is known; give "
            "projects/PROJECT/topics/NAME, or set GOOGLE_CLOUD_PROJECT"
        )
    return f"projects/{project}/topics/{topic}"


class PubSubPublisher:
    """Publishes each announcement as one Pub/Sub message: the data is the CloudEvent in
    structured JSON mode; the attributes are ``content-type: application/cloudevents+json``,
    ``ce-type`` and ``ce-subject`` (for subscription filters). The client is created on first
    use; its retries stop at the publish timeout, so an unreachable Pub/Sub costs at most that."""

    def __init__(self, topic: str, *, client: Any = None) -> None:
        self.topic = topic
        self._client = client
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def publish(self, announcement: Announcement, timeout: float) -> None:
        from google.api_core.retry import Retry

        headers, body = to_cloudevent_json(announcement)
        future = self.client().publish(
            self.topic,
            body,
            retry=Retry(initial=0.1, maximum=1.0, multiplier=2.0, timeout=timeout),
            timeout=timeout,
            **{
                "content-type": headers.get("content-type", CONTENT_TYPE),
                "ce-type": announcement.type.value,
                "ce-subject": announcement.subject,
            },
        )
        future.result(timeout=timeout)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.stop()
            except Exception as exc:  # noqa: BLE001 - closing must not fail the shutdown
                announcements_logger().warning("closing the events publisher failed: %s", exc)


# ---------------------------------------------------------------------------------- announcer


def _kind_of(finding_id: str) -> str:
    return finding_id.split(":", 1)[0] or "other"


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


def breaker_scope(key: str) -> Literal["automation", "dependency", "other"]:
    prefix = key.split(":", 1)[0]
    if prefix == "automation":
        return "automation"
    if prefix == "dependency":
        return "dependency"
    return "other"


def default_source() -> str:
    """``//orchestra/<project>`` (``ORCHESTRA_EVENTS_SOURCE`` overrides it whole)."""
    explicit = os.environ.get(SOURCE_ENV)
    if explicit:
        return explicit
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT") or "local"
    return f"//orchestra/{project}"


class Announcer:
    """Builds announcements (time and id injected), logs each one, and publishes it."""

    def __init__(
        self,
        *,
        source: str | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        publisher: EventPublisher | None = None,
        publish_timeout: float = 2.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.source = source or default_source()
        self.clock = clock or SystemClock()
        self.ids = ids or RandomIds()
        self.publisher = publisher
        self.publish_timeout = publish_timeout
        self.logger = logger or announcements_logger()
        self.failures = 0
        self.published = 0
        self._lock = threading.Lock()

    def announce(self, kind: AnnouncementType, subject: str, data: _Data) -> Announcement:
        expected = DATA_MODELS[kind]
        if not isinstance(data, expected):
            raise TypeError(f"{kind.value} takes {expected.__name__} data, got {type(data).__name__}")
        announcement = Announcement(
            id=self.ids.new_id("ev-"),
            type=kind,
            source=self.source,
            subject=subject,
            time=self.clock.now(),
            data=data.model_dump(mode="json"),
        )
        self.logger.log(NOTICE, "%s %s", kind.value, subject, extra=announcement.log_fields())
        self._publish(announcement)
        return announcement

    def _publish(self, announcement: Announcement) -> None:
        if self.publisher is None:
            return
        try:
            self.publisher.publish(announcement, self.publish_timeout)
        except Exception as exc:  # noqa: BLE001 - publishing never fails the caller
            with self._lock:
                self.failures += 1
                failures = self.failures
            self.logger.warning(
                "publishing %s %s failed (%s: %s); %d publish failure(s) so far",
                announcement.type.value,
                announcement.subject,
                type(exc).__name__,
                str(exc)[:300],
                failures,
                extra={"announcement_failed": announcement.type.value, "subject": announcement.subject},
            )
        else:
            with self._lock:
                self.published += 1

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()

    # ------------------------------------------------------------------ typed helpers
    def run_finished(self, run: Run) -> Announcement:
        counts = RunCounts(findings=len(run.findings), actions=len(run.actions))
        for action in run.actions:
            status = action.status.value
            if status == "applied":
                counts.applied += 1
            elif status == "rolled_back":
                counts.rolled_back += 1
            elif status == "awaiting_approval":
                counts.awaiting_approval += 1
            elif status == "failed":
                counts.failed += 1
        kinds: dict[str, int] = {}
        for finding in run.findings:
            kind = _kind_of(finding.id)
            kinds[kind] = kinds.get(kind, 0) + 1
        started = run.started_at or run.created_at
        ended = run.finished_at or run.updated_at
        duration = max((ended - started).total_seconds(), 0.0) if started and ended else None
        reason = run.reason or (f"{run.error.type}: {run.error.message}" if run.error else None)
        data = RunFinished(
            task=run.task,
            environment=run.environment,
            mode=run.mode.value,
            status=run.status.value,
            trigger_kind=str(run.trigger_kind.value),
            origin=str(run.origin.value),
            counts=counts,
            finding_kinds=kinds,
            duration_seconds=round(duration, 3) if duration is not None else None,
            reason=_short(reason),
        )
        return self.announce(AnnouncementType.run_finished, run.id, data)

    def approval_awaiting(self, run: Run) -> Announcement:
        waiting = [a for a in run.actions if a.status.value == "awaiting_approval"]
        data = ApprovalAwaiting(
            run_id=run.id,
            task=run.task,
            environment=run.environment,
            actions=[
                AwaitingAction(id=a.id, risk=a.risk.value, summary=_short(a.description) or "")
                for a in waiting
            ],
            expires_at=run.approval_expires_at,
        )
        return self.announce(AnnouncementType.approval_awaiting, run.id, data)

    def run_stopped(self, run: Run) -> None:
        """A run stopped working: run.finished, and approval.awaiting when it waits for one."""
        self.run_finished(run)
        if run.status.value == "awaiting_approval":
            self.approval_awaiting(run)

    def breaker_changed(
        self, key: str, *, opened: bool, failures: int, open_until: dt.datetime | None
    ) -> Announcement:
        data = BreakerChanged(
            key=key, scope=breaker_scope(key), failures=failures, open_until=open_until if opened else None
        )
        kind = AnnouncementType.breaker_opened if opened else AnnouncementType.breaker_closed
        return self.announce(kind, key, data)

    def dead_letter_stored(self, letter: DeadLetter) -> Announcement:
        data = DeadLetterStored(
            dead_letter_id=letter.id,
            origin=letter.origin,
            message_id=letter.message_id,
            delivery_attempt=letter.delivery_attempt,
        )
        return self.announce(AnnouncementType.deadletter_stored, letter.id, data)

    def deployment_changed(
        self,
        deployment_id: str,
        *,
        environment: str,
        revision: str,
        to_state: str,
        from_state: str | None = None,
        service: str | None = None,
    ) -> Announcement:
        data = DeploymentChanged(
            deployment_id=deployment_id,
            service=service,
            environment=environment,
            revision=revision,
            from_state=from_state,
            to_state=to_state,
        )
        return self.announce(AnnouncementType.deployment_changed, deployment_id, data)


def configured_topic(config_topic: str | None) -> str | None:
    """The events topic in effect: ``ORCHESTRA_EVENTS_TOPIC`` (empty: none), else the
    configuration's ``events.topic``."""
    explicit = os.environ.get(TOPIC_ENV)
    if explicit is None:
        return config_topic
    explicit = explicit.strip()
    if explicit and not re.match(TOPIC_PATTERN, explicit):
        raise ConfigError(
            TOPIC_ENV,
            [f"{TOPIC_ENV}: not a Pub/Sub topic; accepted: a topic name or projects/PROJECT/topics/NAME"],
        )
    return explicit or None


def build_announcer(
    config: EventsConfig,
    *,
    clock: Clock | None = None,
    ids: IdSource | None = None,
    publisher: EventPublisher | None = None,
) -> Announcer:
    """The application's announcer: ``publisher`` if given, else Pub/Sub when a topic is
    configured (see :func:`configured_topic`), else the log line only."""
    if publisher is None:
        topic = configured_topic(config.topic)
        if topic:
            try:
                publisher = PubSubPublisher(topic_path(topic))
            except ValueError as exc:
                raise ConfigError("events", [f"events.topic ({TOPIC_ENV}): {exc}"]) from None
    return Announcer(
        clock=clock, ids=ids, publisher=publisher, publish_timeout=config.publish_timeout_seconds
    )


# ------------------------------------------------------------------------- process announcer
# The application installs its announcer here (``build_app``); code that has no application at
# hand (breakers, plugins' state machines) announces through :func:`current`. Until one is
# installed, announcements are logged only.

_current_lock = threading.Lock()
_current: Announcer | None = None


def current() -> Announcer:
    global _current
    with _current_lock:
        if _current is None:
            _current = Announcer()
        return _current


def install(announcer: Announcer | None) -> Announcer | None:
    """Make ``announcer`` the process's; returns the previous one (None: back to log-only)."""
    global _current
    with _current_lock:
        previous, _current = _current, announcer
    return previous


@contextmanager
def installed(announcer: Announcer) -> Iterator[Announcer]:
    previous = install(announcer)
    try:
        yield announcer
    finally:
        install(previous)


def announce_safely(action: str, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Call an announcer helper where an announcement must never break the caller (a state
    already written): any error is logged with what was being announced."""
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the state change stands; the announcement is lost
        announcements_logger().warning("announcing %s failed: %s: %s", action, type(exc).__name__, exc)


def announce_deployment_changed(
    deployment_id: str,
    *,
    environment: str,
    revision: str,
    to_state: str,
    from_state: str | None = None,
    service: str | None = None,
) -> None:
    """For a plugin's deployment state machine: announce a state change through the process's
    announcer (never raises)."""
    announce_safely(
        f"deployment {deployment_id} {from_state} -> {to_state}",
        current().deployment_changed,
        deployment_id,
        environment=environment,
        revision=revision,
        to_state=to_state,
        from_state=from_state,
        service=service,
    )
