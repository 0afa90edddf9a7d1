#!/usr/bin/env python3
"""Cost analysis throughput on a 1 M-row billing export, against a plain group-by baseline.

Generates the export (deterministic generator, hourly rows, projects replicated), then times in
the same process:
- orchestra: read + validate the CSV, daily series per project x service, anomaly detection;
- baseline: pandas ``read_csv`` + ``groupby`` when pandas is installed, otherwise the plain
  numpy way: csv rows, string keys, ``np.unique`` + ``np.bincount`` (no validation, no detection).

Prints rows/s for both and their ratio (above 1: orchestra is faster).

    .venv/bin/python bench/cost.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gc
import tempfile
import time
from pathlib import Path

import numpy as np
from orchestra.automations.cost import AnomalySettings
from orchestra.automations.cost import analysis as an
from orchestra.automations.cost.billing import read_billing_file
from orchestra.automations.cost.generator import CATALOG, Options, generate


def orchestra_run(path: Path) -> tuple[int, int]:
    data = read_billing_file(path, max_bad_share=0.01)
    series = an.daily_series(data)
    found = an.detect(series, AnomalySettings(detect_days=None), last_days=None)
    return data.rows, len(found)


def numpy_baseline(path: Path) -> int:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        i_svc, i_start, i_proj, i_cost = (
            header.index(n) for n in ("service.description", "usage_start_time", "project.id", "cost")
        )
        rows = list(reader)
    keys = np.array([f"{r[i_start][:10]}|{r[i_proj]}|{r[i_svc]}" for r in rows])
    cost = np.array([r[i_cost] for r in rows], dtype=np.float64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    np.bincount(inverse, weights=cost, minlength=len(uniq))
    return len(rows)


def pandas_baseline(path: Path) -> int:
    import pandas as pd

    frame = pd.read_csv(path, usecols=["service.description", "usage_start_time", "project.id", "cost"])
    frame["day"] = frame["usage_start_time"].str.slice(0, 10)
    frame.groupby(["day", "project.id", "service.description"])["cost"].sum()
    return len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    skus = sum(len(skus) for _, services in CATALOG.values() for _, _, skus in services)
    opts = Options()
    copies = max(1, round(args.rows / (skus * 24 * opts.days)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "billing.csv"
        started = time.perf_counter()
        text, truth = generate(dataclasses.replace(opts, rows_per_day=24, copies=copies))
        path.write_text(text)
        del text
        print(f"generated {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s")

        gc.collect()
        started = time.perf_counter()
        rows, anomalies = orchestra_run(path)
        ours = time.perf_counter() - started
        try:
            import pandas  # noqa: F401

            name, baseline_fn = "pandas read_csv + groupby", pandas_baseline
        except ImportError:
            name, baseline_fn = "csv + numpy unique/bincount group-by", numpy_baseline
        gc.collect()
        started = time.perf_counter()
        baseline_rows = baseline_fn(path)
        base = time.perf_counter() - started
    assert baseline_rows == rows
    print(f"rows: {rows:,}; anomalies found: {anomalies} (injected: {len(truth['anomalies'])})")
    print(f"orchestra (read + validate + daily series + detection): {ours:.2f} s, {rows / ours:,.0f} rows/s")
    print(f"baseline ({name}, group-by only): {base:.2f} s, {rows / base:,.0f} rows/s")
    print(f"ratio orchestra / baseline throughput: {base / ours:.2f}x")


if __name__ == "__main__":
    main()
