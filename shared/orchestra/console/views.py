"""What a plugin shows on a run's page, as data: tables and charts the console draws itself.

A plugin's ``run_view(run)`` (see :class:`orchestra.automation.Automation`) returns a
:class:`RunView`: titled sections of :class:`Table`, :class:`LineChart`, :class:`BarChart` and
:class:`Heatmap` items. The console draws charts as SVG on the server (no script) and puts a
table with the same numbers under each one, so the page is readable without the picture or
without colour. Everything here is plain data: no markup, every text escaped when drawn.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Cell = str | int | float | bool | None
XValue = dt.datetime | float


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Table(_View):
    type: Literal["table"] = "table"
    caption: str
    columns: list[str] = Field(min_length=1)
    rows: list[list[Cell]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _widths(self) -> Table:
        for index, row in enumerate(self.rows, start=1):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"rows[{index}] has {len(row)} cells; the table has {len(self.columns)} columns"
                )
        return self


class Series(_View):
    name: str
    points: list[tuple[XValue, float]] = Field(default_factory=list)


class Episode(_View):
    """A shaded stretch of the x axis (a breach, a window) with what it was."""

    start: XValue
    end: XValue
    label: str = ""


class Marker(_View):
    """A vertical line at one instant of the x axis (a change applied, a deployment)."""

    at: XValue
    label: str = ""


class LineChart(_View):
    type: Literal["line"] = "line"
    title: str
    y_label: str = ""
    series: list[Series] = Field(min_length=1)
    threshold: float | None = None
    threshold_label: str = "threshold"
    episodes: list[Episode] = Field(default_factory=list)
    markers: list[Marker] = Field(default_factory=list)


class Bar(_View):
    label: str
    value: float


class BarChart(_View):
    type: Literal["bar"] = "bar"
    title: str
    y_label: str = ""
    bars: list[Bar] = Field(min_length=1)


class Heatmap(_View):
    """Cells shaded by ``values``; ``overlay``, when given, is a second number written in each cell
    (e.g. the instances scheduled over the demand), named by ``overlay_label``."""

    type: Literal["heatmap"] = "heatmap"
    title: str
    rows: list[str] = Field(min_length=1)
    columns: list[str] = Field(min_length=1)
    values: list[list[float | None]]
    value_label: str = ""
    overlay: list[list[float | None]] | None = None
    overlay_label: str = ""

    @model_validator(mode="after")
    def _shape(self) -> Heatmap:
        for name, grid in (("values", self.values), ("overlay", self.overlay)):
            if grid is None:
                continue
            if len(grid) != len(self.rows) or any(len(v) != len(self.columns) for v in grid):
                raise ValueError(
                    f"{name} must be {len(self.rows)} rows of {len(self.columns)} numbers (rows × columns)"
                )
        return self


Item = Annotated[Table | LineChart | BarChart | Heatmap, Field(discriminator="type")]


class Section(_View):
    title: str
    items: list[Item] = Field(default_factory=list)


class RunView(_View):
    """A plugin's sections for one run's page, shown after the generic findings and actions."""

    sections: list[Section] = Field(default_factory=list)
