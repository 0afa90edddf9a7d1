"""A soak stopped by SIGTERM (twice, as ``make`` forwards the one it also got) stops every process
group it started (emulators, functions, the console) and exits: none is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.soak.launch import start_soak

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

ARGS = ["--events", "400", "--rate", "5", "--seed", "5", "--fault-every", "2"]
START_S = 180.0
STOP_S = 90.0


def _groups_of_children(pid: int) -> set[int]:
    """Process groups of ``pid``'s direct children (each child of the soak leads its own)."""
    groups = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # ppid
            groups.add(int(fields[2]))  # pgrp
    return groups


def _alive_in(groups: set[int]) -> list[str]:
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) in groups:
                alive.append((entry / "cmdline").read_text().replace("\0", " ")[:120])
        except OSError:
            continue
    return alive


def _wait_for(path: Path, text: str, proc: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            pytest.fail(f"the soak exited ({proc.returncode}) before {text!r}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"no {text!r} in {path} within {timeout_s:g} s")


def test_sigterm_twice_stops_every_process_group_the_soak_started(tmp_path: Path):
    work = tmp_path / "soak"
    proc = start_soak(ARGS, work)
    groups: set[int] = set()
    try:
        _wait_for(work / "soak.log", "chaos starts", proc, START_S)
        groups = _groups_of_children(proc.pid) - {proc.pid}
        assert len(groups) >= 7  # two emulators, five functions (and the console)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=STOP_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        for group in groups:  # whatever a failed stop left, so that it cannot outlive the test
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode == 2, output[-3000:]
    assert "soak: interrupted (SIGTERM)" in output
    assert _alive_in(groups) == []
    assert "SIGTERM: every process the soak started is stopped" in (work / "soak.log").read_text()
