"""The small soak, as ``make soak`` runs it: the topology of ``make dev`` (emulators started by
the soak itself through ``orchestra.devtopology``, never skipped), about 300 events with duplicates
and poison messages, faults every few seconds, recovery, then the invariant checker. Its exit
status is the verdict; the report it writes is read back to show the checker looked at
everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.soak.launch import start_soak

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

# Under the suite's 5-minute limit with room to spare on a loaded 2-core machine.
BUDGET_S = 270
ARGS = ["--events", "300", "--rate", "8", "--seed", "11", "--fault-every", "3", "--recovery-timeout", "120"]


def test_small_soak_under_chaos_keeps_every_invariant(tmp_path: Path):
    work = tmp_path / "soak"
    proc = start_soak(ARGS, work)
    try:
        output, _ = proc.communicate(timeout=BUDGET_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the soak stops every process group it started
        output, _ = proc.communicate(timeout=60)
        pytest.fail(f"the soak did not finish in {BUDGET_S} s:\n{output[-4000:]}")
    assert proc.returncode == 0, output[-6000:]
    report = json.loads((work / "report.json").read_text())
    assert report["violations"] == []
    assert (report["lost"], report["done_twice"], report["stuck"], report["breakers_open"]) == (0, 0, 0, 0)
    # The stream had what it promises: every kind of outcome, duplicates and injected faults.
    assert report["events"] >= 300 and report["duplicates"] > 0
    assert report["rejections"] > 0 and report["dead_letters"] > 0
    assert report["replayed"] == report["dead_letters"]
    assert sum(report["faults"].values()) >= 3
    assert report["statuses"].get("succeeded", 0) > 150  # most of the ~240 runs, whatever the breakers did
    log = (work / "soak.log").read_text()
    assert "fault 1 " in log  # every fault is timestamped in the log
    assert "soak: PASSED" in output
