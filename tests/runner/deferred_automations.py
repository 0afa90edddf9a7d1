"""Automations whose analysis only reads (``read_only_analysis``): the runner defers their claim.
Shared by the deferred-claim tests and their worker process, with the event record a delivery
stores beside its run."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from orchestra.automation import Analysis, RunContext
from orchestra.clock import FakeClock
from orchestra.models import EventRecord, Run
from orchestra.registry import Registry
from orchestra.runner import RunRequest
from orchestra.store.base import RUNS

from tests.runner.automations import Counter, Noop, NoopParams, Tuner, build_registry


class Died(BaseException):
    """Stands for the process dying: nothing in the runner handles it."""


class ReaderParams(NoopParams):
    # While analysing: advance the (fake) clock this far, beat the heartbeat, note whether the
    # run is stored, and die if asked.
    lasts: float = 0.0
    die: bool = False


class Reader(Noop):
    name = "reader"
    Params = ReaderParams
    read_only_analysis = True
    seen: list[dict | None] = []

    def analyze(self, ctx: RunContext) -> Analysis:
        p: ReaderParams = ctx.params
        if p.lasts and isinstance(ctx.clock, FakeClock):
            ctx.clock.advance(p.lasts)
        ctx.heartbeat()
        Reader.seen.append(ctx.store.get(RUNS, ctx.run.id))
        # Dies once (the first time, when counting): a retry by recovery with the stored
        # parameters goes on.
        if p.die and not (p.counter and Counter(Path(p.counter)).get("died")):
            if p.counter:
                Counter(Path(p.counter)).bump("died")
            raise Died
        return super().analyze(ctx)


class ReaderTuner(Tuner):
    name = "reader-tuner"
    read_only_analysis = True


def deferred_registry() -> Registry:
    registry = build_registry()
    registry.register(Reader)
    registry.register(ReaderTuner)
    return registry


def with_record(request: RunRequest, clock: Any, source: str = "test") -> RunRequest:
    """``request`` with the event record its delivery stores with the run (``<source>:<trigger>``,
    kept a day); none after a transient failure, as the delivery is retried."""

    def build(run: Run) -> EventRecord | None:
        if run.error is not None and run.error.transient:
            return None
        now = clock.now()
        return EventRecord(
            id=f"{source}:{run.trigger_id}",
            source=source,
            event_id=run.trigger_id,
            kind=source,
            status="accepted",
            reason=f"run {run.id} {run.status.value}",
            run_ids=[run.id],
            received_at=now,
            expires_at=now + dt.timedelta(days=1),
        )

    return dataclasses.replace(request, record=build)
