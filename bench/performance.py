"""Sustained-breach evaluation: vectorised numpy vs a plain Python loop on the same data.

1 M samples per metric (cpu, memory, latency_p95, error_rate), built by tiling the real NAB CPU
series shipped with the tests (5-minute resolution, gaps included) and scaling it into each
metric's range. Prints wall times and the speed-up ratio measured in this run.

    .venv/bin/python bench/performance.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

from orchestra.automations.performance.episodes import find_episodes  # noqa: E402
from orchestra.metrics.files import read_series  # noqa: E402

N = 1_000_000
RULES = {"cpu": (70, 15), "memory": (80, 10), "latency_p95": (500, 5), "error_rate": (1, 5)}
SCALE = {"cpu": 1.0, "memory": 0.9, "latency_p95": 6.0, "error_rate": 0.02}


def build(metric: str) -> tuple[np.ndarray, np.ndarray]:
    base = read_series(ROOT / "tests/fixtures/metrics/ec2_cpu_utilization_825cc2.csv", "cpu")
    reps = -(-N // len(base))
    span = int(base.t_ms[-1] - base.t_ms[0]) + 300_000
    t = (base.t_ms[None, :] + np.arange(reps)[:, None] * span).ravel()[:N]
    v = np.tile(base.values, reps)[:N] * SCALE[metric]
    return t, v


def loop(t: list[int], v: list[float], threshold: float, min_s: float) -> list[tuple[int, int, float, float]]:
    gaps = sorted(b - a for a, b in zip(t, t[1:], strict=False))
    limit = 2 * statistics.median(gaps)
    out, start, total, peak, count = [], -1, 0.0, 0.0, 0
    for i in range(len(v)):
        above = v[i] > threshold
        if above and start >= 0 and t[i] - t[i - 1] > limit:
            if t[i - 1] - t[start] >= min_s * 1000:
                out.append((t[start], t[i - 1], peak, total / count))
            start = -1
        if above:
            if start < 0:
                start, total, peak, count = i, 0.0, v[i], 0
            total += v[i]
            count += 1
            peak = max(peak, v[i])
        elif start >= 0:
            if t[i - 1] - t[start] >= min_s * 1000:
                out.append((t[start], t[i - 1], peak, total / count))
            start = -1
    if start >= 0 and t[-1] - t[start] >= min_s * 1000:
        out.append((t[start], t[-1], peak, total / count))
    return out


def main() -> None:
    print(f"{N:,} samples per metric; rules {RULES}")
    total_vec = total_loop = 0.0
    for metric, (threshold, minutes) in RULES.items():
        t, v = build(metric)
        begin = time.perf_counter()
        eps = find_episodes(t, v, threshold, minutes * 60)
        vec = time.perf_counter() - begin
        tl, vl = t.tolist(), v.tolist()
        begin = time.perf_counter()
        ref = loop(tl, vl, threshold, minutes * 60)
        slow = time.perf_counter() - begin
        assert len(ref) == len(eps), (metric, len(ref), len(eps))
        assert all(a == int(b) for a, b in zip((r[0] for r in ref), eps.start_ms, strict=True))
        total_vec += vec
        total_loop += slow
        print(
            f"  {metric:12s} episodes {len(eps):6d}  numpy {vec * 1000:7.1f} ms  loop {slow * 1000:8.1f} ms  x{slow / vec:5.1f}"
        )
    print(
        f"all four metrics: numpy {total_vec * 1000:.1f} ms vs loop {total_loop * 1000:.1f} ms: {total_loop / total_vec:.1f}x faster"
    )


if __name__ == "__main__":
    main()
