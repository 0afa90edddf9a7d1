"""The invariant checker: reads the whole store, the soak automation's ledger and its targets, and
proves, per published event, that its effect happened exactly once.

Per event:
- exactly one outcome: one run (keyed as its channel keys it), or one recorded rejection (poison),
  or one ``ignored`` record (an incident whose closing was recorded before its opening), or one
  record for an incident's closing; a run that failed transiently after its last delivery has a
  dead letter (one per message that died);
- no run left ``running``, ``queued`` or waiting;
- no action applied twice: in the ledger, never two applies of one event in effect at once, and
  never an apply by a run after that run rolled back;
- the target agrees with the runs: present if and only if a run of the event succeeded with its
  action applied (a rolled-back run leaves the target as it was: absent);
- every dead letter replays (through the runner, as ``orchestra dlq replay`` does) to a finished
  run, and replaying again returns that same run.

Store-wide: no soak run that no published event explains, and every circuit breaker closed.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.errors import OrchestraError
from orchestra.events.dead_letters import replay_dead_letter
from orchestra.events.records import record_id
from orchestra.models import (
    TERMINAL_STATUSES,
    ActionStatus,
    DeadLetter,
    EventRecord,
    Run,
    RunStatus,
    run_id_for,
)

from .events import SCHEDULED_KINDS, Send, SoakEvent
from .plugin import NAME, target_path

if TYPE_CHECKING:
    from orchestra.app import App

STAND_IN = "stand-in"  # deliveries the soak makes where the emulator dropped a message
RUN_KINDS = ("scheduled", "doom", "settle", "controller", "push", "alert_open")


@dataclass
class Violation:
    key: str
    what: str

    def __str__(self) -> str:
        return f"{self.key}: {self.what}"


@dataclass
class Report:
    events: int = 0
    duplicates: int = 0
    faults: int = 0
    runs: int = 0
    rejections: int = 0
    ignored: int = 0
    dead_letters: int = 0
    replayed: int = 0
    lost: int = 0
    done_twice: int = 0
    stuck: int = 0
    breakers_open: int = 0
    violations: list[Violation] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    kinds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def table(self) -> str:
        rows = [
            ("events published", self.events),
            ("duplicates sent", self.duplicates),
            ("faults injected", self.faults),
            ("runs", self.runs),
            ("  by status", ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())) or "-"),
            ("rejections", self.rejections),
            ("ignored (closed first)", self.ignored),
            ("dead letters", self.dead_letters),
            ("  replayed", self.replayed),
            ("lost", self.lost),
            ("done twice", self.done_twice),
            ("stuck", self.stuck),
            ("breakers not closed", self.breakers_open),
            ("violations", len(self.violations)),
        ]
        lines = [f"  {name:<24} {value}" for name, value in rows]
        if self.phases:
            lines.append(f"  {'phase':<10} {'events':>7} {'runs/s':>8} {'p50 s':>8} {'p95 s':>8}")
            for phase, figures in self.phases.items():
                lines.append(
                    f"  {phase:<10} {figures['events']:>7.0f} {figures['throughput']:>8.2f} "
                    f"{figures['p50']:>8.2f} {figures['p95']:>8.2f}"
                )
        return "\n".join(lines)


class Snapshot:
    """The soak's runs, every event record and every dead letter, read with three queries."""

    def __init__(self, app: App) -> None:
        self.runs = {r.id: r for r in app.store.list_runs(task=NAME, limit=None)}
        self.records = {e.id: e for e in app.store.list_events(limit=None)}
        self.letters = app.store.list_dead_letters(limit=None)

    def get_run(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def get_event(self, event_id: str) -> EventRecord | None:
        return self.records.get(event_id)


def read_ledger(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Ledger entries by event key, in the order written."""
    entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not path.exists():
        return entries
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            raise ValueError(f"{path}:{number}: not a JSON line") from None
        entries[str(entry.get("key"))].append(entry)
    return entries


def ledger_violation(entries: Iterable[dict[str, Any]]) -> str | None:
    """What is wrong in one event's ledger entries: two applies in effect at once, or an apply by
    a run after that run rolled back. None when nothing is."""
    in_effect: list[str] = []
    rolled_back: set[str] = set()
    for entry in entries:
        run = str(entry.get("run"))
        if entry.get("op") == "apply":
            if run in rolled_back:
                return f"applied by run {run} after that run rolled back"
            if in_effect:
                return f"applied twice: by run {run} while run {in_effect[-1]}'s apply was in effect"
            in_effect.append(run)
        elif entry.get("op") == "rollback":
            rolled_back.add(run)
            if run in in_effect:
                in_effect.remove(run)
    return None


def expected_trigger(event: SoakEvent) -> str | None:
    if event.kind == "alert_open":
        return f"{event.incident}:open"
    if event.kind in RUN_KINDS:
        return event.key
    return None


def letter_key(letter: DeadLetter) -> str | None:
    """The soak key a dead letter carries (the original message's attribute, else its data)."""
    if letter.attributes.get("soak_key"):
        return letter.attributes["soak_key"]
    try:
        data = json.loads(letter.data or "")
    except ValueError:
        return None
    if isinstance(data, dict):
        params = data.get("params")
        if isinstance(params, dict) and isinstance(params.get("key"), str):
            return params["key"]
    return None


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def check(
    app: App,
    events: list[SoakEvent],
    sends: list[Send],
    *,
    ledger: Path,
    targets: Path,
    heal_file: Path,
    faults: int = 0,
) -> Report:
    store = app.store
    snap = Snapshot(app)
    report = Report(events=len(events), faults=faults)
    report.duplicates = sum(1 for s in sends if s.duplicate and s.channel != STAND_IN)
    by_key = {e.key: e for e in events}
    messages: dict[str, list[str]] = defaultdict(list)
    first_sent: dict[str, float] = {}
    for s in sends:
        if s.message_id and s.channel not in ("redelivery", STAND_IN):
            messages[s.key].append(s.message_id)
        if not s.duplicate and s.error is None:
            first_sent[s.key] = min(first_sent.get(s.key, s.at), s.at)

    runs = list(snap.runs.values())
    report.runs = len(runs)
    statuses: dict[str, int] = defaultdict(int)
    runs_by_key: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        statuses[run.status.value] += 1
        key = str(run.params.get("key", ""))
        runs_by_key[key].append(run)
        if run.status not in TERMINAL_STATUSES:
            report.stuck += 1
            report.violations.append(Violation(key or run.id, f"run {run.id} left {run.status.value}"))
        if key not in by_key:
            report.violations.append(
                Violation(key or run.id, f"run {run.id} explained by no published event")
            )
    report.statuses = dict(statuses)

    letters = snap.letters
    letters_by_key: dict[str, list[DeadLetter]] = defaultdict(list)
    for letter in letters:
        key = letter_key(letter)
        letters_by_key[key or f"dead-letter:{letter.id}"].append(letter)
        if key not in by_key:
            report.violations.append(
                Violation(key or letter.id, f"dead letter {letter.id} from no published event")
            )
    report.dead_letters = len(letters)

    ledger_entries = read_ledger(ledger)
    for key, entries in ledger_entries.items():
        problem = ledger_violation(entries)
        if problem:
            report.done_twice += 1
            report.violations.append(Violation(key, problem))

    latencies: dict[str, list[float]] = defaultdict(list)
    by_kind: dict[str, list[float]] = defaultdict(list)
    finished: dict[str, list[float]] = defaultdict(list)
    for event in events:
        _check_event(app, snap, event, runs_by_key, letters_by_key, messages, report, targets)
        trigger = expected_trigger(event)
        if trigger is None:
            continue
        run = snap.get_run(run_id_for(NAME, trigger))
        if run is not None and run.finished_at is not None and event.key in first_sent:
            done = run.finished_at.timestamp()
            latencies[event.phase].append(max(0.0, done - first_sent[event.key]))
            by_kind[f"{event.phase}/{event.kind}"].append(max(0.0, done - first_sent[event.key]))
            finished[event.phase].append(done)

    # Dead letters: the dependency recovers, then each replays once, and again to the same run.
    heal_file.parent.mkdir(parents=True, exist_ok=True)
    heal_file.touch()
    for letter in letters:
        key = letter_key(letter) or letter.id
        try:
            first = replay_dead_letter(app, letter.id, "user:soak-checker")
            again = replay_dead_letter(app, letter.id, "user:soak-checker")
        except OrchestraError as exc:
            report.violations.append(Violation(key, f"dead letter {letter.id} does not replay: {exc}"))
            continue
        if first.outcome.run.status not in TERMINAL_STATUSES:
            report.violations.append(
                Violation(
                    key,
                    f"replay of {letter.id} left run {first.outcome.run.id} {first.outcome.run.status.value}",
                )
            )
        elif again.outcome.run.id != first.outcome.run.id or not again.outcome.duplicate:
            report.violations.append(Violation(key, f"replaying {letter.id} twice ran twice"))
        else:
            report.replayed += 1
    # Replays apply: the ledger and targets are read again for the replayed keys.
    if letters:
        ledger_entries = read_ledger(ledger)
        replayed_keys = {letter_key(letter) for letter in letters}
        # The runs of the replayed keys, read once (not the whole store per dead letter).
        after = [r for r in store.list_runs(task=NAME, limit=None) if r.params.get("key") in replayed_keys]
        for key in replayed_keys:
            if key is None:
                continue
            problem = ledger_violation(ledger_entries.get(key, []))
            if problem:
                report.done_twice += 1
                report.violations.append(Violation(key, f"after replay: {problem}"))
            _check_target(after, key, targets, report, after_replay=True)

    for record in store.query("breakers"):
        if record.get("state") != "closed":
            report.breakers_open += 1
            report.violations.append(
                Violation(str(record.get("name")), f"breaker {record.get('state')} after the faults stopped")
            )

    for phase, values in latencies.items():
        starts = [first_sent[e.key] for e in events if e.phase == phase and e.key in first_sent]
        span = (max(finished[phase]) - min(starts)) if starts and finished[phase] else 0.0
        report.phases[phase] = {
            "events": float(len(values)),
            "throughput": len(values) / span if span > 0 else 0.0,
            "p50": _percentile(values, 50),
            "p95": _percentile(values, 95),
        }
    report.kinds = {k: _percentile(v, 50) for k, v in sorted(by_kind.items())}
    return report


def _check_event(
    app: App,
    store: Snapshot,
    event: SoakEvent,
    runs_by_key: dict[str, list[Run]],
    letters_by_key: dict[str, list[DeadLetter]],
    messages: dict[str, list[str]],
    report: Report,
    targets: Path,
) -> None:
    key = event.key
    letters = letters_by_key.get(key, [])
    if len(letters) > max(1, len(messages.get(key, []))):
        report.violations.append(
            Violation(key, f"{len(letters)} dead letters for {len(messages.get(key, []))} messages")
        )
    if event.kind == "poison":
        rejected = _rejections(store, event, messages)
        if runs_by_key.get(key):
            report.violations.append(Violation(key, "a poison message started a run"))
        if not messages.get(key):
            report.lost += 1
            report.violations.append(Violation(key, "lost: the poison message was never published"))
        elif len(rejected) != 1:
            report.lost += int(not rejected)
            report.violations.append(Violation(key, f"{len(rejected)} rejection records, expected 1"))
        else:
            report.rejections += 1
        return
    if event.kind == "alert_close":
        record = store.get_event(record_id("alerts", f"{event.incident}:closed"))
        if record is None or record.status not in ("accepted", "ignored"):
            report.lost += 1
            report.violations.append(
                Violation(
                    key,
                    f"lost: no record of incident {event.incident} closing ({record.status if record else 'none'})",
                )
            )
        return
    trigger = expected_trigger(event)
    assert trigger is not None
    expected_id = run_id_for(NAME, trigger)
    own = [r for r in runs_by_key.get(key, []) if not r.trigger_id.startswith("replay:")]
    strays = [r.id for r in own if r.id != expected_id]
    if strays:
        report.violations.append(
            Violation(key, f"runs {', '.join(strays)} besides {expected_id}: done twice")
        )
        report.done_twice += 1
    run = next((r for r in own if r.id == expected_id), None)
    if run is None:
        if event.kind == "alert_open":
            record = store.get_event(record_id("alerts", trigger))
            if record is not None and record.status == "ignored":
                report.ignored += 1
                return
        report.lost += 1
        report.violations.append(Violation(key, f"lost: no run {expected_id} for {event.kind} {trigger}"))
        return
    exhausted = run.status == RunStatus.failed and run.error is not None and run.error.transient
    if exhausted and event.kind in SCHEDULED_KINDS + ("alert_open",) and not letters:
        report.lost += 1
        report.violations.append(
            Violation(
                key, f"run {run.id} failed transiently after its deliveries and no dead letter holds it"
            )
        )
    if event.kind == "doom" and not exhausted:
        report.violations.append(Violation(key, f"doomed run {run.id} ended {run.status.value}"))
    _check_target([run], key, targets, report, after_replay=False)


def _rejections(store: Snapshot, event: SoakEvent, messages: dict[str, list[str]]) -> list[str]:
    """Rejection records of a poison event: keyed by its message id, or by its idempotency key
    when the message named one before the part that is wrong."""
    found = []
    for key in [*messages.get(event.key, []), event.key]:
        record = store.get_event(record_id("scheduled", key))
        if record is not None and record.status == "rejected":
            found.append(record.id)
    return found


def _check_target(runs: list[Run], key: str, targets: Path, report: Report, *, after_replay: bool) -> None:
    mine = [r for r in runs if str(r.params.get("key", "")) == key]
    applied = [
        r
        for r in mine
        if r.status == RunStatus.succeeded and any(a.status == ActionStatus.applied for a in r.actions)
    ]
    path = target_path(targets, key)
    present = path.exists()
    when = " after replay" if after_replay else ""
    if applied and not present:
        report.violations.append(
            Violation(key, f"run {applied[0].id} succeeded{when} but its target is missing")
        )
    elif not applied and present:
        left = json.loads(path.read_text()).get("run")
        statuses = ", ".join(f"{r.id} {r.status.value}" for r in mine) or "no run"
        report.violations.append(
            Violation(key, f"target changed by run {left}{when} although no run kept a change ({statuses})")
        )
