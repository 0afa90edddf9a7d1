"""Automations whose analysis only reads (``read_only_analysis``): the runner defers their claim.
Shared by the deferred-claim tests and their worker process."""

from __future__ import annotations

from pathlib import Path

from orchestra.automation import Analysis, RunContext
from orchestra.clock import FakeClock
from orchestra.registry import Registry
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
