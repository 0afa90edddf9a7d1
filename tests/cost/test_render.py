"""Text output of cost and ai-services runs, from the summaries their analyses really produce."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from orchestra.automation import Automation, RunContext
from orchestra.automations.ai_services import AIServicesAutomation
from orchestra.automations.cost import CostAutomation
from rich.console import Console

SAMPLES = Path(str(resources.files("orchestra").joinpath("samples")))


def rendered(automation: Automation, ctx: RunContext) -> str:
    run = ctx.run.model_copy(update={"summary": automation.analyze(ctx).summary})
    console = Console(record=True, width=200, color_system=None)
    automation.render(run, console)
    return console.export_text()


def with_broken_line(source: Path, target: Path, line: int, text: str) -> Path:
    lines = source.read_text().splitlines()
    lines[line - 1] = text
    target.write_text("\n".join(lines) + "\n")
    return target


def test_cost_text_names_skipped_rows_and_ranks_savings(make_context: Any, tmp_path: Path) -> None:
    billing = with_broken_line(SAMPLES / "cost/billing.csv", tmp_path / "b.csv", 7, "only,three,fields")
    ctx = make_context(CostAutomation, params={"billing": str(billing)}, settings={"max_bad_row_share": 0.01})
    text = rendered(CostAutomation(), ctx)
    assert "1 malformed row(s) skipped (lines 7)" in text
    assert "Cost anomalies (" in text
    sample = rendered(CostAutomation(), make_context(CostAutomation))
    assert "note: no --billing file" in sample and "Savings (ranked;" in sample


def test_ai_services_text_names_skipped_rows_and_opportunities(make_context: Any, tmp_path: Path) -> None:
    usage = with_broken_line(SAMPLES / "ai_services/usage.jsonl", tmp_path / "u.jsonl", 3, "{broken")
    ctx = make_context(
        AIServicesAutomation, params={"usage": str(usage)}, settings={"max_bad_row_share": 0.01}
    )
    text = rendered(AIServicesAutomation(), ctx)
    assert "1 malformed row(s) skipped (lines 3)" in text
    assert "Per model" in text and "Opportunities (" in text


def test_cost_text_shows_both_billing_mode_estimates(make_context: Any) -> None:
    text = rendered(CostAutomation(), make_context(CostAutomation))
    assert "Cloud Run billing mode (per month)" in text
    [resizer] = [
        line for line in text.splitlines() if "image-resizer" in line and "switch to request" in line
    ]
    # now, advice, request-based, instance-based, busy, break-even, saves
    cells = [c.strip() for c in resizer.strip("│ ").split("│")]
    assert cells[1:3] == ["instance", "switch to request"]
    assert cells[5].endswith("%") and cells[6].endswith("%")
    request_based, instance_based, saves = (float(cells[i].replace(",", "")) for i in (3, 4, 7))
    assert saves == pytest.approx(instance_based - request_based, abs=0.02)
    [checkout] = [line for line in text.splitlines() if "checkout-api" in line and "keep" in line]
    assert checkout.rstrip(" │").endswith("-")  # nothing saved by keeping
