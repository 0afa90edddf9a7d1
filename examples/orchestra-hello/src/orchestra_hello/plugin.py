"""The ``hello`` automation: keep ``<directory>/greeting.txt`` saying hello to someone.

``analyze`` reads the file and, when it does not hold the expected greeting, proposes one
``write-greeting`` action. ``prepare`` records the file's current content (or that there was
none), ``apply`` writes the new greeting atomically, ``verify`` reads it back, and ``rollback``
puts the recorded content back (or removes the file it created). The directory comes from the
operator's configuration, never from a trigger: a trigger only chooses whom to greet.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click
from orchestra.automation import Analysis, Automation, RunContext, Verification
from orchestra.errors import InputError
from orchestra.models import Action, Finding, Risk, Severity
from pydantic import BaseModel, ConfigDict, Field

FILE_NAME = "greeting.txt"
KIND = "write-greeting"


class HelloSettings(BaseModel):
    """``automations.hello.settings`` in the configuration."""

    model_config = ConfigDict(extra="forbid")

    directory: str = Field(".orchestra/hello", description="directory holding greeting.txt")
    greeting: str = Field("Hello", min_length=1, max_length=40, description="the word of greeting")


class HelloParams(BaseModel):
    """What a trigger may pass (``--param name=Ada``, a Pub/Sub message's ``params``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        "world", min_length=1, max_length=60, pattern=r"^[\w .'-]+$", description="whom to greet"
    )
    punctuation: str = Field("!", max_length=3, pattern=r"^[!.?]*$", description="how to end the line")


def greeting_text(settings: HelloSettings, params: HelloParams) -> str:
    return f"{settings.greeting}, {params.name}{params.punctuation}\n"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({type(exc).__name__})", where="settings.directory") from None


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically: a crash leaves the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class HelloAutomation(Automation):
    name = "hello"
    description = "Keep a greeting file saying hello (an example plugin)."
    Settings = HelloSettings
    Params = HelloParams
    default_schedule = "0 9 * * *"  # daily, 09:00 UTC
    default_environments = ("development",)

    def analyze(self, ctx: RunContext) -> Analysis:
        path = Path(ctx.settings.directory) / FILE_NAME
        wanted = greeting_text(ctx.settings, ctx.params)
        current = _read(path)
        if current == wanted:
            finding = Finding(id="greeting-current", severity=Severity.info, summary=f"{path} already greets")
            return Analysis(findings=[finding], summary={"path": str(path), "changed": False})
        finding = Finding(
            id="greeting-stale",
            severity=Severity.low,
            summary=f"{path} is missing" if current is None else f"{path} holds another greeting",
        )
        action = Action(
            id="write-greeting",
            description=f"write {wanted.strip()!r} to {path}",
            risk=Risk.low,
            kind=KIND,
            params={"path": str(path), "text": wanted},
        )
        return Analysis(findings=[finding], actions=[action], summary={"path": str(path), "changed": True})

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        previous = _read(Path(action.params["path"]))
        return {"path": action.params["path"], "previous": previous}

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        _write(Path(action.params["path"]), action.params["text"])
        return {"written": action.params["path"]}

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        content = _read(Path(action.params["path"]))
        return Verification(
            ok=content == action.params["text"], evidence={"matches": content == action.params["text"]}
        )

    def rollback(self, ctx: RunContext, action: Action) -> None:
        saved = action.rollback or {}
        path = Path(saved.get("path", action.params["path"]))
        previous = saved.get("previous")
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            _write(path, previous)

    @classmethod
    def cli(cls) -> click.Command:
        return hello_cmd


@click.command("hello")
@click.option("--name", default="world", show_default=True, help="Whom to greet.")
@click.option("--greeting", default="Hello", show_default=True, help="The word of greeting.")
def hello_cmd(name: str, greeting: str) -> None:
    """Print the greeting the hello automation would write (changes nothing)."""
    click.echo(greeting_text(HelloSettings(greeting=greeting), HelloParams(name=name)), nl=False)
