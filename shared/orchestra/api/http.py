"""Shared HTTP plumbing: JSON responses, body limits, error mapping (bodies are decoded by
``orchestra.events.parsing``, whose InputError becomes a 400 naming the field)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from ..errors import (
    ApprovalRefused,
    ConfigError,
    IllegalTransition,
    InputError,
    NotFound,
    OrchestraError,
    StoreConfigError,
    TransientError,
)
from ..logs import set_trace, trace_context

log = logging.getLogger("orchestra.api")

Response = tuple[dict[str, Any], int, dict[str, str]]

MAX_BODY_ENV = "ORCHESTRA_MAX_BODY_BYTES"
DEFAULT_MAX_BODY = 512 * 1024
RETRY_AFTER_S = "30"


class RequestLike(Protocol):
    """The parts of a flask/werkzeug ``Request`` the handlers use."""

    method: str
    path: str
    headers: Any
    args: Any
    content_length: int | None
    stream: Any

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> Any: ...


class HttpError(Exception):
    def __init__(
        self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}

    def response(self) -> Response:
        return error(self.status, self.message, self.field, self.headers)


def respond(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return body, status, {"Cache-Control": "no-store", **(headers or {})}


def error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return respond({"error": {"message": message, "field": field}}, status, headers)


def trace_request(request: RequestLike) -> None:
    """Tie this request's log lines to its Cloud Trace (a fresh context per request, so a worker
    thread never carries the previous request's trace)."""
    trace_context.set(None)
    set_trace(request.headers.get("X-Cloud-Trace-Context"), os.environ.get("GOOGLE_CLOUD_PROJECT"))


def compact(value: Any, limit: int = 16_384) -> Any:
    """``value`` if its JSON is at most ``limit`` characters, else a truncated preview: event
    records keep what was sent without approaching Firestore's 1 MiB document limit."""
    text = json.dumps(value, default=str)
    return value if len(text) <= limit else {"truncated": True, "preview": text[:limit]}


def max_body_bytes() -> int:
    raw = os.environ.get(MAX_BODY_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return DEFAULT_MAX_BODY


def read_body(request: RequestLike, limit: int | None = None) -> bytes:
    """The raw body, refused with 413 beyond ``limit`` bytes (default 512 KB) before it is read."""
    limit = limit or max_body_bytes()
    too_big = HttpError(413, f"request body exceeds the limit of {limit} bytes", "body")
    length = request.content_length
    if length is not None:
        if length > limit:
            raise too_big
        return bytes(request.get_data(cache=True))
    # No Content-Length (chunked): read at most one byte past the limit.
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise too_big
    return bytes(data)


def _bare_message(exc: InputError) -> str:
    text = str(exc)
    prefix = f"{exc.where}: " if exc.where else ""
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def map_exception(exc: Exception) -> Response:
    """Library errors -> status codes. Anything unexpected is a logged 500 without internals."""
    if isinstance(exc, HttpError):
        return exc.response()
    if isinstance(exc, ApprovalRefused):
        return error(403, _bare_message(exc), exc.where)
    if isinstance(exc, NotFound):
        return error(404, _bare_message(exc), exc.where)
    if isinstance(exc, IllegalTransition):
        return error(409, _bare_message(exc), exc.where)
    if isinstance(exc, InputError):
        return error(400, _bare_message(exc), exc.where)
    if isinstance(exc, TransientError):
        log.warning("transient failure: %s", exc)
        return error(503, f"{exc} (transient: safe to retry)", None, {"Retry-After": RETRY_AFTER_S})
    # Server-side faults name files, stores and settings: the log has them, the caller does not.
    if isinstance(exc, ConfigError):
        log.error("configuration error: %s", exc)
        return error(
            500, f"server configuration is invalid ({Path(exc.source).name}); see the function's logs"
        )
    if isinstance(exc, StoreConfigError | OrchestraError):
        log.error("server error: %s", exc)
        return error(500, f"server error ({type(exc).__name__}); see the function's logs")
    log.error("unexpected error while handling a request", exc_info=exc)
    return error(500, f"internal error ({type(exc).__name__}); see the function's logs")
