"""Continuous mode: the long-running controller (a GKE pod or a VM) that runs schedules itself.

Each tick the controller
- runs, through the runner, the most recent due slot of every configured schedule that it has
  not handled yet (after downtime that is one run per schedule, not one per missed slot); the
  slot's trigger id makes the runner's dedupe collapse concurrent replicas onto one execution;
- optionally (``watch``) evaluates the alert thresholds against the metrics source of the
  automation that handles breaches (the performance automation among the built-ins) and starts
  one focused run of it per breach episode (``orchestra.registry.breach_request``);
- periodically recovers runs whose owner died (expired lease) and expires old approvals.

Runs execute on a worker thread while the loop thread keeps beating (for ``/healthz``) and
listening for a stop request. On stop (SIGTERM) the run in hand may finish within a grace period
(the runner's heartbeat keeps its lease meanwhile); if it does not, a run still analyzing is
released (``queued``, no lease) so another replica claims it at once, and a run that was applying
is left to lease expiry, whose recovery verifies or rolls back and never applies twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol

from .automation import BreachEvent
from .clock import Clock, isoformat
from .config import Config, ThresholdRule
from .errors import InputError, OrchestraError, TransientError
from .health import Check, HealthReport, Status, check_health
from .inputs import Origin
from .models import Mode, Run, RunPhase, RunStatus, TriggerKind, run_id_for
from .registry import NO_BREACH_HANDLER, Registry, breach_request
from .runner import Runner, RunOutcome, RunRequest
from .scheduling import Schedule, Slot

log = logging.getLogger("orchestra.controller")


# --------------------------------------------------------------------------- metrics watch


class SeriesLike(Protocol):
    """What the watch needs of a series: epoch-millisecond times and values, aligned."""

    name: str
    t_ms: Any
    values: Any


class MetricsReader(Protocol):
    """The part of ``orchestra.metrics.base.MetricsSource`` the watch uses."""

    def describe(self) -> str: ...

    def fetch(
        self,
        service: str,
        metrics: Sequence[str],
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> Mapping[str, SeriesLike]: ...


@dataclass(frozen=True)
class Breach:
    rule: str
    service: str
    metric: str
    threshold: float
    for_minutes: float
    episode_start: dt.datetime
    last_sample_at: dt.datetime
    last_value: float
    open_start: bool = False
    """The breaching run reaches the first sample read: the episode may have begun earlier."""

    @property
    def trigger_id(self) -> str:
        return watch_trigger_id(self.rule, self.service, self.episode_start)


def watch_trigger_id(rule: str, service: str, episode_start: dt.datetime) -> str:
    return f"watch:{rule}:{service}:{isoformat(episode_start)}"


def _ms_to_dt(ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=int(ms))


def _ms(when: dt.datetime) -> int:
    return int(round(when.timestamp() * 1000))


def evaluate_rule(
    rule_name: str,
    rule: ThresholdRule,
    service: str,
    series: SeriesLike,
    now: dt.datetime,
    *,
    max_staleness: dt.timedelta,
) -> Breach | None:
    """A breach is a run of consecutive samples above the threshold, ending with the latest
    sample, that spans at least ``for_minutes`` (a Cloud Monitoring threshold condition with that
    duration). Its episode starts at the first sample of the run. Stale data (latest sample older
    than ``max_staleness``) never breaches: absence of data is not evidence of a problem."""
    times = [int(t) for t in series.t_ms]
    values = [float(v) for v in series.values]
    now_ms = _ms(now)
    last = len(times) - 1
    while last >= 0 and times[last] > now_ms:  # ignore samples stamped in the future
        last -= 1
    if last < 0 or now_ms - times[last] > max_staleness.total_seconds() * 1000:
        return None
    if not values[last] > rule.above:  # NaN is never above
        return None
    first = last
    while first > 0 and values[first - 1] > rule.above:
        first -= 1
    if times[last] - times[first] < rule.for_minutes * 60_000:
        return None
    return Breach(
        rule=rule_name,
        service=service,
        metric=rule.metric,
        threshold=rule.above,
        for_minutes=rule.for_minutes,
        episode_start=_ms_to_dt(times[first]),
        last_sample_at=_ms_to_dt(times[last]),
        last_value=values[last],
        open_start=first == 0,
    )


@dataclass
class WatchSettings:
    """What the metrics watch looks at and how the focused runs are made."""

    reader: MetricsReader
    services: list[str]
    interval_seconds: float = 60.0
    lookback_minutes: float = 180.0
    max_staleness_minutes: float = 10.0
    # Extra params for the focused runs (e.g. the metric files a file-based watch read).
    run_params: dict[str, Any] = field(default_factory=dict)


class MetricsWatch:
    """Evaluates ``config.thresholds`` for each service and starts focused runs of the automation
    that handles breaches.

    One breach episode (rule, service, first breaching sample) starts one run: its trigger id is
    derived from the episode, so repeated evaluations, restarts within the lookback and other
    replicas all map to the same run. An episode's start is remembered while it lasts, so an
    episode longer than the lookback keeps its id within this process.
    """

    def __init__(self, config: Config, environment: str, settings: WatchSettings) -> None:
        self.config = config
        self.environment = environment
        self.settings = settings
        self.rules = {
            name: rule
            for name, rule in config.thresholds.items()
            if rule.environments is None or environment in rule.environments
        }
        self._episodes: dict[tuple[str, str], dt.datetime] = {}
        # Insertion-ordered, so trimming forgets the oldest episodes first.
        self._started: dict[str, None] = {}

    def evaluate(self, now: dt.datetime) -> list[Breach]:
        breaches: list[Breach] = []
        metrics = sorted({rule.metric for rule in self.rules.values()})
        if not metrics:
            return breaches
        start = now - dt.timedelta(minutes=self.settings.lookback_minutes)
        staleness = dt.timedelta(minutes=self.settings.max_staleness_minutes)
        for service in self.settings.services:
            try:
                series = self.settings.reader.fetch(service, metrics, start=start, end=now)
            except OrchestraError as exc:
                # One unreachable service or backend hiccup must not stop the other checks.
                log.warning("metrics watch: cannot read %s for %s: %s", ", ".join(metrics), service, exc)
                continue
            for name, rule in self.rules.items():
                key = (name, service)
                data = series.get(rule.metric)
                breach = None
                if data is not None and len(data.t_ms):
                    breach = evaluate_rule(name, rule, service, data, now, max_staleness=staleness)
                if breach is None:
                    self._episodes.pop(key, None)
                    continue
                known = self._episodes.get(key)
                if known is not None and breach.open_start and known < breach.episode_start:
                    # The read window cut a long episode short: keep the start first seen.
                    breach = dataclasses.replace(breach, episode_start=known)
                self._episodes[key] = breach.episode_start
                breaches.append(breach)
        return breaches

    def request_for(
        self, breach: Breach, *, mode: Mode, automation_level: int | None, owner: str, registry: Registry
    ) -> RunRequest | None:
        """The focused run of the automation that handles breaches (None when none does)."""
        rule = self.rules[breach.rule]
        event = BreachEvent(
            rule=breach.rule,
            metric=breach.metric,
            focus=rule.focus,
            environment=self.environment,
            service=breach.service,
            trigger_id=breach.trigger_id,
            requested_by=f"controller:{owner}",
            source_event=(
                f"{breach.metric} {breach.last_value:g} > {breach.threshold:g} since "
                f"{isoformat(breach.episode_start)} (rule {breach.rule}, {breach.for_minutes:g} min)"
            ),
        )
        return breach_request(
            registry,
            self.config,
            event,
            mode=mode,
            automation_level=automation_level,
            origin=Origin.local,  # the controller's own configuration names its inputs
            extra_params=self.settings.run_params,
        )

    def new_breaches(self, now: dt.datetime) -> list[Breach]:
        """Breaches whose episode has not been handed to the runner by this process yet."""
        return [b for b in self.evaluate(now) if b.trigger_id not in self._started]

    def mark_started(self, breach: Breach) -> None:
        self._started[breach.trigger_id] = None
        if len(self._started) > 10_000:  # bounded memory for a process that runs for months
            self._started = dict.fromkeys(list(self._started)[-5_000:])


# --------------------------------------------------------------------------- the controller


class _Worker:
    """One long-lived daemon thread that executes runs, so store connections (one per thread for
    SQLite) are reused, and a run still in hand never keeps the process from exiting."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], threading.Event]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[[], None]) -> threading.Event:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="controller-runs", daemon=True)
            self._thread.start()
        done = threading.Event()
        self._jobs.put((fn, done))
        return done

    def _loop(self) -> None:
        while True:
            fn, done = self._jobs.get()
            try:
                fn()
            finally:
                done.set()


@dataclass
class ControllerOptions:
    environment: str
    mode: Mode = Mode.apply
    automation_level: int | None = None
    tick_seconds: float = 30.0
    grace_seconds: float = 25.0
    recover_seconds: float = 300.0
    """How often to recover runs whose owner died; 0 turns recovery off."""


@dataclass
class Submitted:
    """What one handed-over request became (``outcome`` is None if it could not be recorded)."""

    request: RunRequest
    outcome: RunOutcome | None = None
    error: str | None = None
    transient: bool = False
    """The error may go away: the request stays due and is tried again next tick."""
    released: bool = False

    @property
    def run(self) -> Run | None:
        return self.outcome.run if self.outcome else None


class Controller:
    def __init__(
        self,
        runner: Runner,
        schedules: Iterable[Schedule],
        options: ControllerOptions,
        *,
        watch: MetricsWatch | None = None,
        clock: Clock | None = None,
        stop: threading.Event | None = None,
        on_submitted: Callable[[Submitted], None] | None = None,
    ) -> None:
        self.runner = runner
        self.schedules = list(schedules)
        self.options = options
        self.watch = watch
        self.clock = clock or runner.clock
        self.stop_event = stop or threading.Event()
        self.on_submitted = on_submitted or (lambda submitted: None)
        # The last slot handed to the runner per schedule; None until the first tick, which then
        # runs the latest due slot unless a run for it already exists.
        self._handled: dict[tuple[str, str], dt.datetime] = {}
        self._next_watch: dt.datetime | None = None
        self._next_recover: dt.datetime | None = None
        self.last_beat: dt.datetime = self.clock.now()
        self.in_hand: str | None = None
        self._worker = _Worker()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ liveness
    def beat(self) -> None:
        self.last_beat = self.clock.now()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def request_stop(self) -> None:
        self.stop_event.set()

    def loop_alive(self, now: dt.datetime | None = None) -> bool:
        now = now or self.clock.now()
        return (now - self.last_beat).total_seconds() <= 2 * self.options.tick_seconds + 30

    # ------------------------------------------------------------------ schedules
    def due_slots(self, now: dt.datetime) -> list[Slot]:
        due: list[Slot] = []
        for schedule in self.schedules:
            slot = schedule.latest_due(now)
            handled = self._handled.get(schedule.key)
            if handled is None or slot.at > handled:
                due.append(slot)
        return due

    def slot_request(self, slot: Slot) -> RunRequest:
        return RunRequest(
            task=slot.task,
            environment=slot.environment,
            mode=self.options.mode,
            automation_level=self.options.automation_level,
            trigger_kind=TriggerKind.scheduled,
            trigger_id=slot.trigger_id,
            requested_by=f"controller:{self.runner.owner}",
            origin=Origin.local,  # the controller's own configuration names its inputs
            source_event=f"schedule {slot.task} {isoformat(slot.at)}",
        )

    def next_wakeup(self, now: dt.datetime) -> float:
        """Seconds until something is due, capped at the tick (so liveness beats stay regular)."""
        candidates = [self.options.tick_seconds]
        for schedule in self.schedules:
            candidates.append((schedule.next_after(now).at - now).total_seconds())
        for when in (self._next_watch, self._next_recover):
            if when is not None:
                candidates.append((when - now).total_seconds())
        return max(0.05, min(candidates))

    # ------------------------------------------------------------------ one pass
    def tick(self) -> list[Submitted]:
        """Run everything due now; returns what was handed to the runner."""
        self.beat()
        done: list[Submitted] = []
        now = self.clock.now()
        for slot in self.due_slots(now):
            if self.stopping:
                return done
            submitted = self._submit(self.slot_request(slot))
            done.append(submitted)
            if not submitted.transient:
                # Recorded, rejected for good, or released for another replica: this slot is
                # handled here. After a transient failure it stays due for the next tick, where
                # the runner treats it as a redelivery (bounded by runner.retry.max_deliveries).
                self._handled[(slot.task, slot.environment)] = slot.at
        if self.watch is not None and not self.stopping:
            done.extend(self._watch(now))
        if self.options.recover_seconds > 0 and not self.stopping:
            self._recover(now)
        return done

    def _watch(self, now: dt.datetime) -> list[Submitted]:
        assert self.watch is not None
        if self._next_watch is not None and now < self._next_watch:
            return []
        self._next_watch = now + dt.timedelta(seconds=self.watch.settings.interval_seconds)
        done = []
        for breach in self.watch.new_breaches(now):
            if self.stopping:
                break
            request = self.watch.request_for(
                breach,
                mode=self.options.mode,
                automation_level=self.options.automation_level,
                owner=self.runner.owner,
                registry=self.runner.registry,
            )
            if request is None:
                log.warning(
                    "%s of %s above %g: %s",
                    breach.metric,
                    breach.service,
                    breach.threshold,
                    NO_BREACH_HANDLER,
                )
                self.watch.mark_started(breach)
                continue
            log.warning(
                "%s of %s above %g for %g min since %s: starting a focused %s run",
                breach.metric,
                breach.service,
                breach.threshold,
                breach.for_minutes,
                isoformat(breach.episode_start),
                request.task,
            )
            submitted = self._submit(request)
            done.append(submitted)
            if not submitted.transient:
                self.watch.mark_started(breach)
        return done

    def _recover(self, now: dt.datetime) -> None:
        if self._next_recover is not None and now < self._next_recover:
            return
        self._next_recover = now + dt.timedelta(seconds=self.options.recover_seconds)
        try:
            for run in self.runner.recover():
                log.warning("recovered run %s (%s): now %s", run.id, run.task, run.status)
        except OrchestraError as exc:
            log.warning("recovery pass failed: %s", exc)

    # ------------------------------------------------------------------ execution
    def _submit(self, request: RunRequest) -> Submitted:
        """Hand one request to the runner on a worker thread and wait for it, beating and
        honouring a stop request (grace period, then release)."""
        submitted = Submitted(request)
        run_id = run_id_for(request.task, request.trigger_id or "")

        def work() -> None:
            try:
                submitted.outcome = self.runner.submit(request)
            except TransientError as exc:
                submitted.error = f"transient: {exc}"
                submitted.transient = True
            except InputError as exc:
                submitted.error = f"rejected: {exc}"
            except OrchestraError as exc:
                submitted.error = f"{type(exc).__name__}: {exc}"
                submitted.transient = exc.transient
            except Exception as exc:
                log.exception("run %s raised", run_id)
                submitted.error = f"{type(exc).__name__}: {exc}"

        finished = self._worker.run(work)
        with self._lock:
            self.in_hand = run_id
        deadline: dt.datetime | None = None
        while not finished.is_set():
            finished.wait(timeout=1.0)
            self.beat()
            if self.stopping and not finished.is_set():
                now = self.clock.now()
                if deadline is None:
                    deadline = now + dt.timedelta(seconds=self.options.grace_seconds)
                    log.warning(
                        "stop requested: letting run %s finish (up to %gs)",
                        run_id,
                        self.options.grace_seconds,
                    )
                elif now >= deadline:
                    submitted.released = self.release(run_id)
                    if submitted.error is None and submitted.outcome is None:
                        submitted.error = "stopped before the run finished"
                        # Not released means left to lease expiry and recovery: either way
                        # this process is done with it.
                    break
        with self._lock:
            self.in_hand = None
        self._log_submitted(submitted, run_id)
        self.on_submitted(submitted)
        return submitted

    def _log_submitted(self, submitted: Submitted, run_id: str) -> None:
        run = submitted.run
        if run is not None:
            dup = " (already handled elsewhere)" if submitted.outcome and submitted.outcome.duplicate else ""
            why = (
                f" ({run.error.type}: {run.error.message})"
                if run.error
                else (f" ({run.reason})" if run.reason else "")
            )
            level = (
                logging.WARNING if run.status in (RunStatus.failed, RunStatus.rolled_back) else logging.INFO
            )
            log.log(level, "run %s %s: %s%s%s", run.id, submitted.request.trigger_id, run.status, why, dup)
        elif submitted.error:
            log.warning("run %s %s: %s", run_id, submitted.request.trigger_id, submitted.error)

    def release(self, run_id: str) -> bool:
        """Give the run in hand back so another replica can take it; True if it was released."""
        try:
            run = self.runner.store.get_run(run_id)
        except OrchestraError as exc:
            log.error("cannot release run %s (store: %s); its lease will expire", run_id, exc)
            return False
        owner = self.runner.owner
        if (
            run is None
            or run.status != RunStatus.running
            or run.lease is None
            or not self.runner.holds(run.lease)
        ):
            return False
        if run.phase != RunPhase.analyzing:
            # Re-executing from the start could apply twice: lease expiry sends it to recovery,
            # which verifies what was applied and rolls back if needed.
            log.warning(
                "run %s is %s: left for recovery when its lease expires at %s",
                run_id,
                run.phase,
                isoformat(run.lease.expires_at),
            )
            return False
        released = run.model_copy(deep=True)
        now = self.clock.now()
        released.status = RunStatus.queued
        released.lease = None
        released.updated_at = now
        released.reason = f"released by {owner} at shutdown; the next delivery or replica runs it"
        try:
            ok = self.runner.store.save_run(released, expect_owner=run.lease.owner)
        except OrchestraError as exc:
            log.error("cannot release run %s (store: %s); its lease will expire", run_id, exc)
            return False
        if ok:
            log.warning("released run %s at shutdown", run_id)
        return ok

    # ------------------------------------------------------------------ the loop
    def run_forever(self) -> None:
        """Tick until stopped. Exceptions in one tick are logged and the loop goes on."""
        log.info(
            "controller %s: %d schedule(s) for %s%s",
            self.runner.owner,
            len(self.schedules),
            ", ".join(sorted({s.environment for s in self.schedules})) or "nothing",
            "; watching metrics" if self.watch else "",
        )
        while not self.stopping:
            try:
                self.tick()
            except Exception:
                log.exception("controller tick failed; continuing")
            if self.stopping:
                break
            self.beat()
            self.stop_event.wait(self.next_wakeup(self.clock.now()))
        log.info("controller %s stopped", self.runner.owner)

    # ------------------------------------------------------------------ health
    def health(self, config: Config) -> tuple[int, HealthReport]:
        now = self.clock.now()
        report = check_health(config, self.runner.store, self.clock, self.runner.registry)
        alive = self.loop_alive(now)
        detail = (
            f"last beat {isoformat(self.last_beat)}"
            + (f", run in hand {self.in_hand}" if self.in_hand else "")
            + (", stopping" if self.stopping else "")
        )
        report.checks.append(
            Check(
                name="controller_loop",
                ok=alive,
                detail=detail if alive else f"loop stalled: {detail}",
                data={"schedules": len(self.schedules), "watching": self.watch is not None},
            )
        )
        if not alive:
            report.status = Status.unhealthy
        code = 503 if report.status == Status.unhealthy else 200
        return code, report


class HealthServer:
    """``GET /healthz`` for liveness probes: 200 with the health report while the loop is alive
    and the store reachable, 503 otherwise. One stdlib server thread: probes are rare and
    sequential, and one thread keeps one store connection."""

    def __init__(self, controller: Controller, config: Config, host: str, port: int) -> None:
        self.controller = controller
        self.config = config
        handler = self._handler()
        self.server = HTTPServer((host, port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="healthz", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/healthz", "/health"):
                    self._send(404, {"error": f"no such path {self.path!r}; try /healthz"})
                    return
                try:
                    code, report = outer.controller.health(outer.config)
                    body: dict[str, Any] = report.model_dump(mode="json")
                except Exception as exc:  # noqa: BLE001 - a probe must get an answer, not a reset
                    code, body = 503, {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}
                self._send(code, body)

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("healthz: " + format, *args)

        return Handler

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
