"""Start and stop the Google Cloud emulators (Firestore, Pub/Sub) for the test session.

The ``gcloud`` wrapper spawns a shell script which spawns ``java``; killing only the wrapper
leaves the JVM running. Each emulator therefore gets its own process group
(``start_new_session``) and the whole group is signalled on stop: SIGTERM, then SIGKILL.
Stopping is registered with ``atexit`` as well, so an interrupted session cleans up too.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestra.processes import free_port, log_tail, stop_group

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0
STARTUP_ATTEMPTS = 2

# Every started emulator, so the atexit hook can stop whatever a crashed session left behind.
_RUNNING: list[EmulatorProcess] = []
_LOCK = threading.Lock()


class EmulatorError(RuntimeError):
    """An emulator could not be started; the message carries the tail of its log."""


@dataclass(frozen=True)
class EmulatorInfo:
    """A running emulator: ``host_port`` is what the *_EMULATOR_HOST variables take."""

    name: str
    host: str
    port: int
    project: str
    log: Path

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class EmulatorProcess:
    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        host: str,
        port: int,
        project: str,
        log: Path,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.name = name
        self.stop_grace_s = stop_grace_s
        self.argv = argv
        self.host = host
        self.port = port
        self.project = project
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def info(self) -> EmulatorInfo:
        return EmulatorInfo(self.name, self.host, self.port, self.project, self.log)

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> EmulatorInfo:
        if shutil.which(self.argv[0]) is None:
            raise EmulatorError(
                f"{self.name} emulator: {self.argv[0]!r} is not on PATH; install the Google Cloud "
                "SDK with the emulator components (see DESIGN.md section 3)"
            )
        env = dict(os.environ)
        env["CLOUDSDK_CORE_DISABLE_PROMPTS"] = "1"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        with _LOCK:
            _RUNNING.append(self)
        try:
            self._wait_ready(ready_timeout_s)
        except EmulatorError:
            self.stop()
            raise
        return self.info

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.host}:{self.port}/"
        while True:
            code = self.proc.poll()
            if code is not None:
                raise EmulatorError(
                    f"{self.name} emulator exited with status {code} before it was ready "
                    f"({' '.join(self.argv)}); log {self.log}:\n{log_tail(self.log, 40)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"{self.name} emulator not ready on {url} after {timeout_s:.0f} s "
                    f"({' '.join(self.argv)}); log {self.log}:\n{log_tail(self.log, 40)}"
                )
            time.sleep(0.2)

    def stop(self, grace_s: float | None = None) -> None:
        """SIGTERM the process group, SIGKILL whatever is left after ``grace_s``."""
        grace_s = self.stop_grace_s if grace_s is None else grace_s
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        with _LOCK:
            if self in _RUNNING:
                _RUNNING.remove(self)
        stop_group(proc, grace_s)


def start_emulator(
    name: str,
    build_argv: Callable[[str], list[str]],
    *,
    project: str,
    log_dir: Path,
    host: str = "127.0.0.1",
    ready_timeout_s: float = READY_TIMEOUT_S,
    stop_grace_s: float = STOP_GRACE_S,
) -> EmulatorProcess:
    """Start on a fresh free port; retry once on another port if the first start fails (a port
    picked as free can be taken before the JVM binds it)."""
    errors: list[str] = []
    for attempt in range(1, STARTUP_ATTEMPTS + 1):
        port = free_port(host)
        log = log_dir / f"{name}-{attempt}.log"
        emulator = EmulatorProcess(
            name,
            build_argv(f"{host}:{port}"),
            host=host,
            port=port,
            project=project,
            log=log,
            stop_grace_s=stop_grace_s,
        )
        try:
            emulator.start(ready_timeout_s)
        except EmulatorError as exc:
            errors.append(str(exc))
            continue
        return emulator
    raise EmulatorError("\n\n".join(errors))


def firestore_argv(host_port: str) -> list[str]:
    return ["gcloud", "emulators", "firestore", "start", f"--host-port={host_port}"]


def pubsub_argv(project: str) -> Callable[[str], list[str]]:
    def build(host_port: str) -> list[str]:
        return [
            "gcloud",
            "beta",
            "emulators",
            "pubsub",
            "start",
            f"--host-port={host_port}",
            f"--project={project}",
        ]

    return build


def clear_firestore(info: EmulatorInfo, database: str = "(default)") -> None:
    """Delete every document in the emulator's database (emulator-only REST endpoint)."""
    url = f"{info.url}/emulator/v1/projects/{info.project}/databases/{database}/documents"
    request = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise EmulatorError(f"clearing Firestore emulator data: HTTP {response.status} from {url}")


def stop_all() -> None:
    with _LOCK:
        running = list(_RUNNING)
    for emulator in running:
        emulator.stop()


def _stop_all_then_terminate(signum: int, frame: object) -> None:
    stop_all()
    # Die of the same signal, as if the handler had never been installed.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_sigterm_cleanup() -> None:
    """atexit does not run when the process is killed by SIGTERM (a CI timeout, a supervisor):
    stop the emulators first. Only replaces the default action, never someone else's handler."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _stop_all_then_terminate)


atexit.register(stop_all)
