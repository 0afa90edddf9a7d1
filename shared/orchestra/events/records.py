"""Event records: every received event is stored with what became of it.

Status is one of ``accepted`` (a run or request was made, or the event was recorded against one),
``rejected`` (permanently invalid: acknowledged, never retried, the reason says what was wrong),
``ignored`` (valid, but nothing to do: the reason says why) and ``duplicate`` (a redelivery of an
event already handled: linked to the same runs).

The primary record of an event has the id ``{source}:{key}`` where ``key`` is the dedupe key
(message id, incident id + state, delivery id) and is written by the delivery that did the work.
Every other delivery of the same key (a redelivery, or a concurrent copy) gets its own
``duplicate`` record beside it, linked to the same runs, so redeliveries are visible too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..errors import InputError, OrchestraError, TransientError
from ..models import EventRecord, Run, RunStatus, safe_doc_id
from .pubsub import CloudEventLike, MessageClaim, cloud_event_summary

if TYPE_CHECKING:
    from ..app import App
    from ..runner import RunOutcome, RunRequest

log = logging.getLogger("orchestra.events")


class EventStatus(StrEnum):
    accepted = "accepted"
    rejected = "rejected"
    ignored = "ignored"
    duplicate = "duplicate"


@dataclass
class Handled:
    """What a handler did with one event."""

    status: EventStatus
    record: EventRecord
    runs: list[Run] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        return self.record.reason


def record_id(source: str, key: str) -> str:
    return safe_doc_id(f"{source}:{key}")


class EventLog:
    """Writes event records with the application's clock, ids and retention."""

    def __init__(self, app: App) -> None:
        self.app = app

    def _record(
        self,
        *,
        doc_id: str,
        source: str,
        key: str,
        kind: str,
        status: EventStatus,
        reason: str | None,
        run_ids: list[str],
        payload: dict[str, Any],
    ) -> EventRecord:
        now = self.app.clock.now()
        return EventRecord(
            id=doc_id,
            source=source,
            event_id=key,
            kind=kind,
            status=status.value,
            reason=reason,
            run_ids=run_ids,
            received_at=now,
            payload=payload,
            expires_at=now + dt.timedelta(days=self.app.config.runner.retention.events_days),
        )

    def save(
        self,
        source: str,
        key: str,
        kind: str,
        status: EventStatus,
        *,
        reason: str | None = None,
        run_ids: list[str] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> EventRecord:
        """Write (or overwrite) the primary record of an event."""
        record = self.primary(source, key, kind, status, reason=reason, run_ids=run_ids, payload=payload)
        self.app.store.save_event(record)
        self.saved(record)
        return record

    def primary(
        self,
        source: str,
        key: str,
        kind: str,
        status: EventStatus,
        *,
        reason: str | None = None,
        run_ids: list[str] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> EventRecord:
        """The primary record of an event, not yet written."""
        return self._record(
            doc_id=record_id(source, key),
            source=source,
            key=key,
            kind=kind,
            status=status,
            reason=reason,
            run_ids=run_ids or [],
            payload=payload or {},
        )

    def saved(self, record: EventRecord) -> None:
        """Log a primary record once it is written."""
        rejected = record.status == EventStatus.rejected.value
        (log.warning if rejected else log.info)(
            "%s event %s %s%s",
            record.source,
            record.event_id,
            record.status,
            f": {record.reason}" if record.reason else "",
            extra={"event_id": record.event_id},
        )

    def duplicate(
        self,
        source: str,
        key: str,
        kind: str,
        *,
        reason: str,
        run_ids: list[str] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> EventRecord:
        """Record a redelivery beside the primary record."""
        record = self._record(
            doc_id=record_id(source, key) + "~" + self.app.ids.new_id("dup-"),
            source=source,
            key=key,
            kind=kind,
            status=EventStatus.duplicate,
            reason=reason,
            run_ids=run_ids or [],
            payload=payload or {},
        )
        self.app.store.record_event(record)
        log.info("%s event %s duplicate: %s", source, key, reason, extra={"event_id": key})
        return record

    def primary_exists(self, source: str, key: str) -> bool:
        return self.app.store.get_event(record_id(source, key)) is not None

    def _settle(
        self, source: str, key: str, kind: str, status: EventStatus, reason: str, payload: dict[str, Any]
    ) -> Handled:
        if self.primary_exists(source, key):
            # Redelivered although acknowledged (at-least-once): visible, never overwritten.
            record = self.duplicate(
                source, key, kind, reason=f"{status.value} again: {reason}", payload=payload
            )
            return Handled(EventStatus.duplicate, record)
        record = self.save(source, key, kind, status, reason=reason, payload=payload)
        return Handled(status, record)

    def reject(
        self, source: str, key: str, kind: str, error: InputError | str, payload: dict[str, Any]
    ) -> Handled:
        return self._settle(source, key, kind, EventStatus.rejected, str(error), payload)

    def reject_cloud_event(self, source: str, kind: str, event: CloudEventLike, error: InputError) -> Handled:
        """Reject an event that is not the delivery it should be, keyed on its CloudEvent id (the
        platform's redeliveries keep it), with what it carried for the operator."""
        key = str(event.get("id") or self.app.ids.new_id("event-"))
        return self.reject(source, key, kind, error, cloud_event_summary(event))

    def ignore(self, source: str, key: str, kind: str, reason: str, payload: dict[str, Any]) -> Handled:
        return self._settle(source, key, kind, EventStatus.ignored, reason, payload)


def submit_for_event(
    app: App,
    request: RunRequest,
    *,
    source: str,
    key: str,
    kind: str,
    payload: dict[str, Any],
    nack_exhausted: bool = True,
    claim: MessageClaim | None = None,
) -> Handled:
    """Run ``request`` for an event and record the outcome.

    Bad input (unknown task, bad parameters or environment) is recorded as rejected and returned;
    a transient failure is recorded and re-raised so the platform redelivers the event (the runner
    dedupes the redelivery onto the same run).

    With ``nack_exhausted`` (Pub/Sub handlers), a redelivery of an event whose run the runner has
    given up on after transient failures is refused too: the message keeps failing until Pub/Sub
    moves it to the dead-letter topic, where it is stored and can be replayed, instead of being
    acknowledged and forgotten.

    With ``claim`` (a Pub/Sub message's claim on its id), the claim is created in the same commit
    as the run; a message whose id another message claimed is recorded as a duplicate and runs
    nothing, and a rejected one is claimed before its rejection is recorded.
    """
    events = EventLog(app)

    def accepted(run: Run) -> EventRecord | None:
        # Written with the run's final state when this delivery executes it; a transient failure
        # is recorded below, with the error the redelivery is requested for.
        if run.error is not None and run.error.transient:
            return None
        return events.primary(
            source,
            key,
            kind,
            EventStatus.accepted,
            reason=f"run {run.id} {run.status.value}",
            run_ids=[run.id],
            payload=payload,
        )

    from ..runner import ClaimRefused

    try:
        outcome: RunOutcome = app.runner.submit(
            dataclasses.replace(request, record=accepted, claim=claim.for_run() if claim else None)
        )
    except ClaimRefused:
        assert claim is not None and claim.refused is not None
        return claim.refused
    except InputError as exc:
        if claim is not None and not claim.confirm():
            assert claim.refused is not None
            return claim.refused
        return events.reject(source, key, kind, exc, payload)
    except TransientError as exc:
        try:
            events.save(
                source,
                key,
                kind,
                EventStatus.accepted,
                reason=f"failed transiently, redelivery requested: {exc}",
                payload=payload,
            )
        except OrchestraError as record_exc:  # the store may be what failed
            log.warning("could not record %s event %s: %s", source, key, record_exc)
        raise
    run = outcome.run
    gave_up = (
        outcome.duplicate and run.status == RunStatus.failed and run.error is not None and run.error.transient
    )
    if gave_up and nack_exhausted:
        reason = (
            f"gave up on run {run.id}: failed transiently after {run.attempts} attempts "
            f"({run.error.message if run.error else ''}) and not run again; refusing the message so "
            "Pub/Sub retries it later or moves it to the dead-letter topic"
        )
        try:
            events.duplicate(source, key, kind, reason=reason, run_ids=[run.id], payload=payload)
        except OrchestraError as record_exc:
            log.warning("could not record %s event %s: %s", source, key, record_exc)
        raise TransientError(reason)
    if outcome.duplicate:
        # Only the delivery that executed writes the primary record; a concurrent or later one
        # gets its own, so no delivery's record overwrites another's.
        record = events.duplicate(
            source,
            key,
            kind,
            reason=f"already handled: run {run.id} is {run.status.value}",
            run_ids=[run.id],
            payload=payload,
        )
        return Handled(EventStatus.duplicate, record, [run])
    if outcome.record is not None:
        events.saved(outcome.record)
        return Handled(EventStatus.accepted, outcome.record, [run])
    record = events.save(
        source,
        key,
        kind,
        EventStatus.accepted,
        reason=f"run {run.id} {run.status.value}",
        run_ids=[run.id],
        payload=payload,
    )
    return Handled(EventStatus.accepted, record, [run])
