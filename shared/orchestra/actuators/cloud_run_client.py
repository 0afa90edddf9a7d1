"""The process's one Cloud Run Admin API client (``google.cloud.run_v2.ServicesClient``).

A ``ServicesClient`` owns a gRPC channel and the credentials behind it: building one costs an
import of the client library, a credentials lookup and a channel, and one client serves any number
of threads. So the actuator and the deployer share one per process, built on first use (a process
that never talks to Cloud Run never imports the library).

Whoever needs a client takes ``services_client()`` unless one was injected (``client=`` on the
actuator and the deployer): tests inject clients that answer with recorded ``run_v2`` messages.
``RUN_SERVICES.replace()`` swaps the process-wide client itself (or forgets it, to be built again
on next use).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SharedClient(Generic[T]):
    """A client built once, on first use, however many threads ask for it at the same time.

    A build that fails is not remembered: the next use tries again (credentials may appear, a
    transient metadata-server error may pass).
    """

    def __init__(self, build: Callable[[], T], *, what: str) -> None:
        self._build = build
        self._client: T | None = None
        self._lock = threading.Lock()
        self.what = what

    def get(self) -> T:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def replace(self, client: T | None) -> T | None:
        """Install ``client`` as the process-wide one (None: build on next use); returns the old one."""
        with self._lock:
            previous, self._client = self._client, client
        return previous

    def __repr__(self) -> str:
        state = "built" if self._client is not None else "not built yet"
        return f"SharedClient({self.what}, {state})"


def _build_services_client() -> Any:
    from google.cloud import run_v2

    return run_v2.ServicesClient()


RUN_SERVICES: SharedClient[Any] = SharedClient(
    _build_services_client, what="Cloud Run Admin API ServicesClient"
)


def services_client() -> Any:
    """The process-wide Cloud Run Admin API client, built on first use."""
    return RUN_SERVICES.get()
