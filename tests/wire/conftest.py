"""A local HTTP server that the real Google client libraries talk to.

The server answers from scripted replies (recorded, real-shaped JSON under
``tests/fixtures/wire/``) and records every request exactly as it arrived on the socket: method,
path, query string, headers and body. Tests then assert on what the client library really sent.

Fixtures:
- ``wire_server`` (session): the running :class:`WireServer` on ``127.0.0.1`` and a free port.
- ``wire``: the same server, emptied before the test; after the test, a request nobody scripted
  fails the test (a client that sent something unexpected is a finding, not noise).
- ``wire_fixture``: ``wire_fixture("name.json")`` -> the parsed recorded response.
- ``grpc_wire_server`` (session) / ``grpc_wire``: the same for gRPC-only client libraries
  (:class:`GrpcWireServer`: methods registered by name, replies scripted per method).

Replies are scripted per (method, path): ``wire.answer("GET", "/v2/...", Reply(200, body))``;
several replies for the same route are served in order, the last one repeating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .grpc_server import GrpcWireServer
from .server import WireServer, load_fixture


@pytest.fixture(scope="session")
def wire_server() -> Iterator[WireServer]:
    server = WireServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def wire(wire_server: WireServer) -> Iterator[WireServer]:
    wire_server.reset()
    yield wire_server
    unexpected = [f"{r.method} {r.path}" for r in wire_server.unexpected]
    wire_server.reset()
    assert not unexpected, f"requests nobody scripted: {unexpected}"


@pytest.fixture
def wire_fixture() -> Callable[[str], Any]:
    return load_fixture


@pytest.fixture(scope="session")
def grpc_wire_server() -> Iterator[GrpcWireServer]:
    server = GrpcWireServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def grpc_wire(grpc_wire_server: GrpcWireServer) -> Iterator[GrpcWireServer]:
    grpc_wire_server.reset()
    yield grpc_wire_server
    unexpected = [r.method for r in grpc_wire_server.unexpected]
    grpc_wire_server.reset()
    assert not unexpected, f"calls nobody scripted: {unexpected}"
