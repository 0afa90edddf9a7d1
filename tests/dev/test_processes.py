"""Stopping process groups: helpers get SIGTERM and a grace period, stragglers SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from orchestra.processes import group_alive, stop_group, stop_groups


def _start(script: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"


# A leader that exits at once on SIGTERM, with a helper that needs a moment to shut down.
_LEADER_WITH_SLOW_HELPER = """
    import subprocess, sys
    helper = '''
    import pathlib, signal, sys, time
    def shutdown(signum, frame):
        time.sleep(0.3)
        pathlib.Path("helper-cleaned-up").write_text("yes")
        sys.exit(0)
    signal.signal(signal.SIGTERM, shutdown)
    print("ready", flush=True)
    time.sleep(600)
    '''
    child = subprocess.Popen([sys.executable, "-c", helper], stdout=subprocess.PIPE)
    child.stdout.readline()
    print("ready", flush=True)
    import time
    time.sleep(600)
"""


def test_helpers_get_the_grace_period_after_the_leader_exits(tmp_path: Path) -> None:
    proc = _start(_LEADER_WITH_SLOW_HELPER, tmp_path)
    _wait_ready(proc)
    stop_group(proc, grace_s=30)
    assert (tmp_path / "helper-cleaned-up").read_text() == "yes"
    assert proc.returncode is not None
    assert not group_alive(proc.pid)


def test_groups_ignoring_sigterm_are_killed_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        print("ready", flush=True)
        time.sleep(600)
    """
    procs = [_start(stubborn, tmp_path) for _ in range(2)]
    for proc in procs:
        _wait_ready(proc)
    stop_groups(procs, grace_s=0.5)
    for proc in procs:
        assert proc.returncode is not None
        assert not group_alive(proc.pid)


def test_stopping_a_group_that_is_already_gone_is_harmless(tmp_path: Path) -> None:
    proc = _start("print('ready', flush=True)", tmp_path)
    _wait_ready(proc)
    proc.wait(timeout=30)
    stop_group(proc, grace_s=0.5)
    assert proc.returncode == 0
    assert not group_alive(proc.pid)
