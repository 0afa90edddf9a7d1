"""Usage report and savings opportunities over a UsageData (vectorised with numpy).

Monthly figures scale the observed period to a 730-hour month (stated in the evidence).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...models import Risk
from .usage import STATUS_ERROR, STATUS_OK, STATUS_THROTTLED, UsageData

if TYPE_CHECKING:
    from . import ModelPrice, Settings

HOURS_PER_MONTH = 730.0


def request_costs(data: UsageData, models: dict[str, ModelPrice]) -> np.ndarray:
    """USD per request; NaN where the model has no configured price."""
    price_in = np.full(len(data.model_names), np.nan)
    price_cached = np.full(len(data.model_names), np.nan)
    price_out = np.full(len(data.model_names), np.nan)
    for code, name in enumerate(data.model_names):
        price = models.get(name)
        if price is not None:
            price_in[code], price_cached[code], price_out[code] = (
                price.input_per_mtok,
                price.cached_price,
                price.output_per_mtok,
            )
    m = data.model
    uncached = data.input_tokens - data.cached_tokens
    return (
        uncached * price_in[m] + data.cached_tokens * price_cached[m] + data.output_tokens * price_out[m]
    ) / 1e6


def monthly_factor(data: UsageData) -> float:
    """Multiply a total over the log by this to get a month. Logs shorter than a day count as a
    day (a burst is not a month's traffic divided by minutes)."""
    return HOURS_PER_MONTH / 24 / max(data.span_days, 1.0)


def _stats(mask: np.ndarray, data: UsageData, cost: np.ndarray, factor: float) -> dict[str, Any]:
    n = int(mask.sum())
    latency = data.latency_ms[mask]
    c = cost[mask]
    priced = bool(np.isfinite(c).all())
    total = float(np.nansum(c))
    return {
        "requests": n,
        "input_tokens": int(data.input_tokens[mask].sum()),
        "cached_input_tokens": int(data.cached_tokens[mask].sum()),
        "output_tokens": int(data.output_tokens[mask].sum()),
        "cost": round(total, 4) if priced else None,
        "monthly_cost": round(total * factor, 2) if priced else None,
        "latency_p50_ms": round(float(np.percentile(latency, 50)), 1) if n else None,
        "latency_p95_ms": round(float(np.percentile(latency, 95)), 1) if n else None,
        "error_rate": round(float((data.status[mask] == STATUS_ERROR).mean()), 4) if n else None,
        "throttle_rate": round(float((data.status[mask] == STATUS_THROTTLED).mean()), 4) if n else None,
    }


MAX_ROWS = 100
"""Models, routes and route × model pairs kept in the report each (the costliest): a run
document stays far below Firestore's 1 MiB limit however many routes a log holds."""


def _costliest(keys: np.ndarray, cost: np.ndarray, limit: int) -> list[int]:
    """The ``limit`` keys with the highest total cost (unpriced requests count 0; ties: the
    most requests, then the smallest key)."""
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    totals = np.bincount(inverse, weights=np.nan_to_num(cost, nan=0.0), minlength=len(uniq))
    order = sorted(range(len(uniq)), key=lambda i: (-float(totals[i]), -int(counts[i]), int(uniq[i])))
    return [int(uniq[i]) for i in order[:limit]]


def route_model_pairs(
    data: UsageData, cost: np.ndarray, factor: float, limit: int = MAX_ROWS
) -> list[dict[str, Any]]:
    """Usage per (route, model): the ``limit`` costliest pairs."""
    if len(data.model) == 0:
        return []
    width = max(1, len(data.model_names))
    keys = data.route.astype(np.int64) * width + data.model
    out = []
    for key in _costliest(keys, cost, limit):
        mask = keys == key
        route, model = data.route_names[key // width], data.model_names[key % width]
        out.append({"route": route, "model": model, **_stats(mask, data, cost, factor)})
    out.sort(key=lambda r: (-(r["cost"] or 0), -r["requests"], r["route"], r["model"]))
    return out


def report(data: UsageData, cost: np.ndarray, factor: float) -> dict[str, list[dict[str, Any]]]:
    by_model = []
    for code, name in enumerate(data.model_names):
        mask = data.model == code
        if mask.any():
            by_model.append({"model": name, **_stats(mask, data, cost, factor)})
    by_route = []
    for code, name in enumerate(data.route_names):
        mask = data.route == code
        if mask.any():
            models = Counter(data.model_names[m] for m in data.model[mask].tolist())
            by_route.append(
                {"route": name, "models": dict(models.most_common()), **_stats(mask, data, cost, factor)}
            )
    by_model.sort(key=lambda r: -(r["cost"] or 0))
    by_route.sort(key=lambda r: -(r["cost"] or 0))
    return {
        "by_model": by_model,
        "by_route": by_route,
        "by_route_model": route_model_pairs(data, cost, factor),
    }


@dataclass
class Opportunity:
    kind: str  # response-cache | context-cache | routing | backoff
    key: dict[str, Any]  # identifies the policy entry
    entry: dict[str, Any]  # the policy entry apply writes
    monthly_savings: float
    risk: Risk
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            **self.key,
            "monthly_savings": round(self.monthly_savings, 2),
            "risk": str(self.risk),
            "summary": self.summary,
            "policy_entry": self.entry,
            **self.evidence,
        }


def response_cache(data: UsageData, cost: np.ndarray, factor: float, settings: Settings) -> list[Opportunity]:
    """Exact-duplicate prompts per (route, model): a repeat within the TTL is a cache hit."""
    rc = settings.response_cache
    ok = (data.status == STATUS_OK) & (data.prompt >= 0)
    idx = np.nonzero(ok)[0]
    if len(idx) == 0:
        return []
    group = data.route[idx].astype(np.int64) * len(data.model_names) + data.model[idx]
    order = np.lexsort((data.t_ms[idx], data.prompt[idx], group))
    sorted_idx = idx[order]
    g, p, t = group[order], data.prompt[sorted_idx], data.t_ms[sorted_idx]
    same = np.zeros(len(sorted_idx), dtype=bool)
    same[1:] = (g[1:] == g[:-1]) & (p[1:] == p[:-1]) & (t[1:] - t[:-1] <= rc.ttl_seconds * 1000)
    out = []
    for key in np.unique(g):
        in_group = g == key
        n = int(in_group.sum())
        hits = in_group & same
        n_hits = int(hits.sum())
        if n_hits < rc.min_duplicates or n_hits / n < rc.min_duplicate_share:
            continue
        route = data.route_names[int(key) // len(data.model_names)]
        model = data.model_names[int(key) % len(data.model_names)]
        saved = float(np.nansum(cost[sorted_idx[hits]])) * factor
        if model not in settings.models or saved < settings.min_monthly_savings:
            continue
        distinct = int(len(np.unique(p[in_group])))
        out.append(
            Opportunity(
                kind="response-cache",
                key={"route": route, "model": model},
                entry={
                    "route": route,
                    "model": model,
                    "match": "exact-prompt",
                    "ttl_seconds": rc.ttl_seconds,
                },
                monthly_savings=saved,
                # A cached answer can go stale or hide non-determinism the feature relies on.
                risk=Risk.medium,
                summary=(
                    f"{route} on {model}: {n_hits / n:.0%} of successful requests repeat a prompt seen "
                    f"within {rc.ttl_seconds}s; a response cache saves {saved:,.2f}/month"
                ),
                evidence={
                    "requests": n,
                    "duplicate_requests": n_hits,
                    "duplicate_share": round(n_hits / n, 4),
                    "distinct_prompts": distinct,
                },
            )
        )
    return out


def _text_prefix_groups(data: UsageData, chunk: int) -> dict[int, tuple[str, int]]:
    """For logs with raw prompts: row -> (hash of its longest prefix shared with another
    request of the same model, prefix length in characters), at ``chunk``-character steps."""
    counts: Counter[tuple[int, int, str]] = Counter()
    hashes: dict[int, list[str]] = {}
    for row, text in data.texts.items():
        model = int(data.model[row])
        digest = hashlib.sha256()
        steps = []
        for k in range(1, len(text) // chunk + 1):
            digest.update(text[(k - 1) * chunk : k * chunk].encode())
            steps.append(digest.copy().hexdigest()[:24])
            counts[(model, k, steps[-1])] += 1
        hashes[row] = steps
    out: dict[int, tuple[str, int]] = {}
    for row, steps in hashes.items():
        model = int(data.model[row])
        for k in range(len(steps), 0, -1):
            if counts[(model, k, steps[k - 1])] >= 2:
                out[row] = (steps[k - 1], k * chunk)
                break
    return out


def context_cache(
    data: UsageData, factor: float, settings: Settings
) -> tuple[list[Opportunity], list[dict[str, Any]]]:
    """Shared prompt prefixes per model. Returns (opportunities, groups too small to cache)."""
    cc = settings.context_cache
    groups: dict[tuple[int, str], dict[str, Any]] = defaultdict(lambda: {"rows": [], "tokens": 0})
    for row in np.nonzero(data.prefix >= 0)[0].tolist():
        key = (int(data.model[row]), data.prefix_names[int(data.prefix[row])])
        groups[key]["rows"].append(row)
        groups[key]["tokens"] = max(groups[key]["tokens"], int(data.prefix_tokens[row]))
    if data.texts:
        for row, (digest, chars) in _text_prefix_groups(data, cc.chunk_chars).items():
            if data.prefix[row] >= 0:
                continue  # the application's own prefix report wins
            key = (int(data.model[row]), f"text:{digest}")
            groups[key]["rows"].append(row)
            groups[key]["tokens"] = max(groups[key]["tokens"], int(chars / cc.chars_per_token))
    out: list[Opportunity] = []
    too_small: list[dict[str, Any]] = []
    for (model_code, prefix), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        rows = np.array(group["rows"])
        rows = rows[data.status[rows] == STATUS_OK]
        n = len(rows)
        model = data.model_names[model_code]
        price = settings.models.get(model)
        tokens = int(group["tokens"])
        if n < cc.min_requests or price is None:
            continue
        routes = sorted({data.route_names[int(r)] for r in data.route[rows].tolist()})
        if tokens < price.min_cached_tokens:
            too_small.append(
                {
                    "model": model,
                    "prefix": prefix,
                    "prefix_tokens": tokens,
                    "requests": n,
                    "min_cached_tokens": price.min_cached_tokens,
                    "routes": routes,
                }
            )
            continue
        cacheable = tokens * (n - 1)
        already = int(np.minimum(data.cached_tokens[rows], tokens).sum())
        gain = max(0, cacheable - already)
        discount = price.input_per_mtok - price.cached_price
        storage = tokens / 1e6 * price.cache_storage_per_mtok_hour * HOURS_PER_MONTH
        saved = gain / 1e6 * discount * factor - storage
        if saved < settings.min_monthly_savings:
            continue
        out.append(
            Opportunity(
                kind="context-cache",
                key={"model": model, "prefix_hash": prefix},
                entry={
                    "model": model,
                    "prefix_hash": prefix,
                    "prefix_tokens": tokens,
                    "routes": routes,
                    "ttl_seconds": cc.ttl_seconds,
                },
                monthly_savings=saved,
                risk=Risk.low,  # same answers, cheaper tokens
                summary=(
                    f"{model}: {n} requests share a {tokens:,}-token prompt prefix ({', '.join(routes)}); "
                    f"context caching saves {saved:,.2f}/month"
                ),
                evidence={
                    "requests": n,
                    "prefix_tokens": tokens,
                    "already_cached_tokens": already,
                    "cacheable_tokens": cacheable,
                    "min_cached_tokens": price.min_cached_tokens,
                    "monthly_storage_cost": round(storage, 2),
                },
            )
        )
    return out, too_small


def _cheaper(model: str, settings: Settings) -> str | None:
    if model in settings.routing.targets:
        return settings.routing.targets[model]
    current = settings.models.get(model)
    if current is None:
        return None
    lower = [(p.tier, name) for name, p in settings.models.items() if p.tier < current.tier]
    return max(lower)[1] if lower else None


def routing(data: UsageData, cost: np.ndarray, factor: float, settings: Settings) -> list[Opportunity]:
    rs = settings.routing
    out = []
    nm = len(data.model_names)
    group = data.route.astype(np.int64) * nm + data.model
    for key in np.unique(group).tolist():
        mask = group == key
        n = int(mask.sum())
        route, model = data.route_names[key // nm], data.model_names[key % nm]
        target = _cheaper(model, settings)
        if n < rs.min_requests or target is None or model not in settings.models:
            continue
        p_in = float(np.percentile(data.input_tokens[mask], rs.percentile))
        p_out = float(np.percentile(data.output_tokens[mask], rs.percentile))
        error_rate = float((data.status[mask] == STATUS_ERROR).mean())
        if p_in > rs.max_input_tokens or p_out > rs.max_output_tokens or error_rate > rs.max_error_rate:
            continue
        price = settings.models[target]
        uncached = data.input_tokens[mask] - data.cached_tokens[mask]
        at_target = float(
            (
                uncached.sum() * price.input_per_mtok
                + data.cached_tokens[mask].sum() * price.cached_price
                + data.output_tokens[mask].sum() * price.output_per_mtok
            )
            / 1e6
        )
        now = float(np.nansum(cost[mask]))
        saved = (now - at_target) * factor
        if saved < settings.min_monthly_savings:
            continue
        out.append(
            Opportunity(
                kind="routing",
                key={"route": route, "from_model": model},
                entry={
                    "route": route,
                    "from_model": model,
                    "to_model": target,
                    "max_input_tokens": rs.max_input_tokens,
                    "max_output_tokens": rs.max_output_tokens,
                },
                monthly_savings=saved,
                # A smaller model can answer worse: a person should look at quality first.
                risk=Risk.high,
                summary=(
                    f"{route}: P{rs.percentile:g} request is {p_in:,.0f} input / {p_out:,.0f} output tokens; "
                    f"moving it from {model} to {target} saves {saved:,.2f}/month"
                ),
                evidence={
                    "requests": n,
                    f"input_tokens_p{rs.percentile:g}": round(p_in, 1),
                    f"output_tokens_p{rs.percentile:g}": round(p_out, 1),
                    "error_rate": round(error_rate, 4),
                    "cost": round(now, 4),
                    "cost_at_target": round(at_target, 4),
                },
            )
        )
    return out


def throttling(data: UsageData, settings: Settings) -> list[Opportunity]:
    ts = settings.throttling
    bucket = data.t_ms // (ts.bucket_minutes * 60_000)
    out = []
    for code, model in enumerate(data.model_names):
        mask = data.model == code
        if not mask.any():
            continue
        b = bucket[mask]
        throttled = data.status[mask] == STATUS_THROTTLED
        uniq, inverse = np.unique(b, return_inverse=True)
        totals = np.bincount(inverse)
        hits = np.bincount(inverse, weights=throttled)
        share = np.where(totals > 0, hits / np.maximum(totals, 1), 0)
        bad = (
            (totals >= ts.min_requests_per_bucket)
            & (hits >= ts.min_throttled_per_bucket)
            & (share >= ts.min_share)
        )
        if int(bad.sum()) < ts.min_buckets:
            continue
        overall = float(throttled.mean())
        worst = int(np.argmax(np.where(bad, share, -1)))
        out.append(
            Opportunity(
                kind="backoff",
                key={"model": model},
                entry={
                    "model": model,
                    "max_attempts": 3,
                    "initial_seconds": 1.0,
                    "max_seconds": 32.0,
                    "jitter": "full",
                    "respect_retry_after": True,
                },
                monthly_savings=0.0,
                risk=Risk.low,
                summary=(
                    f"{model}: HTTP 429 in {int(bad.sum())} of {len(uniq)} {ts.bucket_minutes}-minute periods "
                    f"({overall:.1%} of requests); add full-jitter backoff and raise the quota or buy "
                    "provisioned throughput"
                ),
                evidence={
                    "throttled_requests": int(throttled.sum()),
                    "throttle_rate": round(overall, 4),
                    "throttled_periods": int(bad.sum()),
                    "periods": len(uniq),
                    "worst_period_share": round(float(share[worst]), 4),
                    "savings_note": "reliability: 429s are not billed, so no direct saving is claimed",
                },
            )
        )
    return out


def unpriced_models(data: UsageData, settings: Settings) -> list[str]:
    return [m for m in data.model_names if m not in settings.models]


__all__ = ["STATUS_OK", "Opportunity", "context_cache", "report", "response_cache", "routing", "throttling"]
