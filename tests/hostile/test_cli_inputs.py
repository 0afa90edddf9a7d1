"""Local triggers may name any file, but endless, enormous or binary input ends in one clear line
and exit code 2 — through the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ORCHESTRA = [sys.executable, "-m", "orchestra.cli.main"]
SECRET = "tok-0b9d44e1"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIG_PATH", "ORCHESTRA_STORE")}
    return subprocess.run(
        [*ORCHESTRA, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def stored_documents(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from docs").fetchone()[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(b"timestamp,value\n2014-04-10 00:04:00,1\n2014-04-10 00:09:00,caf\xe9\n")
    big = tmp_path / "big.csv"
    big.write_text("timestamp,value\n" + "2014-04-10 00:04:00,1\n" * 200)
    leaky = tmp_path / "leaky.csv"
    # Errors quote at most 40 characters of a line: the secret sits past them.
    leaky.write_text(f"timestamp,value\n2014-04-10 00:04:00,1\nORCHESTRA_API_TOKENS=user-root:{SECRET},2\n")
    config = tmp_path / "small-inputs.yaml"
    config.write_text(
        "default_environment: development\n"
        "environments: {development: {automation_level: 1}}\n"
        "inputs: {max_bytes: 1024}\n"
    )
    return {"fifo": fifo, "binary": binary, "latin": latin, "big": big, "leaky": leaky, "config": config}


@pytest.mark.parametrize(
    ("metric", "extra", "expected"),
    [
        ("/dev/zero", (), "not a regular file"),
        ("/dev/urandom", (), "not a regular file"),
        ("{fifo}", (), "not a regular file"),
        ("{tmp}", (), "is a directory"),
        ("{binary}", (), "not UTF-8"),
        ("{big}", ("--config", "{config}"), "larger than the input limit of 1024 bytes"),
        ("{latin}", (), "not UTF-8"),
        ("{leaky}", (), "bad timestamp"),
    ],
)
def test_endless_enormous_and_binary_metric_files(tmp_path, files, metric, extra, expected) -> None:
    names = {**{k: str(v) for k, v in files.items()}, "tmp": str(tmp_path)}
    db = tmp_path / "state.db"
    args = ["run", "performance", "--metric", f"cpu={metric.format(**names)}", "--store", f"sqlite:///{db}"]
    args += [part.format(**names) for part in extra]
    done = run_cli(*args, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert expected in output, output
    assert "Traceback" not in output
    assert SECRET not in output
    if expected != "bad timestamp":  # refused before a run is recorded
        assert stored_documents(db) == 0


def test_a_bad_row_is_recorded_as_the_callers_input_error(tmp_path, files) -> None:
    db = tmp_path / "state.db"
    args = ["run", "performance", "--metric", f"cpu={files['leaky']}", "--store", f"sqlite:///{db}"]
    done = run_cli(*args, "--format", "json", cwd=tmp_path)
    run = json.loads(done.stdout)
    assert done.returncode == 2 and run["status"] == "failed" and run["error"]["bad_input"] is True
    assert run["error"]["message"].startswith(f"{files['leaky']}:3: bad timestamp")
    # At most a bounded excerpt of the line, and here the excerpt stops before the secret.
    assert SECRET not in done.stdout
