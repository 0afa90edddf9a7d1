"""Child processes: a port to listen on, the tail of their log, and stopping them together with
everything they started.

Children that fork helpers (the ``gcloud`` emulator wrapper starting ``java``, gunicorn workers,
test runners and deploy scripts) are started with ``start_new_session=True``: each leads its own
process group, whose id is its pid. Signalling the group reaches the helpers, which would
otherwise outlive a plain kill and hold ports or files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

POLL_S = 0.1


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now (another process may still take it before the child binds it).

    The kernel may offer a port it offered a moment ago if nothing bound it yet; two children
    started together would then race for it, and the loser's readiness probe would be answered
    by the winner. So a port is never handed out twice by one process.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` of a child's log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to the group; a group that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process is left in the process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds for zombies: an exited grandchild stays one until its new parent
    # (init, or a container's PID 1 that may never reap) collects it.
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # After the parenthesised command: state, ppid, pgrp, ...
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def stop_groups(procs: Sequence[subprocess.Popen[Any]], grace_s: float) -> None:
    """SIGTERM every group led by ``procs``, give them ``grace_s`` together to exit, then SIGKILL
    the groups with a process left. Waits for the leaders so none stays a zombie."""
    for proc in procs:
        signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(group_alive(p.pid) for p in procs):
        for proc in procs:
            proc.poll()  # reap exited leaders (without /proc a zombie leader counts as alive)
        time.sleep(POLL_S)
    for proc in procs:
        if group_alive(proc.pid):
            signal_group(proc.pid, signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(grace_s, 1.0))


def stop_group(proc: subprocess.Popen[Any], grace_s: float) -> None:
    stop_groups([proc], grace_s)
