"""The runner: every trigger (CLI, functions, hooks, continuous mode) goes through here.

It makes automations safe on an at-least-once, crash-prone platform:
- dedupe: a run's id is derived from (task, trigger id) and claimed with an atomic create, so a
  redelivered trigger returns the existing run instead of executing again;
- leases: a running run holds a lease renewed by a heartbeat; a run whose lease expired is taken
  over by compare-and-set and retried, failed, or (if it was applying) verified or rolled back;
- retries: transient errors are retried in-process with full-jitter exponential backoff, then
  surfaced (``TransientError``) so the platform redelivers; permanent errors are recorded;
- breakers: one per (automation, environment); while open, runs are recorded as skipped;
- gates: automation level and environment decide which actions apply, wait, or are skipped;
- rollback: rollback data is stored before apply; failed apply or verification rolls back;
- verification windows: a change whose verification is inconclusive (nothing worse, nothing proven
  yet) leaves its run ``awaiting_verification``; the next run of the same automation in the same
  environment (and every ``recover`` pass) checks it again until it passes, fails (rolled back),
  or the environment's window ends and its ``on_inconclusive`` policy rolls back or accepts it.

Happy path store traffic: one query for verifications still pending (only for automations that
can apply changes: one that cannot never leaves a change to verify), one breaker read (none while
this runner trusts a breaker it read closed), one create (the dedupe claim, already ``running``),
one final write. On Firestore the final write is a single round trip (compare-and-set against the
version the create wrote), and a trigger's event record (``RunRequest.record``) is committed with
it in the same batch.

Deferred claims: for an automation whose analysis only reads (``Automation.read_only_analysis``)
the claim is deferred. Nothing is stored while it analyses; the claim (the run ``running`` under a
lease, with the trigger's own claim) is created before its first change (the checkpoint that
stores an action's rollback data) or, by the heartbeat, once the run has lasted
``runner.lease.claim_after_seconds``, so long runs stay visible and recoverable. A run that ends
unclaimed (it changed nothing) is created in its final state, with the trigger's claim and event
record, in one commit that requires that none of the run and the claim exists: a duplicate
delivery loses that condition, writes nothing, and is handled as a redelivery (reported as a
duplicate, or a retry of a transient failure). A crash before the claim leaves nothing behind:
the redelivery analyses again, with nothing to undo.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from . import announcements
from .announcements import Announcer
from .automation import Automation, DecisionContext, RunContext, Verification
from .breaker import (
    CircuitBreaker,
    ClosedCache,
    Permit,
    automation_breaker_name,
    is_bad_input,
    is_params_error,
)
from .clock import Clock, IdSource, RandomIds, SystemClock, process_owner
from .config import Config, format_errors
from .errors import (
    IllegalTransition,
    InputError,
    LeaseLost,
    NotFound,
    OrchestraError,
    TransientError,
    is_transient,
)
from .gates import Verdict, decide
from .inputs import InputPolicy, Origin, validation_context
from .models import (
    Action,
    ActionStatus,
    Decision,
    DecisionKind,
    EventRecord,
    Lease,
    Mode,
    Run,
    RunError,
    RunPhase,
    RunStatus,
    TriggerKind,
    VerificationRecord,
    run_id_for,
)
from .registry import Registry, announce_run_finished
from .registry import registry as default_registry
from .store.base import EVENTS, RUNS, StateStore, Write

if TYPE_CHECKING:
    # Imported where used: approvals are not on the event path.
    from .approvals import Decided, Pending

log = logging.getLogger("orchestra.runner")
T = TypeVar("T")
# Statuses a run rests in without an owner, waiting for someone (or something) to decide.
WAITING_STATUSES = frozenset({RunStatus.awaiting_approval, RunStatus.awaiting_verification})


@dataclass
class RunRequest:
    task: str
    environment: str | None = None
    mode: Mode = Mode.analyze
    automation_level: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    trigger_kind: TriggerKind = TriggerKind.manual
    trigger_id: str | None = None
    requested_by: str = "unknown"
    source_event: str | None = None
    # Remote unless the trigger says otherwise: only local triggers may name local files.
    origin: Origin = Origin.remote
    # The trigger's event record, built from the run as it ends (None: none to write then). It is
    # saved with the run's final state (one commit on Firestore) when this request executes the
    # run; ``RunOutcome.record`` says whether it was.
    record: Callable[[Run], EventRecord | None] | None = None
    # The trigger's claim on its id (a Pub/Sub message id), created in the same commit as the run.
    claim: Claim | None = None


@dataclass
class Claim:
    """A document created in the same commit as a run: a trigger's claim on its id, so a
    delivery costs one write for both. When the claim or the run exists already, ``confirm`` is
    called: True when this trigger may go on (the claim is its own, made now or by an earlier
    delivery of the same trigger), False when it must not run (``ClaimRefused`` is raised and
    nothing was executed)."""

    collection: str
    doc_id: str
    data: dict[str, Any]
    confirm: Callable[[], bool]


class ClaimRefused(Exception):
    """The trigger's claim belongs to another trigger: its run was not created or executed."""


class _ClaimLost(BaseException):
    """A deferred claim found its run (or its trigger's claim) taken: this delivery is a
    duplicate. A BaseException so that no handler of the automation's errors records it as the
    run's failure; :meth:`Runner.submit` handles it."""


@dataclass
class _Deferred:
    """A run whose claim is deferred (see the module docstring): what the claim needs, and what
    became of it."""

    claim: Claim | None
    started: dt.datetime
    claimed: bool = False
    refused: bool = False  # the trigger's claim is another trigger's
    lost: bool = False  # the run exists: another delivery of the trigger has it


@dataclass
class RunOutcome:
    run: Run
    duplicate: bool = False
    # The request's event record, when it was saved with the run.
    record: EventRecord | None = None

    @property
    def failed(self) -> bool:
        return self.run.status == RunStatus.failed


@dataclass
class _Record:
    """A request's event record on its way to the run's final write."""

    build: Callable[[Run], EventRecord | None] | None
    saved: EventRecord | None = None


class _Heartbeat:
    """Renews a run's lease while the automation works, every ``runner.lease.heartbeat_seconds``,
    from the runner's heartbeat thread (:class:`_Heartbeats`): entering costs no thread start."""

    def __init__(self, runner: Runner, run: Run) -> None:
        self.runner = runner
        self.run = run
        self.lost = False
        self.due = 0.0
        lease = runner.config.runner.lease
        # A deferred claim is made by the first beat, once the run has lasted claim_after_seconds.
        self.first_seconds = (
            min(lease.heartbeat_seconds, lease.claim_after_seconds)
            if id(run) in runner._deferred
            else lease.heartbeat_seconds
        )
        self._active = True
        self._lock = threading.Lock()  # held while renewing: leaving waits for a renewal in flight

    def __enter__(self) -> _Heartbeat:
        if self.runner.heartbeat_in_background:
            self.runner._heartbeats.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner.heartbeat_in_background:
            self.runner._heartbeats.remove(self)
        with self._lock:
            self._active = False

    def beat(self) -> None:
        with self._lock:
            if not self._active or self.lost:
                return
            try:
                if not self.runner.renew_lease(self.run):
                    self.lost = True
                    log.warning("lease on run %s was taken over by another owner", self.run.id)
            except OrchestraError as exc:
                log.warning("heartbeat for run %s failed: %s", self.run.id, exc)


class _Heartbeats:
    """One daemon thread per runner, started with its first run, renewing the leases of the runs
    in progress when each is due."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[int, _Heartbeat] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, beat: _Heartbeat) -> None:
        beat.due = time.monotonic() + beat.first_seconds
        with self._lock:
            self._beats[id(beat)] = beat
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="heartbeats", daemon=True)
                self._thread.start()
        self._wake.set()

    def remove(self, beat: _Heartbeat) -> None:
        with self._lock:
            self._beats.pop(id(beat), None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                beats = list(self._beats.values())
            if not beats:
                self._wake.wait()
                self._wake.clear()
                continue
            for beat in beats:
                if beat.due <= time.monotonic():
                    beat.beat()
                    beat.due = time.monotonic() + beat.runner.config.runner.lease.heartbeat_seconds
            self._wake.wait(max(0.0, min(b.due for b in beats) - time.monotonic()))
            self._wake.clear()


class Runner:
    def __init__(
        self,
        config: Config,
        store: StateStore,
        *,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        owner: str | None = None,
        registry: Registry | None = None,
        heartbeat_in_background: bool = True,
        progress: Callable[[str], None] | None = None,
        announcer: Announcer | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock or SystemClock()
        self.ids = ids or RandomIds()
        self.owner = owner or process_owner()
        self.registry = registry or default_registry
        self.heartbeat_in_background = heartbeat_in_background
        self.progress = progress or (lambda message: None)
        self._save_lock = threading.RLock()
        self._heartbeats = _Heartbeats()
        self._announcer = announcer
        # Closed breakers this instance read, trusted for a few seconds (orchestra.breaker).
        self._closed_breakers = ClosedCache(config.runner.breaker.cache_seconds)
        # Runs in progress whose claim is deferred, by id(run) (guarded by _save_lock).
        self._deferred: dict[int, _Deferred] = {}

    @property
    def announcer(self) -> Announcer:
        """Where runs announce that they stopped (default: the process's announcer)."""
        return self._announcer or announcements.current()

    def _announce(self, run: Run) -> None:
        announcements.announce_safely(f"run {run.id} {run.status}", self.announcer.run_stopped, run)

    # ------------------------------------------------------------------ validation
    def validate(self, request: RunRequest) -> tuple[Automation, str, int, Any]:
        """Check a request before anything is stored; raises InputError with the field at fault."""
        automation = self.registry.create(request.task)
        env_name = request.environment or self.config.default_environment
        if env_name not in self.config.environments:
            raise InputError(
                f"unknown environment {env_name!r}; accepted: {', '.join(self.config.environments)}",
                where="environment",
            )
        env = self.config.environments[env_name]
        level = env.automation_level if request.automation_level is None else request.automation_level
        if not 0 <= level <= 3:
            raise InputError(f"must be 0-3, got {level}", where="automation_level")
        if level > env.max_automation_level:
            raise InputError(
                f"{level} exceeds the maximum {env.max_automation_level} configured for {env_name}",
                where="automation_level",
            )
        try:
            params = automation.Params.model_validate(
                request.params, context=self.input_context(request.origin)
            )
        except ValidationError as exc:
            raise InputError("; ".join(format_errors(exc, prefix="params")), where=request.task) from None
        return automation, env_name, level, params

    def input_context(self, origin: Origin) -> dict[str, Any]:
        """Validation context for parameter models: which local files this trigger may name."""
        return validation_context(InputPolicy.for_config(self.config, origin))

    # ------------------------------------------------------------------ submit
    @staticmethod
    def can_apply(automation: Automation) -> bool:
        """Whether ``automation`` can apply changes at all (it overrides ``apply``): one that
        cannot never has a change awaiting verification."""
        return type(automation).apply is not Automation.apply

    def submit(self, request: RunRequest) -> RunOutcome:
        automation, env_name, level, params = self.validate(request)
        # Earlier changes of this automation here whose verification could not tell yet are
        # checked again first: this run then analyses what they left (kept or rolled back).
        if self.can_apply(automation):
            self.recheck_verifications(task=request.task, environment=env_name)
        trigger_id = request.trigger_id or self.ids.new_id(f"{request.trigger_kind}-")
        now = self.clock.now()
        permit = self._breaker(request.task, env_name).before_call(self.owner)
        run = Run(
            id=run_id_for(request.task, trigger_id),
            task=request.task,
            trigger_kind=request.trigger_kind,
            trigger_id=trigger_id,
            environment=env_name,
            mode=request.mode,
            automation_level=level,
            requested_by=request.requested_by,
            # As validated: paths resolved, so recovery in another process reads the same files.
            params=params.model_dump(mode="json", exclude_unset=True),
            origin=request.origin,
            source_event=request.source_event,
            created_at=now,
            updated_at=now,
            expires_at=now + dt.timedelta(days=self.config.runner.retention.runs_days),
        )
        if permit.allowed:
            run.status = RunStatus.running
            run.started_at = now
            run.attempts = 1
            run.lease = self._new_lease(now)
        else:
            run.status = RunStatus.skipped
            run.finished_at = now
            run.phase = RunPhase.done
            run.reason = permit.reason
        if permit.allowed and automation.read_only_analysis:
            return self._submit_deferred(run, automation, permit, request)
        if not self._create(run, request.claim, permit):
            return self._handle_existing(run.id, automation, permit, request.record)
        if not permit.allowed:
            log.info("run %s skipped: %s", run.id, permit.reason, extra={"run_id": run.id, "task": run.task})
            self._announce(run)
            return RunOutcome(run)
        record = _Record(request.record)
        return RunOutcome(self._execute(run, automation, permit, record), record=record.saved)

    def _submit_deferred(
        self, run: Run, automation: Automation, permit: Permit, request: RunRequest
    ) -> RunOutcome:
        """Execute ``run`` with its claim deferred (see the module docstring)."""
        deferred = _Deferred(request.claim, run.created_at)
        record = _Record(request.record)
        with self._save_lock:
            self._deferred[id(run)] = deferred
        try:
            executed = self._execute(run, automation, permit, record)
        except _ClaimLost:
            if deferred.refused:
                self._breaker(run.task, run.environment).release_probe(self.owner, permit)
                raise ClaimRefused(
                    f"run {run.id}: the claim {deferred.claim.doc_id if deferred.claim else ''} "
                    "is another trigger's"
                ) from None
            log.info(
                "run %s: another delivery of trigger %s has it; this one is a duplicate",
                run.id,
                run.trigger_id,
                extra={"run_id": run.id, "task": run.task},
            )
            return self._handle_existing(run.id, automation, permit, request.record)
        finally:
            with self._save_lock:
                self._deferred.pop(id(run), None)
        return RunOutcome(executed, record=record.saved)

    def _claim_deferred(self, run: Run, deferred: _Deferred, event: EventRecord | None = None) -> None:
        """Create ``run`` as it is now (with the trigger's claim, and ``event`` put in the same
        commit), none of them existing. Raises :class:`_ClaimLost` when one exists. Called with
        ``_save_lock`` held."""
        data = run.model_dump(mode="json")
        extra = [Write(EVENTS, event.id, event.model_dump(mode="json"), put=True)] if event else []
        own = [Write(RUNS, run.id, data), *extra]
        claim = deferred.claim
        if claim is not None:
            if self.store.create_all([Write(claim.collection, claim.doc_id, claim.data), *own]):
                deferred.claimed = True
                return
            if not claim.confirm():
                deferred.refused = True
                raise _ClaimLost(run.id)
        if self.store.create_all(own):
            deferred.claimed = True
            return
        deferred.lost = True
        raise _ClaimLost(run.id)

    def _unclaimed(self, run: Run) -> _Deferred | None:
        """The deferred claim of ``run`` while it is not made yet (``_save_lock`` held); raises
        :class:`_ClaimLost` when the heartbeat found the run taken."""
        deferred = self._deferred.get(id(run))
        if deferred is None or deferred.claimed:
            return None
        if deferred.lost or deferred.refused:
            raise _ClaimLost(run.id)
        return deferred

    def _create(self, run: Run, claim: Claim | None, permit: Permit) -> bool:
        """Create ``run`` (with ``claim`` in the same commit); False when the run exists."""
        if claim is None:
            return self.store.create_run(run)
        both = [
            Write(claim.collection, claim.doc_id, claim.data),
            Write(RUNS, run.id, run.model_dump(mode="json")),
        ]
        if self.store.create_all(both):
            return True
        if not claim.confirm():
            self._breaker(run.task, run.environment).release_probe(self.owner, permit)
            raise ClaimRefused(f"run {run.id}: the claim {claim.doc_id} is another trigger's")
        return self.store.create_run(run)

    def _handle_existing(
        self,
        run_id: str,
        automation: Automation,
        permit: Permit,
        build_record: Callable[[Run], EventRecord | None] | None = None,
    ) -> RunOutcome:
        existing = self.store.get_run(run_id)
        if existing is None:  # deleted by retention between create and get
            raise TransientError(f"run {run_id} vanished while being claimed")
        now = self.clock.now()
        retry_cfg = self.config.runner.retry
        if existing.status == RunStatus.running and existing.lease and existing.lease.expires_at <= now:
            if not permit.allowed:
                return RunOutcome(existing, duplicate=True)
            taken = self._take_over(existing)
            if taken is not None:
                return RunOutcome(self._resume(taken, automation, permit))
        elif (
            permit.allowed
            and existing.status in (RunStatus.failed, RunStatus.queued)
            and (existing.status == RunStatus.queued or (existing.error and existing.error.transient))
            and existing.attempts < retry_cfg.max_deliveries
        ):
            # A redelivery after a transient failure: this is the platform's retry.
            claimed = self._claim_released(existing)
            if claimed is not None:
                record = _Record(build_record)
                return RunOutcome(self._execute(claimed, automation, permit, record), record=record.saved)
        return RunOutcome(existing, duplicate=True)

    # ------------------------------------------------------------------ leases
    def _new_lease(self, now: dt.datetime, holder: str | None = None) -> Lease:
        """A lease from ``now``: renewed under its ``holder``, else taken by a new execution.

        Each execution that claims or takes over a run holds the lease under its own name (this
        runner's owner and a token), not the process's: a process paused past its lease can
        receive the redelivery of the same run, and the redelivery's takeover must fence off the
        paused execution when it resumes, although both run in one process."""
        return Lease(
            owner=holder or f"{self.owner}#{self.ids.new_id()[:8]}",
            expires_at=now + dt.timedelta(seconds=self.config.runner.lease.seconds),
            heartbeat_at=now,
        )

    def holds(self, lease: Lease | None) -> bool:
        """Whether ``lease`` was taken by one of this runner's executions."""
        return lease is not None and (lease.owner == self.owner or lease.owner.startswith(f"{self.owner}#"))

    @staticmethod
    def _holder(run: Run) -> str | None:
        return run.lease.owner if run.lease else None

    def renew_lease(self, run: Run) -> bool:
        with self._save_lock:
            deferred = self._deferred.get(id(run))
            if deferred is not None and not deferred.claimed:
                if deferred.lost or deferred.refused:
                    return False
                now = self.clock.now()
                lasted = (now - deferred.started).total_seconds()
                if lasted < self.config.runner.lease.claim_after_seconds:
                    return True  # not claimed yet: no lease to renew
                run.lease = self._new_lease(now)
                run.updated_at = now
                try:
                    self._claim_deferred(run, deferred)
                except _ClaimLost:
                    return False
                log.info("run %s claimed after %.1f s", run.id, lasted, extra={"run_id": run.id})
                return True
            now = self.clock.now()
            holder = self._holder(run)
            run.lease = self._new_lease(now, holder)
            run.updated_at = now
            return self.store.save_run(run, expect_owner=holder)

    def _checkpoint(self, run: Run) -> None:
        with self._save_lock:
            run.updated_at = self.clock.now()
            deferred = self._unclaimed(run)
            if deferred is not None:
                # Before the first change: the run is claimed now, or this delivery is a duplicate.
                run.lease = self._new_lease(run.updated_at)
                self._claim_deferred(run, deferred)
                return
            if not self.store.save_run(run, expect_owner=self._holder(run)):
                # Not the caller's input: a fault the breaker counts.
                raise LeaseLost(f"run {run.id}: lease lost to another owner")

    def _take_over(self, stale: Run) -> Run | None:
        previous_owner = stale.lease.owner if stale.lease else None
        now = self.clock.now()
        taken = stale.model_copy(deep=True)
        taken.lease = self._new_lease(now)
        taken.updated_at = now
        if self.store.save_run(taken, expect_owner=previous_owner):
            log.warning(
                "took over run %s from %s (lease expired)",
                stale.id,
                previous_owner,
                extra={"run_id": stale.id},
            )
            taken.reason = f"lease of {previous_owner} expired; recovered by {self.owner}"
            return taken
        return None

    def _claim_released(self, run: Run) -> Run | None:
        now = self.clock.now()
        claimed = run.model_copy(deep=True)
        claimed.status = RunStatus.running
        claimed.phase = RunPhase.analyzing
        claimed.attempts += 1
        claimed.lease = self._new_lease(now)
        claimed.error = None
        claimed.updated_at = now
        return claimed if self.store.replace_run(claimed, expect_updated_at=run.updated_at) else None

    # ------------------------------------------------------------------ execution
    def _breaker(self, task: str, environment: str) -> CircuitBreaker:
        return CircuitBreaker(
            self.store,
            automation_breaker_name(task, environment),
            self.config.runner.breaker,
            self.clock,
            cache=self._closed_breakers,
        )

    def context(
        self, run: Run, automation: Automation, heartbeat: Callable[[], None] | None = None
    ) -> RunContext[Any, Any]:
        return RunContext(
            run=run,
            config=self.config,
            environment=self.config.environment(run.environment),
            # Validated once, when the configuration was checked (or on the first run of this
            # automation): the same model for every run.
            settings=self.config.settings_for(automation.name, automation.Settings),
            params=automation.Params.model_validate(run.params, context=self.input_context(run.origin)),
            store=self.store,
            clock=self.clock,
            ids=self.ids,
            log=logging.LoggerAdapter(log, {"run_id": run.id, "task": run.task}),
            heartbeat=heartbeat or (lambda: None),
            progress=self.progress,
            owner=self.owner,
        )

    def _with_retries(self, run: Run, fn: Callable[[], T]) -> T:
        """Call ``fn``; transient errors are retried up to ``runner.retry.attempts`` calls in all,
        each retry counted in ``run.attempts``; the last error is raised."""
        try:
            return fn()
        except Exception as exc:
            if self.config.runner.retry.attempts <= 1 or not is_transient(exc):
                raise
            first = exc
        # Only a call that failed transiently pays for the retry machinery (import and policy):
        # the happy path of every event is a single call.
        return self._retry_after(run, fn, first)

    def _retry_after(self, run: Run, fn: Callable[[], T], first: BaseException) -> T:
        from tenacity import Retrying, retry_if_exception, stop_after_attempt

        cfg = self.config.runner.retry

        def backoff(failed_calls: int) -> float:
            # Full jitter: uniform in [0, min(max, initial * 2^k)] after the k-th failed call
            # (k from 0), drawn from the injected source so tests can pin the schedule.
            return self.ids.random() * min(cfg.max_seconds, cfg.initial_seconds * 2 ** (failed_calls - 1))

        def count_attempt(exc: BaseException | None) -> None:
            run.attempts += 1
            log.warning("run %s: transient error, retrying: %s", run.id, exc, extra={"run_id": run.id})

        count_attempt(first)
        self.clock.sleep(backoff(1))
        # The first call is behind us: the policy counts the calls still allowed.
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(cfg.attempts - 1),
            wait=lambda state: backoff(state.attempt_number + 1),
            sleep=self.clock.sleep,
            before_sleep=lambda state: count_attempt(state.outcome.exception() if state.outcome else None),
            reraise=True,
        )
        return retrying(fn)

    def _execute(
        self, run: Run, automation: Automation, permit: Permit, record: _Record | None = None
    ) -> Run:
        breaker = self._breaker(run.task, run.environment)
        with _Heartbeat(self, run) as heartbeat:
            try:
                try:
                    ctx = self.context(run, automation, heartbeat=lambda: self.renew_lease(run))
                except ValidationError as exc:
                    if not is_params_error(exc, automation):
                        raise
                    # Parameters that no longer validate (a file gone since the request): the
                    # trigger's input, reported by field like any other bad input.
                    raise InputError("; ".join(format_errors(exc, prefix="params")), where=run.task) from None
                analysis = self._with_retries(run, lambda: automation.analyze(ctx))
                run.findings = analysis.findings
                run.actions = analysis.actions
                run.summary = analysis.summary
                if run.mode == Mode.apply and run.actions:
                    self._gate_and_apply(run, automation, ctx)
                else:
                    run.status = RunStatus.succeeded
            except Exception as exc:
                transient = is_transient(exc)
                bad_input = is_bad_input(exc, automation)
                run.status = RunStatus.failed
                run.error = RunError(
                    type=type(exc).__name__,
                    message=str(exc)[:2000],
                    transient=transient,
                    bad_input=bad_input,
                )
                self._finish(run, heartbeat.lost, record)
                if bad_input:
                    # The caller's fault says nothing about the automation or its dependencies:
                    # not counted, and a probe it held is handed back for the next trigger.
                    breaker.release_probe(self.owner, permit)
                else:
                    breaker.record_failure(f"{type(exc).__name__}: {exc}", permit)
                if transient:
                    raise TransientError(
                        f"run {run.id} ({run.task}) failed after {run.attempts} attempts: {exc}"
                    ) from exc
                return run
        self._finish(run, heartbeat.lost, record)
        if run.status == RunStatus.rolled_back:
            breaker.record_failure(run.reason or "rolled back", permit)
        else:
            breaker.record_success(permit)
        return run

    def _finish(self, run: Run, lease_lost: bool, record: _Record | None = None) -> None:
        with self._save_lock:
            now = self.clock.now()
            if run.status == RunStatus.awaiting_verification:
                run.phase = RunPhase.verifying
            elif run.status != RunStatus.awaiting_approval:
                run.phase = RunPhase.done
            if run.status not in WAITING_STATUSES:
                run.finished_at = now
            holder = self._holder(run) or self.owner
            run.lease = None
            run.updated_at = now
            event = record.build(run) if record is not None and record.build is not None else None
            deferred = self._unclaimed(run)
            if deferred is not None:
                # Changed nothing and never claimed: created now, in its final state, in one commit.
                self._claim_deferred(run, deferred, event)
            elif lease_lost or not self.store.save_run(run, expect_owner=holder, event=event):
                log.error(
                    "run %s: lease lost before the result could be recorded; the new owner decides",
                    run.id,
                    extra={"run_id": run.id},
                )
                stored = self.store.get_run(run.id)
                if stored is not None:
                    run.__dict__.update(stored.__dict__)
                return
            if record is not None:
                record.saved = event
        # Plugins that handle run_finished (a deployment waiting for suites) hear of it now.
        announce_run_finished(self, run)
        self._announce(run)

    def _gate_and_apply(self, run: Run, automation: Automation, ctx: RunContext) -> None:
        env = self.config.environment(run.environment)
        to_apply: list[Action] = []
        for action in run.actions:
            decision = decide(action, run.automation_level, run.environment, env)
            action.reason = decision.reason
            if decision.verdict == Verdict.apply:
                to_apply.append(action)
            elif decision.verdict == Verdict.await_approval:
                action.status = ActionStatus.awaiting_approval
            else:
                action.status = ActionStatus.skipped
        if to_apply and not self._apply_and_verify(run, automation, ctx, to_apply):
            return
        self._settle_status(run)

    def _settle_status(self, run: Run) -> None:
        waiting = [a for a in run.actions if a.status == ActionStatus.awaiting_approval]
        if waiting:
            run.status = RunStatus.awaiting_approval
            run.approval_expires_at = self.clock.now() + dt.timedelta(
                hours=self.config.runner.approval_ttl_hours
            )
            run.reason = f"{len(waiting)} action(s) await approval: " + "; ".join(
                a.reason or "" for a in waiting
            )
        else:
            run.status = RunStatus.succeeded

    def _apply_and_verify(
        self, run: Run, automation: Automation, ctx: RunContext, actions: list[Action]
    ) -> bool:
        run.phase = RunPhase.applying
        applied: list[Action] = []
        for index, action in enumerate(actions):
            action.rollback = automation.prepare(ctx, action) or {}
            self._checkpoint(run)  # rollback data is durable before anything changes
            try:
                action.result = automation.apply(ctx, action) or {}
            except Exception as exc:  # noqa: BLE001 - a failed apply is rolled back and recorded
                action.status = ActionStatus.failed
                action.reason = f"apply failed: {type(exc).__name__}: {exc}"
                # All or nothing: every action applied before this one is undone too, newest first.
                self._rollback(run, automation, ctx, [*applied, action])
                for later in actions[index + 1 :]:
                    later.status = ActionStatus.skipped
                    later.reason = f"not applied: action {action.id} failed before it"
                run.reason = f"action {action.id} failed to apply ({exc}); rolled back"
                return False
            action.status = ActionStatus.applied
            action.applied_at = self.clock.now()
            applied.append(action)
        run.phase = RunPhase.verifying
        self._checkpoint(run)
        return self._verify(run, automation, ctx, applied)

    def _verify(
        self,
        run: Run,
        automation: Automation,
        ctx: RunContext,
        applied: list[Action],
        check: list[Action] | None = None,
    ) -> bool:
        """Verify ``check`` (default: all of ``applied``). True when every check passed, or an
        inconclusive one outlived its window where the environment accepts such changes. A failed
        check, or an inconclusive one whose window ended where the policy is rollback, rolls back
        all of ``applied``; inconclusive ones inside their window leave the run
        ``awaiting_verification``. Both return False."""
        env = self.config.environment(run.environment)
        policy = env.on_inconclusive
        window = dt.timedelta(minutes=env.verification.window_minutes)
        waiting: list[tuple[Action, dt.datetime, str]] = []
        expired: list[tuple[Action, dt.datetime, str]] = []
        rechecked_ok: list[Action] = []
        for action in applied if check is None else check:
            try:
                verification = automation.verify(ctx, action)
            except Exception as exc:  # noqa: BLE001 - an unverifiable change is treated as failed
                verification = Verification(ok=False, evidence={"error": f"{type(exc).__name__}: {exc}"})
            now = self.clock.now()  # after verify: it may wait on the clock for fresh data
            previous = VerificationRecord.of(action)
            ends = (previous.window_ends_at if previous else None) or (action.applied_at or now) + window
            attempts = previous.attempts + 1 if previous else 1
            if verification.inconclusive:
                action.verified = None
                why = _inconclusive_why(verification.evidence)
                if now < ends:
                    self._record(action, verification, None, ends, now, attempts)
                    waiting.append((action, ends, why))
                else:
                    self._record(action, verification, f"policy:{policy}", ends, now, attempts)
                    expired.append((action, ends, why))
                continue
            action.verified = verification.ok
            self._record(action, verification, "checks", ends, now, attempts)
            if not verification.ok:
                self._rollback(run, automation, ctx, applied)
                self._close_pending(
                    applied, "checks", f"rolled back with {action.id}, whose verification failed"
                )
                run.reason = f"verification of {action.id} failed; rolled back: {verification.evidence}"
                return False
            if attempts > 1:
                rechecked_ok.append(action)
        where = f"{run.environment}'s policy (verification.on_inconclusive: {policy})"
        if expired and policy == "rollback":
            self._rollback(run, automation, ctx, applied)
            for action, ends, _ in expired:
                action.reason = f"verification still inconclusive when its window ended at {ends.isoformat()}"
            self._close_pending(
                applied, "policy:rollback", "rolled back with the changes whose window ended undecided"
            )
            run.reason = (
                f"verification of {_listed(expired)} still inconclusive when its window ended at "
                f"{expired[0][1].isoformat()}; rolled back by {where}"
            )
            return False
        for action, ends, _ in expired:
            action.reason = f"verification still inconclusive when its window ended at {ends.isoformat()}; kept by {where}"
        if waiting:
            for action, ends, why in waiting:
                action.reason = (
                    f"verification pending: inconclusive ({why}); checked again until {ends.isoformat()}"
                )
            run.status = RunStatus.awaiting_verification
            run.reason = (
                f"verification of {_listed(waiting)} inconclusive; checked again by the next {run.task} "
                f"run in {run.environment} or `orchestra runs recover` until "
                f"{max(ends for _, ends, _ in waiting).isoformat()}, then {where} decides"
            )
            return False
        if expired:
            run.reason = (
                f"verification of {_listed(expired)} still inconclusive when its window ended at "
                f"{expired[0][1].isoformat()}; kept by {where}"
            )
        elif rechecked_ok:
            run.reason = (
                f"verification of {', '.join(a.id for a in rechecked_ok)} passed when checked again at "
                f"{self.clock.now().isoformat()}"
            )
            for action in rechecked_ok:
                action.reason = "verified when checked again"
        return True

    @staticmethod
    def _record(
        action: Action,
        verification: Verification,
        decided_by: str | None,
        window_ends_at: dt.datetime,
        now: dt.datetime,
        attempts: int,
    ) -> None:
        """Store what the check found and who decided under ``action.result["verification"]``."""
        record = VerificationRecord.model_validate(
            {
                "outcome": verification.outcome,
                "decided_by": decided_by,
                "pending": decided_by is None,
                "window_ends_at": window_ends_at,
                "checked_at": now,
                "attempts": attempts,
            }
        )
        action.result = {
            **action.result,
            "verification": {**verification.evidence, **record.model_dump(mode="json")},
        }

    @staticmethod
    def _close_pending(actions: list[Action], decided_by: str, note: str) -> None:
        """Pending verifications of actions rolled back with another: no longer checked."""
        for action in actions:
            record = VerificationRecord.of(action)
            if record is not None and record.pending:
                action.result["verification"] = {
                    **action.result["verification"],
                    "pending": False,
                    "decided_by": decided_by,
                    "note": note,
                }

    def _rollback(self, run: Run, automation: Automation, ctx: RunContext, actions: list[Action]) -> None:
        run.status = RunStatus.rolled_back
        for action in reversed(actions):
            if action.rollback is None:
                continue
            try:
                automation.rollback(ctx, action)
                if action.status != ActionStatus.failed:
                    action.status = ActionStatus.rolled_back
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest, record the failure
                action.status = ActionStatus.failed
                action.reason = f"rollback failed: {type(exc).__name__}: {exc}"
                run.error = RunError(
                    type=type(exc).__name__, message=f"rollback of {action.id} failed: {exc}"
                )
                run.status = RunStatus.failed

    # ------------------------------------------------------------------ recovery
    def _resume(self, run: Run, automation: Automation, permit: Permit) -> Run:
        """Continue a run whose previous owner died."""
        policy = self.config.runner.lease.on_expiry
        if run.phase in (RunPhase.applying, RunPhase.verifying):
            return self._recover_actions(run, automation, permit)
        if policy == "retry" and run.attempts < self.config.runner.retry.max_deliveries:
            run.attempts += 1
            run.findings, run.actions, run.summary = [], [], {}
            run.phase = RunPhase.analyzing
            return self._execute(run, automation, permit)
        run.status = RunStatus.failed
        run.error = RunError(type="LeaseExpired", message=run.reason or "owner died", transient=False)
        self._finish(run, lease_lost=False)
        self._breaker(run.task, run.environment).record_failure("lease expired", permit)
        return run

    def _recover_actions(self, run: Run, automation: Automation, permit: Permit) -> Run:
        """A crash between apply and verify: verify what was touched, roll back if needed.
        Never applies again."""
        ctx = self.context(run, automation)
        touched = [
            a
            for a in run.actions
            if a.rollback is not None and a.status in (ActionStatus.proposed, ActionStatus.applied)
        ]
        # Actions that never reached prepare() were not started: they are not applied now.
        for action in run.actions:
            if action.rollback is None and action.status == ActionStatus.proposed:
                action.status = ActionStatus.skipped
                action.reason = "not started before the previous owner died; not applied by recovery"
        # Changes a previous check already decided (passed) are not checked again.
        check = [a for a in touched if (record := VerificationRecord.of(a)) is None or record.pending]
        ok = self._verify(run, automation, ctx, touched, check=check)
        if ok or run.status == RunStatus.awaiting_verification:
            for action in touched:
                action.status = ActionStatus.applied
        if ok:
            self._settle_status(run)
        self._finish(run, lease_lost=False)
        breaker = self._breaker(run.task, run.environment)
        if run.status in (RunStatus.rolled_back, RunStatus.failed):
            breaker.record_failure(run.reason or "recovery rolled back", permit)
        else:
            breaker.record_success(permit)
        return run

    def stale_runs(self) -> list[Run]:
        now = self.clock.now()
        return [
            r
            for r in self.store.list_runs(status=RunStatus.running, limit=None)
            if r.lease is None or r.lease.expires_at <= now
        ]

    def recover(self) -> list[Run]:
        """Find runs whose owner died and retry, fail, verify or roll them back."""
        recovered: list[Run] = []
        for stale in self.stale_runs():
            try:
                automation = self.registry.create(stale.task)
            except InputError as exc:
                taken = self._take_over(stale)
                if taken is not None:
                    taken.status = RunStatus.failed
                    taken.error = RunError(type="UnknownTask", message=str(exc))
                    self._finish(taken, lease_lost=False)
                    recovered.append(taken)
                continue
            permit = Permit(allowed=True)
            taken = self._take_over(stale)
            if taken is None:
                continue
            try:
                recovered.append(self._resume(taken, automation, permit))
            except TransientError as exc:
                log.warning("recovery of %s failed transiently: %s", stale.id, exc)
                stored = self.store.get_run(stale.id)
                if stored:
                    recovered.append(stored)
        # Runs recovered just now were checked by their recovery: not again in the same pass.
        rechecked = self.recheck_verifications(skip={r.id for r in recovered})
        recovered.extend(r for r in rechecked if r.status not in WAITING_STATUSES)
        recovered.extend(self.expire_approvals())
        return recovered

    # ------------------------------------------------------------------ pending verifications
    def recheck_verifications(
        self, task: str | None = None, environment: str | None = None, *, skip: Collection[str] = ()
    ) -> list[Run]:
        """Check again the runs awaiting verification (only ``task``'s in ``environment`` when
        given): each passes (succeeded), fails (rolled back), stays pending inside its window, or,
        once the window has ended, goes the way its environment's ``on_inconclusive`` policy says.
        Returns the runs checked, as they are now. A run another owner is checking is left to it;
        one that cannot be checked now is logged and checked by a later pass."""
        try:
            waiting = self.store.list_runs(task=task, status=RunStatus.awaiting_verification, limit=None)
        except OrchestraError as exc:
            log.warning("could not list runs awaiting verification: %s", exc)
            return []
        checked: list[Run] = []
        for run in waiting:
            if (environment is not None and run.environment != environment) or run.id in skip:
                continue
            try:
                result = self._recheck(run)
            except (OrchestraError, ValidationError) as exc:
                log.warning(
                    "run %s: verification could not be checked again: %s",
                    run.id,
                    exc,
                    extra={"run_id": run.id},
                )
                continue
            if result is not None:
                checked.append(result)
        return checked

    def _recheck(self, waiting: Run) -> Run | None:
        automation = self.registry.create(waiting.task)
        now = self.clock.now()
        run = waiting.model_copy(deep=True)
        run.status = RunStatus.running
        run.lease = self._new_lease(now)
        run.updated_at = now
        if not self.store.replace_run(run, expect_updated_at=waiting.updated_at):
            return None  # another owner claimed it first
        applied = [a for a in run.actions if a.status == ActionStatus.applied]
        check = [a for a in applied if (record := VerificationRecord.of(a)) is not None and record.pending]
        with _Heartbeat(self, run) as heartbeat:
            try:
                ctx = self.context(run, automation, heartbeat=lambda: self.renew_lease(run))
            except ValidationError:
                # Parameters that no longer validate: put the run back as it was, for a later pass.
                run.status = RunStatus.awaiting_verification
                self._finish(run, heartbeat.lost)
                raise
            if self._verify(run, automation, ctx, applied, check=check):
                self._settle_status(run)
            self._finish(run, heartbeat.lost)
        if run.status in (RunStatus.rolled_back, RunStatus.failed):
            permit = Permit(allowed=True)
            self._breaker(run.task, run.environment).record_failure(run.reason or "rolled back", permit)
        log.info("run %s: verification checked again, now %s", run.id, run.status, extra={"run_id": run.id})
        return run

    # ------------------------------------------------------------------ approvals
    def expire_approvals(self) -> list[Run]:
        now = self.clock.now()
        expired = []
        for run in self.store.list_runs(status=RunStatus.awaiting_approval, limit=None):
            if run.approval_expires_at and run.approval_expires_at <= now:
                old_updated = run.updated_at
                self._close_waiting(run, ActionStatus.skipped, "approval expired")
                run.status = RunStatus.skipped
                run.reason = f"approval expired at {run.approval_expires_at.isoformat()}"
                run.finished_at = now
                run.phase = RunPhase.done
                run.updated_at = now
                if self.store.replace_run(run, expect_updated_at=old_updated):
                    expired.append(run)
                    self._announce(run)
        return expired

    @staticmethod
    def _close_waiting(run: Run, status: ActionStatus, reason: str) -> None:
        for action in run.actions:
            if action.status == ActionStatus.awaiting_approval:
                action.status = status
                action.reason = reason

    def _get_run(self, run_id: str) -> Run:
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id!r}", where="run_id")
        return run

    def pending(self, run: Run) -> Pending:
        """A run as the approval rule sees it: waiting actions are approved or rejected while the
        run awaits approval, until ``approval_expires_at``; whoever requested the run, or what its
        waiting actions change, may not approve them."""
        from .approvals import RUN, Pending
        from .identities import run_requester

        waiting = (RunStatus.awaiting_approval.value,)
        return Pending(
            kind=RUN,
            id=run.id,
            environment=run.environment,
            state=run.status.value,
            requester=run_requester(run),
            accepts={DecisionKind.approve: waiting, DecisionKind.reject: waiting},
            expires_at=run.approval_expires_at,
            field="run_id",
        )

    def _decision(self, run: Run, kind: DecisionKind, identity: str, comment: str | None) -> Decision:
        from .approvals import DecisionRequest
        from .approvals import decide as decide_pending

        request = DecisionRequest(decision=kind, identity=identity, comment=comment)
        return decide_pending(
            self.pending(run), request, self.config, self.clock.now(), on_expired=self.expire_approvals
        )

    def approve(self, run_id: str, identity: str, comment: str | None = None) -> Run:
        """Apply the waiting actions of ``run_id`` (see :func:`orchestra.approvals.decide` for who
        may) and record the approval as the run's ``decision``."""
        run = self._get_run(run_id)
        decision = self._decision(run, DecisionKind.approve, identity, comment)
        automation = self.registry.create(run.task)
        now = decision.at
        old_updated = run.updated_at
        run.decision = decision
        run.status = RunStatus.running
        run.lease = self._new_lease(now)
        run.updated_at = now
        if not self.store.replace_run(run, expect_updated_at=old_updated):
            raise IllegalTransition(f"run {run_id} changed while being approved; try again", where="run_id")
        waiting = [a for a in run.actions if a.status == ActionStatus.awaiting_approval]
        for action in waiting:
            action.status = ActionStatus.proposed
            action.approved_by = decision.by
            action.reason = f"approved by {decision.by}"
        ctx = self.context(run, automation)
        permit = Permit(allowed=True)
        if self._apply_and_verify(run, automation, ctx, waiting):
            self._settle_status(run)
        self._finish(run, lease_lost=False)
        breaker = self._breaker(run.task, run.environment)
        if run.status == RunStatus.rolled_back:
            breaker.record_failure(run.reason or "rolled back", permit)
        return run

    def reject(self, run_id: str, identity: str, reason: str | None = None) -> Run:
        """Skip the waiting actions of ``run_id`` and record the rejection as its ``decision``."""
        run = self._get_run(run_id)
        decision = self._decision(run, DecisionKind.reject, identity, reason)
        now = decision.at
        old_updated = run.updated_at
        self._close_waiting(run, ActionStatus.skipped, f"rejected by {decision.by}")
        run.decision = decision
        run.status = RunStatus.skipped
        run.reason = decision.describe()
        run.phase = RunPhase.done
        run.finished_at = now
        run.updated_at = now
        if not self.store.replace_run(run, expect_updated_at=old_updated):
            raise IllegalTransition(f"run {run_id} changed while being rejected; try again", where="run_id")
        self._announce(run)
        return run

    def decide(
        self, subject_id: str, kind: DecisionKind, identity: str, comment: str | None = None
    ) -> Decided:
        """Decide whatever awaits approval under ``subject_id``: a run, else the subject of a plugin
        that declares approvable kinds (a deployment). NotFound (field ``run_id``) names the id
        when nothing has it."""
        from .approvals import RUN, Decided, DecisionRequest

        run = self.store.get_run(subject_id)
        if run is not None:
            if kind == DecisionKind.approve:
                run = self.approve(subject_id, identity, comment)
            elif kind == DecisionKind.reject:
                run = self.reject(subject_id, identity, comment)
            else:
                self._decision(run, kind, identity, comment)  # refuses: runs take no such decision
            if run.decision is None:  # pragma: no cover - approve and reject always record one
                raise IllegalTransition(f"run {subject_id} recorded no decision", where="run_id")
            return Decided(
                decision=run.decision,
                status=run.status.value,
                record=run.model_dump(mode="json"),
                run=run,
                failed=run.status in (RunStatus.failed, RunStatus.rolled_back),
            )
        request = DecisionRequest(decision=kind, identity=identity, comment=comment)
        ctx = DecisionContext(config=self.config, store=self.store, clock=self.clock)
        for plugin in self.registry.approvable():
            decided = plugin.decide(subject_id, request, ctx)
            if decided is not None:
                return decided
        kinds = " or ".join([RUN, *self.registry.approvable_kinds()])
        raise NotFound(f"no {kinds} with id {subject_id!r}", where="run_id")


def _inconclusive_why(evidence: dict[str, Any]) -> str:
    """Why a check could not tell, from its evidence: its ``reason``, else its checks' reasons."""
    reason = evidence.get("reason")
    if isinstance(reason, str) and reason:
        return reason[:300]
    checks = evidence.get("checks")
    if isinstance(checks, list):
        reasons = sorted(
            {
                str(c["reason"])
                for c in checks
                if isinstance(c, dict) and c.get("verdict") == "inconclusive" and c.get("reason")
            }
        )
        if reasons:
            return "; ".join(reasons)[:300]
    return "no evidence either way"


def _listed(entries: list[tuple[Action, dt.datetime, str]]) -> str:
    return ", ".join(f"{action.id} ({why})" for action, _, why in entries)
