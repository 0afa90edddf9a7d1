"""``repo_webhook``: GitHub deliveries (real payloads from octokit/webhooks) -> deployment requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from orchestra.automations.deployment.state import find_deployment, list_deployments

from tests.functions.conftest import WEBHOOK_SECRET, fixture_json, sign

FUNCTION = "webhooks"


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)


def deliver(
    client, event: str, payload: Any, delivery: str = "d-1", *, signature: str | None = "sign", headers=None
):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
    if signature == "sign":
        sent["X-Hub-Signature-256"] = sign(body)
    elif signature is not None:
        sent["X-Hub-Signature-256"] = signature
    return client.post("/", data=body, headers={**sent, **(headers or {})})


def branch_push(branch: str) -> dict[str, Any]:
    payload = fixture_json("push-with-new-branch.payload.json")
    payload["ref"] = f"refs/heads/{branch}"
    return payload


def records(fn_app):
    return fn_app.store.list_events(source="webhooks", limit=None)


def nothing_stored(fn_app) -> bool:
    return not records(fn_app) and not list_deployments(fn_app.store, limit=None)


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "sha1=abc", "", "sha256=" + sign(b"other body")[7:]],
)
def test_missing_or_wrong_signature_is_401_and_nothing_is_stored(client, fn_app, signature):
    response = deliver(client, "push", branch_push("main"), signature=signature)
    assert response.status_code == 401
    assert response.json["error"]["field"] == "X-Hub-Signature-256"
    assert nothing_stored(fn_app)


def test_signature_is_checked_on_the_raw_bytes(client, fn_app):
    body = json.dumps(branch_push("main")).encode()
    tampered = body.replace(b"refs/heads/main", b"refs/heads/evil")
    response = client.post(
        "/",
        data=tampered,
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": sign(body)},
    )
    assert response.status_code == 401 and nothing_stored(fn_app)


def test_without_a_configured_secret_nothing_is_accepted(client, fn_app, monkeypatch):
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
    response = deliver(client, "push", branch_push("main"))
    assert response.status_code == 500 and nothing_stored(fn_app)


def test_ping(client, fn_app):
    response = deliver(client, "ping", fixture_json("ping-payload.json"), "ping-1")
    assert response.status_code == 200 and response.json["status"] == "ignored"
    [record] = records(fn_app)
    assert record.kind == "github-ping" and record.payload["hook_id"] == 109948940


@pytest.mark.parametrize(
    ("branch", "environment"), [("main", "production"), ("develop", "staging"), ("feature/x", "development")]
)
def test_push_requests_a_deployment_for_the_mapped_environment(client, fn_app, branch, environment):
    payload = branch_push(branch)
    response = deliver(client, "push", payload, "d-42")
    assert response.status_code == 202, response.json
    deployment = response.json["deployment"]
    assert deployment["environment"] == environment and deployment["revision"] == payload["after"]
    stored = find_deployment(fn_app.store, deployment["id"])
    assert stored is not None and stored.source_event == "d-42"
    assert stored.requested_by == "github:Codertocat" and stored.repository == "Codertocat/Hello-World"
    [record] = records(fn_app)
    assert record.status == "accepted" and record.payload["deployment_id"] == stored.id


def test_real_new_branch_payload(client, fn_app):
    response = deliver(client, "push", fixture_json("push-with-new-branch.payload.json"))
    assert response.status_code == 202 and response.json["deployment"]["environment"] == "development"


def test_redelivery_does_not_request_twice(client, fn_app):
    first = deliver(client, "push", branch_push("main"), "d-7")
    second = deliver(client, "push", branch_push("main"), "d-7")
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json["status"] == "duplicate"
    assert len(list_deployments(fn_app.store, limit=None)) == 1
    assert sorted(r.status for r in records(fn_app)) == ["accepted", "duplicate"]


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [("push-payload.json", "tag deletion"), ("push-1.payload.json", "tag deletion")],
)
def test_tag_deletions_do_not_deploy(client, fn_app, fixture, reason):
    response = deliver(client, "push", fixture_json(fixture))
    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert reason in response.json["reason"]
    assert not list_deployments(fn_app.store, limit=None)
    assert records(fn_app)[0].status == "ignored"


def test_tag_push_does_not_deploy(client, fn_app):
    payload = fixture_json("push-payload.json")
    payload.update(deleted=False, created=True, after="6113728f27ae82c7b1a177c8d03f9e96e0adf246")
    response = deliver(client, "push", payload)
    assert response.json["status"] == "ignored" and "tag push" in response.json["reason"]


def test_branch_deletion_does_not_deploy(client, fn_app):
    payload = branch_push("main")
    payload.update(deleted=True, after="0" * 40, head_commit=None)
    response = deliver(client, "push", payload)
    assert response.json["status"] == "ignored" and "branch deletion" in response.json["reason"]
    assert not list_deployments(fn_app.store, limit=None)


def test_other_events_are_recorded_as_ignored(client, fn_app):
    response = deliver(client, "delete", fixture_json("delete-payload.json"))
    assert response.status_code == 200 and "not handled" in response.json["reason"]
    assert records(fn_app)[0].status == "ignored"


def test_branch_mapping_is_configurable(client, fn_app):
    from orchestra.config import AutomationConfig

    fn_app.config.automations["deployment"] = AutomationConfig(
        settings={"branches": {"release/*": "staging", "main": "production"}, "other_branches": None}
    )
    assert (
        deliver(client, "push", branch_push("release/2.1"), "d-r").json["deployment"]["environment"]
        == "staging"
    )
    ignored = deliver(client, "push", branch_push("feature/y"), "d-f")
    assert ignored.json["status"] == "ignored" and "maps to no environment" in ignored.json["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[" * 100_000, "body"),
        (json.dumps({"ref": "refs/heads/main"}).encode(), "after"),
    ],
)
def test_signed_but_malformed_payload_is_400_and_recorded(client, fn_app, body, field):
    response = deliver(client, "push", body)
    assert response.status_code == 400 and response.json["error"]["field"] == field
    [record] = records(fn_app)
    assert record.status == "rejected"
    assert not list_deployments(fn_app.store, limit=None)


def test_missing_delivery_header_is_400(client, fn_app):
    body = json.dumps(branch_push("main")).encode()
    response = client.post(
        "/", data=body, headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body)}
    )
    assert response.status_code == 400 and response.json["error"]["field"] == "X-GitHub-Delivery"
    assert nothing_stored(fn_app)


def test_oversized_delivery_is_413_before_anything(client, fn_app):
    payload = branch_push("main")
    payload["padding"] = "x" * (600 * 1024)
    response = deliver(client, "push", payload)
    assert response.status_code == 413 and nothing_stored(fn_app)


def test_get_is_405(client, fn_app):
    assert client.get("/").status_code == 405


def test_every_identity_a_push_carries_is_recorded(client, fn_app):
    payload = branch_push("main")
    payload["pusher"] = {"name": "Codertocat", "email": "Codertocat@users.noreply.github.com"}
    payload["sender"]["login"] = "octo-release-bot"
    response = deliver(client, "push", payload, "d-ids")
    stored = find_deployment(fn_app.store, response.json["deployment"]["id"])
    assert stored.requested_by == "github:Codertocat"
    assert stored.requester_identities == [
        "github:Codertocat",
        "Codertocat@users.noreply.github.com",
        "github:octo-release-bot",
    ]
    assert stored.before == payload["before"] and stored.committed_at is not None
    [record] = records(fn_app)
    assert (record.payload["pusher_email"], record.payload["sender"]) == (
        "Codertocat@users.noreply.github.com",
        "octo-release-bot",
    )


def test_a_push_resent_with_a_new_delivery_id_requests_nothing(client, fn_app):
    payload = branch_push("main")
    first = deliver(client, "push", payload, "d-1")
    [deployment] = list_deployments(fn_app.store, limit=None)
    replay = deliver(client, "push", payload, "d-replayed")
    assert (first.status_code, replay.status_code) == (202, 200)
    assert replay.json["status"] == "duplicate" and replay.json["deployment"]["id"] == deployment.id
    assert f"deployment {deployment.id}" in replay.json["reason"]
    assert list_deployments(fn_app.store, limit=None) == [deployment]
    assert sorted((r.event_id, r.status) for r in records(fn_app)) == [
        ("d-1", "accepted"),
        ("d-replayed", "duplicate"),
    ]
