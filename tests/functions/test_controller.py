"""``controller``: the HTTP API, authentication, approvals, errors, health."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from orchestra.models import RunStatus

from tests.functions.conftest import TOKENS

FUNCTION = "controller"
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


@pytest.fixture(autouse=True)
def tokens(monkeypatch):
    monkeypatch.setenv("ORCHESTRA_API_TOKENS", TOKENS)
    monkeypatch.delenv("ORCHESTRA_AUDIENCE", raising=False)


def post(client, path, body, headers=ALICE, **kwargs):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(path, data=data, headers={"Content-Type": "application/json", **headers}, **kwargs)


def nothing_stored(fn_app) -> bool:
    return not fn_app.store.list_runs(limit=None) and not fn_app.store.list_events(limit=None)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic YWxpY2U6eA=="},
        {"Authorization": "Bearer "},
    ],
)
def test_no_valid_credentials_is_401_and_nothing_changes(client, fn_app, headers):
    for method, path in (("post", "/tasks/probe"), ("post", "/"), ("get", "/runs"), ("post", "/approvals/x")):
        response = getattr(client, method)(path, data=json.dumps({"task": "probe"}), headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json["error"]["field"] == "Authorization"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert nothing_stored(fn_app)


def test_no_configured_credentials_refuses_everyone(client, fn_app, monkeypatch):
    monkeypatch.delenv("ORCHESTRA_API_TOKENS")
    assert post(client, "/tasks/probe", {}).status_code == 401
    assert nothing_stored(fn_app)


def test_run_a_task(client, fn_app, counter):
    response = post(client, "/tasks/probe", {"environment": "staging", "params": {"counter": str(counter)}})
    assert response.status_code == 201, response.json
    run = response.json["run"]
    assert run["status"] == "succeeded" and run["requested_by"] == "user:alice"
    assert run["environment"] == "staging" and response.json["duplicate"] is False
    stored = fn_app.store.get_run(run["id"])
    assert stored.source_event == stored.trigger_id
    [record] = fn_app.store.list_events(source="controller")
    assert record.run_ids == [run["id"]] and record.payload["identity"] == "user:alice"


def test_idempotency_key_runs_once(client, fn_app, counter):
    body = {"params": {"counter": str(counter)}}
    first = post(client, "/tasks/probe", body, {**ALICE, "Idempotency-Key": "nightly-2026-01-05"})
    second = post(client, "/tasks/probe", body, {**BOB, "Idempotency-Key": "nightly-2026-01-05"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["run"]["id"] == second.json["run"]["id"] and second.json["duplicate"] is True
    assert counter.read_text().count("analyze:") == 1


def test_cloud_scheduler_retries_run_once(client, fn_app):
    headers = {
        **ALICE,
        "X-CloudScheduler-JobName": "probe-nightly",
        "X-CloudScheduler-ScheduleTime": "2026-01-05T02:00:00Z",
    }
    first = post(client, "/tasks/probe", {}, headers)
    second = post(client, "/tasks/probe", {}, headers)
    assert first.json["run"]["id"] == second.json["run"]["id"]
    assert first.json["run"]["trigger_kind"] == "scheduled"
    assert first.json["run"]["trigger_id"] == "scheduler:probe-nightly:2026-01-05T02:00:00Z"


def test_gcloud_functions_call_posts_the_task_in_the_body(client, fn_app):
    response = post(client, "/", {"task": "probe", "mode": "analyze", "trigger_id": "call-1"})
    assert response.status_code == 201
    assert response.json["run"]["trigger_id"] == "call-1"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/tasks/probe", b"{not json", 400, "body"),
        ("/tasks/probe", b"[1]", 400, "body"),
        ("/tasks/no-such-task", {}, 400, "task"),
        ("/", {"mode": "analyze"}, 400, "task"),
        ("/tasks/probe", {"automation_level": "high"}, 400, "automation_level"),
        ("/tasks/probe", {"automation_level": 7}, 400, "automation_level"),
        ("/tasks/probe", {"mode": "yolo"}, 400, "mode"),
        ("/tasks/probe", {"params": {"colour": "red"}}, 400, "params.colour"),
        ("/tasks/probe", {"params": "x"}, 400, "params"),
        ("/tasks/probe", {"environment": "qa"}, 400, "environment"),
        ("/tasks/probe", {"enviroment": "staging"}, 400, "enviroment"),
    ],
)
def test_bad_input_is_400_naming_the_field(client, fn_app, path, body, status, field):
    response = post(client, path, body)
    assert response.status_code == status, response.json
    assert response.json["error"]["field"] == field, response.json
    assert response.json["error"]["message"]
    assert nothing_stored(fn_app)


def test_json_nested_beyond_the_parser_is_400_not_500(client, fn_app):
    response = post(client, "/tasks/probe", b"[" * 100_000)
    assert response.status_code == 400 and response.json["error"]["field"] == "body", response.json
    assert "deep" in response.json["error"]["message"]
    assert nothing_stored(fn_app)


def test_oversized_body_is_413(client, fn_app):
    body = json.dumps({"params": {"note": "x" * (600 * 1024)}})
    response = post(client, "/tasks/probe", body)
    assert response.status_code == 413 and response.json["error"]["field"] == "body"
    assert nothing_stored(fn_app)


def test_list_and_show_runs(client, fn_app):
    ids = [post(client, "/tasks/probe", {"trigger_id": f"t-{i}"}).json["run"]["id"] for i in range(3)]
    listed = client.get("/runs?task=probe&status=succeeded&limit=2", headers=ALICE)
    assert listed.status_code == 200 and listed.json["count"] == 2
    by_event = client.get("/runs?event=t-1", headers=ALICE).json["runs"]
    assert [r["id"] for r in by_event] == [ids[1]]
    shown = client.get(f"/runs/{ids[0]}", headers=ALICE)
    assert shown.status_code == 200 and shown.json["run"]["trigger_id"] == "t-0"
    missing = client.get("/runs/nope", headers=ALICE)
    assert missing.status_code == 404 and missing.json["error"]["field"] == "run_id"


def test_runs_can_be_found_by_source_event(client, fn_app):
    from orchestra.models import TriggerKind
    from orchestra.runner import RunRequest

    fn_app.runner.submit(
        RunRequest(
            task="probe", trigger_kind=TriggerKind.alert, trigger_id="inc-9:open", source_event="inc-9"
        )
    )
    runs = client.get("/runs?event=inc-9", headers=ALICE).json["runs"]
    assert [r["trigger_id"] for r in runs] == ["inc-9:open"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("limit=5000", "limit"),
        ("status=done", "status"),
        ("colour=red", "colour"),
    ],
)
def test_bad_list_filters(client, fn_app, query, field):
    response = client.get(f"/runs?{query}", headers=ALICE)
    assert response.status_code == 400 and response.json["error"]["field"] == field


def test_unknown_route_and_wrong_method(client, fn_app):
    assert client.get("/nope", headers=ALICE).status_code == 404
    wrong = client.get("/tasks/probe", headers=ALICE)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"


def waiting_run(client, tmp_path: Path) -> dict:
    body = {
        "environment": "production",
        "mode": "apply",
        "automation_level": 3,
        "params": {"target": str(tmp_path / "svc.json")},
    }
    response = post(client, "/tasks/gatekeeper", body)
    run = response.json["run"]
    assert run["status"] == "awaiting_approval", run
    return run


def test_requester_cannot_approve_their_own_run(client, fn_app, tmp_path):
    run = waiting_run(client, tmp_path)
    response = post(client, f"/approvals/{run['id']}", {"decision": "approve"})
    assert response.status_code == 403 and response.json["error"]["field"] == "approver"
    assert fn_app.store.get_run(run["id"]).status == RunStatus.awaiting_approval
    assert not (tmp_path / "svc.json").exists()


def test_another_identity_approves_and_the_change_is_applied(client, fn_app, tmp_path):
    run = waiting_run(client, tmp_path)
    response = post(client, f"/approvals/{run['id']}", {"comment": "looks right"}, BOB)
    assert response.status_code == 200, response.json
    approved = response.json["run"]
    assert approved["status"] == "succeeded" and approved["decision"]["by"] == "user:bob"
    assert json.loads((tmp_path / "svc.json").read_text()) == {"value": 1}
    again = post(client, f"/approvals/{run['id']}", {}, BOB)
    assert again.status_code == 409


def test_reject(client, fn_app, tmp_path):
    run = waiting_run(client, tmp_path)
    response = post(client, f"/approvals/{run['id']}", {"decision": "reject", "reason": "not today"}, BOB)
    assert response.status_code == 200 and response.json["run"]["status"] == "skipped"
    assert not (tmp_path / "svc.json").exists()


def test_approval_of_unknown_run_and_bad_body(client, fn_app):
    assert post(client, "/approvals/nope", {}, BOB).status_code == 404
    bad = post(client, "/approvals/nope", {"decision": "maybe"}, BOB)
    assert bad.status_code == 400 and bad.json["error"]["field"] == "decision"


def test_unauthenticated_approval_changes_nothing(client, fn_app, tmp_path):
    run = waiting_run(client, tmp_path)
    assert post(client, f"/approvals/{run['id']}", {}, {}).status_code == 401
    assert fn_app.store.get_run(run["id"]).status == RunStatus.awaiting_approval


def test_health(client, fn_app):
    public = client.get("/health")
    assert public.status_code == 200 and public.json == {"status": "healthy"}
    detailed = client.get("/health", headers=ALICE)
    assert detailed.json["status"] == "healthy" and {c["name"] for c in detailed.json["checks"]} >= {"store"}


def test_health_unhealthy_when_the_store_is_down(client, fn_app, monkeypatch):
    from orchestra.errors import StoreUnavailable

    def down():
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(fn_app.store, "ping", down)
    response = client.get("/health")
    assert response.status_code == 503 and response.json["status"] == "unhealthy"


def test_health_tells_why_only_to_authenticated_callers(client, fn_app, monkeypatch, tmp_path):
    from orchestra import app as app_module

    bad = tmp_path / "private-settings.yaml"
    bad.write_text("environments: 3\n")
    monkeypatch.setenv("CONFIG_PATH", str(bad))
    app_module.set_app(None)  # the next request builds the application from the environment
    public = client.get("/health")
    assert public.status_code == 503 and public.json == {"status": "unhealthy"}
    detailed = client.get("/health", headers=ALICE)
    assert detailed.status_code == 503 and "private-settings.yaml" in detailed.json["error"]


def test_health_degraded_is_200(client, fn_app, counter):
    from orchestra.breaker import CircuitBreaker, automation_breaker_name

    breaker = CircuitBreaker(
        fn_app.store,
        automation_breaker_name("probe", "development"),
        fn_app.config.runner.breaker,
        fn_app.clock,
    )
    for _ in range(fn_app.config.runner.breaker.failure_threshold):
        breaker.record_failure("boom", breaker.before_call("test"))
    response = client.get("/health", headers=ALICE)
    assert response.status_code == 200 and response.json["status"] == "degraded"


def test_transient_failure_is_503_with_retry_after(client, fn_app, counter):
    response = post(client, "/tasks/probe", {"params": {"counter": str(counter), "fail": "transient"}})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "transient" in response.json["error"]["message"]


def test_misconfigured_tokens_are_a_500_not_an_open_door(client, fn_app, monkeypatch):
    monkeypatch.setenv("ORCHESTRA_API_TOKENS", "just-a-token")
    response = post(client, "/tasks/probe", {})
    assert response.status_code == 500 and "ORCHESTRA_API_TOKENS" in response.json["error"]["message"]
    assert nothing_stored(fn_app)


def test_requests_carry_their_own_trace(client, fn_app, monkeypatch):
    from orchestra.logs import trace_context

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "orchestra-prod")
    client.get("/runs", headers={**ALICE, "X-Cloud-Trace-Context": "0af7651916cd43dd8448eb211c80319c/1;o=1"})
    assert trace_context.get() == "projects/orchestra-prod/traces/0af7651916cd43dd8448eb211c80319c"
    client.get("/runs", headers=ALICE)
    assert trace_context.get() is None


def test_large_bodies_are_kept_as_a_preview_in_the_event_record(client, fn_app):
    response = post(client, "/tasks/probe", {"params": {"note": "n" * 100_000}})
    assert response.status_code == 201
    [record] = fn_app.store.list_events(source="controller")
    assert record.payload["body"]["truncated"] is True and len(record.payload["body"]["preview"]) == 16_384
