"""Rich text for a workspace report (``run.summary`` or ``orchestra workspace analyze``).

Paths, branch and ref names, git's messages and notes come from the repository: printed as
``Text``, so they are never read as markup or emoji codes.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .analysis import human_bytes

ROWS = 10


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(
            column, justify="right" if column in ("size", "on disk", "files", "blobs", "depth") else "left"
        )
    return table


def render_report(report: dict[str, Any], console: Console, rows: int = ROWS) -> None:
    objects = report.get("objects", {})
    ratio = report.get("size_ratio", 0)
    style = "red" if ratio >= 1 else "yellow" if report.get("size_trigger") else "green"
    head = report.get("head", {})
    state = []
    if head.get("unreadable"):
        state.append("refs and HEAD unreadable")
    if head.get("unborn"):
        state.append("no commits yet")
    if head.get("detached"):
        state.append("detached HEAD")
    if report.get("shallow"):
        state.append("shallow")
    if report.get("partial"):
        state.append(f"partial ({report['history']['missing_objects']} objects missing)")
    head_line = Text(str(report.get("repo")), style="bold")
    if state:
        head_line.append(f" ({', '.join(state)})", style="dim")
    console.print(head_line)
    console.print(
        Text.assemble(
            "  size ",
            (human_bytes(report["size_bytes"]), style),
            f" = {ratio:.1%} of {human_bytes(report['size_limit_bytes'])}; loose objects "
            f"{report['loose_objects']} ({human_bytes(objects.get('loose_size_bytes', 0))}), packs "
            f"{report['packs']} ({human_bytes(objects.get('pack_size_bytes', 0))}), garbage "
            f"{report['garbage']['count']}",
        )
    )
    gc = report["gc"]
    gc_line = Text("  git gc --auto: ")
    if gc["auto_would_run"]:
        gc_line.append("would run", style="yellow")
        gc_line.append(f" ({'; '.join(gc['reasons'])})")
    else:
        gc_line.append("not needed")
    console.print(gc_line)
    integrity = report.get("integrity") or {}
    if integrity.get("corrupt"):
        console.print(
            Text.assemble(
                "  integrity: ", ("repository corrupt", "bold red"), f" ({integrity.get('summary', '')})"
            )
        )
    history = report["history"]
    console.print(
        Text.assemble(
            f"  history: {history['blobs']} blobs, {human_bytes(history['blob_bytes'])} uncompressed ",
            (f"({history['source']})", "dim"),
        )
    )
    blobs = report.get("largest_blobs", [])
    if blobs:
        table = _table("Largest blobs in history", "size", "on disk", "where", "path")
        for blob in blobs[:rows]:
            where = (
                "HEAD"
                if blob["in_head"]
                else ("history (path in HEAD)" if blob["path_in_head"] else "history only")
            )
            disk = human_bytes(blob["disk_size"]) if blob.get("disk_size") is not None else "-"
            path = blob["path"] or f"(blob {blob['oid'][:12]}, only tagged)"
            table.add_row(human_bytes(blob["size"]), disk, where, Text(path))
        console.print(table)
    checkout = report.get("checkout", {})
    if checkout.get("files"):
        console.print(
            Text(
                f"  checkout: {checkout['files']} files, {human_bytes(checkout['size_bytes'])}, "
                f"max depth {checkout['max_depth']}"
            )
        )
        table = _table("Biggest directories (HEAD)", "size", "files", "path")
        for entry in checkout["biggest_directories"][: min(rows, 5)]:
            table.add_row(human_bytes(entry["size"]), str(entry["files"]), Text(entry["path"]))
        console.print(table)
    exts = history.get("extensions", [])
    if exts:
        table = _table("History by extension", "size", "blobs", "extension")
        for entry in exts[: min(rows, 5)]:
            table.add_row(human_bytes(entry["size"]), str(entry["blobs"]), Text(entry["extension"]))
        console.print(table)
    branches = report.get("branches", {})
    if branches.get("merged"):
        names = ", ".join(b["name"] for b in branches["merged"][:rows])
        console.print(Text(f"  merged into {branches['default_branch']}: {names}"))
    stale = report.get("remote_refs", {}).get("stale", [])
    if stale:
        console.print(Text(f"  stale remote-tracking refs: {', '.join(s['ref'] for s in stale[:rows])}"))
    caches = report.get("cache_dirs", [])
    if caches:
        total = sum(int(c["size_bytes"]) for c in caches)
        console.print(Text(f"  ignored cache directories: {len(caches)} ({human_bytes(total)})"))
    for note in report.get("notes", []):
        console.print(Text(f"  note: {note}", style="dim"))
