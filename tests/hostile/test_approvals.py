"""Four eyes are four eyes: a pusher cannot approve their own deployment under any of their
identities, only the environment's approvers may approve, and the CLI cannot be told who it is
against a shared store.

Pushes arrive through the real ``repo_webhook`` function with a real signature; approvals go
through the real handlers: ``orchestra deployments approve`` and ``orchestra approve`` (click) and
the controller's ``POST /approvals/{run_id}``. Each refused case checks the exit or status code,
that no traceback leaks, and that nothing was stored or changed.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from orchestra import app as app_module
from orchestra.app import App, build_app
from orchestra.automations.deployment.requests import request_deployment
from orchestra.automations.deployment.state import list_deployments
from orchestra.cli.main import cli
from orchestra.clock import FakeClock, RandomIds, SystemClock
from orchestra.config import Config, parse_config
from orchestra.models import Mode, RunStatus, TriggerKind
from orchestra.runner import RunRequest
from orchestra.store.base import StateStore
from orchestra.store.sqlite import SqliteStateStore

from tests.functions.conftest import WEBHOOK_SECRET, fixture_json, make_client, sign

PUSHER, PUSHER_EMAIL, SENDER = "alice", "alice.personal@example.com", "alice-ci"
TOKENS = {
    "t-alice": "alice@corp.example",
    "t-pusher-email": PUSHER_EMAIL,
    "t-sender": f"github:{SENDER}",
    "t-mallory": "mallory@corp.example",
    "t-bob": "bob@corp.example",
}


def config_doc() -> dict[str, Any]:
    approvers = ["group:release@corp.example", "dan@corp.example"]
    return {
        "default_environment": "development",
        "environments": {
            "development": {},
            "staging": {"automation_level": 2, "approval_required_risk": "medium", "approvers": approvers},
            "production": {"protected": True, "approval_required_risk": "high", "approvers": approvers},
        },
        "identities": {"github:alice": "alice@corp.example", "user:alice": "alice@corp.example"},
        "groups": {"release@corp.example": ["bob@corp.example"]},
        "automations": {
            "deployment": {
                "settings": {
                    "environments": {
                        "production": {"requires_approval": True},
                        # Staging needs no deployment approval: the run's gate is what waits.
                        "staging": {
                            "deployer": {"type": "command", "deploy": [[sys.executable, "-c", "pass"]]}
                        },
                    }
                }
            }
        },
    }


@dataclass
class Env:
    app: App
    config_path: Path
    store_url: str

    def push(self, branch: str, delivery: str, revision: str) -> str:
        payload = fixture_json("push-with-new-branch.payload.json")
        payload["ref"] = f"refs/heads/{branch}"
        payload["after"] = payload["head_commit"]["id"] = revision
        payload["pusher"] = {"name": PUSHER, "email": PUSHER_EMAIL}
        payload["sender"]["login"] = SENDER
        body = json.dumps(payload).encode()
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body)}
        response = make_client("webhooks").post("/", data=body, headers=headers)
        assert response.status_code == 202, response.get_data(as_text=True)
        return response.json["deployment"]["id"]

    def orchestra(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            cli, [*args, "--config", str(self.config_path), "--store", self.store_url]
        )
        return result.exit_code, result.stdout + result.stderr + (
            repr(result.exception) if result.exception else ""
        )

    def snapshot(self) -> dict[str, Any]:
        store = self.app.store
        return {
            "deployments": [d.model_dump(mode="json") for d in list_deployments(store, limit=None)],
            "runs": [r.model_dump(mode="json") for r in store.list_runs(limit=None)],
            "events": [e.model_dump(mode="json") for e in store.list_events(limit=None)],
        }


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("ORCHESTRA_API_TOKENS", ",".join(f"{t}={i}" for t, i in TOKENS.items()))
    monkeypatch.delenv("ORCHESTRA_AUDIENCE", raising=False)
    monkeypatch.delenv("ORCHESTRA_EXTRA_AUTOMATIONS", raising=False)
    monkeypatch.delenv("ORCHESTRA_STORE", raising=False)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(config_doc()))
    store = SqliteStateStore(tmp_path / "state.db")
    # The CLI's deployment commands use the real clock: start the application's clock at now.
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    app = build_app(
        config=parse_config(config_path.read_text(), "approvals"), store=store, clock=clock, ids=RandomIds(9)
    )
    previous = app_module.set_app(app)
    try:
        yield Env(app, config_path, f"sqlite:///{tmp_path / 'state.db'}")
    finally:
        app_module.set_app(previous)
        store.close()


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


# Who tries to approve alice's production deployment, and whether it may.
DEPLOYMENT_APPROVERS = [
    ("pusher name", f"github:{PUSHER}", 2, "another identity"),
    ("pusher name, other case", "GitHub:ALICE", 2, "another identity"),
    ("pusher e-mail", PUSHER_EMAIL.upper(), 2, "another identity"),
    ("sender login", f"github:{SENDER}", 2, "another identity"),
    ("mapped e-mail", "alice@corp.example", 2, "linked to github:alice in identities"),
    ("mapped local name", "user:alice", 2, "linked to github:alice in identities"),
    ("outside the approvers", "mallory@corp.example", 2, "may not approve in production"),
    ("unmapped local name", "user:bob", 2, "may not approve in production"),
    ("listed person", "dan@corp.example", 0, ""),
    ("member of a listed group", "bob@corp.example", 0, ""),
]


@pytest.mark.parametrize(
    ("approver", "code", "needle"),
    [c[1:] for c in DEPLOYMENT_APPROVERS],
    ids=[c[0] for c in DEPLOYMENT_APPROVERS],
)
def test_deployment_approval_through_the_cli(env: Env, approver: str, code: int, needle: str):
    dep_id = env.push("main", "d-1", "a" * 40)
    before = env.snapshot()
    exit_code, out = env.orchestra("deployments", "approve", dep_id, "--as", approver, "--format", "json")
    assert exit_code == code, out
    no_traceback(out)
    after = env.snapshot()
    if code:
        assert needle in out and out.count("error:") == 1
        assert after == before
        return
    approved = json.loads(out)
    assert approved["state"] == "approved" and approved["approved_by"] == approver
    assert after["runs"] == before["runs"] and after["events"] == before["events"]
    assert [d["id"] for d in after["deployments"]] == [dep_id]


def waiting_staging_run(env: Env) -> str:
    """Alice pushes to develop; the deployment run proposes the deploy, which waits for approval."""
    env.push("develop", "d-s", "b" * 40)
    run = env.app.runner.submit(
        RunRequest(
            task="deployment",
            environment="staging",
            mode=Mode.apply,
            trigger_kind=TriggerKind.scheduled,
            trigger_id="tick-1",
            requested_by="pubsub:orchestra-scheduled",
        )
    ).run
    assert run.status == RunStatus.awaiting_approval, run.reason
    (action,) = run.actions
    assert set(action.params["requester_identities"]) >= {f"github:{PUSHER}", PUSHER_EMAIL}
    return run.id


RUN_APPROVERS = [
    ("pusher e-mail", "t-pusher-email", 403, "another identity"),
    ("sender login", "t-sender", 403, "another identity"),
    ("mapped e-mail", "t-alice", 403, "linked to github:alice"),
    ("outside the approvers", "t-mallory", 403, "may not approve in staging"),
    ("member of a listed group", "t-bob", 200, ""),
]


@pytest.mark.parametrize(
    ("token", "code", "needle"), [c[1:] for c in RUN_APPROVERS], ids=[c[0] for c in RUN_APPROVERS]
)
def test_run_approval_through_the_controller(env: Env, token: str, code: int, needle: str):
    run_id = waiting_staging_run(env)
    before = env.snapshot()
    response = make_client("controller").post(
        f"/approvals/{run_id}",
        data=json.dumps({"decision": "approve"}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == code, response.get_data(as_text=True)
    no_traceback(response.get_data(as_text=True))
    if code != 200:
        assert response.json["error"]["field"] == "approver" and needle in response.json["error"]["message"]
        assert env.snapshot() == before
        return
    run = env.app.store.get_run(run_id)
    assert run.status == RunStatus.succeeded and run.decision.by == TOKENS[token]
    assert [d.state for d in list_deployments(env.app.store, environment="staging")] == ["succeeded"]


@pytest.mark.parametrize("approver", [f"github:{PUSHER}", "user:alice", "user:nobody"])
def test_run_approval_through_the_cli_is_refused_for_the_pusher_and_outsiders(env: Env, approver: str):
    run_id = waiting_staging_run(env)
    before = env.snapshot()
    exit_code, out = env.orchestra("approve", run_id, "--as", approver)
    assert exit_code == 2 and out.count("error:") == 1, out
    no_traceback(out)
    assert env.snapshot() == before


def test_rejecting_is_for_the_requester_or_an_approver(env: Env):
    dep_id = env.push("main", "d-1", "c" * 40)
    before = env.snapshot()
    code, out = env.orchestra("deployments", "reject", dep_id, "--as", "mallory@corp.example")
    assert code == 2 and "may not reject" in out
    no_traceback(out)
    assert env.snapshot() == before
    code, out = env.orchestra("deployments", "reject", dep_id, "--as", "user:alice", "--format", "json")
    assert code == 0 and json.loads(out)["state"] == "rejected"  # the pusher withdraws


# ----------------------------------------------------------------------------- one entry point

DECISION_KEYS = {"subject_kind", "subject_id", "decision", "by", "at", "comment"}


def controller_decides(subject_id: str, token: str, body: dict[str, Any]) -> Any:
    return make_client("controller").post(
        f"/approvals/{subject_id}",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


@pytest.mark.parametrize("approver", [f"github:{PUSHER}", "user:alice", PUSHER_EMAIL])
def test_orchestra_approve_decides_a_deployment_and_refuses_its_pusher(env: Env, approver: str):
    dep_id = env.push("main", "d-1", "a" * 40)
    before = env.snapshot()
    code, out = env.orchestra("approve", dep_id, "--as", approver)
    assert code == 2 and out.count("error:") == 1 and "another identity" in out, out
    no_traceback(out)
    assert env.snapshot() == before
    code, out = env.orchestra("approve", dep_id, "--as", "dan@corp.example", "--comment", "ship it")
    assert code == 0, out
    assert f"deployment {dep_id}: approved by dan@corp.example: ship it (now approved)" in out
    (stored,) = list_deployments(env.app.store, limit=None)
    assert stored.state == "approved" and stored.approved_by == "dan@corp.example"
    assert [d.model_dump(mode="json", exclude={"at"}) for d in stored.decisions] == [
        {
            "subject_kind": "deployment",
            "subject_id": dep_id,
            "decision": "approve",
            "by": "dan@corp.example",
            "comment": "ship it",
        }
    ]
    assert stored.history[-1].actor == "dan@corp.example"
    assert stored.history[-1].reason == "approved by dan@corp.example: ship it"


@pytest.mark.parametrize("token", ["t-alice", "t-pusher-email", "t-sender"])
def test_post_approvals_decides_a_deployment_and_refuses_its_pusher(env: Env, token: str):
    dep_id = env.push("main", "d-1", "a" * 40)
    before = env.snapshot()
    refused = controller_decides(dep_id, token, {"decision": "approve"})
    assert refused.status_code == 403, refused.get_data(as_text=True)
    assert (
        refused.json["error"]["field"] == "approver"
        and "another identity" in refused.json["error"]["message"]
    )
    no_traceback(refused.get_data(as_text=True))
    assert env.snapshot() == before
    response = controller_decides(dep_id, "t-bob", {"decision": "approve", "comment": "ok"})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.json
    assert answer["decision"] == "approve" and answer["by"] == TOKENS["t-bob"]
    assert answer["deployment"]["id"] == dep_id and answer["deployment"]["state"] == "approved"
    assert answer["deployment"]["approved_by"] == TOKENS["t-bob"]
    assert answer["recorded"] == answer["deployment"]["decisions"][-1]
    assert answer["recorded"]["subject_kind"] == "deployment" and answer["recorded"]["comment"] == "ok"
    assert list_deployments(env.app.store, limit=None)[0].approved_by == TOKENS["t-bob"]
    # Decided once: a second approval is a conflict, not a second record.
    again = controller_decides(dep_id, "t-bob", {"decision": "approve"})
    assert again.status_code == 409 and again.json["error"]["field"] == "deployment"
    assert len(list_deployments(env.app.store, limit=None)[0].decisions) == 1


def test_rejecting_and_cancelling_a_deployment_through_the_one_entry_point(env: Env):
    first = env.push("main", "d-1", "a" * 40)
    code, out = env.orchestra("reject", first, "--as", "mallory@corp.example")
    assert code == 2 and "may not reject deployment" in out, out
    code, out = env.orchestra("reject", first, "--as", "user:alice", "--reason", "wrong", "--format", "json")
    assert code == 0, out
    rejected = json.loads(out)
    assert rejected["state"] == "rejected" and rejected["decisions"][-1]["decision"] == "reject"
    assert rejected["decisions"][-1]["comment"] == "wrong" and rejected["approved_by"] is None
    second = env.push("main", "d-2", "b" * 40)
    assert controller_decides(second, "t-bob", {"decision": "approve"}).status_code == 200
    cancelled = controller_decides(second, "t-bob", {"decision": "cancel", "reason": "freeze"})
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    dep = cancelled.json["deployment"]
    assert dep["state"] == "cancelled" and [d["decision"] for d in dep["decisions"]] == ["approve", "cancel"]
    assert dep["approved_by"] == TOKENS["t-bob"]  # who approved it stays on record


def test_runs_and_deployments_record_the_same_decision(env: Env):
    run_id = waiting_staging_run(env)
    run_answer = controller_decides(run_id, "t-bob", {"decision": "approve", "comment": "run ok"})
    assert run_answer.status_code == 200, run_answer.get_data(as_text=True)
    dep_id = env.push("main", "d-9", "9" * 40)
    dep_answer = controller_decides(dep_id, "t-bob", {"decision": "approve", "comment": "dep ok"})
    assert dep_answer.status_code == 200, dep_answer.get_data(as_text=True)
    for answer, kind, subject, comment in (
        (run_answer.json, "run", run_id, "run ok"),
        (dep_answer.json, "deployment", dep_id, "dep ok"),
    ):
        recorded = answer["recorded"]
        assert set(recorded) == DECISION_KEYS
        assert (recorded["subject_kind"], recorded["subject_id"], recorded["decision"]) == (
            kind,
            subject,
            "approve",
        )
        assert recorded["by"] == TOKENS["t-bob"] and recorded["comment"] == comment
    stored_run = env.app.store.get_run(run_id)
    stored_dep = next(d for d in list_deployments(env.app.store, limit=None) if d.id == dep_id)
    assert stored_run.decision.model_dump(mode="json") == run_answer.json["recorded"]
    assert stored_dep.decisions[-1].model_dump(mode="json") == dep_answer.json["recorded"]
    assert type(stored_run.decision) is type(stored_dep.decisions[-1])


def test_a_run_cannot_be_cancelled(env: Env):
    run_id = waiting_staging_run(env)
    before = env.snapshot()
    response = controller_decides(run_id, "t-bob", {"decision": "cancel"})
    assert response.status_code == 400 and response.json["error"]["field"] == "decision"
    assert "accepted decisions for run" in response.json["error"]["message"]
    assert env.snapshot() == before


def test_nothing_under_the_id_is_404_and_exit_2_naming_it(env: Env):
    response = controller_decides("dep-nope", "t-bob", {"decision": "approve"})
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.json["error"]["field"] == "run_id"
    assert response.json["error"]["message"] == "no run or deployment with id 'dep-nope'"
    code, out = env.orchestra("reject", "dep-nope", "--as", "dan@corp.example")
    assert code == 2 and "no run or deployment with id 'dep-nope'" in out, out
    no_traceback(out)


# ----------------------------------------------------------------------------- shared store


class ServiceAccountCredentials:
    """Shaped like google.oauth2.service_account.Credentials as the CLI sees them."""

    service_account_email = "approver@orchestra-test.iam.gserviceaccount.com"
    valid = True


@pytest.fixture
def firestore_env(
    firestore_store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[StateStore, Config, Callable[..., tuple[int, str]]]:
    import orchestra.identities as identities

    monkeypatch.setattr(identities, "default_credentials", ServiceAccountCredentials)
    # The emulator stands in for a shared Firestore here: the CLI must treat it as one.
    from orchestra.store.firestore import FirestoreStateStore

    monkeypatch.setattr(FirestoreStateStore, "emulated", property(lambda self: False))
    monkeypatch.delenv("ORCHESTRA_STORE", raising=False)
    doc = config_doc()
    for name in ("staging", "production"):
        doc["environments"][name].pop("approvers")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(doc))
    project = firestore_store.project  # type: ignore[attr-defined]

    def orchestra(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            cli, [*args, "--config", str(config_path), "--store", f"firestore://{project}"]
        )
        return result.exit_code, result.stdout + result.stderr + (
            repr(result.exception) if result.exception else ""
        )

    return firestore_store, parse_config(config_path.read_text(), "approvals"), orchestra


@pytest.mark.emulator
@pytest.mark.parametrize("command", ["deployments approve", "deployments reject", "approve", "reject"])
def test_as_is_refused_against_firestore(firestore_env, command: str):
    store, config, orchestra = firestore_env
    dep = request_deployment(
        store,
        SystemClock(),
        RandomIds(3),
        environment="production",
        ref="refs/heads/main",
        revision="d" * 40,
        repository="o/r",
        requested_by="github:alice",
        source_event=None,
    )
    target = dep.id if command.startswith("deployments") else "deployment-0000"
    before = [d.model_dump(mode="json") for d in list_deployments(store, limit=None)]
    code, out = orchestra(*command.split(), target, "--as", "user:root")
    assert code == 2, out
    no_traceback(out)
    assert "'user:root' is not the Google account in use" in out
    assert "approver@orchestra-test.iam.gserviceaccount.com" in out
    assert [d.model_dump(mode="json") for d in list_deployments(store, limit=None)] == before
    assert store.list_runs(limit=None) == [] and store.list_events(limit=None) == []


@pytest.mark.emulator
def test_against_firestore_the_cli_acts_as_its_google_account(firestore_env):
    store, config, orchestra = firestore_env
    dep = request_deployment(
        store,
        SystemClock(),
        RandomIds(3),
        environment="production",
        ref="refs/heads/main",
        revision="e" * 40,
        repository="o/r",
        requested_by="github:alice",
        source_event=None,
    )
    code, out = orchestra(
        "deployments",
        "approve",
        dep.id,
        "--as",
        ServiceAccountCredentials.service_account_email.upper(),
        "--format",
        "json",
    )
    assert code == 0, out
    assert json.loads(out)["approved_by"] == ServiceAccountCredentials.service_account_email
    code, out = orchestra(
        "deployments", "request", "--environment", "staging", "--revision", "f" * 12, "--format", "json"
    )
    assert code == 0 and json.loads(out)["requested_by"] == ServiceAccountCredentials.service_account_email


@pytest.mark.emulator
def test_a_run_cannot_be_filed_as_someone_else_against_firestore(firestore_env):
    store, config, orchestra = firestore_env
    code, out = orchestra("run", "testing", "--as", "user:alice")
    assert code == 2, out
    no_traceback(out)
    assert "'user:alice' is not the Google account in use" in out
    assert store.list_runs(limit=None) == []
    code, out = orchestra("run", "testing", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["requested_by"] == ServiceAccountCredentials.service_account_email
