"""The workspace automation's sections of the console's run page, drawn from the stored report.

- Largest blobs: the :data:`MAX_BARS` largest blobs in history as bars, every stored one in a
  table (path, size, size on disk, whether HEAD still has it).
- Repository size: the object store over the runs of the same repository (loose objects,
  packs, total; the size limit as a line once the size reaches half of it) when earlier runs
  recorded one, else this run's parts as bars; the points in a table.
"""

from __future__ import annotations

from typing import Any

from ...console.views import Bar, BarChart, LineChart, RunView, Section, Series, Table
from ...models import Run
from .sizes import SizePoint, point_of, stored_history

MAX_BARS = 12
UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024), ("bytes", 1))
# The size limit is drawn once the size reaches this share of it (below, it would flatten the lines).
LIMIT_SHOWN_FROM = 0.5


def unit_for(largest: float) -> tuple[str, int]:
    """The largest binary unit in which ``largest`` bytes is at least 1."""
    for name, size in UNITS:
        if largest >= size:
            return name, size
    return "bytes", 1


def _size(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def blobs_section(blobs: list[dict[str, Any]]) -> Section:
    sized = [(b, size) for b in blobs if (size := _size(b.get("size"))) is not None]
    items: list[Any] = []
    if sized:
        unit, scale = unit_for(max(size for _, size in sized))
        items.append(
            BarChart(
                title=f"Largest blobs in history (the {min(len(sized), MAX_BARS)} largest)",
                y_label=f"size ({unit})",
                bars=[
                    Bar(label=str(b.get("path")), value=round(size / scale, 3))
                    for b, size in sized[:MAX_BARS]
                ],
            )
        )
    items.append(
        Table(
            caption=f"Largest blobs ({len(blobs)})",
            columns=["path", "bytes", "bytes on disk", "in HEAD", "object"],
            rows=[
                [
                    str(b.get("path")),
                    _size(b.get("size")),
                    _size(b.get("disk_size")),
                    "yes" if b.get("in_head") else "no",
                    str(b.get("oid") or "")[:12],
                ]
                for b in blobs
            ],
        )
    )
    return Section(title="Largest blobs", items=items)


def size_section(points: list[SizePoint], limit: int | None) -> Section:
    items: list[Any] = []
    latest = points[-1]
    unit, scale = unit_for(max(max(p.total_bytes for p in points), 1))
    if len(points) >= 2:
        shown = limit is not None and limit > 0 and latest.total_bytes >= LIMIT_SHOWN_FROM * limit
        items.append(
            LineChart(
                title=f"Repository size over {len(points)} runs",
                y_label=f"size ({unit})",
                series=[
                    Series(name="total", points=[(p.at, round(p.total_bytes / scale, 3)) for p in points]),
                    Series(name="packs", points=[(p.at, round(p.pack_bytes / scale, 3)) for p in points]),
                    Series(
                        name="loose objects", points=[(p.at, round(p.loose_bytes / scale, 3)) for p in points]
                    ),
                ],
                threshold=round(limit / scale, 3) if shown and limit else None,
                threshold_label="size limit",
            )
        )
    else:
        items.append(
            BarChart(
                title="Repository size (this run; earlier runs of this repository recorded none)",
                y_label=f"size ({unit})",
                bars=[
                    Bar(label="packs", value=round(latest.pack_bytes / scale, 3)),
                    Bar(label="loose objects", value=round(latest.loose_bytes / scale, 3)),
                    Bar(label="garbage", value=round(latest.garbage_bytes / scale, 3)),
                ],
            )
        )
    items.append(
        Table(
            caption="Object store per run",
            columns=["run", "at", "packs (bytes)", "loose (bytes)", "garbage (bytes)", "total (bytes)"],
            rows=[
                [p.run_id, p.at.isoformat(), p.pack_bytes, p.loose_bytes, p.garbage_bytes, p.total_bytes]
                for p in points
            ],
        )
    )
    return Section(title="Repository size", items=items)


def run_view(run: Run) -> RunView | None:
    summary = run.summary or {}
    if not summary:
        return None  # a failed run has no report; the run's error says why
    sections = [blobs_section([b for b in summary.get("largest_blobs") or [] if isinstance(b, dict)])]
    points = stored_history(summary)
    if not points and (own := point_of(summary, run.id, run.created_at)) is not None:
        points = [own]  # a run stored before histories were kept
    if points:
        sections.append(size_section(points, _size(summary.get("size_limit_bytes"))))
    return RunView(sections=sections)
