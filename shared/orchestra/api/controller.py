"""The controller's HTTP API.

    POST /tasks/{task}          run a task: {"mode", "environment", "automation_level", "params",
                                "trigger_id"?} -> 201 new run, 200 an earlier run of the same trigger
    POST /                      the same with "task" in the body (what `gcloud functions call
                                --data` sends)
    GET  /runs                  recent runs; filters task, status, event (trigger or source event
                                id), limit (1-1000, default 20)
    GET  /runs/{id}             one run
    POST /approvals/{id}        {"decision": "approve" | "reject" | "cancel", "comment", "reason"}:
                                decides what waits under id (a run, or a plugin's subject such as
                                a deployment) as the caller; the requester cannot approve. Answers
                                the subject under its kind ("run", "deployment"), and "recorded":
                                the decision as stored, the same shape for every kind
    GET  /health                200 healthy or degraded, 503 unhealthy (details need credentials)

Every route but /health needs credentials (see ``orchestra.api.auth``); without them: 401 and
nothing changes. A run's idempotency key is, in order: the body's ``trigger_id``, the
``Idempotency-Key`` header, Cloud Scheduler's job name + schedule time headers (so Scheduler's
own retries run once), else a fresh id. Runs execute within the request; the response carries the
run as recorded (a failed run is still a 2xx: the request was handled). Transient failures answer
503 with Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ..errors import InputError
from ..events.parsing import json_object, validated
from ..events.records import EventStatus, submit_for_event
from ..health import Status, check_health
from ..inputs import Origin
from ..models import DecisionKind, Mode, RunStatus, TriggerKind
from ..runner import RunRequest
from .auth import Authenticator, Identity
from .http import (
    HttpError,
    RequestLike,
    Response,
    compact,
    error,
    map_exception,
    read_body,
    respond,
    trace_request,
)

if TYPE_CHECKING:
    from ..app import App

SOURCE = "controller"
MAX_LIST = 1000
SCHEDULER_JOB = "X-CloudScheduler-JobName"
SCHEDULER_TIME = "X-CloudScheduler-ScheduleTime"

ROUTES = [
    "POST /tasks/{task}",
    "POST /",
    "GET /runs",
    "GET /runs/{id}",
    "POST /approvals/{id}",
    "GET /health",
]


class TaskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = Mode.analyze
    environment: str | None = None
    automation_level: StrictInt | None = Field(None, ge=0, le=3)
    params: dict[str, Any] = Field(default_factory=dict)
    trigger_id: str | None = Field(None, min_length=1, max_length=500)


class TaskCall(TaskBody):
    task: str = Field(min_length=1)


class ApprovalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: DecisionKind = DecisionKind.approve
    comment: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000)


def handle_controller(
    request: RequestLike, get_app: Callable[[], App], authenticator: Authenticator | None = None
) -> Response:
    try:
        trace_request(request)
        return _dispatch(request, get_app, authenticator or Authenticator.from_env())
    except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error response
        return map_exception(exc)


def _dispatch(request: RequestLike, get_app: Callable[[], App], auth: Authenticator) -> Response:
    path = "/" + request.path.strip("/")
    method = request.method.upper()
    parts = [p for p in path.split("/") if p]
    if parts in (["health"], ["healthz"]):
        _allow(method, "GET")
        return _health(request, get_app, auth)
    identity = auth.authenticate(request.headers.get("Authorization"))
    if identity is None:
        return error(
            401,
            "missing or invalid credentials: send Authorization: Bearer <token>",
            "Authorization",
            {"WWW-Authenticate": 'Bearer realm="orchestra"'},
        )
    if not parts:
        if method == "GET":
            return respond({"service": "orchestra controller", "routes": ROUTES})
        _allow(method, "GET", "POST")
        return _run_task(request, get_app(), identity, task=None)
    if parts[0] == "tasks" and len(parts) == 2:
        _allow(method, "POST")
        return _run_task(request, get_app(), identity, task=parts[1])
    if parts == ["runs"]:
        _allow(method, "GET")
        return _list_runs(request, get_app())
    if parts[0] == "runs" and len(parts) == 2:
        _allow(method, "GET")
        run = get_app().store.get_run(parts[1])
        if run is None:
            return error(404, f"no run with id {parts[1]!r}", "run_id")
        return respond({"run": run.model_dump(mode="json")})
    if parts[0] == "approvals" and len(parts) == 2:
        _allow(method, "POST")
        return _decide(request, get_app(), identity, parts[1])
    return error(404, f"no route for {method} {path}; routes: {', '.join(ROUTES)}", "path")


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HttpError(
            405,
            f"method {method} not allowed here; use {', '.join(allowed)}",
            "method",
            {"Allow": ", ".join(allowed)},
        )


def _health(request: RequestLike, get_app: Callable[[], App], auth: Authenticator) -> Response:
    try:
        app = get_app()
        report = check_health(app.config, app.store, app.clock, app.registry)
        code = 503 if report.status == Status.unhealthy else 200
        details = report.model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - a health check reports failures, it does not raise
        code, details = 503, {"status": Status.unhealthy.value, "error": f"{type(exc).__name__}: {exc}"}
    # Anyone may ask whether the service is up; what is wrong (configuration, store, breakers)
    # is for callers with credentials.
    if auth.authenticate(request.headers.get("Authorization")) is None:
        return respond({"status": details["status"]}, code)
    return respond(details, code)


def _trigger(request: RequestLike, body: TaskBody, app: App) -> tuple[str, TriggerKind]:
    job = request.headers.get(SCHEDULER_JOB)
    scheduled_at = request.headers.get(SCHEDULER_TIME)
    kind = TriggerKind.scheduled if job else TriggerKind.manual
    if body.trigger_id:
        return body.trigger_id, kind
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if key:
        if len(key) > 500:
            raise HttpError(400, "longer than 500 characters", "Idempotency-Key")
        return key, kind
    if job and scheduled_at:
        return f"scheduler:{job}:{scheduled_at}", kind
    return app.ids.new_id("http-"), kind


def _run_task(request: RequestLike, app: App, identity: Identity, task: str | None) -> Response:
    data = json_object(read_body(request), where="body", allow_empty=True)
    body = validated(TaskBody if task else TaskCall, data)
    task_name = task or body.task  # type: ignore[attr-defined]
    automation = app.registry.create(task_name)  # UnknownTaskError -> 400 naming "task"
    # A remote caller: paths only inside inputs.allowed_dirs, never an output path.
    validated(
        automation.Params, body.params, prefix="params", context=app.runner.input_context(Origin.remote)
    )
    trigger_id, kind = _trigger(request, body, app)
    run_request = RunRequest(
        task=task_name,
        environment=body.environment,
        mode=body.mode,
        automation_level=body.automation_level,
        params=body.params,
        trigger_kind=kind,
        trigger_id=trigger_id,
        requested_by=identity.name,
        source_event=trigger_id,
        origin=Origin.remote,
    )
    app.runner.validate(run_request)  # environment and level: 400 before anything is stored
    handled = submit_for_event(
        app,
        run_request,
        source=SOURCE,
        key=trigger_id,
        kind=f"http-task:{task_name}",
        payload={"path": request.path, "identity": identity.name, "body": compact(data)},
        nack_exhausted=False,  # an HTTP caller gets the failed run back
    )
    if handled.status == EventStatus.rejected:
        raise InputError(handled.reason or "rejected", where="task")
    run = handled.runs[0]
    duplicate = handled.status == EventStatus.duplicate
    return respond({"run": run.model_dump(mode="json"), "duplicate": duplicate}, 200 if duplicate else 201)


_LIST_KEYS = ("task", "status", "limit", "event")


def _list_runs(request: RequestLike, app: App) -> Response:
    args = request.args
    for key in args:
        if key not in _LIST_KEYS:
            raise HttpError(400, f"unknown filter {key!r}; accepted: {', '.join(_LIST_KEYS)}", key)
    status = args.get("status") or None
    if status is not None and status not in {s.value for s in RunStatus}:
        raise HttpError(
            400, f"unknown status {status!r}; accepted: {', '.join(s.value for s in RunStatus)}", "status"
        )
    raw_limit = args.get("limit") or "20"
    # ASCII digits only (str.isdigit also accepts '²' and other digits int() refuses), few of them.
    if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 6) or not (
        1 <= int(raw_limit) <= MAX_LIST
    ):
        raise HttpError(400, f"limit must be a whole number 1-{MAX_LIST}", "limit")
    limit = int(raw_limit)
    task = args.get("task") or None
    event = args.get("event") or None
    runs = app.store.list_runs(task=task, status=status, trigger_id=event, limit=limit)
    if event and not runs:
        runs = app.store.list_runs(task=task, status=status, source_event=event, limit=limit)
    return respond({"runs": [r.model_dump(mode="json") for r in runs], "count": len(runs)})


def _decide(request: RequestLike, app: App, identity: Identity, subject_id: str) -> Response:
    body = validated(ApprovalBody, json_object(read_body(request), where="body", allow_empty=True))
    comment = body.comment if body.decision == DecisionKind.approve else (body.reason or body.comment)
    decided = app.runner.decide(subject_id, body.decision, identity.name, comment)
    return respond(
        {
            decided.kind: decided.record,
            "decision": body.decision.value,
            "by": decided.decision.by,
            "recorded": decided.decision.model_dump(mode="json"),
        }
    )
