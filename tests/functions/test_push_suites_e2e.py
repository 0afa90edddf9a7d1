"""End to end on the emulators: a signed GitHub push through the real webhooks function
(``functions-framework`` process, Firestore emulator) requests a deployment that waits for its
required suite, runs the suite (a real process) on the pushed revision, and the finished suite run
releases the deployment (passing) or blocks it with the suite named (failing). The same push
delivered twice runs the suite once; a push to a branch no suite is configured for runs none.

Each scenario pushes to its own branch family, mapped to its own environment, so the scenarios
share one function process without seeing each other's deployments.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from orchestra.automations.deployment.state import list_deployments
from orchestra.events.records import record_id
from orchestra.models import RunStatus
from orchestra.store.firestore import FirestoreStateStore

from tests.functions.conftest import WEBHOOK_SECRET, sign
from tests.functions.servers import FunctionServer

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

PY = sys.executable
ENVIRONMENTS = ("e-pass", "e-fail", "e-dup", "e-docs")

SUITE = """
import json, os, pathlib, sys
revision = os.environ["ORCHESTRA_REVISION"]
with open(os.environ["SUITE_COUNTER"], "a") as out:
    out.write(f"{revision} {os.environ['ORCHESTRA_BRANCH']}\\n")
failing = json.loads(pathlib.Path(os.environ["FAILING"]).read_text())
sys.exit(1 if revision in failing else 0)
"""
DEPLOY = """
import os, sys
with open(os.environ["DEPLOY_LOG"], "a") as out:
    out.write(sys.argv[1] + "\\n")
"""


@dataclass
class Topology:
    server: FunctionServer
    store: FirestoreStateStore
    counter: Path
    failing: Path
    deploys_log: Path

    def suite_runs(self, revision: str) -> int:
        lines = self.counter.read_text().splitlines() if self.counter.exists() else []
        return sum(1 for line in lines if line.split()[0] == revision)

    def deployed(self) -> list[str]:
        return self.deploys_log.read_text().split() if self.deploys_log.exists() else []

    def fail_on(self, revision: str) -> None:
        self.failing.write_text(json.dumps([*json.loads(self.failing.read_text()), revision]))

    def deployment(self, environment: str) -> Any:
        (found,) = list_deployments(self.store, environment=environment)
        return found


def config(tmp: Path, top: Topology) -> dict[str, Any]:
    deployer = {
        "type": "command",
        "deploy": [[PY, str(tmp / "deploy.py"), "{revision}"]],
        "env": {"DEPLOY_LOG": str(top.deploys_log)},
        "timeout_seconds": 60,
    }
    return {
        "default_environment": "e-docs",
        "environments": {env: {"automation_level": 1} for env in ENVIRONMENTS},
        "automations": {
            "deployment": {
                "settings": {
                    "branches": {f"{env[2:]}/*": env for env in ENVIRONMENTS},
                    "other_branches": None,
                    "environments": {
                        env: {"required_suites": ["unit"], "deployer": deployer} for env in ENVIRONMENTS
                    },
                }
            },
            "testing": {
                "settings": {
                    "suites": {
                        "unit": {
                            "command": [PY, str(tmp / "suite.py")],
                            "environment": {
                                "SUITE_COUNTER": str(top.counter),
                                "FAILING": str(top.failing),
                            },
                            "timeout_seconds": 60,
                            "triggers": {"push": ["pass/*", "fail/*", "dup/*"], "manual": False},
                        }
                    }
                }
            },
        },
    }


@pytest.fixture(scope="module")
def topology(firestore_emulator, tmp_path_factory) -> Iterator[Topology]:
    tmp = tmp_path_factory.mktemp("push-suites")
    (tmp / "suite.py").write_text(SUITE)
    (tmp / "deploy.py").write_text(DEPLOY)
    (tmp / "failing.json").write_text("[]")
    database = f"push-suites-{uuid.uuid4().hex[:8]}"
    store = FirestoreStateStore(project=firestore_emulator.project, database=database)
    server = FunctionServer(
        "webhooks",
        {
            "ORCHESTRA_STORE": f"firestore://{firestore_emulator.project}/{database}",
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.host_port,
            "CONFIG_PATH": str(tmp / "config.yaml"),
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        },
        tmp,
    )
    top = Topology(server, store, tmp / "suite-runs.log", tmp / "failing.json", tmp / "deploys.log")
    # JSON is YAML: the configuration file the function loads.
    (tmp / "config.yaml").write_text(json.dumps(config(tmp, top)))
    try:
        server.start()
        yield top
    finally:
        server.stop()
        store.close()


def revision() -> str:
    return (uuid.uuid4().hex + uuid.uuid4().hex)[:40]


def deliver(top: Topology, branch: str, after: str, delivery: str | None = None) -> tuple[int, Any]:
    payload = {
        "ref": f"refs/heads/{branch}",
        "before": "0" * 40,
        "after": after,
        "created": True,
        "deleted": False,
        "repository": {"full_name": "acme/shop"},
        "pusher": {"name": "alice", "email": "alice@example.com"},
        "sender": {"login": "alice"},
        "head_commit": {"id": after, "timestamp": "2026-01-05T11:59:00Z"},
    }
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{top.server.url}/",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body),
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_passing_suite_releases_the_deployment(topology: Topology) -> None:
    after = revision()

    status, body = deliver(topology, "pass/cart", after)

    assert (status, body["status"]) == (202, "accepted"), body
    assert body["suites"] == ["unit"] and body["deployment"]["environment"] == "e-pass"
    assert topology.suite_runs(after) == 1
    deployment = topology.deployment("e-pass")
    assert deployment.revision == after
    assert deployment.state == "succeeded" and deployment.blocked is None
    assert after in topology.deployed()
    # The testing run's end was announced and started the deployment run that released it.
    record = topology.store.get_event(record_id("webhooks", body["delivery"]))
    assert record is not None
    (test_run_id,) = record.payload["handlers"]["testing"]["run_ids"]
    test_run = topology.store.get_run(test_run_id)
    assert test_run is not None and test_run.status == RunStatus.succeeded
    assert test_run.summary["suites_run"][0]["status"] == "passed"
    announced = topology.store.get_event(record_id("runner", f"run-finished:{test_run_id}"))
    assert announced is not None and announced.status == "accepted"
    (deploy_run_id,) = announced.run_ids
    deploy_run = topology.store.get_run(deploy_run_id)
    assert deploy_run is not None and deploy_run.task == "deployment"
    assert deploy_run.environment == "e-pass" and deploy_run.status == RunStatus.succeeded


def test_a_failing_suite_blocks_the_deployment_naming_the_suite(topology: Topology) -> None:
    after = revision()
    topology.fail_on(after)

    status, body = deliver(topology, "fail/cart", after)

    assert (status, body["status"]) == (202, "accepted"), body
    assert topology.suite_runs(after) == 1
    deployment = topology.deployment("e-fail")
    assert deployment.state == "approved"  # pending: never handed to the deployer
    assert deployment.blocked is not None
    assert deployment.blocked.startswith(f"required suite failed on {after[:12]}: unit (failed: ")
    assert after not in topology.deployed()


def test_the_same_push_delivered_twice_runs_the_suite_once(topology: Topology) -> None:
    after = revision()
    delivery = str(uuid.uuid4())

    first = deliver(topology, "dup/cart", after, delivery)
    again = deliver(topology, "dup/cart", after, delivery)
    resent = deliver(topology, "dup/cart", after)  # a new delivery id: the same push re-sent

    assert first[0] == 202 and first[1]["status"] == "accepted"
    assert again[0] == 200 and again[1]["status"] == "duplicate"
    assert resent[0] == 200 and resent[1]["status"] == "duplicate", resent[1]
    assert "testing: already handled: run " in resent[1]["reason"]
    assert topology.suite_runs(after) == 1
    assert topology.deployed().count(after) == 1
    assert topology.deployment("e-dup").state == "succeeded"


def test_a_branch_with_no_suite_runs_none(topology: Topology) -> None:
    after = revision()

    status, body = deliver(topology, "docs/readme", after)

    assert (status, body["status"]) == (202, "accepted"), body
    assert "testing: no suite runs on pushes to docs/readme" in body["reason"]
    assert "suites" not in body
    assert topology.suite_runs(after) == 0
    assert (
        topology.store.list_runs(task="testing", limit=None, trigger_id=f"push:acme/shop:unit:{after}") == []
    )
    # Its deployment keeps waiting for the suite nothing ran.
    deployment = topology.deployment("e-docs")
    assert deployment.state == "requested" and after not in topology.deployed()
