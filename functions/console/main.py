"""Cloud Function ``console``: the operator console behind Identity-Aware Proxy.

A separate function rather than a route of ``controller``: IAP is switched on per Cloud Run
service, and the controller's callers are machines with ID tokens that IAP would turn away; the
console's callers are people in a browser. Its own service also gets its own IAM (who may open
it) and its own service account. See orchestra.console.cloud.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework
from orchestra.app import get_app
from orchestra.console.cloud import handle_console


@functions_framework.http
def console(request: flask.Request) -> Any:
    return handle_console(request, get_app)
