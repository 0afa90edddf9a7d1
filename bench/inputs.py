"""Input files in bounded memory, read once: a performance run over a 5 M-row metric CSV.

The CSV (~130 MB, one sample a minute, values from the real NAB CPU series) is analysed by the
real CLI (`orchestra run performance --metric cpu=FILE`) in a child process. Measured in the same
run, with the same command over a 100-row file as the baseline:

- peak memory of the run (``ru_maxrss`` of the child) against the file's size — target <= 3x;
- bytes the run read (``rchar`` from /proc/PID/io, minus the baseline run's) against the file's
  size — 1.0 means the file was read once;
- the run's time — target <= 10 s. Judged on the CPU seconds of the child (user + system): on a
  machine shared with other work the wall time says more about the neighbours than the run.
  Beside it, for scale, DuckDB (one thread) reading the same file into numpy arrays (parsing
  only: no validation, no analysis).

The generated CSV is kept in a directory (default: the temporary directory's
``orchestra-bench-inputs``) keyed by the row count and the digests of the fixture and of the
writer's source, and reused by later runs: writing 5 M rows took about as long as the run itself.

    .venv/bin/python bench/inputs.py [--rows N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

FIXTURE = ROOT / "tests/fixtures/metrics/ec2_cpu_utilization_825cc2.csv"
ORCHESTRA = ROOT / ".venv/bin/orchestra"

# Runs the CLI in this child and reports what the kernel counted for it: peak RSS and bytes read.
CHILD = """
import resource, sys
from orchestra.cli.main import cli
code = 0
try:
    cli(args=sys.argv[1:], prog_name="orchestra", standalone_mode=False)
except SystemExit as exc:
    code = exc.code or 0
io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"BENCH {code} {usage.ru_maxrss * 1024} {io['rchar']} {usage.ru_utime + usage.ru_stime}", file=sys.stderr)
"""


def write_csv(path: Path, rows: int) -> int:
    """``rows`` samples a minute apart from 2020-01-01 ("2020-01-01 00:00:00,91.958"), the values
    of the real series over and over."""
    values = [line.split(",")[1] for line in FIXTURE.read_text().splitlines()[1:] if line.strip()]
    start = np.datetime64("2020-01-01T00:00", "m")
    with path.open("w") as out:
        out.write("timestamp,value\n")
        for lo in range(0, rows, 100_000):
            hi = min(rows, lo + 100_000)
            stamps = np.datetime_as_string(start + np.arange(lo, hi), unit="s").tolist()
            out.write(
                "".join(
                    f"{stamp[:10]} {stamp[11:]},{values[i % len(values)]}\n"
                    for i, stamp in enumerate(stamps, lo)
                )
            )
    return path.stat().st_size


def cached_csv(workdir: Path, rows: int) -> tuple[Path, int]:
    """The ``rows``-row file, written once per row count, fixture and writer; its size."""
    key = hashlib.sha256(FIXTURE.read_bytes() + inspect.getsource(write_csv).encode()).hexdigest()[:12]
    path = workdir / f"metric-{rows}-{key}.csv"
    if not path.is_file():
        workdir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        write_csv(partial, rows)
        os.replace(partial, path)  # only a complete file is ever reused
    return path, path.stat().st_size


def measure(csv: Path, store: Path) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds, peak RSS and bytes read of a performance run over ``csv``."""
    argv = [
        sys.executable,
        "-c",
        CHILD,
        "run",
        "performance",
        "--metric",
        f"cpu={csv}",
        "--store",
        f"sqlite:///{store}",
        "--format",
        "json",
    ]
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    line = [x for x in done.stderr.splitlines() if x.startswith("BENCH ")]
    if not line:
        raise SystemExit(f"the run did not report its figures:\n{done.stderr[-2000:]}")
    _, code, peak, rchar, cpu = line[-1].split()
    if int(code) != 0:
        raise SystemExit(f"the run exited {code}:\n{done.stderr[-2000:]}")
    return elapsed, float(cpu), int(peak), int(rchar)


def duckdb_seconds(csv: Path, rows: int) -> float | None:
    """CPU seconds of DuckDB (one thread) reading the file into numpy; None without DuckDB."""
    try:
        import duckdb
    except ImportError:
        return None
    con = duckdb.connect()
    con.execute("SET threads = 1")
    began = time.process_time()
    got = con.execute(
        "SELECT epoch_ms(timestamp) AS t, value FROM read_csv(?, header = true, "
        "columns = {'timestamp': 'TIMESTAMP', 'value': 'DOUBLE'})",
        [str(csv)],
    ).fetchnumpy()
    seconds = time.process_time() - began
    con.close()
    assert len(got["t"]) == rows, len(got["t"])
    return seconds


def verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "orchestra-bench-inputs"
    )
    args = parser.parse_args()
    big, size = cached_csv(args.workdir, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        small = base / "small.csv"
        write_csv(small, 100)
        base_s, base_cpu, base_peak, base_read = measure(small, base / "small.db")
        big_s, big_cpu, big_peak, big_read = measure(big, base / "big.db")
        duck = duckdb_seconds(big, args.rows)
    mb = 1024 * 1024
    print(f"file: {args.rows:,} rows, {size / mb:.1f} MiB")
    print(
        f"baseline run (100 rows): {base_s:.2f} s wall, {base_cpu:.2f} s CPU, peak {base_peak / mb:.0f} MiB"
    )
    print(f"run over the file:       {big_s:.2f} s wall, {big_cpu:.2f} s CPU, peak {big_peak / mb:.0f} MiB")
    ratio = big_peak / size
    print(f"peak memory / file size: {ratio:.2f}x (target <= 3x) {verdict(ratio <= 3)}")
    print(f"memory the file added / file size: {(big_peak - base_peak) / size:.2f}x")
    reads = (big_read - base_read) / size
    print(f"bytes read / file size: {reads:.2f} (target: read once, < 1.5) {verdict(reads < 1.5)}")
    print(f"run time: {big_cpu:.2f} s CPU (target <= 10 s) {verdict(big_cpu <= 10)}")
    added = big_cpu - base_cpu
    if duck is not None:
        print(
            f"CPU the file added: {added:.2f} s = {added / duck:.1f}x DuckDB reading it "
            f"({duck:.2f} s, one thread, no validation; for scale, no target)"
        )
    else:
        print(f"CPU the file added: {added:.2f} s (DuckDB not installed: no reference)")


if __name__ == "__main__":
    main()
