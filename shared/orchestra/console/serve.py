"""``orchestra console``: serve the console on a loopback address and print a one-time login URL."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from werkzeug.serving import make_server

from ..errors import InputError
from .app import create_console
from .auth import LocalAuth

if TYPE_CHECKING:
    from ..app import App

LOOPBACK_NAMES = ("localhost",)


def check_loopback(host: str) -> None:
    """The local console speaks plain HTTP with a session cookie: it listens on loopback only
    (the cloud console is behind Identity-Aware Proxy)."""
    if host in LOOPBACK_NAMES:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InputError(
            f"{host!r} is not a loopback address; accepted: 127.0.0.1, ::1 or localhost "
            "(use Identity-Aware Proxy to reach the console from elsewhere)",
            where="--host",
        )


def serve(
    app: App,
    identity: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    out: TextIO = sys.stdout,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted. Prints ``console: URL`` with a one-time login token once the
    socket is listening (the line is the readiness signal)."""
    check_loopback(host)
    auth = LocalAuth(identity, app.clock)
    dispatch = _Dispatch()
    server = make_server(host, port, dispatch, threaded=True)
    bound = server.socket.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    hosts = frozenset({f"{shown}:{bound}", f"localhost:{bound}", f"127.0.0.1:{bound}"})
    dispatch.target = create_console(lambda: app, auth, allowed_hosts=hosts)
    url = f"http://{shown}:{bound}/login?token={auth.issue_login_token()}"
    print(f"console: {url}", file=out, flush=True)
    print(f"console: acting as {identity}; the link works once. Stop with Ctrl-C.", file=out, flush=True)
    if ready is not None:
        ready(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class _Dispatch:
    """The WSGI entry the server starts with; the console is plugged in once the port is known
    (its Host check needs the bound port), before the URL is printed."""

    def __init__(self) -> None:
        self.target: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.target is None:  # pragma: no cover - set before the URL is printed
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.target(environ, start_response)
