"""`orchestra dlq`: messages Pub/Sub gave up on (stored by the ``dead_letter`` function)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from ..toolkit.cli import (
    console,
    current_identity,
    fail,
    open_config,
    print_json,
    run_exit_code,
    store_from_flags,
    store_options,
)

if TYPE_CHECKING:
    from ..models import DeadLetter


@click.group("dlq")
def dlq_group() -> None:
    """Dead letters: list, show and replay messages whose deliveries were exhausted."""


def _preview(letter: DeadLetter, width: int = 60) -> str:
    text = (letter.data or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


@dlq_group.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@store_options
def dlq_list(limit: int, config_path: str | None, store_url_opt: str | None, output_format: str) -> None:
    """Dead letters, newest first."""
    letters = store_from_flags(config_path, store_url_opt).list_dead_letters(limit=limit)
    if output_format == "json":
        print_json([letter.model_dump(mode="json") for letter in letters])
        return
    if not letters:
        console.print("No dead letters.")
        return
    from rich.table import Table

    table = Table(title=f"{len(letters)} dead letter(s)", title_justify="left")
    for col in ("id", "received", "origin", "attempts", "data", "replayed as"):
        table.add_column(col, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.id,
            letter.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            letter.origin,
            str(letter.delivery_attempt or "?"),
            escape(_preview(letter)),
            ", ".join(letter.replayed_run_ids) or "-",
        )
    console.print(table)


@dlq_group.command("show")
@click.argument("letter_id", metavar="ID")
@store_options
def dlq_show(letter_id: str, config_path: str | None, store_url_opt: str | None, output_format: str) -> None:
    """One dead letter with its full data and attributes."""
    from ..events.dead_letters import original_attributes

    letter = store_from_flags(config_path, store_url_opt).get_dead_letter(letter_id)
    if letter is None:
        fail(f"no dead letter with id {letter_id!r} (see `orchestra dlq list`)")
    if output_format == "json":
        print_json(letter.model_dump(mode="json"))
        return
    console.print(f"[bold]{letter.id}[/] from {escape(letter.origin)}", highlight=False)
    console.print(f"  received {letter.received_at.isoformat()}, {letter.delivery_attempt or '?'} attempts")
    for key, value in sorted(original_attributes(letter).items()):
        console.print(f"  attribute {escape(key)} = {escape(value)}", highlight=False)
    console.print(f"  data: {escape(letter.data or '')}", highlight=False, soft_wrap=True)
    if letter.replayed_run_ids:
        console.print(f"  replayed as: {', '.join(letter.replayed_run_ids)}")


@dlq_group.command("replay")
@click.argument("letter_id", metavar="ID")
@click.option("--as", "identity", help="Identity recorded as the requester (default user:$USER).")
@store_options
def dlq_replay(
    letter_id: str,
    identity: str | None,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Run the trigger of dead letter ID again. Replaying the same dead letter twice returns the
    first replay's run instead of running again."""
    from ..app import build_app
    from ..events.dead_letters import replay_dead_letter
    from ..toolkit.runs_view import print_run_details, runs_table

    config = open_config(config_path)
    app = build_app(config=config, store_url=store_url_opt)
    replay = replay_dead_letter(app, letter_id, identity or current_identity())
    run = replay.outcome.run
    if output_format == "json":
        print_json(
            {
                "dead_letter": replay.letter.id,
                "duplicate": replay.outcome.duplicate,
                "run": run.model_dump(mode="json"),
            }
        )
    else:
        if replay.outcome.duplicate:
            console.print(f"[dim]dead letter {replay.letter.id} was already replayed; showing that run[/]")
        console.print(runs_table([run]))
        print_run_details(console, run)
    sys.exit(run_exit_code([run]))
