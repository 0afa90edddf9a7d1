"""Small automations that act on real files, used to exercise the runner's guarantees."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from orchestra.automation import Analysis, Automation, RunContext, Verification
from orchestra.errors import InputError, TransientError
from orchestra.models import Action, Finding, Risk, Severity
from orchestra.registry import Registry
from pydantic import BaseModel, ConfigDict


class Counter:
    """Counts executions in a file so separate processes and threads agree."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def bump(self, key: str) -> int:
        # O_APPEND writes of one short line are atomic, so concurrent callers never lose a count.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{key}\n".encode())
        finally:
            os.close(fd)
        return self.get(key)

    def get(self, key: str) -> int:
        if not self.path.exists():
            return 0
        return self.path.read_text().splitlines().count(key)


class NoopParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    counter: str | None = None
    sleep: float = 0.0
    fail_times: int = 0
    permanent_failure: bool = False
    hang_on_first_call: bool = False
    bad_input: bool = False


class Noop(Automation):
    name = "noop"
    Params = NoopParams

    def analyze(self, ctx: RunContext) -> Analysis:
        p: NoopParams = ctx.params
        if p.counter:
            count = Counter(Path(p.counter)).bump("analyze")
            if count <= p.fail_times:
                raise TransientError(f"dependency unavailable (call {count})")
        if p.hang_on_first_call and p.counter and Counter(Path(p.counter)).get("analyze") == 1:
            time.sleep(120)  # the test kills this process while it "works"
        if p.bad_input:
            raise InputError("line 3: not a number", where="metrics.csv")
        if p.permanent_failure:
            raise RuntimeError("automation bug")
        if p.sleep:
            time.sleep(p.sleep)
        return Analysis(findings=[Finding(id="noop.ok", severity=Severity.info, summary="nothing to do")])


class TunerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    counter: str
    value: int = 1
    risks: list[Risk] = [Risk.low]
    verify_ok: bool = True
    fail_apply: bool = False
    crash_after_apply: bool = False
    # Only the action at this position (0-based) fails to apply / crashes the process after it.
    fail_apply_on: int | None = None
    crash_after_apply_on: int | None = None


class Tuner(Automation):
    """Sets ``value`` in a JSON file; verification is decided by ``verify_ok``."""

    name = "tuner"
    Params = TunerParams

    def analyze(self, ctx: RunContext) -> Analysis:
        p: TunerParams = ctx.params
        actions = [
            Action(
                id=f"set-{i}",
                description=f"set key{i} to {p.value}",
                risk=risk,
                kind="set",
                params={"key": f"key{i}", "value": p.value},
            )
            for i, risk in enumerate(p.risks)
        ]
        return Analysis(actions=actions)

    def _read(self, ctx: RunContext) -> dict[str, Any]:
        path = Path(ctx.params.target)
        return json.loads(path.read_text()) if path.exists() else {}

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        return {"previous": self._read(ctx).get(action.params["key"])}

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        p: TunerParams = ctx.params
        position = int(action.id.removeprefix("set-"))
        Counter(Path(p.counter)).bump("apply")
        Counter(Path(p.counter)).bump(f"apply:{action.id}")
        if p.fail_apply or p.fail_apply_on == position:
            raise RuntimeError("API refused the change")
        data = self._read(ctx)
        data[action.params["key"]] = action.params["value"]
        Path(p.target).write_text(json.dumps(data))
        if p.crash_after_apply or p.crash_after_apply_on == position:
            os._exit(9)  # the process dies between apply and verify
        return {"written": action.params["value"]}

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        p: TunerParams = ctx.params
        Counter(Path(p.counter)).bump("verify")
        current = self._read(ctx).get(action.params["key"])
        return Verification(
            ok=p.verify_ok and current == action.params["value"], evidence={"current": current}
        )

    def rollback(self, ctx: RunContext, action: Action) -> None:
        Counter(Path(ctx.params.counter)).bump("rollback")
        Counter(Path(ctx.params.counter)).bump(f"rollback:{action.id}")
        data = self._read(ctx)
        previous = (action.rollback or {}).get("previous")
        if previous is None:
            data.pop(action.params["key"], None)
        else:
            data[action.params["key"]] = previous
        Path(ctx.params.target).write_text(json.dumps(data))


class ProbeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    script: str
    """A JSON file: action id -> the outcomes its checks give, in turn (the last one repeats)."""
    actions: int = 1


class Probe(Automation):
    """Sets ``keyN`` in a JSON file; each verification says what the script file says next, and
    counts itself in the script file (``checked``), so separate runners agree."""

    name = "probe"
    Params = ProbeParams

    def analyze(self, ctx: RunContext) -> Analysis:
        p: ProbeParams = ctx.params
        return Analysis(
            actions=[
                Action(
                    id=f"set-{i}",
                    description=f"set key{i}",
                    risk=Risk.low,
                    kind="set",
                    params={"key": f"key{i}"},
                )
                for i in range(p.actions)
            ]
        )

    def _read(self, ctx: RunContext) -> dict[str, Any]:
        path = Path(ctx.params.target)
        return json.loads(path.read_text()) if path.exists() else {}

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        return {"previous": self._read(ctx).get(action.params["key"])}

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        data = self._read(ctx)
        data[action.params["key"]] = "new"
        Path(ctx.params.target).write_text(json.dumps(data))
        return {}

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        path = Path(ctx.params.script)
        script = json.loads(path.read_text())
        outcomes: list[str] = script[action.id]
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        script.setdefault("checked", []).append(action.id)
        path.write_text(json.dumps(script))
        evidence: dict[str, Any] = {"value": self._read(ctx).get(action.params["key"])}
        if outcome == "inconclusive":
            evidence["reason"] = "no samples after the change yet"
        return Verification(outcome=outcome, evidence=evidence)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        data = self._read(ctx)
        previous = (action.rollback or {}).get("previous")
        if previous is None:
            data.pop(action.params["key"], None)
        else:
            data[action.params["key"]] = previous
        Path(ctx.params.target).write_text(json.dumps(data))


def build_registry() -> Registry:
    reg = Registry({})
    reg.register(Noop)
    reg.register(Tuner)
    reg.register(Probe)
    return reg
