"""What the soak is still waiting for, per event, read in proportion to it.

The soak knows every event it published. An event is *done* once the store holds its outcome
(a finished run, a rejection, an ``ignored`` record, the record of an incident's closing; a run
that ran out of deliveries also needs its dead letter). Each pass reads only the events not done
yet, by document id (one lookup per document, a few at once), plus the dead letters; events found done
are not read again. The whole store is read once, by the checker, at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestra.events.records import record_id
from orchestra.models import TERMINAL_STATUSES, EventRecord, Run, RunStatus, run_id_for
from orchestra.store.base import EVENTS, RUNS

from .checker import STAND_IN, expected_trigger, letter_key
from .events import SCHEDULED_KINDS, Send, SoakEvent
from .plugin import NAME

if TYPE_CHECKING:
    from orchestra.app import App

READERS = 4  # documents read at once (the store adapter is thread-safe)
# Run statuses a pass counts as unfinished.
UNFINISHED = (
    RunStatus.running,
    RunStatus.queued,
    RunStatus.awaiting_approval,
    RunStatus.awaiting_verification,
)


@dataclass
class Pass:
    """One pass: the events still without their outcome (``key`` or ``key (why)``) and what it read."""

    waiting: list[str]
    read: int
    done: int


@dataclass
class Progress:
    """Per event, whether its outcome is in the store yet; see the module's docstring."""

    max_deliveries: int
    done: set[str] = field(default_factory=set)
    _messages: dict[str, list[str]] = field(default_factory=dict)
    _sent: dict[str, float] = field(default_factory=dict)
    _seen_sends: int = 0

    def _take(self, sends: list[Send]) -> None:
        """Index the deliveries made since the last pass (``sends`` only grows)."""
        for s in sends[self._seen_sends :]:
            self._sent[s.key] = min(self._sent.get(s.key, s.at), s.at)
            if s.message_id and s.channel not in ("redelivery", STAND_IN):
                self._messages.setdefault(s.key, []).append(s.message_id)
        self._seen_sends = len(sends)

    def ids_to_read(self, event: SoakEvent) -> tuple[list[str], list[str]]:
        """The run ids and event-record ids that hold ``event``'s outcome."""
        if event.kind == "poison":
            keys = [*self._messages.get(event.key, []), event.key]
            return [], [record_id("scheduled", k) for k in keys]
        if event.kind == "alert_close":
            return [], [record_id("alerts", f"{event.incident}:closed")]
        trigger = expected_trigger(event)
        assert trigger is not None
        records = [record_id("alerts", trigger)] if event.kind == "alert_open" else []
        return [run_id_for(NAME, trigger)], records

    def check(
        self, app: App, events: Iterable[SoakEvent], sends: list[Send], *, before: float | None = None
    ) -> Pass:
        """The events sent before ``before`` (all when None) still without their outcome."""
        self._take(sends)
        open_events = [
            e
            for e in events
            if e.key not in self.done and not (before is not None and self._sent.get(e.key, before) >= before)
        ]
        run_ids: list[str] = []
        record_ids: list[str] = []
        for event in open_events:
            runs, records = self.ids_to_read(event)
            run_ids.extend(runs)
            record_ids.extend(records)
        store = app.store

        wanted = [(RUNS, i) for i in dict.fromkeys(run_ids)]
        wanted += [(EVENTS, i) for i in dict.fromkeys(record_ids)]
        with ThreadPoolExecutor(READERS, "soak-progress") as pool:
            found = dict(zip(wanted, pool.map(lambda w: store.get(*w), wanted), strict=True))
        runs_read = {i: Run.model_validate(d) for (c, i), d in found.items() if c == RUNS and d}
        records_read = {i: EventRecord.model_validate(d) for (c, i), d in found.items() if c == EVENTS and d}
        letters = {letter_key(letter) for letter in store.list_dead_letters(limit=None)}
        waiting: list[str] = []
        before_done = len(self.done)
        for event in open_events:
            why = self._outcome(event, runs_read, records_read, letters)
            if why is None:
                self.done.add(event.key)
            else:
                waiting.append(event.key if why == "" else f"{event.key} ({why})")
        return Pass(
            waiting=waiting, read=len(runs_read) + len(records_read), done=len(self.done) - before_done
        )

    def _outcome(
        self,
        event: SoakEvent,
        runs: dict[str, Run],
        records: dict[str, EventRecord],
        letters: set[str | None],
    ) -> str | None:
        """None when the event's outcome is in; else why not ("" when nothing of it is there yet)."""
        run_ids, record_ids = self.ids_to_read(event)
        if event.kind == "poison":
            rejected = [i for i in record_ids if (r := records.get(i)) is not None and r.status == "rejected"]
            return None if rejected else ""
        if event.kind == "alert_close":
            return None if record_ids[0] in records else ""
        run = runs.get(run_ids[0])
        if run is None:
            record = records.get(record_ids[0]) if event.kind == "alert_open" else None
            return None if record is not None and record.status == "ignored" else ""
        if run.status not in TERMINAL_STATUSES:
            return ""
        if (
            event.kind in (*SCHEDULED_KINDS, "alert_open")
            and run.status == RunStatus.failed
            and run.error is not None
            and run.error.transient
            and event.key not in letters
        ):
            return "dead letter" if run.attempts >= self.max_deliveries else "redelivery"
        return None


def unfinished_runs(app: App) -> int:
    """Runs not finished yet, by a query on each unfinished status (never the whole store)."""
    return sum(len(app.store.list_runs(status=s, limit=None)) for s in UNFINISHED)
