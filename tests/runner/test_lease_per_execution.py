"""A lease belongs to one execution, not to the process running it.

A function paused past its lease (SIGSTOP, a long GC pause, a starved container) can receive the
redelivery of the same run in the same process. The redelivery takes the expired run over; when
the paused execution resumes, its next write must fail the owner check although both executions
run under the same runner, so the change is applied once."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from orchestra.automation import Analysis, RunContext, Verification
from orchestra.clock import FakeClock
from orchestra.config import Config
from orchestra.models import Action, ActionStatus, RunStatus, TriggerKind, run_id_for
from orchestra.registry import Registry
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import StateStore

from tests.runner.automations import Counter, Tuner, build_registry
from tests.runner.test_runner_faults import tuner
from tests.runner.worker import wait_for

# Set by the test: the first analysis waits on RESUME, as an execution paused past its lease
# would; the first verification waits on FIRST_DONE, so the redelivered execution is still
# working (holding the lease it took over) when the paused one resumes.
PAUSED = threading.Event()
RESUME = threading.Event()
FIRST_DONE = threading.Event()


class PausingTuner(Tuner):
    """The tuner whose first analysis stops until the test resumes it."""

    name = "pausing-tuner"

    def analyze(self, ctx: RunContext) -> Analysis:
        if Counter(Path(ctx.params.counter)).bump("analyze") == 1:
            PAUSED.set()
            assert RESUME.wait(30), "the test never resumed the paused analysis"
        return super().analyze(ctx)

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        if Counter(Path(ctx.params.counter)).bump("verify-call") == 1:
            FIRST_DONE.wait(30)
        return super().verify(ctx, action)


def one_process(config: Config, store: StateStore, clock: FakeClock, registry: Registry) -> Runner:
    """The runner of one function process (heartbeats driven by the test's clock)."""
    return Runner(
        config, store, clock=clock, owner="one-process", registry=registry, heartbeat_in_background=False
    )


def test_a_redelivery_in_the_same_process_fences_off_the_paused_execution(store, runner_config, tmp_path):
    for event in (PAUSED, RESUME, FIRST_DONE):
        event.clear()
    registry = build_registry()
    registry.register(PausingTuner)
    clock = FakeClock()
    runner = one_process(runner_config, store, clock, registry)
    request = dataclasses.replace(tuner("msg-paused", tmp_path), task="pausing-tuner")
    counter = Counter(tmp_path / "calls.log")
    run_id = run_id_for("pausing-tuner", "msg-paused")
    outcomes: dict[str, object] = {}

    def deliver(name: str) -> None:
        outcomes[name] = runner.submit(request)

    paused = threading.Thread(target=deliver, args=("paused",))
    redelivered = threading.Thread(target=deliver, args=("redelivered",))
    paused.start()
    try:
        assert PAUSED.wait(30)
        assert store.get_run(run_id).status == RunStatus.running
        # The pause outlasts the lease; the platform redelivers to the same process, whose
        # execution takes the run over and applies its change.
        clock.advance(runner_config.runner.lease.seconds + 1)
        redelivered.start()
        wait_for(lambda: counter.get("apply") == 1)
        # The paused execution resumes while the redelivered one verifies.
        RESUME.set()
        paused.join(30)
        assert not paused.is_alive()
    finally:
        RESUME.set()
        FIRST_DONE.set()
        paused.join(30)
        if redelivered.is_alive() or redelivered.ident is not None:
            redelivered.join(30)
    assert counter.get("apply") == 1, "the resumed execution applied the change again"
    stored = store.get_run(run_id)
    assert stored.status == RunStatus.succeeded and stored.lease is None
    assert stored.actions[0].status == ActionStatus.applied


def test_renewals_keep_the_execution_holder(store, runner_config, tmp_path):
    clock = FakeClock()
    runner = one_process(runner_config, store, clock, build_registry())
    outcome = runner.submit(
        RunRequest(
            task="noop",
            params={"counter": str(tmp_path / "c.log")},
            trigger_kind=TriggerKind.event,
            trigger_id="msg-renew",
            requested_by="alice",
        )
    )
    run = outcome.run.model_copy(deep=True)
    run.status = RunStatus.running
    run.finished_at = None
    run.lease = runner._new_lease(clock.now())
    holder = run.lease.owner
    assert store.replace_run(run, expect_updated_at=outcome.run.updated_at)
    assert runner.holds(run.lease)
    clock.advance(0.5)
    assert runner.renew_lease(run)
    assert run.lease.owner == holder and store.get_run(run.id).lease.owner == holder
    other = Runner(runner_config, store, clock=clock, owner="one-process", registry=build_registry())
    # Another execution of the same process holds another lease: its renewal of this run fails.
    stranger = run.model_copy(deep=True)
    stranger.lease = other._new_lease(clock.now())
    assert not other.renew_lease(stranger)
    assert store.get_run(run.id).lease.owner == holder
