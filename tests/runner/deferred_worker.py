"""A separate process running one request of a deferred-claim automation (killed on purpose)."""

from __future__ import annotations

import json
import sys

from orchestra.config import parse_config
from orchestra.models import Mode, TriggerKind
from orchestra.runner import Runner, RunRequest
from orchestra.store import open_store

from tests.runner.deferred_automations import deferred_registry


def main() -> None:
    spec = json.loads(sys.argv[1])
    runner = Runner(
        parse_config(spec["config"]),
        open_store(spec["store"]),
        registry=deferred_registry(),
        owner=spec.get("owner"),
    )
    outcome = runner.submit(
        RunRequest(
            task=spec["task"],
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
