"""The console as an HTTP Cloud Function behind Identity-Aware Proxy.

The function (``functions/console/main.py``) hands each request to the console's own WSGI
application; the identity comes only from IAP's signed assertion (:class:`IapAuth`).
Environment: ``ORCHESTRA_CONSOLE_AUDIENCE`` (the IAP audience of the service,
``/projects/NUMBER/locations/REGION/services/NAME``), ``ORCHESTRA_CONSOLE_CSRF_KEY`` (random, at
least 32 bytes, from Secret Manager) and the application's usual ``CONFIG_PATH`` /
``ORCHESTRA_STORE``. Missing settings fail closed: every request is a 500 naming the setting in
the function's log, never a page.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import flask

from .app import create_console
from .auth import IapAuth

if TYPE_CHECKING:
    from ..app import App

_lock = threading.Lock()
_console: flask.Flask | None = None


def build_console(get_app: Callable[[], App], environ: Mapping[str, str] | None = None) -> flask.Flask:
    auth = IapAuth.from_env(os.environ if environ is None else environ)
    return create_console(get_app, auth, secure_cookie=True)


def handle_console(request: flask.Request, get_app: Callable[[], App]) -> Any:
    """Serve one request of the function through the console (built once per instance)."""
    global _console
    with _lock:
        if _console is None:
            _console = build_console(get_app)
        console = _console
    return flask.Response.from_app(console, request.environ)


def reset_console() -> None:
    """Forget the built console (tests, configuration changes)."""
    global _console
    with _lock:
        _console = None
