#!/usr/bin/env python3
"""Regenerate the bundled AI request log sample (shared/orchestra/samples/ai_services/).

Deterministic: the same seed writes byte-identical files. The known answer (which opportunities
must be found, and which prefix is too small to cache) goes to expected.json.

    .venv/bin/python scripts/generate_ai_usage_sample.py [--seed N] [--out DIR] [--scale X]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from orchestra.automations.ai_services.generator import Options, write_sample

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "shared" / "orchestra" / "samples" / "ai_services"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request volumes")
    args = parser.parse_args()
    truth = write_sample(args.out, dataclasses.replace(Options(), seed=args.seed, scale=args.scale))
    print(f"wrote {args.out}: {truth['requests']} requests over {truth['days']} days")


if __name__ == "__main__":
    main()
