#!/usr/bin/env python3
"""Regenerate the bundled Cloud Billing sample (shared/orchestra/samples/cost/).

Deterministic: the same seed writes byte-identical files. The ground truth (injected anomalies,
decoys that must not be flagged, the budget that must alert, the wasteful services) goes to
expected.json beside the export.

    .venv/bin/python scripts/generate_billing_sample.py [--seed N] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from orchestra.automations.cost.generator import Options, write_sample

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "shared" / "orchestra" / "samples" / "cost"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rows-per-day", type=int, default=Options.rows_per_day, help="rows per SKU and day")
    parser.add_argument("--copies", type=int, default=1, help="replicate the projects to scale the export")
    args = parser.parse_args()
    opts = dataclasses.replace(Options(), seed=args.seed, rows_per_day=args.rows_per_day, copies=args.copies)
    truth = write_sample(args.out, opts)
    print(
        f"wrote {args.out}: {truth['period']['days']} days, {len(truth['anomalies'])} injected anomalies, "
        f"{len(truth['decoys'])} decoys"
    )


if __name__ == "__main__":
    main()
