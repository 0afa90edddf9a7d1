"""The soak's stand-in for Pub/Sub: a message whose run failed on every delivery goes to the
dead-letter topic once; a message merely without an outcome yet is pushed again (at most every
``--stand-in-patience`` seconds, a few times) and never forwarded, so that its late delivery and a
replay of its dead letter cannot both apply."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from types import SimpleNamespace

from soak.events import Plan, SoakEvent
from soak.run import MAX_REDELIVERIES, STALLED_PASSES, Soak


@dataclass
class FakeSender:
    redelivered: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)

    def redeliver(self, event: SoakEvent, *, channel: str) -> bool:
        self.redelivered.append(event.key)
        return True

    def dead_letter(self, event: SoakEvent, attempts: int) -> bool:
        self.forwarded.append(event.key)
        return True


def _soak(patience: float) -> SimpleNamespace:
    return SimpleNamespace(
        args=argparse.Namespace(stand_in_patience=patience),
        forwarded=[],
        redelivered={},
        _pushed={},
        log=lambda line: None,
    )


def _event(key: str, kind: str = "scheduled") -> SoakEvent:
    return SoakEvent(index=0, key=key, kind=kind, environment="development", phase="chaos")


def _passes(soak: SimpleNamespace, plan: Plan, sender: FakeSender, waiting: list[str], n: int) -> None:
    stalled: dict[str, int] = {}
    for _ in range(n):
        Soak._stand_in_for_pubsub(soak, plan, sender, waiting, stalled)  # type: ignore[arg-type]


def test_a_message_without_an_outcome_is_pushed_again_but_never_forwarded():
    plan = Plan([_event("a"), _event("p", kind="poison")])
    sender, soak = FakeSender(), _soak(patience=0)
    _passes(soak, plan, sender, ["a", "p"], STALLED_PASSES * (MAX_REDELIVERIES + 5))
    assert sender.forwarded == []
    assert sender.redelivered.count("a") == MAX_REDELIVERIES
    assert sender.redelivered.count("p") == MAX_REDELIVERIES


def test_a_run_out_of_deliveries_is_forwarded_once():
    plan = Plan([_event("d", kind="doom")])
    sender, soak = FakeSender(), _soak(patience=0)
    _passes(soak, plan, sender, ["d (dead letter)"], STALLED_PASSES * 4)
    assert sender.forwarded == ["d"]
    assert sender.redelivered == []


def test_pushes_of_one_message_wait_for_the_patience():
    plan = Plan([_event("r")])
    sender, soak = FakeSender(), _soak(patience=3600)
    _passes(soak, plan, sender, ["r (redelivery)"], STALLED_PASSES * 4)
    assert sender.redelivered == ["r"]  # the first push; the next ones wait an hour
