"""A local HTTP server that the real Google client libraries talk to (see ``conftest.py``).

The server answers from scripted replies and records every request exactly as it arrived on the
socket: method, path, query string, headers and body.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wire"


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def param(self, name: str) -> str | None:
        """The single value of query parameter ``name`` (None when absent)."""
        values = self.query.get(name)
        if not values:
            return None
        assert len(values) == 1, f"query parameter {name!r} repeated: {values}"
        return values[0]


@dataclass(frozen=True)
class Reply:
    """A scripted answer: HTTP status and a JSON body."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def google_error(status: int, grpc_status: str, message: str) -> Reply:
    """The JSON error body Google REST APIs answer with (``google.rpc.Status`` in ``error``)."""
    return Reply(status, {"error": {"code": status, "message": message, "status": grpc_status}})


class WireServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], list[Reply]] = defaultdict(list)
        self.requests: list[Recorded] = []
        self.unexpected: list[Recorded] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="wire-server", daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self._routes.clear()
            self.requests = []
            self.unexpected = []

    def answer(self, method: str, path: str, *replies: Reply) -> None:
        """Serve ``replies`` in order to ``method path`` (path without the query string)."""
        assert replies, "answer() needs at least one reply"
        with self._lock:
            self._routes[(method.upper(), path)].extend(replies)

    def received(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    def _reply_for(self, request: Recorded) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            queue = self._routes.get((request.method, request.path))
            if not queue:
                self.unexpected.append(request)
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler_class(self) -> Callable[..., BaseHTTPRequestHandler]:
        wire = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                request = Recorded(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = wire._reply_for(request)
                if reply is None:
                    reply = google_error(
                        501, "UNIMPLEMENTED", f"no scripted reply for {self.command} {url.path}"
                    )
                payload = json.dumps(reply.body).encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def load_fixture(name: str) -> Any:
    """A recorded response under ``tests/fixtures/wire/``, parsed."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))
