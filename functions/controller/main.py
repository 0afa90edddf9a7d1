"""Cloud Function ``controller``: the HTTP API.

``POST /tasks/{task}``, ``POST /`` (``gcloud functions call --data``), ``GET /runs``,
``GET /runs/{id}``, ``POST /approvals/{run_id}``, ``GET /health`` — see orchestra.api.controller.
Callers authenticate with a Google ID token (``ORCHESTRA_AUDIENCE``) or, locally, a bearer token
from ``ORCHESTRA_API_TOKENS``.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework
from orchestra.api.controller import handle_controller
from orchestra.app import get_app


@functions_framework.http
def controller(request: flask.Request) -> Any:
    return handle_controller(request, get_app)
