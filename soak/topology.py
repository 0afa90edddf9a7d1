"""The topology of ``make dev`` (:mod:`orchestra.devtopology`), with handles for the chaos.

The emulators, the functions, the topics and the push subscriptions are started by
:class:`~orchestra.devtopology.DevTopology` itself; this subclass only puts proxies in front of
the Firestore emulator (so the store can be cut while the emulator restarts behind it) and of the
push endpoints of the ``scheduled`` and ``alerts`` functions (so deliveries can be delayed), and
can kill, pause and restart any process group it started.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

from orchestra.devtopology import FUNCTIONS, Child, DevTopology, StartError, http_answers
from orchestra.processes import signal_group

from .proxy import TcpProxy

PUSHED = ("scheduled", "alerts")
RESTART_READY_S = 90.0


def _host_port(argv: list[str]) -> tuple[str, int]:
    for arg in argv:
        if arg.startswith("--host-port="):
            host, _, port = arg.split("=", 1)[1].rpartition(":")
            return host, int(port)
    raise StartError(f"no --host-port in {' '.join(argv)}")


class SoakTopology(DevTopology):
    firestore_proxy: TcpProxy | None = None
    push_proxies: dict[str, TcpProxy]
    direct: dict[str, str]
    _ff: str = ""

    def _start_emulator(self, name: str) -> Child:
        child = super()._start_emulator(name)
        if name == "firestore":
            if self.firestore_proxy is not None:
                self.firestore_proxy.close()
            self.firestore_proxy = TcpProxy(self.options.host, _host_port(child.argv), "firestore").start()
            child.url = self.firestore_proxy.address  # everyone talks to the store through it
        return child

    def start(self, functions_framework: str) -> None:
        self._ff = functions_framework
        super().start(functions_framework)
        self.direct = dict(self.endpoints.functions)
        self.push_proxies = {}
        for name in PUSHED:
            host, _, port = self.direct[name].rsplit("/", 1)[-1].rpartition(":")
            proxy = TcpProxy(self.options.host, (host, int(port)), f"push-{name}").start()
            self.push_proxies[name] = proxy
            # create_pubsub() points the push subscription at endpoints.functions[name].
            self.endpoints.functions[name] = f"http://{proxy.address}"

    # ------------------------------------------------------------------ processes
    def child(self, name: str) -> Child:
        for child in reversed(self.supervisor.children):
            if child.name == name:
                return child
        raise KeyError(name)

    def kill(self, name: str) -> int:
        """SIGKILL the process group of ``name``; returns its id."""
        child = self.child(name)
        child.expected_exit = True
        signal_group(child.pgid, signal.SIGKILL)
        child.proc.wait(timeout=30)
        return child.pgid

    def pause(self, name: str) -> int:
        child = self.child(name)
        signal_group(child.pgid, signal.SIGSTOP)
        return child.pgid

    def resume(self, name: str) -> None:
        signal_group(self.child(name).pgid, signal.SIGCONT)

    def restart_function(self, name: str) -> Child:
        """Start ``name`` again on the same port (the push subscriptions keep their endpoint)."""
        old = self.child(name)
        spec = next(f for f in FUNCTIONS if f.name == name)
        env = self.function_env()
        child = self.supervisor.start(
            spec.name, old.argv, env=env, url=old.url, cwd=self.options.root, prefix_output=False
        )
        self._await(child, f"{old.url}/", expect_ok=False)
        return child

    def _await(self, child: Child, url: str, *, expect_ok: bool) -> None:
        deadline = time.monotonic() + RESTART_READY_S
        while not http_answers(url, expect_ok=expect_ok):
            if child.proc.poll() is not None or time.monotonic() > deadline:
                raise StartError(f"{child.name} did not come back; log {child.log}")
            time.sleep(0.2)

    def function_pids(self) -> dict[int, str]:
        """Process group id -> function name, for the running functions."""
        names = {f.name for f in FUNCTIONS}
        return {c.pgid: c.name for c in self.supervisor.children if c.name in names and c.proc.poll() is None}

    # ------------------------------------------------------------------ the store
    def restart_firestore(self, export_dir: Path) -> float:
        """Cut the store, export its data, stop the emulator, start it again with that data on
        the same port, restore the store. Returns the seconds the store was unreachable."""
        assert self.firestore_proxy is not None
        started = time.monotonic()
        self.firestore_proxy.cut()
        old = self.child("firestore-emulator")
        host, port = _host_port(old.argv)
        export_dir.mkdir(parents=True, exist_ok=True)
        body = (
            f'{{"database": "projects/{self.options.project}/databases/(default)", '
            f'"export_directory": "{export_dir.resolve()}"}}'
        ).encode()
        request = urllib.request.Request(
            f"http://{host}:{port}/emulator/v1/projects/{self.options.project}:export",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
        metadata = sorted(export_dir.rglob("*.overall_export_metadata"))
        if not metadata:
            raise StartError(f"the Firestore emulator exported nothing into {export_dir}")
        old.expected_exit = True
        signal_group(old.pgid, signal.SIGTERM)
        try:
            old.proc.wait(timeout=20)
        except Exception:  # noqa: BLE001 - a JVM slow to stop is killed
            signal_group(old.pgid, signal.SIGKILL)
            old.proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while http_answers(f"http://{host}:{port}/", expect_ok=False):  # the JVM outlives its wrapper
            if time.monotonic() > deadline:
                signal_group(old.pgid, signal.SIGKILL)
            time.sleep(0.2)
        argv = [a for a in old.argv if not a.startswith("--import-data=")]
        argv.append(f"--import-data={metadata[-1].resolve()}")
        env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        child = self.supervisor.start(
            "firestore-emulator", argv, env=env, url=old.url, cwd=self.options.root, prefix_output=False
        )
        self._await(child, f"http://{host}:{port}/", expect_ok=True)
        self.firestore_proxy.restore()
        return time.monotonic() - started

    def close_proxies(self) -> None:
        for proxy in [self.firestore_proxy, *getattr(self, "push_proxies", {}).values()]:
            if proxy is not None:
                proxy.close()
