"""Regression: replaying a dead letter whose message had already run.

Pub/Sub dead-letters a message once its deliveries run out even when its run succeeded (the
acknowledgements were lost: a push answered after the deadline). The soak's checker, which
replays every dead letter, found that such a replay ran the change a second time under the
replay's own trigger id. A replay now answers with the run the message's own key made, unless
that run failed or was skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from orchestra.events.dead_letters import original_trigger, replay_dead_letter
from orchestra.models import DeadLetter, RunStatus, run_id_for

from soak.events import SoakEvent, incident
from tests.soak.test_checker import Soaked


def _letter(soaked: Soaked, letter_id: str, body: dict) -> DeadLetter:
    letter = DeadLetter(
        id=letter_id,
        message_id=letter_id,
        origin="test",
        data=json.dumps(body),
        received_at=soaked.clock.now(),
    )
    soaked.app.store.add_dead_letter(letter)
    return letter


def _applies(soaked: Soaked, key: str) -> int:
    lines = soaked.ledger.read_text().splitlines() if soaked.ledger.exists() else []
    entries = [json.loads(line) for line in lines]
    return sum(1 for e in entries if e["op"] == "apply" and e["key"] == key)


@pytest.fixture
def soaked(tmp_path: Path):
    soaked = Soaked(tmp_path)
    try:
        yield soaked
    finally:
        soaked.app.close()


BODY = {"task": "soak", "mode": "apply", "trigger_id": "k1", "params": {"key": "k1"}}


def test_replaying_a_message_whose_run_succeeded_returns_that_run(soaked: Soaked):
    soaked.run("k1")
    original = soaked.app.store.get_run(run_id_for("soak", "k1"))
    assert original.status == RunStatus.succeeded and _applies(soaked, "k1") == 1
    _letter(soaked, "dl1", BODY)
    replay = replay_dead_letter(soaked.app, "dl1", "user:operator")
    assert replay.outcome.duplicate and replay.outcome.run.id == original.id
    assert _applies(soaked, "k1") == 1  # before the fix: 2, under run replay:dl1
    assert soaked.app.store.get_run(run_id_for("soak", "replay:dl1")) is None
    assert soaked.app.store.get_dead_letter("dl1").replayed_run_ids == [original.id]
    soaked.event("k1")
    assert soaked.check().ok  # the checker replays it too: still applied once


def test_a_message_whose_run_failed_is_still_run_again(soaked: Soaked):
    soaked.run("k1", doom=True)
    soaked.run("k1", doom=True)
    assert soaked.app.store.get_run(run_id_for("soak", "k1")).status == RunStatus.failed
    _letter(soaked, "dl1", {**BODY, "params": {"key": "k1", "doom": True}})
    soaked.heal.touch()
    replay = replay_dead_letter(soaked.app, "dl1", "user:operator")
    assert not replay.outcome.duplicate and replay.outcome.run.trigger_id == "replay:dl1"
    assert replay.outcome.run.status == RunStatus.succeeded and _applies(soaked, "k1") == 1


def test_a_message_without_a_key_of_its_own_replays_as_before(soaked: Soaked):
    body = {k: v for k, v in BODY.items() if k != "trigger_id"}
    _letter(soaked, "dl1", body)
    assert original_trigger(soaked.app.store.get_dead_letter("dl1")) is None
    replay = replay_dead_letter(soaked.app, "dl1", "user:operator")
    assert replay.outcome.run.trigger_id == "replay:dl1" and _applies(soaked, "k1") == 1


def test_the_original_trigger_of_an_incident_is_its_opening():
    event = SoakEvent(
        index=0, key="inc-1", kind="alert_open", environment="staging", phase="chaos", incident="inc-1"
    )
    letter = DeadLetter(
        id="d",
        message_id="d",
        origin="t",
        data=json.dumps(incident(event, "open")),
        received_at="2026-01-01T00:00:00Z",
    )
    assert original_trigger(letter) == "inc-1:open"
    assert original_trigger(letter.model_copy(update={"data": "{not json"})) is None
