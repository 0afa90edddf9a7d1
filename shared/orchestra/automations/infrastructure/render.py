"""Rich text output for an infrastructure run: the demand profile grid and the schedule.

Service names, sources, origins and notes come from inputs: printed as ``Text``, so they are
never read as markup or emoji codes.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ...models import Run
from .profile import DAYS


def render(run: Run, console: Any) -> None:
    from rich import box
    from rich.table import Table

    summary = run.summary
    if not summary:
        return
    console.print(Text.assemble(("Source:", "bold"), f" {summary.get('source')}"))
    for report in summary.get("services", []):
        console.print(
            Text.assemble(
                "\n",
                (str(report["service"]), "bold"),
                f": schedule {report.get('schedule_origin') or 'not available'}",
            )
        )
        if "config" in report:
            cfg = report["config"]
            console.print(
                Text(
                    f"  current: min {cfg['min_instances']}, max {cfg['max_instances']} instances "
                    f"({report['config_origin']})"
                )
            )
        profile = report.get("profile")
        if profile:
            console.print(
                Text(
                    f"  {report['history_days']:.1f} days of history at {report['interval_seconds']:g} s; "
                    f"capacity {report['capacity_rps']:g} req/s per instance ({report['capacity_origin']}); "
                    f"peak {report['peak_rps']:.3g} req/s"
                )
            )
            table = Table(
                title="Demand profile, UTC: P90 req/s : min instances (* hour-of-day fallback, q quiet)",
                box=box.SIMPLE,
                padding=(0, 1),
            )
            table.add_column("hour")
            for day in DAYS:
                table.add_column(day, justify="right")
            for hour in range(24):
                cells = []
                for day in range(7):
                    slot = profile[day * 24 + hour]
                    mark = ("*" if slot["basis"] != "week" else "") + ("q" if slot["quiet"] else "")
                    now = day * 24 + hour == report["slot_now"]
                    cells.append(
                        Text(
                            f"{slot['p_rps']:.2f}{mark}:{slot['min_instances']}",
                            style="reverse" if now else "",
                        )
                    )
                table.add_row(f"{hour:02d}", *cells)
            console.print(table)
        if "transitions" in report:
            changes = (
                ", ".join(f"{t['at']} -> {t['min_instances']}" for t in report["transitions"]) or "constant"
            )
            console.print(Text(f"  Schedule (min instances): {changes}"))
            console.print(Text(f"  Max instances with headroom: {report['max_instances']}"))
            decision = report.get("decision", {})
            line = f"  Now ({report['slot_now_label']} UTC): min instances {decision.get('min_instances')}"
            if decision.get("reason"):
                line += f" — {decision['reason']}"
            console.print(Text(line))
        for note in report.get("notes", []):
            console.print(Text.assemble("  ", ("note:", "yellow"), f" {note}"))
