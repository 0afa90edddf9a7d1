"""A deterministic AI request log with a known answer (the bundled sample and the tests).

Five routes over a week, with the traffic shapes that make (or must not make) an opportunity:

- ``support-chat`` on gemini-2.5-pro: every prompt starts with the same 6,144-token knowledge
  base prefix and nothing is cached yet -> context caching; at weekday peak hours the model's
  quota runs out (HTTP 429) -> backoff;
- ``faq`` on gemini-2.5-flash: a few popular questions asked again and again -> response cache;
  long answers keep it off the cheaper tier;
- ``classify-ticket`` on gemini-2.5-pro: short tickets, a one-word label -> routing to flash;
- ``summarize`` on gemini-2.5-flash: a shared 1,200-token instruction prefix, under the 2,048-token
  minimum -> reported as too small to cache, no opportunity;
- ``tagging`` on gemini-2.5-flash-lite: small, but already the cheapest tier -> nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Options:
    seed: int = 4242
    start: dt.datetime = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)  # a Monday
    days: int = 7
    scale: float = 1.0  # multiply request volumes


# route -> (model, requests per day)
ROUTES: dict[str, tuple[str, int]] = {
    "support-chat": ("gemini-2.5-pro", 150),
    "faq": ("gemini-2.5-flash", 250),
    "classify-ticket": ("gemini-2.5-pro", 250),
    "summarize": ("gemini-2.5-flash", 100),
    "tagging": ("gemini-2.5-flash-lite", 150),
}

MODELS: dict[str, dict[str, Any]] = {
    # Illustrative list prices (USD per 1M tokens): the sample's answer depends on these, not on
    # whatever the operator configures for real traffic.
    "gemini-2.5-pro": {
        "input_per_mtok": 1.25,
        "output_per_mtok": 10.0,
        "cached_input_per_mtok": 0.31,
        "tier": 3,
    },
    "gemini-2.5-flash": {
        "input_per_mtok": 0.30,
        "output_per_mtok": 2.50,
        "cached_input_per_mtok": 0.075,
        "tier": 2,
    },
    "gemini-2.5-flash-lite": {
        "input_per_mtok": 0.10,
        "output_per_mtok": 0.40,
        "cached_input_per_mtok": 0.025,
        "tier": 1,
    },
}

EXPECTED = {
    "response-cache": [{"route": "faq", "model": "gemini-2.5-flash"}],
    "context-cache": [{"model": "gemini-2.5-pro", "prefix_hash": "support-kb-v12"}],
    "routing": [{"route": "classify-ticket", "from_model": "gemini-2.5-pro", "to_model": "gemini-2.5-flash"}],
    "backoff": [{"model": "gemini-2.5-pro"}],
    "context_cache_too_small": [{"model": "gemini-2.5-flash", "prefix": "summarize-instructions-v3"}],
}


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def generate(opts: Options) -> list[dict[str, Any]]:
    rng = np.random.Generator(np.random.PCG64(opts.seed))
    records: list[tuple[int, int, dict[str, Any]]] = []
    day_ms = 86_400_000
    start_ms = int(opts.start.timestamp() * 1000)
    popular = [f"faq-question-{i}" for i in range(30)]
    zipf = 1 / np.arange(1, 31)
    zipf /= zipf.sum()
    serial = 0
    for route, (model, per_day) in ROUTES.items():
        n = int(per_day * opts.days * opts.scale)
        # diurnal arrivals: more traffic 09-18 UTC
        hours = rng.choice(24, size=n, p=_diurnal())
        days = rng.integers(0, opts.days, size=n)
        offsets = days * day_ms + hours * 3_600_000 + rng.integers(0, 3_600_000, size=n)
        for i in range(n):
            serial += 1
            t = start_ms + int(offsets[i])
            record: dict[str, Any] = {"route": route, "model": model}
            prefix_hash, prefix_tokens = None, 0
            if route == "support-chat":
                prefix_hash, prefix_tokens = "support-kb-v12", 6144
                tokens_in = prefix_tokens + int(max(50, rng.normal(800, 300)))
                tokens_out = int(max(20, rng.normal(600, 200)))
                latency = rng.lognormal(np.log(4000), 0.35)
                prompt = f"support-{serial}"
            elif route == "faq":
                repeat = rng.random() < 0.45
                prompt = str(rng.choice(popular, p=zipf)) if repeat else f"faq-unique-{serial}"
                tokens_in = int(max(40, rng.normal(300, 80)))
                tokens_out = int(max(100, rng.normal(450, 120)))
                latency = rng.lognormal(np.log(900), 0.3)
            elif route == "classify-ticket":
                tokens_in = int(max(60, rng.normal(450, 150)))
                tokens_out = int(max(1, rng.normal(8, 3)))
                latency = rng.lognormal(np.log(1500), 0.3)
                prompt = f"ticket-{serial}"
            elif route == "summarize":
                prefix_hash, prefix_tokens = "summarize-instructions-v3", 1200
                tokens_in = prefix_tokens + int(max(200, rng.normal(2500, 700)))
                tokens_out = int(max(50, rng.normal(400, 100)))
                latency = rng.lognormal(np.log(2500), 0.3)
                prompt = f"doc-{serial}"
            else:
                tokens_in = int(max(20, rng.normal(200, 50)))
                tokens_out = int(max(1, rng.normal(20, 6)))
                latency = rng.lognormal(np.log(400), 0.25)
                prompt = f"tag-{serial}"
            when = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
            status = "ok"
            peak = when.weekday() < 5 and 12 <= when.hour < 16
            if model == "gemini-2.5-pro" and peak and rng.random() < 0.25:
                status = "429"
            elif model != "gemini-2.5-pro" and rng.random() < 0.002:
                status = "429"
            elif rng.random() < 0.008:
                status = "error"
            if status != "ok":
                tokens_out = 0
            record.update(
                {
                    "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 1000:03d}Z",
                    "prompt_hash": _h(prompt),
                    "input_tokens": tokens_in,
                    "cached_input_tokens": 0,
                    "output_tokens": tokens_out,
                    "latency_ms": round(float(latency), 1),
                    "status": status,
                }
            )
            if prefix_hash:
                record["prefix_hash"] = prefix_hash
                record["prefix_tokens"] = prefix_tokens
            records.append((t, serial, record))
    records.sort(key=lambda r: (r[0], r[1]))
    return [r for _, _, r in records]


def _diurnal() -> np.ndarray:
    hours = np.arange(24)
    weights = 1 + 1.5 * ((hours >= 9) & (hours < 18))
    return weights / weights.sum()


def to_jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def sample_settings() -> dict[str, Any]:
    return {"models": MODELS}


def write_sample(directory: Path, opts: Options | None = None) -> dict[str, Any]:
    import yaml

    opts = opts or Options()
    records = generate(opts)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "usage.jsonl").write_text(to_jsonl(records))
    header = (
        "# Settings used when ai-services analyzes the bundled sample log (no --usage, no Cloud\n"
        "# Logging). Generated by scripts/generate_ai_usage_sample.py: do not edit by hand.\n"
    )
    (directory / "settings.yaml").write_text(header + yaml.safe_dump(sample_settings(), sort_keys=True))
    truth = {"seed": opts.seed, "requests": len(records), "days": opts.days, "expected": EXPECTED}
    (directory / "expected.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    return truth
