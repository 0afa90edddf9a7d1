"""Input files in bounded memory, read once: a performance run over a 5 M-row metric CSV.

The CSV (~130 MB, one sample a minute, values from the real NAB CPU series) is analysed by the
real CLI (`orchestra run performance --metric cpu=FILE`) in a child process. Measured in the same
run, with the same command over a 100-row file as the baseline:

- peak memory of the run (``ru_maxrss`` of the child) against the file's size — target <= 3x;
- bytes the run read (``rchar`` from /proc/PID/io, minus the baseline run's) against the file's
  size — 1.0 means the file was read once.

    .venv/bin/python bench/inputs.py [--rows N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(f"BENCH {code} {peak} {io['rchar']}", file=sys.stderr)
"""


def write_csv(path: Path, rows: int) -> int:
    values = [line.split(",")[1] for line in FIXTURE.read_text().splitlines()[1:] if line.strip()]
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with path.open("w") as out:
        out.write("timestamp,value\n")
        chunk: list[str] = []
        for i in range(rows):
            stamp = (start + dt.timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S")
            chunk.append(f"{stamp},{values[i % len(values)]}\n")
            if len(chunk) == 100_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    return path.stat().st_size


def measure(csv: Path, store: Path) -> tuple[float, int, int]:
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
    _, code, peak, rchar = line[-1].split()
    if int(code) != 0:
        raise SystemExit(f"the run exited {code}:\n{done.stderr[-2000:]}")
    return elapsed, int(peak), int(rchar)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        small = base / "small.csv"
        big = base / "big.csv"
        write_csv(small, 100)
        size = write_csv(big, args.rows)
        base_s, base_peak, base_read = measure(small, base / "small.db")
        big_s, big_peak, big_read = measure(big, base / "big.db")
    mb = 1024 * 1024
    print(f"file: {args.rows:,} rows, {size / mb:.1f} MiB")
    print(f"baseline run (100 rows): {base_s:.2f} s, peak {base_peak / mb:.0f} MiB")
    print(f"run over the file:       {big_s:.2f} s, peak {big_peak / mb:.0f} MiB")
    ratio = big_peak / size
    print(f"peak memory / file size: {ratio:.2f}x (target <= 3x) {'ok' if ratio <= 3 else 'NOT MET'}")
    print(f"memory the file added / file size: {(big_peak - base_peak) / size:.2f}x")
    reads = (big_read - base_read) / size
    print(f"bytes read / file size: {reads:.2f} (1.0 = read once) {'ok' if reads < 1.5 else 'NOT MET'}")


if __name__ == "__main__":
    main()
