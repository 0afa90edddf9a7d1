"""Starting ``python -m soak`` from the tests, as ``make soak`` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def start_soak(args: list[str], work: Path) -> subprocess.Popen[str]:
    """The soak in its own session (so a test can signal its whole group), output merged."""
    return subprocess.Popen(
        [sys.executable, "-m", "soak", *args, "--work", str(work)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
