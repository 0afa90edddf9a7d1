"""A process that dies between deploying and verifying: recovery verifies, never deploys twice."""

from __future__ import annotations

from typing import Any

import pytest
from orchestra.automations.deployment.plugin import DeploymentAutomation
from orchestra.automations.deployment.requests import request_deployment
from orchestra.automations.deployment.state import DeploymentState, get_deployment
from orchestra.clock import RandomIds
from orchestra.models import Mode, RunPhase, RunStatus, TriggerKind
from orchestra.registry import Registry
from orchestra.runner import Runner, RunRequest

from tests.deployment.conftest import VERIFICATION, command_deployer, make_config


class Killed(BaseException):
    """Stands for the instance being killed: not an Exception, so nothing catches it."""


class DiesAfterDeploying(DeploymentAutomation):
    def deployer(self, policy: Any, environment: str) -> Any:
        inner = super().deployer(policy, environment)

        class Dying:
            def describe(self) -> str:
                return inner.describe()

            def current(self) -> Any:
                return inner.current()

            def deploy(self, request: Any) -> Any:
                inner.deploy(request)
                raise Killed("instance stopped right after the deploy command finished")

        return Dying()


def runner_with(cls: type[DeploymentAutomation], config, store, clock, owner: str) -> Runner:
    registry = Registry({})
    registry.register(cls)
    return Runner(config, store, clock=clock, owner=owner, registry=registry, heartbeat_in_background=False)


def test_recovery_verifies_what_the_dead_run_deployed(sqlite_store, clock, repo, service):
    sha = repo.commit("main", title="v1")
    config = make_config(
        {"development": {"deployer": command_deployer(repo, service), "verification": VERIFICATION}}
    )
    dep = request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="development",
        ref="refs/heads/feature/a",
        revision=sha,
        repository="o/r",
        requested_by="github:dev",
        source_event="d-1",
    )
    request = RunRequest(
        task="deployment",
        environment="development",
        mode=Mode.apply,
        trigger_kind=TriggerKind.scheduled,
        trigger_id="tick-1",
        requested_by="scheduler",
    )
    with pytest.raises(Killed):
        runner_with(DiesAfterDeploying, config, sqlite_store, clock, "instance-a").submit(request)
    stuck = get_deployment(sqlite_store, dep.id)
    assert stuck.state == DeploymentState.deploying
    run = sqlite_store.list_runs(task="deployment")[0]
    assert run.status == RunStatus.running and run.phase == RunPhase.applying

    clock.advance(seconds=config.runner.lease.seconds + 1)
    (recovered,) = runner_with(DeploymentAutomation, config, sqlite_store, clock, "instance-b").recover()

    assert recovered.status == RunStatus.succeeded, recovered.reason
    done = get_deployment(sqlite_store, dep.id)
    assert done.state == DeploymentState.succeeded
    assert "recovered" in next(t.reason for t in done.history if t.from_state == DeploymentState.deploying)
    assert service.deploys() == [sha]  # verified, never deployed a second time
    assert sqlite_store.get_lock("deploy:development") is None
