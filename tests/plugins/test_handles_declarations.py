"""The event kinds a plugin handles, declared in the ``orchestra.handles`` entry-point group so the
registry answers "who handles run_finished?" without importing every plugin; the class's
``handles`` stays the truth."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from orchestra.automation import EventKind
from orchestra.registry import (
    ENTRY_POINT_GROUP,
    HANDLES_GROUP,
    Declaration,
    Registry,
    discover,
    discover_declarations,
    parse_declaration,
)

from tests.plugins.helpers import install_fake_distribution
from tests.plugins.test_hello_plugin import _pip_install

REPO = Path(__file__).resolve().parents[2]

# Every automation the installed distributions declare, against its class: run in a fresh
# interpreter so the plugins on its sys.path (PYTHONPATH) are the ones checked.
AGREE = """
import json
from orchestra.registry import Registry, discover, discover_declarations
registry = Registry()
out = {}
for name in discover():
    cls = registry.get_class(name)
    declared = registry.declared_kinds(name)
    out[name] = {
        "declared": None if declared is None else sorted(declared),
        "class": sorted(cls.handles),
    }
print(json.dumps(out))
"""


def agreement(pythonpath: str | None = None) -> dict[str, dict[str, list[str] | None]]:
    env = {"PYTHONPATH": pythonpath} if pythonpath else {}
    done = subprocess.run(
        [sys.executable, "-c", AGREE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_every_installed_plugin_declares_what_its_class_handles() -> None:
    found = agreement()
    assert {"deployment", "performance", "testing", "workspace"} <= set(found)
    for name, kinds in found.items():
        assert kinds["declared"] is not None, f"{name} declares no {HANDLES_GROUP} entry"
        assert kinds["declared"] == kinds["class"], name
    assert found["deployment"]["declared"] == ["push", "run_finished"]


def test_the_example_plugin_declares_what_its_class_handles(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _pip_install(site)
    found = agreement(str(site))
    assert found["hello"] == {"declared": [], "class": []}
    assert all(kinds["declared"] == kinds["class"] for kinds in found.values())


def test_run_finished_imports_only_the_plugins_that_declare_it() -> None:
    code = (
        "import sys, json\n"
        "from orchestra.automation import EventKind\n"
        "from orchestra.registry import registry\n"
        "names = [c.name for c in registry.handlers(EventKind.run_finished)]\n"
        "loaded = sorted({m.split('.')[2] for m in sys.modules if m.startswith('orchestra.automations.')})\n"
        "print(json.dumps([names, loaded]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    names, loaded = json.loads(done.stdout)
    assert names == ["deployment"]
    assert loaded == ["deployment"]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("deployment.run_finished", ("deployment", EventKind.run_finished)),
        ("ai-services", ("ai-services", None)),
        ("my.plugin.push", ("my.plugin", EventKind.push)),
        ("my.plugin", ("my.plugin", None)),
        (".push", (".push", None)),
    ],
)
def test_declaration_names(entry: str, expected: tuple[str, EventKind | None]) -> None:
    assert parse_declaration(entry) == expected


FAKE_MODULE = """
from orchestra.automation import Analysis, Automation, EventKind, EventOutcome


class Listener(Automation):
    name = "listener"
    handles = frozenset({EventKind.run_finished})

    def analyze(self, ctx):
        return Analysis()


class Quiet(Automation):
    name = "quiet"

    def analyze(self, ctx):
        return Analysis()


class Undeclared(Automation):
    name = "undeclared"
    handles = frozenset({EventKind.run_finished})

    def analyze(self, ctx):
        return Analysis()


class Liar(Automation):
    name = "liar"
    handles = frozenset({EventKind.breach})

    def analyze(self, ctx):
        return Analysis()
"""

AUTOMATIONS = {
    "listener": "decl_fake_mod:Listener",
    "quiet": "decl_fake_mod:Quiet",
    "undeclared": "decl_fake_mod:Undeclared",
    "liar": "decl_fake_mod:Liar",
}
HANDLES = {
    "listener.run_finished": "decl_fake_mod:Listener",
    "quiet": "decl_fake_mod:Quiet",
    # Declares run_finished, but its class handles breaches: the class is followed.
    "liar.run_finished": "decl_fake_mod:Liar",
    # Names another class than the automation's entry point: ignored.
    "undeclared": "decl_fake_mod:Quiet",
}


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{k} = {v}" for k, v in AUTOMATIONS.items())]
    lines += [f"[{HANDLES_GROUP}]", *(f"{k} = {v}" for k, v in HANDLES.items())]
    yield from install_fake_distribution(
        tmp_path / "site",
        monkeypatch,
        name="decl-fake",
        entry_points="\n".join(lines) + "\n",
        module="decl_fake_mod",
        source=FAKE_MODULE,
    )


def test_declarations_are_read_from_distribution_metadata(fake_site: Path) -> None:
    declared = discover_declarations()
    assert declared["listener"] == Declaration("decl_fake_mod:Listener", frozenset({EventKind.run_finished}))
    assert declared["quiet"] == Declaration("decl_fake_mod:Quiet", frozenset())
    assert "decl_fake_mod" not in sys.modules


def test_handlers_follow_the_class_and_import_only_what_may_answer(
    fake_site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry({n: p for n, p in discover().items() if n in AUTOMATIONS}, discover_declarations())
    assert registry.declared_kinds("undeclared") is None  # its declaration names another class
    with caplog.at_level(logging.WARNING, logger="orchestra.registry"):
        names = [c.name for c in registry.handlers(EventKind.run_finished)]
    # listener: declared and true; undeclared: imported to learn; liar: declared but its class
    # says otherwise (warned); quiet: declared to handle nothing, so never asked.
    assert names == ["listener", "undeclared"]
    assert "liar declares it handles ['run_finished']" in caplog.text
    breach = [c.name for c in registry.handlers(EventKind.breach)]
    # liar's declaration omits breaches, so it is not imported for them; the registry already
    # holds its class from the run_finished question, and the class is the truth.
    assert breach == ["liar"]


def test_a_registry_of_given_paths_imports_to_learn(fake_site: Path) -> None:
    registry = Registry({"quiet": "decl_fake_mod:Quiet", "listener": "decl_fake_mod:Listener"})
    assert registry.declared_kinds("listener") is None
    assert [c.name for c in registry.handlers(EventKind.run_finished)] == ["listener"]
