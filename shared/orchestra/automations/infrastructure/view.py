"""The console's page of an infrastructure run, drawn only from what the run stored.

Per service: the hour-of-week demand heatmap (7 days × 24 UTC hours, shaded by the profile's
requests per second) with the min-instances schedule written over it (the instances kept warm in
each hour), the hours at which the schedule changes, and the decision for the hour of the run.
The heatmap's table (demand, then min instances, per day and hour) is its text alternative.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...console.views import Heatmap, RunView, Section, Table

HOURS_PER_WEEK = 168
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS = [f"{h:02d}" for h in range(24)]


class _Slot(BaseModel):
    model_config = ConfigDict(extra="ignore")

    slot: int = Field(ge=0, lt=HOURS_PER_WEEK)
    p_rps: float
    min_instances: int = Field(ge=0)


class _Stored(BaseModel):
    """The parts of ``summary.services[i]`` the page draws."""

    model_config = ConfigDict(extra="ignore")

    service: str = "?"
    schedule: list[int] = Field(min_length=HOURS_PER_WEEK, max_length=HOURS_PER_WEEK)
    max_instances: int | None = None
    profile: list[_Slot] | None = Field(None, min_length=HOURS_PER_WEEK, max_length=HOURS_PER_WEEK)
    schedule_origin: str | None = None
    slot_now_label: str | None = None
    transitions: list[dict[str, Any]] = Field(default_factory=list)
    decision: dict[str, Any] = Field(default_factory=dict)
    capacity_rps: float | None = None
    peak_rps: float | None = None


def _week(values: list[float] | list[int]) -> list[list[float | None]]:
    return [[float(v) for v in values[day * 24 : (day + 1) * 24]] for day in range(7)]


def _heatmap(stored: _Stored) -> Heatmap:
    ceiling = f", max {stored.max_instances}" if stored.max_instances is not None else ""
    if stored.profile is None:
        return Heatmap(
            title=f"{stored.service}: min instances by UTC hour of the week (the stored schedule{ceiling}; "
            "this run had no demand history of its own)",
            rows=list(DAYS),
            columns=HOURS,
            values=_week(stored.schedule),
            value_label="min instances",
        )
    demand = [0.0] * HOURS_PER_WEEK
    for entry in stored.profile:
        demand[entry.slot] = entry.p_rps
    capacity = f"; one instance serves {stored.capacity_rps:g} requests/s" if stored.capacity_rps else ""
    return Heatmap(
        title=f"{stored.service}: demand (requests/s) by UTC hour of the week, shaded; the numbers are the "
        f"min instances scheduled{ceiling}{capacity}",
        rows=list(DAYS),
        columns=HOURS,
        values=_week(demand),
        value_label="requests/s",
        overlay=_week(stored.schedule),
        overlay_label="min instances",
    )


def _changes(stored: _Stored) -> Table:
    rows: list[list[str | int | float | bool | None]] = [
        [str(t.get("at", "")), t.get("min_instances")] for t in stored.transitions
    ]
    caption = f"{stored.service}: when the min-instances schedule changes (UTC)"
    if not rows:
        rows = [["all week", stored.schedule[0]]]
        caption = f"{stored.service}: the min-instances schedule is the same all week"
    return Table(caption=caption, columns=["from", "min instances"], rows=rows)


def _decision(stored: _Stored) -> Table | None:
    decision = stored.decision
    if not decision:
        return None
    return Table(
        caption=f"{stored.service}: min instances for the hour of this run ({stored.slot_now_label or '?'} UTC)",
        columns=["scheduled", "current", "decided", "why"],
        rows=[
            [
                decision.get("scheduled_min"),
                decision.get("current_min"),
                decision.get("min_instances"),
                str(decision.get("reason") or "follows the schedule"),
            ]
        ],
    )


def _section(report: dict[str, Any]) -> Section | None:
    if report.get("schedule") is None:
        return None  # no schedule: history too short and none stored (a finding says so)
    stored = _Stored.model_validate(report)  # a malformed report fails the view; the console says so
    items: list[Heatmap | Table] = [_heatmap(stored), _changes(stored)]
    decision = _decision(stored)
    if decision is not None:
        items.append(decision)
    return Section(title=f"{stored.service}: weekly demand and min-instances schedule", items=items)


def run_view(summary: dict[str, Any]) -> RunView | None:
    sections = [
        section
        for report in summary.get("services", [])
        if isinstance(report, dict) and (section := _section(report)) is not None
    ]
    return RunView(sections=sections) if sections else None
