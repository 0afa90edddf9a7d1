"""The deployer's breaker (``dependency:deployer:<env>``) against the real deployment plugin and the
command deployer: it opens after repeated deployer failures, deployments wait while it is open,
and once ``open_seconds`` have passed one deployment goes out as the probe; its outcome closes
or re-opens the breaker. No reset by hand anywhere."""

from __future__ import annotations

import datetime as dt

from orchestra.automations.deployment.requests import request_deployment
from orchestra.automations.deployment.state import Deployment, DeploymentState, get_deployment
from orchestra.breaker import (
    BreakerState,
    CircuitBreaker,
    automation_breaker_name,
    dependency_breaker_name,
    find_breaker,
)
from orchestra.clock import FakeClock, RandomIds
from orchestra.models import ActionStatus, Mode, Run, RunStatus, TriggerKind
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import StateStore

from tests.deployment.conftest import VERIFICATION, Repo, Service, command_deployer, make_config, make_runner

S = DeploymentState
ENV = "development"
DEPLOYER_BREAKER = dependency_breaker_name(f"deployer:{ENV}")
OPEN_SECONDS = 600  # make_config's runner.breaker.open_seconds
_seq = iter(range(1, 1000))


def tick(runner: Runner, trigger: str) -> Run:
    return runner.submit(
        RunRequest(
            task="deployment",
            environment=ENV,
            mode=Mode.apply,
            params={},
            trigger_kind=TriggerKind.scheduled,
            trigger_id=trigger,
            requested_by="scheduler",
        )
    ).run


def request(store: StateStore, clock: FakeClock, revision: str) -> Deployment:
    return request_deployment(
        store,
        clock,
        RandomIds(next(_seq)),
        environment=ENV,
        ref="refs/heads/main",
        revision=revision,
        repository="o/r",
        requested_by="user:alice",
        source_event=None,
    )


def missing_revision(n: int) -> str:
    # A commit the repository does not have: the deploy command exits 4.
    return f"{n:040x}"


def breaker_finding(run: Run, dep: Deployment) -> str | None:
    found = [f for f in run.findings if f.id == f"deployment.deployer-breaker-open.{dep.id}"]
    return found[0].summary if found else None


def open_the_deployer_breaker(store: StateStore, clock: FakeClock, runner: Runner, first: int) -> None:
    """Three failed deploys, each followed by an idle scheduler tick: the automation's own
    breaker is reset by those healthy runs, the deployer's counts only deployer calls."""
    for n in range(first, first + 3):
        clock.advance(minutes=1)
        failing = request(store, clock, missing_revision(n))
        run = tick(runner, f"fail-{n}")
        assert run.status == RunStatus.rolled_back, run.reason
        assert get_deployment(store, failing.id).state == S.rolled_back
        clock.advance(minutes=1)
        assert tick(runner, f"idle-{n}").status == RunStatus.succeeded
        automation = find_breaker(store, automation_breaker_name("deployment", ENV))
        assert automation is not None and automation.state == BreakerState.closed


def setup(store: StateStore, clock: FakeClock, repo: Repo, service: Service) -> tuple[Runner, str]:
    good = repo.commit("main", title="v1")
    config = make_config({ENV: {"deployer": command_deployer(repo, service), "verification": VERIFICATION}})
    runner = make_runner(config, store, clock)
    request(store, clock, good)
    assert tick(runner, "first").status == RunStatus.succeeded
    return runner, good


def test_open_deployer_breaker_half_opens_and_a_successful_probe_closes_it(
    sqlite_store, clock, repo, service
):
    runner, _ = setup(sqlite_store, clock, repo, service)
    open_the_deployer_breaker(sqlite_store, clock, runner, first=1)
    record = find_breaker(sqlite_store, DEPLOYER_BREAKER)
    assert record is not None and record.state == BreakerState.open and record.failures == 3
    opened_at = record.opened_at
    assert opened_at is not None

    # While open, an approved deployment waits and the run says why.
    v2 = repo.commit("main", title="v2")
    dep = request(sqlite_store, clock, v2)
    deploys_before = service.deploys()
    clock.advance(minutes=1)
    waiting = tick(runner, "while-open")
    assert waiting.status == RunStatus.succeeded and waiting.actions == []
    summary = breaker_finding(waiting, dep)
    assert summary is not None and "waits" in summary and "next probe after" in summary
    assert get_deployment(sqlite_store, dep.id).state == S.approved
    assert service.deploys() == deploys_before

    # Just before open_seconds: still waiting.
    clock.set(opened_at + dt.timedelta(seconds=OPEN_SECONDS - 1))
    assert breaker_finding(tick(runner, "almost"), dep) is not None
    assert find_breaker(sqlite_store, DEPLOYER_BREAKER).state == BreakerState.open

    # Past open_seconds: this deployment is the probe, deployed once; its success closes it.
    clock.set(opened_at + dt.timedelta(seconds=OPEN_SECONDS + 1))
    probe = tick(runner, "probe")
    assert probe.status == RunStatus.succeeded, probe.reason
    (action,) = probe.actions
    assert action.status == ActionStatus.applied and action.verified is True
    assert breaker_finding(probe, dep) is None
    assert get_deployment(sqlite_store, dep.id).state == S.succeeded
    assert service.deploys() == [*deploys_before, v2]
    assert service.get("/health") == (200, f"ok {v2}\n")
    closed = find_breaker(sqlite_store, DEPLOYER_BREAKER)
    assert closed.state == BreakerState.closed and closed.failures == 0 and closed.probe_owner is None


def test_a_failed_probe_reopens_the_deployer_breaker_until_the_next_probe(sqlite_store, clock, repo, service):
    runner, _ = setup(sqlite_store, clock, repo, service)
    open_the_deployer_breaker(sqlite_store, clock, runner, first=11)
    opened_at = find_breaker(sqlite_store, DEPLOYER_BREAKER).opened_at

    clock.set(opened_at + dt.timedelta(seconds=OPEN_SECONDS + 1))
    failing = request(sqlite_store, clock, missing_revision(99))
    failed_at = clock.now()
    probe = tick(runner, "failing-probe")
    assert probe.status == RunStatus.rolled_back
    assert get_deployment(sqlite_store, failing.id).state == S.rolled_back
    reopened = find_breaker(sqlite_store, DEPLOYER_BREAKER)
    assert reopened.state == BreakerState.open and reopened.failures == 4
    assert reopened.opened_at is not None and reopened.opened_at >= failed_at  # a fresh open period
    assert reopened.probe_owner is None

    # The next deployment waits for the new open period, then goes out as the next probe.
    v2 = repo.commit("main", title="v2")
    dep = request(sqlite_store, clock, v2)
    clock.advance(minutes=1)
    assert breaker_finding(tick(runner, "after-failed-probe"), dep) is not None
    assert get_deployment(sqlite_store, dep.id).state == S.approved

    clock.set(reopened.opened_at + dt.timedelta(seconds=OPEN_SECONDS + 1))
    assert tick(runner, "second-probe").status == RunStatus.succeeded
    assert get_deployment(sqlite_store, dep.id).state == S.succeeded
    assert find_breaker(sqlite_store, DEPLOYER_BREAKER).state == BreakerState.closed


def test_a_probe_held_by_another_run_makes_deployments_wait(sqlite_store, clock, repo, service):
    runner, _ = setup(sqlite_store, clock, repo, service)
    open_the_deployer_breaker(sqlite_store, clock, runner, first=21)
    opened_at = find_breaker(sqlite_store, DEPLOYER_BREAKER).opened_at
    clock.set(opened_at + dt.timedelta(seconds=OPEN_SECONDS + 1))
    other = CircuitBreaker(sqlite_store, DEPLOYER_BREAKER, runner.config.runner.breaker, clock)
    assert other.before_call("run:elsewhere").probe

    v2 = repo.commit("main", title="v2")
    dep = request(sqlite_store, clock, v2)
    deploys_before = service.deploys()
    run = tick(runner, "while-probing")
    summary = breaker_finding(run, dep)
    assert summary is not None and "probe in progress by run:elsewhere" in summary
    assert run.actions == [] and service.deploys() == deploys_before

    # The other run's probe succeeded: the breaker closes and the deployment goes out.
    other.record_success()
    clock.advance(minutes=1)
    assert tick(runner, "after-probe").status == RunStatus.succeeded
    assert get_deployment(sqlite_store, dep.id).state == S.succeeded
