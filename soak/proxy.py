"""A TCP proxy the chaos can cut or slow down.

In front of the Firestore emulator it makes the store unreachable (``cut``: live connections are
reset, new ones refused until ``restore``) while the emulator itself is restarted behind it. In
front of a function it delays push deliveries (``delay``: every chunk sent upstream waits).
Plain TCP, so it carries gRPC (HTTP/2) and HTTP alike.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

CHUNK = 65536


class TcpProxy:
    def __init__(self, listen_host: str, upstream: tuple[str, int], name: str) -> None:
        self.name = name
        self.upstream = upstream
        self._server = socket.create_server((listen_host, 0), reuse_port=False)
        self.host, self.port = self._server.getsockname()[:2]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._delay_s = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"proxy-{name}", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    # ------------------------------------------------------------------ faults
    def cut(self) -> None:
        """Reset every live connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            sockets = list(self._open)
        for sock in sockets:
            self._reset(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def delay(self, seconds: float) -> None:
        """Hold every chunk sent upstream for ``seconds`` (0: no delay)."""
        with self._lock:
            self._delay_s = max(0.0, seconds)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()
        self.cut()

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _reset(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                self._reset(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self._reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self._cut:
                self._reset(client)
                self._reset(upstream)
                return
            self._open.update((client, upstream))
        back = threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True)
        back.start()
        self._pump(client, upstream, True)
        back.join()
        with self._lock:
            self._open.discard(client)
            self._open.discard(upstream)

    def _pump(self, src: socket.socket, dst: socket.socket, outbound: bool) -> None:
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                if outbound:
                    with self._lock:
                        delay = self._delay_s
                    if delay:
                        time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._reset(src)
            self._reset(dst)
