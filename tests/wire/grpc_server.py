"""A local gRPC server for client libraries that only speak gRPC (Cloud Monitoring's installed
``monitoring_v3`` has no REST transport).

Methods are registered by their full name with the proto-plus request and response types; the
server decodes each request with the library's own message class, records it with its metadata
and answers from scripted replies: a response message, or a gRPC status (code and message).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc


@dataclass(frozen=True)
class GrpcRecorded:
    method: str  # "/package.Service/Method"
    request: Any  # the decoded proto-plus message
    metadata: dict[str, str]


@dataclass(frozen=True)
class GrpcError:
    code: grpc.StatusCode
    message: str


class GrpcWireServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: dict[str, list[Any]] = defaultdict(list)
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.requests: list[GrpcRecorded] = []
        self.unexpected: list[GrpcRecorded] = []
        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers((self._Router(self),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None).wait(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests = []
            self.unexpected = []

    def register(self, service: str, method: str, request_type: Any, response_type: Any) -> None:
        """Serve ``/service/method`` decoding ``request_type`` and encoding ``response_type``."""
        full = f"/{service}/{method}"

        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            reply = self._reply_for(GrpcRecorded(full, request, metadata))
            if reply is None:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"no scripted reply for {full}")
            if isinstance(reply, GrpcError):
                context.abort(reply.code, reply.message)
            return reply

        with self._lock:
            self._handlers[full] = grpc.unary_unary_rpc_method_handler(
                behaviour,
                request_deserializer=request_type.deserialize,
                response_serializer=response_type.serialize,
            )

    def answer(self, method: str, *replies: Any) -> None:
        """Serve ``replies`` (messages or :class:`GrpcError`) in order to ``/service/method``."""
        assert replies, "answer() needs at least one reply"
        with self._lock:
            self._replies[method].extend(replies)

    def _reply_for(self, recorded: GrpcRecorded) -> Any:
        with self._lock:
            self.requests.append(recorded)
            queue = self._replies.get(recorded.method)
            if not queue:
                self.unexpected.append(recorded)
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler(self, method: str) -> grpc.RpcMethodHandler | None:
        with self._lock:
            return self._handlers.get(method)

    class _Router(grpc.GenericRpcHandler):
        def __init__(self, wire: GrpcWireServer) -> None:
            self._wire = wire

        def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            return self._wire._handler(handler_call_details.method)
