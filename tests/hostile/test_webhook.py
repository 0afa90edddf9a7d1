"""Replayed and out-of-order GitHub pushes cannot move deployments backwards.

Every case goes through the real ``repo_webhook`` function (functions-framework test client) with
a real HMAC signature: a captured push re-sent with a new ``X-GitHub-Delivery`` is a duplicate
that names the existing deployment; an older revision never supersedes a newer one; a deployment
a person approved stays approved; only a push that follows a pending deployment (``before``
chain, else a newer head commit) supersedes it. Each case checks the status code, that no
traceback leaks, and that nothing but what the case expects was stored or changed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from orchestra import app as app_module
from orchestra.app import App, build_app
from orchestra.automations.deployment.approvals import approve
from orchestra.automations.deployment.requests import deployment_id_for_revision, deployment_settings
from orchestra.automations.deployment.state import DeploymentState, list_deployments, transition
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.store.sqlite import SqliteStateStore

from tests.functions.conftest import WEBHOOK_SECRET, fixture_json, make_client, sign

CONFIG = """
default_environment: development
environments:
  development: {}
  staging: {}
  production: {protected: true, approval_required_risk: high}
automations:
  deployment:
    settings:
      environments:
        production: {requires_approval: true}
"""
REPOSITORY = "Codertocat/Hello-World"
ZERO = "0" * 40
R0, R1, R2, R3, RX = (f"{n:040x}" for n in (0xA0, 0xA1, 0xA2, 0xA3, 0xBB))
T0, T1, T2, T9 = (f"2026-01-0{d}T10:00:00+01:00" for d in (1, 2, 3, 9))


@dataclass(frozen=True)
class Push:
    delivery: str
    revision: str
    before: str = ZERO
    timestamp: str = T1
    pusher: str = "alice"


@dataclass(frozen=True)
class Approve:
    revision: str
    approver: str = "user:bob"


@dataclass(frozen=True)
class Cancel:
    revision: str


@dataclass
class Case:
    name: str
    history: list[Push | Approve | Cancel]
    attack: Push
    code: int
    status: str
    # Revisions whose deployment the attack creates or changes, and the state each must end in;
    # every other deployment must come out byte for byte as it went in.
    changed: dict[str, str] = field(default_factory=dict)
    reason: list[str] = field(default_factory=list)


def dep_id(revision: str) -> str:
    return deployment_id_for_revision(REPOSITORY, "production", revision)


CASES = [
    Case(
        "captured push re-sent with a new delivery id",
        [Push("d-1", R1)],
        Push("d-evil", R1),
        200,
        "duplicate",
        reason=["already requested for production", dep_id(R1), "nothing requested"],
    ),
    Case(
        "older revision replayed after a newer one was approved",
        [Push("d-1", R1), Push("d-2", R2, before=R1, timestamp=T2), Approve(R2)],
        Push("d-evil", R1),
        200,
        "duplicate",
        reason=[dep_id(R1), "superseded"],
    ),
    Case(
        "older revision replayed while the newer one still waits",
        [Push("d-1", R1), Push("d-2", R2, before=R1, timestamp=T2)],
        Push("d-evil", R1),
        200,
        "duplicate",
    ),
    Case(
        "an older push delivered late, after the newer one was approved",
        [Push("d-2", R2, before=R1, timestamp=T2), Approve(R2)],
        Push("d-1", R1, before=R0, timestamp=T1),
        202,
        "accepted",
        changed={R1: "superseded"},
        reason=["superseded at once", dep_id(R2)],
    ),
    Case(
        "an unrelated push with an older head commit",
        [Push("d-1", R1, timestamp=T2)],
        Push("d-x", RX, before=R0, timestamp=T1),
        202,
        "accepted",
        changed={RX: "superseded"},
    ),
    Case(
        "a push whose before is the pending revision supersedes it, whatever its timestamp",
        [Push("d-1", R1, timestamp=T9)],
        Push("d-2", R2, before=R1, timestamp=T0),
        202,
        "accepted",
        changed={R1: "superseded", R2: "requested"},
        reason=[f"supersedes {dep_id(R1)}"],
    ),
    Case(
        "a push with a newer head commit supersedes a pending one it does not chain to",
        [Push("d-1", R1, timestamp=T1)],
        Push("d-2", R2, before=RX, timestamp=T2),
        202,
        "accepted",
        changed={R1: "superseded", R2: "requested"},
    ),
    Case(
        "a newer push never supersedes a deployment a person approved",
        [Push("d-1", R1), Approve(R1)],
        Push("d-2", R2, before=R1, timestamp=T2),
        202,
        "accepted",
        changed={R2: "requested"},
        reason=[f"waits for approved {dep_id(R1)}"],
    ),
    Case(
        "the before chain is followed through recorded pushes that are no longer pending",
        # R2 (child of R1) arrived first and was cancelled; R1 came late with a future-dated commit.
        [Push("d-2", R2, before=R1, timestamp=T2), Cancel(R2), Push("d-1", R1, before=R0, timestamp=T9)],
        Push("d-3", R3, before=R2, timestamp=T0),
        202,
        "accepted",
        changed={R1: "superseded", R3: "requested"},
    ),
]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.delenv("ORCHESTRA_EXTRA_AUTOMATIONS", raising=False)
    store = SqliteStateStore(tmp_path / "state.db")
    config = parse_config(CONFIG, "hostile-webhook-config")
    built = build_app(
        config=config,
        store=store,
        clock=FakeClock(dt.datetime(2026, 1, 8, 10, tzinfo=dt.UTC)),
        ids=RandomIds(5),
    )
    previous = app_module.set_app(built)
    try:
        yield built
    finally:
        app_module.set_app(previous)
        store.close()


def payload_for(push: Push) -> dict[str, Any]:
    payload = fixture_json("push-with-new-branch.payload.json")
    payload["ref"] = "refs/heads/main"
    payload.update(after=push.revision, before=push.before, created=push.before == ZERO)
    payload["head_commit"].update(id=push.revision, timestamp=push.timestamp)
    payload["pusher"] = {"name": push.pusher, "email": f"{push.pusher}@users.noreply.github.com"}
    payload["sender"]["login"] = push.pusher
    return payload


def deliver(client: Any, push: Push, payload: dict[str, Any] | None = None) -> Any:
    body = json.dumps(payload or payload_for(push)).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": push.delivery,
        "X-Hub-Signature-256": sign(body),
        "Content-Type": "application/json",
    }
    return client.post("/", data=body, headers=headers)


def snapshot(app: App) -> tuple[dict[str, Any], dict[str, Any]]:
    deployments = {d.revision: d.model_dump(mode="json") for d in list_deployments(app.store, limit=None)}
    events = {e.id: e.model_dump(mode="json") for e in app.store.list_events(limit=None)}
    return deployments, events


def play(app: App, client: Any, history: list[Push | Approve | Cancel]) -> dict[str, dict[str, Any]]:
    """Replay the history; returns each push's exact payload, so an attack can re-send one."""
    sent: dict[str, dict[str, Any]] = {}
    settings = deployment_settings(app.config)
    for step in history:
        if isinstance(step, Push):
            sent[step.revision] = payload_for(step)
            assert deliver(client, step, sent[step.revision]).status_code == 202
        elif isinstance(step, Approve):
            approve(app.store, app.clock, settings, dep_id(step.revision), step.approver, config=app.config)
        else:
            [dep] = [d for d in list_deployments(app.store, limit=None) if d.revision == step.revision]
            transition(app.store, app.clock, dep, DeploymentState.cancelled, actor="user:bob")
        app.clock.advance(minutes=1)
    return sent


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_replays_and_stale_pushes(app: App, case: Case):
    client = make_client("webhooks")
    sent = play(app, client, case.history)
    before_deployments, before_events = snapshot(app)

    # A replay re-sends the captured bytes' content exactly, only the delivery id is new.
    captured = sent.get(case.attack.revision) if case.attack.delivery == "d-evil" else None
    response = deliver(client, case.attack, captured)

    assert response.status_code == case.code, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    assert response.json["status"] == case.status
    for needle in case.reason:
        assert needle in response.json["reason"], response.json["reason"]

    after_deployments, after_events = snapshot(app)
    for revision, doc in before_deployments.items():
        if revision not in case.changed:
            assert after_deployments[revision] == doc, f"deployment of {revision[-2:]} changed"
    assert {r: after_deployments[r]["state"] for r in case.changed} == case.changed
    assert set(after_deployments) == set(before_deployments) | set(case.changed)
    new_events = {k: v for k, v in after_events.items() if k not in before_events}
    assert after_events.items() >= before_events.items()  # nothing overwritten
    [record] = new_events.values()
    assert (record["event_id"], record["status"]) == (case.attack.delivery, case.status)


def test_redelivering_the_replay_is_still_one_duplicate_per_delivery(app: App):
    client = make_client("webhooks")
    original = Push("d-1", R1)
    sent = play(app, client, [original])
    replay = Push("d-evil", R1)
    first = deliver(client, replay, sent[R1])
    again = deliver(client, replay, sent[R1])
    assert (first.status_code, again.status_code) == (200, 200)
    assert [d.revision for d in list_deployments(app.store, limit=None)] == [R1]
    statuses = sorted(e.status for e in app.store.list_events(limit=None) if e.event_id == "d-evil")
    assert statuses == ["duplicate", "duplicate"]
