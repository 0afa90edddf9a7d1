"""SVG primitives, plugin view models and local sessions, without a server."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from click.testing import CliRunner
from orchestra.cli.main import cli
from orchestra.clock import FakeClock
from orchestra.console import svg
from orchestra.console.auth import SESSION_COOKIE, LocalAuth
from orchestra.console.views import Bar, BarChart, Episode, Heatmap, LineChart, Series, Table
from pydantic import ValidationError

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def _line() -> LineChart:
    points = [(T0 + dt.timedelta(hours=i), v) for i, v in enumerate([0.2, 0.9, 0.5])]
    return LineChart(
        title="cpu <b>",
        series=[Series(name="s<1>", points=points)],
        threshold=0.7,
        episodes=[Episode(start=points[1][0], end=points[2][0], label="breach <x>")],
    )


def test_line_chart_draws_threshold_episode_and_escapes_text() -> None:
    drawn = str(svg.line_chart(_line(), "c1"))
    assert drawn.count('class="threshold"') == 1 and drawn.count('class="episode"') == 1
    assert "<b>" not in drawn and "cpu &lt;b&gt;" in drawn and "s&lt;1&gt;" in drawn
    assert " style=" not in drawn and "<script" not in drawn
    table = svg.text_alternative(_line())
    assert [row[2] for row in table.rows if row[0] == "s<1>"] == [0.2, 0.9, 0.5]
    assert ["threshold", "", 0.7] in table.rows


def test_bar_and_heatmap_and_their_tables() -> None:
    bars = BarChart(title="cost", bars=[Bar(label="mon", value=3), Bar(label="tue", value=-1)])
    assert str(svg.bar_chart(bars)).count('class="bar"') == 2
    assert svg.text_alternative(bars).rows == [["mon", 3.0], ["tue", -1.0]]
    heat = Heatmap(title="h", rows=["a"], columns=["0", "1"], values=[[1.0, None]])
    assert str(svg.heatmap(heat)).count('class="cell"') == 2
    assert svg.text_alternative(heat).rows == [["a", 1.0, None]]


def test_view_models_name_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match=r"rows\[1\] has 1 cells; the table has 2 columns"):
        Table(caption="t", columns=["a", "b"], rows=[["x"]])
    with pytest.raises(ValidationError, match="values must be 1 rows of 2 numbers"):
        Heatmap(title="h", rows=["a"], columns=["0", "1"], values=[[1.0]])


class _Request:
    def __init__(self, cookie: str | None) -> None:
        self.headers: dict[str, Any] = {}
        self.cookies = {SESSION_COOKIE: cookie} if cookie else {}


def test_login_tokens_work_once_and_expire_and_sessions_expire() -> None:
    clock = FakeClock(T0)
    values = iter(f"token-{i:04d}-abcdefghijklmnop" for i in range(100))
    auth = LocalAuth("user:op", clock, token=lambda: next(values), login_ttl=dt.timedelta(minutes=5))
    token = auth.issue_login_token()
    session = auth.login(token)
    assert session is not None and auth.login(token) is None
    principal = auth.authenticate(_Request(session))
    assert principal is not None and principal.identity == "user:op" and principal.csrf != session
    stale = auth.issue_login_token()
    clock.advance(minutes=5)
    assert auth.login(stale) is None
    clock.advance(hours=8)
    assert auth.authenticate(_Request(session)) is None
    assert auth.authenticate(_Request(None)) is None


def test_the_console_listens_on_loopback_only() -> None:
    result = CliRunner().invoke(cli, ["console", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "--host" in result.output and "not a loopback address" in result.output
