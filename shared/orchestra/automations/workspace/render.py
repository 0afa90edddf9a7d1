"""Rich text for a workspace report (``run.summary`` or ``orchestra workspace analyze``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

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
    if head.get("unborn"):
        state.append("no commits yet")
    if head.get("detached"):
        state.append("detached HEAD")
    if report.get("shallow"):
        state.append("shallow")
    if report.get("partial"):
        state.append(f"partial ({report['history']['missing_objects']} objects missing)")
    console.print(
        f"[bold]{escape(str(report.get('repo')))}[/]" + (f" [dim]({', '.join(state)})[/]" if state else ""),
        highlight=False,
    )
    console.print(
        f"  size [{style}]{human_bytes(report['size_bytes'])}[/] = {ratio:.1%} of "
        f"{human_bytes(report['size_limit_bytes'])}; loose objects {report['loose_objects']} "
        f"({human_bytes(objects.get('loose_size_bytes', 0))}), packs {report['packs']} "
        f"({human_bytes(objects.get('pack_size_bytes', 0))}), garbage {report['garbage']['count']}",
        highlight=False,
    )
    gc = report["gc"]
    console.print(
        "  git gc --auto: "
        + (
            "[yellow]would run[/] (" + escape("; ".join(gc["reasons"])) + ")"
            if gc["auto_would_run"]
            else "not needed"
        ),
        highlight=False,
    )
    history = report["history"]
    console.print(
        f"  history: {history['blobs']} blobs, {human_bytes(history['blob_bytes'])} uncompressed "
        f"[dim]({history['source']})[/]",
        highlight=False,
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
            table.add_row(human_bytes(blob["size"]), disk, where, escape(path))
        console.print(table)
    checkout = report.get("checkout", {})
    if checkout.get("files"):
        console.print(
            f"  checkout: {checkout['files']} files, {human_bytes(checkout['size_bytes'])}, "
            f"max depth {checkout['max_depth']}",
            highlight=False,
        )
        table = _table("Biggest directories (HEAD)", "size", "files", "path")
        for entry in checkout["biggest_directories"][: min(rows, 5)]:
            table.add_row(human_bytes(entry["size"]), str(entry["files"]), escape(entry["path"]))
        console.print(table)
    exts = history.get("extensions", [])
    if exts:
        table = _table("History by extension", "size", "blobs", "extension")
        for entry in exts[: min(rows, 5)]:
            table.add_row(human_bytes(entry["size"]), str(entry["blobs"]), escape(entry["extension"]))
        console.print(table)
    branches = report.get("branches", {})
    if branches.get("merged"):
        names = ", ".join(b["name"] for b in branches["merged"][:rows])
        console.print(f"  merged into {branches['default_branch']}: {escape(names)}", highlight=False)
    stale = report.get("remote_refs", {}).get("stale", [])
    if stale:
        console.print(f"  stale remote-tracking refs: {escape(', '.join(s['ref'] for s in stale[:rows]))}")
    caches = report.get("cache_dirs", [])
    if caches:
        total = sum(int(c["size_bytes"]) for c in caches)
        console.print(f"  ignored cache directories: {len(caches)} ({human_bytes(total)})", highlight=False)
    for note in report.get("notes", []):
        console.print(f"  [dim]note: {escape(note)}[/]", highlight=False)
