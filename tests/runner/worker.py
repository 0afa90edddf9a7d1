"""A separate process that runs one request through the runner (killed by tests on purpose), and
how tests start it and wait for it.

The request comes as one JSON argument: the runner's configuration text, the store's URL, the
task, trigger and parameters, and the registry (``"test"``: the test automations; ``"deferred"``:
those plus the automations whose analysis only reads).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestra.clock import SystemClock
from orchestra.config import parse_config
from orchestra.models import Mode, Run, RunPhase, RunStatus, TriggerKind, run_id_for
from orchestra.registry import Registry
from orchestra.runner import Runner, RunRequest
from orchestra.store import open_store
from orchestra.store.base import StateStore

from tests.runner.automations import build_registry
from tests.runner.conftest import RUNNER_CONFIG
from tests.runner.deferred_automations import deferred_registry

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRIES: dict[str, Callable[[], Registry]] = {"test": build_registry, "deferred": deferred_registry}


def spawn_worker(
    store_url: str, spec: dict[str, Any], *, config: str = RUNNER_CONFIG, registry: str = "test"
) -> subprocess.Popen[bytes]:
    """Start the worker on ``spec`` (task, trigger_id, params; optionally owner, mode, level,
    production) against the store at ``store_url``."""
    if registry not in REGISTRIES:
        raise ValueError(f"unknown worker registry {registry!r}: accepted are {sorted(REGISTRIES)}")
    spec = {"config": config, "store": store_url, "registry": registry, **spec}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.runner.worker", json.dumps(spec)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``predicate`` (the worker is another process: no clock of ours to advance)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not reached in {timeout} s")


def crash_after_first_change(
    store: StateStore,
    task: str,
    trigger_id: str,
    target: Path,
    counter: Path,
    *,
    config: str = RUNNER_CONFIG,
    registry: str = "test",
    **params: Any,
) -> Run:
    """Run ``task`` (a tuner) in the worker at level 1 to set ``key0`` of ``target`` (written as
    ``{"key0": 1}``) to 9, crashing right after that change; wait for the worker to exit and for
    the run's lease to expire. Returns the stored run, checked to be left running in its applying
    phase with the change's rollback recorded."""
    target.write_text(json.dumps({"key0": 1}))
    params = {"target": str(target), "counter": str(counter), "value": 9, "crash_after_apply": True, **params}
    spec = {"task": task, "trigger_id": trigger_id, "mode": "apply", "level": 1, "params": params}
    proc = spawn_worker(store.url, spec, config=config, registry=registry)
    assert proc.wait(timeout=60) == 9, proc.stderr.read().decode() if proc.stderr else ""
    run_id = run_id_for(task, trigger_id)
    crashed = store.get_run(run_id)
    assert crashed is not None and crashed.status == RunStatus.running and crashed.phase == RunPhase.applying
    assert crashed.actions[0].rollback == {"previous": 1}
    assert crashed.lease is not None
    expires_at = crashed.lease.expires_at
    wait_for(lambda: expires_at <= SystemClock().now(), timeout=5)
    return crashed


def main() -> None:
    spec = json.loads(sys.argv[1])
    config = parse_config(spec["config"])
    registry = REGISTRIES[spec.get("registry", "test")]()
    runner = Runner(config, open_store(spec["store"]), registry=registry, owner=spec.get("owner"))
    outcome = runner.submit(
        RunRequest(
            task=spec["task"],
            environment="production" if spec.get("production") else "development",
            mode=Mode(spec.get("mode", "analyze")),
            automation_level=spec.get("level"),
            params=spec["params"],
            trigger_kind=TriggerKind.event,
            trigger_id=spec["trigger_id"],
            requested_by="worker",
        )
    )
    print(outcome.run.status)


if __name__ == "__main__":
    main()
