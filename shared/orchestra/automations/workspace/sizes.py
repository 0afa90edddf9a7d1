"""The repository's size over runs, kept with each run for the console's chart.

A run's report gets ``size_history``: the object store's size (loose objects, packs, garbage) as
recorded by earlier runs of the same repository, then this run's, oldest first and at most
:data:`MAX_POINTS`. The history is carried from run to run: the newest earlier run of the same
repository among the last :data:`RUNS_READ` workspace runs lends its ``size_history`` (or, from a
run stored before histories were kept, its own size), so a run reads a bounded number of documents.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from ...store.base import StateStore

MAX_POINTS = 60
RUNS_READ = 20


class SizePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: dt.datetime
    run_id: str
    loose_bytes: int = Field(ge=0)
    pack_bytes: int = Field(ge=0)
    garbage_bytes: int = Field(0, ge=0)

    @property
    def total_bytes(self) -> int:
        return self.loose_bytes + self.pack_bytes + self.garbage_bytes


def point_of(report: dict[str, Any], run_id: str, at: dt.datetime) -> SizePoint | None:
    """The size a report recorded; None when it recorded none (a failed analysis)."""
    objects = report.get("objects")
    if not isinstance(objects, dict):
        return None
    garbage = report.get("garbage") if isinstance(report.get("garbage"), dict) else {}
    try:
        return SizePoint(
            at=at,
            run_id=run_id,
            loose_bytes=objects.get("loose_size_bytes", 0),
            pack_bytes=objects.get("pack_size_bytes", 0),
            garbage_bytes=garbage.get("size_bytes", 0),
        )
    except ValidationError:
        return None


def stored_history(report: dict[str, Any]) -> list[SizePoint]:
    """The ``size_history`` a run stored (entries that do not read as points are left out)."""
    out: list[SizePoint] = []
    for raw in report.get("size_history") or []:
        try:
            out.append(SizePoint.model_validate(raw))
        except ValidationError:
            continue
    return out


def size_history(
    store: StateStore, task: str, report: dict[str, Any], run_id: str, at: dt.datetime
) -> list[dict[str, Any]]:
    """This run's ``size_history`` (JSON-ready): the earlier points of the same repository and
    this run's own, oldest first, at most :data:`MAX_POINTS`."""
    repo = report.get("repo")
    earlier: list[SizePoint] = []
    for run in store.list_runs(task=task, limit=RUNS_READ):
        if run.id == run_id or not run.summary or run.summary.get("repo") != repo:
            continue
        earlier = stored_history(run.summary)
        if not earlier and (point := point_of(run.summary, run.id, run.created_at)) is not None:
            earlier = [point]
        break
    current = point_of(report, run_id, at)
    points = [p for p in earlier if p.at < at] + ([current] if current is not None else [])
    return [p.model_dump(mode="json") for p in points[-MAX_POINTS:]]
