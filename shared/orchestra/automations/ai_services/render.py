"""Text rendering of an ai-services run's summary (rich tables).

Model names, routes, prefixes and file names come from the usage log: printed as ``Text``, so
they are never read as markup or emoji codes.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ...toolkit.render import print_input_notes


def _num(value: float | None, fmt: str = ",.2f") -> str:
    return "-" if value is None else format(value, fmt)


def _usage_table(title: str, key: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(key, no_wrap=True)
    for column in ("requests", "in tok", "out tok", "cost", "per month", "p50 ms", "p95 ms", "err", "429"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            Text(str(r[key])),
            f"{r['requests']:,}",
            f"{r['input_tokens']:,}",
            f"{r['output_tokens']:,}",
            _num(r["cost"]),
            _num(r["monthly_cost"]),
            _num(r["latency_p50_ms"], ",.0f"),
            _num(r["latency_p95_ms"], ",.0f"),
            _num(r["error_rate"], ".1%"),
            _num(r["throttle_rate"], ".1%"),
        )
    return table


def render(run: Any, console: Any) -> None:
    summary = run.summary or {}
    if not summary:
        return  # a failed run has no report; the run error says why
    source = summary.get("input") or {}
    console.print(
        Text.assemble(
            ("AI requests", "bold"),
            f": {source.get('source', '?')} - {source.get('requests', 0):,} requests over "
            f"{source.get('days', 0)} days; about {_num(summary.get('monthly_cost'))} USD per month",
        )
    )
    print_input_notes(console, source, summary.get("notes", []))
    if summary.get("by_model"):
        console.print(_usage_table("Per model", "model", summary["by_model"]))
    if summary.get("by_route"):
        console.print(_usage_table("Per route", "route", summary["by_route"]))
    opportunities = summary.get("opportunities") or []
    if opportunities:
        table = Table(
            title=Text(
                f"Opportunities ({_num(summary.get('monthly_savings'))} USD per month; "
                f"policy file {summary.get('policy_path')})"
            ),
            title_justify="left",
        )
        table.add_column("kind", no_wrap=True)
        table.add_column("what")
        table.add_column("per month", justify="right", no_wrap=True)
        table.add_column("risk", no_wrap=True)
        for o in opportunities:
            what = ", ".join(f"{k}={o[k]}" for k in ("route", "model", "from_model", "prefix_hash") if k in o)
            if o["kind"] == "routing":
                what += f" -> {o['policy_entry']['to_model']}"
            table.add_row(Text(str(o["kind"])), Text(what), _num(o["monthly_savings"]), Text(str(o["risk"])))
        console.print(table)
    else:
        console.print("No AI savings opportunities.")
    for small in summary.get("context_cache_too_small") or []:
        console.print(
            Text(
                f"{small['model']}: prefix {small['prefix']} ({small['prefix_tokens']:,} tokens, "
                f"{small['requests']} requests) is under the {small['min_cached_tokens']:,}-token cache minimum",
                style="dim",
            )
        )
