"""Text rendering of a cost run's summary (rich tables).

Project, service, SKU and budget names and the notes come from the billing input: printed as
``Text``, so they are never read as markup or emoji codes.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ...toolkit.render import print_input_notes


def _money(value: float | None, currency: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}{(' ' + currency) if currency else ''}"


def render(run: Any, console: Any) -> None:
    summary = run.summary or {}
    if not summary:
        return  # a failed run has no report; the run error says why
    source = summary.get("input") or {}
    currency = source.get("currency", "")
    console.print(
        Text.assemble(
            ("Billing", "bold"),
            f": {source.get('source', '?')} - {source.get('rows', 0):,} rows, "
            f"{source.get('first_day')} .. {source.get('last_day')}, {summary.get('series', 0)} series; "
            f"last 30 days {_money(summary.get('last_30_days_cost'), currency)}",
        )
    )
    print_input_notes(console, source, summary.get("notes", []))

    anomalies = summary.get("anomalies") or {}
    top = anomalies.get("top") or []
    table = Table(
        title=f"Cost anomalies ({anomalies.get('count', 0)} over {anomalies.get('evaluated_days', 0)} days, "
        f"baseline {anomalies.get('window_days', '?')} days)",
        title_justify="left",
    )
    table.add_column("date", no_wrap=True)
    table.add_column("sev", no_wrap=True)
    table.add_column("project / service", overflow="ellipsis", max_width=34)
    for column in ("actual", "expected", "delta"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("top SKU", overflow="ellipsis", no_wrap=True, max_width=28)
    for row in top[:15]:
        sku = (row.get("top_skus") or [{}])[0].get("sku", "") if row.get("top_skus") else ""
        table.add_row(
            Text(str(row["date"])),
            Text(str(row["severity"])),
            Text(f"{row['project']} / {row['service']}" + (f" / {row['sku']}" if row.get("sku") else "")),
            _money(row["actual"]),
            _money(row["expected"]),
            f"+{row['delta']:,.2f}",
            Text(str(sku)),
        )
    if top:
        console.print(table)
    else:
        console.print("No cost anomalies.")

    budgets = summary.get("budgets") or []
    if budgets:
        table = Table(title="Budgets (month-end forecast)", title_justify="left")
        for column in ("budget", "month", "amount", "month to date", "forecast", "share", "status"):
            table.add_column(
                column, justify="left" if column in {"budget", "month", "status"} else "right", no_wrap=True
            )
        for b in budgets:
            status = Text("OVER", style="red") if b["alert"] else Text("ok")
            table.add_row(
                Text(str(b["budget"])),
                Text(str(b["month"])),
                _money(b["amount"]),
                _money(b["month_to_date"]),
                _money(b["forecast"]),
                f"{b['forecast_share']:.0%}",
                status,
            )
        console.print(table)

    recs = summary.get("recommendations") or []
    if recs:
        table = Table(
            title=f"Savings (ranked; {_money(summary.get('monthly_savings'), currency)} per month)",
            title_justify="left",
        )
        table.add_column("service", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("change")
        table.add_column("per month", justify="right", no_wrap=True)
        table.add_column("risk", no_wrap=True)
        for r in recs:
            change = ", ".join(f"{k} {v:g}->{r['recommended'][k]:g}" for k, v in r["current"].items())
            table.add_row(
                Text(str(r["service"])),
                Text(str(r["kind"])),
                Text(change),
                _money(r["monthly_savings"]),
                Text(str(r["risk"])),
            )
        console.print(table)

    modes = [m for m in summary.get("billing_modes") or [] if m.get("outcome") != "unknown"]
    if modes:
        table = Table(title="Cloud Run billing mode (per month)", title_justify="left")
        table.add_column("service", no_wrap=True)
        table.add_column("now", no_wrap=True)
        table.add_column("advice", no_wrap=True)
        for column in ("request-based", "instance-based", "busy", "break-even", "saves"):
            table.add_column(column, justify="right", no_wrap=True)
        for m in modes:
            estimates = m.get("estimates") or {}
            advice = f"switch to {m['recommended']}" if m.get("outcome") == "switch" else "keep"
            table.add_row(
                Text(str(m["service"])),
                Text(str(m["current"])),
                Text(advice),
                _money(estimates.get("request_based_monthly")),
                _money(estimates.get("instance_based_monthly")),
                _share(m.get("utilization")),
                _share(m.get("break_even_utilization")),
                _money(m["monthly_savings"]) if m.get("outcome") == "switch" else "-",
            )
        console.print(table)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
