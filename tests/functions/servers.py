"""Real functions-framework processes for end-to-end tests and the benchmark.

Each function runs as ``.venv/bin/functions-framework --source functions/NAME/main.py --target
ENTRY --port N`` (exactly what an operator types), in its own session so the gunicorn worker it
forks is stopped with it: SIGTERM to the group, then SIGKILL. Every started server is also
stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from orchestra.processes import free_port, stop_group

REPO = Path(__file__).resolve().parents[2]
ENTRY_POINTS = {
    "scheduled": "scheduled_task",
    "alerts": "monitoring_alert",
    "controller": "controller",
    "webhooks": "repo_webhook",
    "dead_letter": "dead_letter",
}
_RUNNING: list[FunctionServer] = []


def framework_binary() -> str:
    candidate = Path(sys.executable).parent / "functions-framework"
    return str(candidate) if candidate.exists() else "functions-framework"


class FunctionServer:
    def __init__(
        self, name: str, env: Mapping[str, str], log_dir: Path, *, source: Path | None = None
    ) -> None:
        self.name = name
        self.port = free_port()
        self.source = source or REPO / "functions" / name / "main.py"
        self.target = ENTRY_POINTS.get(name, name)
        self.env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO)])}
        self.log = log_dir / f"function-{name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> FunctionServer:
        self.launch()
        return self.wait_ready(timeout_s)

    def launch(self) -> FunctionServer:
        argv = [
            framework_binary(),
            "--source",
            str(self.source),
            "--target",
            self.target,
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _RUNNING.append(self)
        return self

    def wait_ready(self, timeout_s: float = 30) -> FunctionServer:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.proc.poll()
            if code is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.tail()}")
            if "Connection in use" in self.tail():
                # Another process holds the port: its answers must not pass for ours.
                self.stop()
                raise RuntimeError(f"{self.name}: port {self.port} is taken:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/__ready", timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self  # any HTTP answer means it is serving
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} not serving on {self.url} after {timeout_s} s:\n{self.tail()}"
                )
            time.sleep(0.1)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self in _RUNNING:
            _RUNNING.remove(self)
        if proc is None:
            return
        # The gunicorn worker may outlive its arbiter for a moment: the whole group goes.
        stop_group(proc, grace_s=5)


def stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


atexit.register(stop_all)
