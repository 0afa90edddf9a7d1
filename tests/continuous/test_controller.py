"""The controller's scheduling guarantees, shutdown release and health, on SQLite and Firestore."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from orchestra.clock import FakeClock
from orchestra.config import Config
from orchestra.continuous import Controller, ControllerOptions, HealthServer
from orchestra.errors import StoreUnavailable
from orchestra.models import Lease, Mode, Run, RunPhase, RunStatus, TriggerKind, run_id_for
from orchestra.registry import Registry
from orchestra.runner import Runner, RunRequest
from orchestra.scheduling import configured_schedules
from orchestra.store.base import StateStore

from tests.continuous.automations import calls, set_behaviour

UTC = dt.UTC


def make_controller(
    config: Config,
    store: StateStore,
    clock: Any,
    registry: Registry,
    *,
    owner: str = "replica-a",
    environment: str = "development",
    **options: Any,
) -> Controller:
    runner = Runner(config, store, clock=clock, owner=owner, registry=registry, heartbeat_in_background=False)
    schedules = configured_schedules(config, environment, registry.names()).schedules
    return Controller(
        runner,
        schedules,
        ControllerOptions(environment=environment, recover_seconds=0, **options),
        clock=clock,
    )


def executions(workdir: Path) -> list[str]:
    return [line.removeprefix("end ") for line in calls(workdir) if line.startswith("end ")]


def test_first_tick_runs_only_the_latest_missed_slot_of_each_schedule(
    store, controller_config, clock, test_registry, workdir
):
    # Down for three days: 72 daily-2am slots would be missed for 'testing', 144 for each 'cost'.
    clock.set(dt.datetime(2026, 1, 8, 12, 10, tzinfo=UTC))
    controller = make_controller(controller_config, store, clock, test_registry)
    done = controller.tick()
    assert sorted(s.request.trigger_id for s in done) == [
        "schedule:cost:production:2026-01-08T12:00:00Z",
        "schedule:cost:staging:2026-01-08T12:00:00Z",
        "schedule:testing:development:2026-01-08T02:00:00Z",
    ]
    assert all(s.run is not None and s.run.status == RunStatus.succeeded for s in done)
    assert all(s.run.trigger_kind == TriggerKind.scheduled and s.run.mode == Mode.apply for s in done)
    assert sorted(executions(workdir)) == sorted(s.request.trigger_id for s in done)
    # Nothing new is due at the same instant.
    assert controller.tick() == []


def test_a_long_outage_between_ticks_collapses_to_one_run(
    store, controller_config, clock, test_registry, workdir
):
    controller = make_controller(controller_config, store, clock, test_registry)
    controller.tick()
    clock.advance(minutes=25)  # 12:35: the 12:30 slot of cost is due
    assert [s.request.trigger_id for s in controller.tick()] == [
        "schedule:cost:staging:2026-01-05T12:30:00Z",
        "schedule:cost:production:2026-01-05T12:30:00Z",
    ]
    clock.advance(hours=5)  # 17:35: ten cost slots passed while (say) a long run was in hand
    assert sorted(s.request.trigger_id for s in controller.tick()) == [
        "schedule:cost:production:2026-01-05T17:30:00Z",
        "schedule:cost:staging:2026-01-05T17:30:00Z",
    ]
    assert len(executions(workdir)) == 3 + 2 + 2


def test_a_restarted_controller_does_not_run_a_slot_again(
    store, controller_config, clock, test_registry, workdir
):
    make_controller(controller_config, store, clock, test_registry, owner="before-restart").tick()
    restarted = make_controller(controller_config, store, clock, test_registry, owner="after-restart")
    done = restarted.tick()
    assert len(done) == 3 and all(s.outcome is not None and s.outcome.duplicate for s in done)
    assert len(executions(workdir)) == 3


def test_two_replicas_ticking_together_run_each_slot_once(store, controller_config, test_registry, workdir):
    set_behaviour(workdir, sleep=0.2)  # long enough for the replicas to overlap
    clock = FakeClock(dt.datetime(2026, 1, 5, 12, 10, tzinfo=UTC))
    replicas = [
        make_controller(controller_config, store, clock, test_registry, owner=f"replica-{i}")
        for i in range(3)
    ]
    barrier = threading.Barrier(len(replicas))
    results: list[list[Any]] = []

    def tick(controller: Controller) -> None:
        barrier.wait()
        results.append(controller.tick())

    threads = [threading.Thread(target=tick, args=(c,)) for c in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(executions(workdir)) == [
        "schedule:cost:production:2026-01-05T12:00:00Z",
        "schedule:cost:staging:2026-01-05T12:00:00Z",
        "schedule:testing:development:2026-01-05T02:00:00Z",
    ]
    runs = store.list_runs(limit=None)
    assert len(runs) == 3
    # Every replica handed every slot to the runner; all but one were told it was a duplicate
    # or saw the run still in hand.
    assert sum(len(r) for r in results) == 9


def test_a_transient_failure_leaves_the_slot_due_for_the_next_tick(
    sqlite_store, controller_config, clock, test_registry, workdir
):
    # Three in-process attempts fail; the fourth call (next tick, a redelivery) succeeds.
    set_behaviour(workdir, fail_times=3)
    controller = make_controller(
        controller_config, sqlite_store, clock, test_registry, environment="development"
    )
    controller.schedules = [s for s in controller.schedules if s.task == "testing"]
    first = controller.tick()
    assert first[0].transient and first[0].run is None
    run_id = run_id_for("testing", "schedule:testing:development:2026-01-05T02:00:00Z")
    assert sqlite_store.get_run(run_id).status == RunStatus.failed
    second = controller.tick()
    assert [s.request.trigger_id for s in second] == ["schedule:testing:development:2026-01-05T02:00:00Z"]
    assert second[0].run.status == RunStatus.succeeded and second[0].run.attempts == 4
    assert controller.tick() == []


def test_a_permanent_failure_is_recorded_once_and_not_retried(
    sqlite_store, controller_config, clock, test_registry, workdir
):
    set_behaviour(workdir, permanent_failure=True)
    controller = make_controller(controller_config, sqlite_store, clock, test_registry)
    controller.schedules = [s for s in controller.schedules if s.task == "testing"]
    (done,) = controller.tick()
    assert done.run.status == RunStatus.failed and done.run.error.type == "RuntimeError"
    assert controller.tick() == []
    assert [c for c in calls(workdir) if c.startswith("start")] == [
        "start schedule:testing:development:2026-01-05T02:00:00Z"
    ]


def test_schedules_of_unavailable_automations_are_not_run(sqlite_store, controller_config, clock, workdir):
    empty = Registry({})
    controller = make_controller(controller_config, sqlite_store, clock, empty)
    assert controller.schedules == [] and controller.tick() == []


def _running_run(store: StateStore, runner: Runner, phase: RunPhase) -> str:
    request = RunRequest(task="testing", trigger_kind=TriggerKind.scheduled, trigger_id=f"hand-{phase}")
    _, env, level, _ = runner.validate(request)
    now = runner.clock.now()
    run = Run(
        id=run_id_for("testing", request.trigger_id or ""),
        task="testing",
        trigger_kind=TriggerKind.scheduled,
        trigger_id=request.trigger_id or "",
        environment=env,
        mode=Mode.apply,
        automation_level=level,
        status=RunStatus.running,
        phase=phase,
        attempts=1,
        created_at=now,
        updated_at=now,
        started_at=now,
        lease=Lease(owner=runner.owner, expires_at=now + dt.timedelta(seconds=120), heartbeat_at=now),
    )
    assert store.create_run(run)
    return run.id


def test_release_hands_an_analyzing_run_to_the_next_replica(
    store, controller_config, clock, test_registry, workdir
):
    controller = make_controller(controller_config, store, clock, test_registry, owner="stopping")
    run_id = _running_run(store, controller.runner, RunPhase.analyzing)
    assert controller.release(run_id)
    released = store.get_run(run_id)
    assert (
        released.status == RunStatus.queued
        and released.lease is None
        and "released by stopping" in released.reason
    )
    # Another replica's delivery of the same trigger claims and executes it at once.
    other = make_controller(controller_config, store, clock, test_registry, owner="other")
    outcome = other.runner.submit(
        RunRequest(task="testing", trigger_kind=TriggerKind.scheduled, trigger_id="hand-analyzing")
    )
    assert outcome.run.status == RunStatus.succeeded and outcome.run.attempts == 2
    assert executions(workdir) == ["hand-analyzing"]


def test_release_leaves_an_applying_run_to_lease_expiry(
    sqlite_store, controller_config, clock, test_registry
):
    controller = make_controller(controller_config, sqlite_store, clock, test_registry, owner="stopping")
    run_id = _running_run(sqlite_store, controller.runner, RunPhase.applying)
    assert not controller.release(run_id)
    kept = sqlite_store.get_run(run_id)
    assert kept.status == RunStatus.running and kept.lease.owner == "stopping"


def test_release_never_touches_a_run_held_by_another_owner(
    sqlite_store, controller_config, clock, test_registry
):
    holder = make_controller(controller_config, sqlite_store, clock, test_registry, owner="holder")
    run_id = _running_run(sqlite_store, holder.runner, RunPhase.analyzing)
    other = make_controller(controller_config, sqlite_store, clock, test_registry, owner="other")
    assert not other.release(run_id)
    assert sqlite_store.get_run(run_id).lease.owner == "holder"


def test_a_stop_request_skips_the_remaining_due_slots(
    sqlite_store, controller_config, clock, test_registry, workdir
):
    controller = make_controller(controller_config, sqlite_store, clock, test_registry)
    controller.on_submitted = lambda submitted: controller.request_stop()
    assert len(controller.tick()) == 1
    assert len(executions(workdir)) == 1


def test_next_wakeup_is_the_nearest_slot_capped_by_the_tick(
    sqlite_store, controller_config, clock, test_registry
):
    controller = make_controller(controller_config, sqlite_store, clock, test_registry, tick_seconds=3600)
    assert controller.next_wakeup(clock.now()) == 20 * 60  # 12:10 -> cost at 12:30
    controller.options.tick_seconds = 30
    assert controller.next_wakeup(clock.now()) == 30


def test_health_is_200_while_the_loop_beats_and_503_when_it_stalls(
    sqlite_store, controller_config, clock, test_registry
):
    controller = make_controller(controller_config, sqlite_store, clock, test_registry, tick_seconds=30)
    controller.beat()
    code, report = controller.health(controller_config)
    loop = next(c for c in report.checks if c.name == "controller_loop")
    assert code == 200 and loop.ok and report.status != "unhealthy"
    clock.advance(seconds=91)  # 2 ticks + 30 s without a beat
    code, report = controller.health(controller_config)
    loop = next(c for c in report.checks if c.name == "controller_loop")
    assert code == 503 and not loop.ok and "stalled" in loop.detail and report.status == "unhealthy"


class _DownStore:
    """Delegates to a real store but cannot be reached."""

    def __init__(self, inner: StateStore) -> None:
        self._inner = inner
        self.url = "sqlite:///unreachable"

    def ping(self) -> None:
        raise StoreUnavailable("connection refused")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_healthz_over_http(sqlite_store, controller_config, clock, test_registry):
    controller = make_controller(controller_config, sqlite_store, clock, test_registry)
    server = HealthServer(controller, controller_config, "127.0.0.1", 0)
    server.start()
    host, port = server.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as response:
            body = json.loads(response.read())
            assert response.status == 200 and response.headers["Content-Type"] == "application/json"
        assert body["status"] in ("healthy", "degraded")
        assert {c["name"] for c in body["checks"]} >= {"store", "breakers", "leases", "controller_loop"}
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://{host}:{port}/nope", timeout=5)
        assert missing.value.code == 404
        controller.runner.store = _DownStore(sqlite_store)  # type: ignore[assignment]
        with pytest.raises(urllib.error.HTTPError) as down:
            urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5)
        assert down.value.code == 503
        body = json.loads(down.value.read())
        assert body["status"] == "unhealthy" and "connection refused" in body["checks"][0]["detail"]
    finally:
        server.stop()


def test_ticks_recover_runs_whose_owner_died(sqlite_store, controller_config, clock, test_registry, workdir):
    dead = make_controller(controller_config, sqlite_store, clock, test_registry, owner="died")
    run_id = _running_run(sqlite_store, dead.runner, RunPhase.analyzing)
    controller = make_controller(controller_config, sqlite_store, clock, test_registry, owner="survivor")
    controller.schedules = []
    controller.options.recover_seconds = 300
    controller.tick()
    assert sqlite_store.get_run(run_id).status == RunStatus.running  # its lease is still valid
    clock.advance(seconds=301)  # past the dead owner's lease and the recovery interval
    controller.tick()
    recovered = sqlite_store.get_run(run_id)
    assert recovered.status == RunStatus.succeeded and "recovered by survivor" in recovered.reason
    assert executions(workdir) == ["hand-analyzing"]
