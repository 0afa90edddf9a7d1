"""The GitHub webhook endpoint.

Order matters: the body size is checked from Content-Length, the raw body is read, and the
``X-Hub-Signature-256`` HMAC is verified over those exact bytes with a constant-time compare
before anything is parsed or stored. A missing or wrong signature (or no configured secret) is a
401/500 and nothing is stored. Only then are the headers and JSON looked at; from there on every
delivery is recorded (accepted, ignored, rejected or duplicate).

Responses: 202 a deployment was requested, 200 ping / ignored / duplicate (a redelivery, or a
push of a revision already requested for its environment — a replay — which names the existing
deployment), 400 a signed payload that is not what it claims, 401 bad signature, 413 too large,
503 transient (redeliver from GitHub's "Recent Deliveries").
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import InputError
from ..events.github import SOURCE, handle_github
from ..events.parsing import json_object
from ..events.records import EventLog, EventStatus
from .http import (
    HttpError,
    RequestLike,
    Response,
    error,
    map_exception,
    read_body,
    respond,
    trace_request,
)

if TYPE_CHECKING:
    from ..app import App

SECRET_ENV = "GITHUB_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
MAX_HEADER_VALUE = 200


def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    expected = signature_for(secret, body).encode()
    return hmac.compare_digest(expected, header.strip().lower().encode())


def handle_webhook(request: RequestLike, get_app: Callable[[], App]) -> Response:
    try:
        trace_request(request)
        return _handle(request, get_app)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error response
        return map_exception(exc)


def _header(request: RequestLike, name: str) -> str:
    value = (request.headers.get(name) or "").strip()
    if not value:
        raise HttpError(400, "header is missing", name)
    if len(value) > MAX_HEADER_VALUE or not value.isprintable():
        raise HttpError(
            400, f"header value is not valid (printable, at most {MAX_HEADER_VALUE} characters)", name
        )
    return value


def _handle(request: RequestLike, get_app: Callable[[], App]) -> Response:
    if request.method.upper() != "POST":
        return error(405, "GitHub webhooks are POSTed", "method", {"Allow": "POST"})
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        return error(500, f"{SECRET_ENV} is not set: refusing every delivery until it is", None)
    body = read_body(request)
    if not signature_valid(secret.encode(), body, request.headers.get(SIGNATURE_HEADER)):
        return error(401, f"missing or invalid {SIGNATURE_HEADER} signature", SIGNATURE_HEADER)
    # Authenticated from here on.
    event_name = _header(request, EVENT_HEADER)
    delivery_id = _header(request, DELIVERY_HEADER)
    app = get_app()
    try:
        data = json_object(body, where="body")
        handled = handle_github(app, event_name=event_name, delivery_id=delivery_id, data=data)
    except InputError as exc:
        _reject(app, delivery_id, event_name, str(exc))
        raise
    body_out = {
        "status": handled.status.value,
        "reason": handled.reason,
        "delivery": delivery_id,
        "event": event_name,
        **handled.extra,
    }
    # Accepted: the handler queued work (a deployment request, a run) that goes on after the reply.
    status = 202 if handled.status == EventStatus.accepted else 200
    return respond(body_out, status)


def _reject(app: App, delivery_id: str, event_name: str, reason: str) -> None:
    # Never overwrites what an earlier delivery with this id did (recorded as a duplicate then).
    EventLog(app).reject(SOURCE, delivery_id, f"github-{event_name}", reason, {"event": event_name})
