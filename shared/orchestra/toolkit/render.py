"""Rendering helpers shared by the automations' text reports (rich)."""

from __future__ import annotations

from typing import Any

from rich.text import Text


def print_input_notes(console: Any, source: dict[str, Any], notes: list[str]) -> None:
    """Skipped rows (with their first line numbers) and the notes on an input file's report."""
    bad = (source.get("bad_rows") or {}).get("count", 0)
    if bad:
        lines = ", ".join(str(item["line"]) for item in source["bad_rows"]["lines"][:10])
        console.print(Text.assemble((f"{bad} malformed row(s) skipped", "yellow"), f" (lines {lines})"))
    for note in notes:
        console.print(Text(f"note: {note}", style="dim"))
