"""Rich text output for a performance run (findings themselves are printed by the CLI).

Service names, sources, origins, recommendation texts and notes come from inputs: printed as
``Text``, so they are never read as markup or emoji codes.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ...models import Run


def _fmt_config(config: dict[str, Any]) -> str:
    from ...actuators.base import format_cpu, format_memory

    return (
        f"{format_cpu(config['cpu'])} vCPU, {format_memory(config['memory_mib'])}, "
        f"concurrency {config['concurrency']}, instances {config['min_instances']}..{config['max_instances']}, "
        f"startup boost {'on' if config['startup_cpu_boost'] else 'off'}"
    )


def render(run: Run, console: Any) -> None:
    from rich.table import Table

    summary = run.summary
    if not summary:
        return
    console.print(Text.assemble(("Source:", "bold"), f" {summary.get('source')}"))
    skipped = {n: r["skipped"] for n, r in summary.get("rules", {}).items() if r.get("skipped")}
    if skipped:
        console.print(Text("Rules not evaluated: " + "; ".join(f"{n} ({why})" for n, why in skipped.items())))
    for report in summary.get("services", []):
        console.print(
            Text.assemble("\n", (str(report["service"]), "bold"), f": {_fmt_config(report['config'])}")
        )
        console.print(Text(f"  configuration {report['config_origin']}"))
        table = Table(title="Rules", show_lines=False)
        for column in (
            "rule",
            "metric",
            "threshold",
            "status",
            "episodes",
            "breach time",
            "worst mean",
            "peak",
        ):
            table.add_column(column)
        for row in report.get("rules", []):
            minutes = row.get("breach_minutes")
            table.add_row(
                Text(str(row["rule"])),
                Text(str(row["metric"])),
                f"{row['threshold']:g}",
                Text(str(row["status"])),
                str(row.get("episodes", "")),
                f"{minutes / 60:.1f} h" if minutes is not None else "",
                f"{row['worst_mean']:.1f}" if "worst_mean" in row else "",
                f"{row['peak']:.1f}" if "peak" in row else (f"max {row['max']:.1f}" if "max" in row else ""),
            )
        console.print(table)
        recs = report.get("recommendations", [])
        if recs:
            rec_table = Table(title="Recommendations", show_lines=True)
            for column in ("recommendation", "risk", "expected effect"):
                rec_table.add_column(column, overflow="fold")
            for rec in recs:
                title = Text(str(rec["title"]))
                if rec.get("superseded"):
                    title.append(f" (superseded: {rec['superseded']})", style="dim")
                if not rec["changes"]:
                    title.append(" (advice)", style="dim")
                rec_table.add_row(title, Text(str(rec["risk"])), Text(str(rec["expected_effect"])))
            console.print(rec_table)
        else:
            console.print("  No recommendations: no sustained breach and no rightsizing opportunity.")
        if report["target_config"] != report["config"]:
            console.print(Text(f"  Target: {_fmt_config(report['target_config'])}"))
            console.print(Text(f"  Acts through: {report['actuator'] or 'nothing (recommendations only)'}"))
        for note in report.get("notes", []):
            console.print(Text.assemble("  ", ("note:", "yellow"), f" {note}"))
