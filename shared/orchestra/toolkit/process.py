"""Run one command (an argument list, never a shell string) with a timeout.

The command runs in its own process group (session) so a timeout kills everything it started —
test runners and deploy scripts fork helpers that would otherwise outlive us and hold ports or
files. Output goes to temporary files rather than pipes so a chatty or hung child can neither
block us nor fill memory; only the tail is kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from ..processes import signal_group, stop_group

TAIL_BYTES = 4000
KILL_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int | None
    timed_out: bool
    duration_seconds: float
    stdout_tail: str
    stderr_tail: str

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.returncode == 0

    def describe(self) -> str:
        if self.timed_out:
            return f"timed out after {self.duration_seconds:.1f}s (process group killed)"
        return f"exit code {self.returncode}"

    def as_dict(self) -> dict[str, object]:
        return {
            "argv": self.argv,
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "duration_seconds": round(self.duration_seconds, 3),
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
        }


def _tail(handle: IO[bytes], limit: int = TAIL_BYTES) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - limit))
    data = handle.read()
    text = data.decode("utf-8", errors="replace")
    return ("…" + text) if size > limit else text


def run_command(
    argv: Sequence[str],
    *,
    timeout_seconds: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    kill_leftovers: bool = False,
) -> CommandResult:
    """Run ``argv`` (no shell) and wait at most ``timeout_seconds``.

    With ``kill_leftovers``, processes the command left running in its group are killed when it
    exits (a test suite's stray servers); deploy commands that start a service detach it.

    Raises FileNotFoundError / PermissionError when the program cannot be started; the caller
    turns those into errors that name the configuration entry.
    """
    args = [str(a) for a in argv]
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            shell=False,
            start_new_session=True,
        )
        timed_out = False
        try:
            returncode: int | None = proc.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_group(proc, KILL_GRACE_SECONDS)
            returncode = proc.poll()
        else:
            if kill_leftovers:
                signal_group(proc.pid, signal.SIGKILL)
        duration = time.monotonic() - started
        return CommandResult(
            argv=args,
            returncode=returncode,
            timed_out=timed_out,
            duration_seconds=duration,
            stdout_tail=_tail(out),
            stderr_tail=_tail(err),
        )
