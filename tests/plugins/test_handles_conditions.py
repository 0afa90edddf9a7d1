"""Preconditions declared beside the event kinds a plugin handles
(``"<name>.<kind> if <path>"`` in ``orchestra.handles``): while the configuration sets nothing at
the path, the plugin is neither imported nor asked. The deployment automation's suite gate
declares one: a finished run under a configuration whose environments require no suite does not
load the deployment plugin."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestra.automation import Analysis, Automation, EventContext, EventKind
from orchestra.automations.deployment.gate import handle_run_finished
from orchestra.automations.deployment.requests import deployment_settings
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.errors import ConfigError
from orchestra.registry import (
    ENTRY_POINT_GROUP,
    HANDLES_GROUP,
    Registry,
    condition_holds,
    discover,
    discover_declarations,
    split_condition,
)

from tests.deployment.conftest import make_config
from tests.deployment.test_suite_gate import finished
from tests.plugins.helpers import install_fake_distribution

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("deployment.run_finished", ("deployment.run_finished", None)),
        (
            "deployment.run_finished if settings.environments.*.required_suites",
            ("deployment.run_finished", "settings.environments.*.required_suites"),
        ),
        ("x.push if  settings.on ", ("x.push", "settings.on")),
        # Malformed paths leave the entry whole: it names no automation, so nothing is skipped.
        ("x.push if settings..on", ("x.push if settings..on", None)),
        ("x.push if settings.$on", ("x.push if settings.$on", None)),
        ("x.push if ", ("x.push if ", None)),
    ],
)
def test_condition_entries(entry: str, expected: tuple[str, str | None]) -> None:
    assert split_condition(entry) == expected


@pytest.mark.parametrize(
    ("root", "path", "holds"),
    [
        (
            {"settings": {"environments": {"a": {"required_suites": ["unit"]}}}},
            "settings.environments.*.required_suites",
            True,
        ),
        (
            {"settings": {"environments": {"a": {}, "b": {"required_suites": []}}}},
            "settings.environments.*.required_suites",
            False,
        ),
        (
            {"settings": {"environments": {"a": {}, "b": {"required_suites": ["x"]}}}},
            "settings.environments.*.required_suites",
            True,
        ),
        ({"settings": {}}, "settings.environments.*.required_suites", False),
        ({"settings": {"environments": ["a", "b"]}}, "settings.environments.*.required_suites", False),
        ({"settings": {"environments": None}}, "settings.environments.*.required_suites", False),
        ({"settings": {"on": False}}, "settings.on", False),
        ({"settings": {"on": True}}, "settings.on", True),
        ({"settings": {"items": [{"k": 0}, {"k": 2}]}}, "settings.items.*.k", True),
    ],
)
def test_condition_holds_when_a_value_is_set_and_not_empty(root: Any, path: str, holds: bool) -> None:
    assert condition_holds(root, path) is holds


def test_condition_reads_the_automations_configuration_by_attribute() -> None:
    with_suites = make_config({"staging": {"required_suites": ["unit"]}})
    without = make_config({"staging": {"requires_approval": True}})
    path = "settings.environments.*.required_suites"
    assert condition_holds(with_suites.automation("deployment"), path)
    assert not condition_holds(without.automation("deployment"), path)
    assert not condition_holds(without.automation("not-listed"), path)


FAKE_MODULE = """
from orchestra.automation import Analysis, Automation, EventKind, EventOutcome


class Gate(Automation):
    name = "gate"
    handles = frozenset({EventKind.run_finished, EventKind.push})

    def analyze(self, ctx):
        return Analysis()
"""


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from install_fake_distribution(
        tmp_path / "site",
        monkeypatch,
        name="cond-fake",
        entry_points=(
            f"[{ENTRY_POINT_GROUP}]\ngate = cond_fake_mod:Gate\n"
            f"[{HANDLES_GROUP}]\n"
            "gate.run_finished if settings.wanted = cond_fake_mod:Gate\n"
            "gate.push = cond_fake_mod:Gate\n"
        ),
        module="cond_fake_mod",
        source=FAKE_MODULE,
    )


def gate_config(settings: dict[str, Any]) -> Any:
    doc = {
        "default_environment": "development",
        "environments": {"development": {"automation_level": 1}},
        "automations": {"gate": {"settings": settings}},
    }
    return parse_config(json.dumps(doc), "conditions-test-config")


def gate_registry() -> Registry:
    return Registry({n: p for n, p in discover().items() if n == "gate"}, discover_declarations())


def test_a_plugin_whose_precondition_is_unmet_is_not_imported(fake_site: Path) -> None:
    registry = gate_registry()
    assert registry.declared_condition("gate", EventKind.run_finished) == "settings.wanted"
    assert registry.declared_condition("gate", EventKind.push) is None

    assert registry.handlers(EventKind.run_finished, gate_config({})) == []
    assert registry.handlers(EventKind.run_finished, gate_config({"wanted": []})) == []
    assert "cond_fake_mod" not in sys.modules

    # Another kind, declared without a precondition, imports it as before.
    assert [c.name for c in registry.handlers(EventKind.push, gate_config({}))] == ["gate"]
    # Loaded now, it is still left out while the precondition is unmet, and asked once it is.
    assert registry.handlers(EventKind.run_finished, gate_config({})) == []
    met = registry.handlers(EventKind.run_finished, gate_config({"wanted": ["x"]}))
    assert [c.name for c in met] == ["gate"]
    # Without a configuration the question is the class's, as before.
    assert [c.name for c in registry.handlers(EventKind.run_finished)] == ["gate"]
    assert registry.handlers(EventKind.run_finished, gate_config({})) == []


def test_a_met_precondition_imports_the_plugin(fake_site: Path) -> None:
    registry = gate_registry()
    found = registry.handlers(EventKind.run_finished, gate_config({"wanted": True}))
    assert [c.name for c in found] == ["gate"] and "cond_fake_mod" in sys.modules


class Registered(Automation):
    name = "gate"
    handles = frozenset({EventKind.run_finished})

    def analyze(self, ctx: Any) -> Analysis:
        return Analysis()


def test_a_registered_class_is_not_held_to_the_declared_precondition(fake_site: Path) -> None:
    registry = gate_registry()
    registry.register(Registered)
    assert registry.declared_condition("gate", EventKind.run_finished) is None
    assert registry.handlers(EventKind.run_finished, gate_config({})) == [Registered]
    registry.unregister("gate")
    assert registry.handlers(EventKind.run_finished, gate_config({})) == []


# A fresh interpreter: which plugin modules a finished run's announcement loads.
LOADED = """
import json, sys
from orchestra.automation import EventKind
from orchestra.config import parse_config
from orchestra.registry import registry
config = parse_config(sys.argv[1], "announce-config")
names = [c.name for c in registry.handlers(EventKind.run_finished, config)]
loaded = sorted({m.split('.')[2] for m in sys.modules if m.startswith('orchestra.automations.')})
print(json.dumps([names, loaded]))
"""


def announced(deployment_settings_block: dict[str, Any] | None) -> list[list[str]]:
    doc: dict[str, Any] = {
        "default_environment": "development",
        "environments": {"development": {}, "staging": {}, "production": {}},
    }
    if deployment_settings_block is not None:
        doc["automations"] = {"deployment": {"settings": deployment_settings_block}}
    done = subprocess.run(
        [sys.executable, "-c", LOADED, json.dumps(doc)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_finished_run_loads_the_deployment_plugin_only_when_an_environment_requires_suites() -> None:
    assert announced(None) == [[], []]
    assert announced({"environments": {"production": {"requires_approval": True}}}) == [[], []]
    required = {"environments": {"staging": {"required_suites": ["unit"]}}}
    assert announced(required) == [["deployment"], ["deployment"]]


def test_the_suite_gate_ignores_every_finished_run_when_no_environment_requires_suites(
    sqlite_store: Any,
) -> None:
    """What the declared precondition promises: skipping the plugin changes no outcome."""
    config = make_config({"staging": {"requires_approval": True}})
    assert not condition_holds(config.automation("deployment"), "settings.environments.*.required_suites")
    ctx = EventContext(config=config, store=sqlite_store, clock=FakeClock(), ids=RandomIds(3))
    outcome = handle_run_finished("deployment", finished("t-1"), ctx)
    assert outcome.status == "ignored" and outcome.requests == []


def test_deployment_settings_are_checked_once_per_configuration() -> None:
    config = make_config({"staging": {"required_suites": ["unit"]}})
    first = deployment_settings(config)
    assert deployment_settings(config) is first
    assert first.environments["staging"].required_suites == ["unit"]
    other = make_config({"staging": {"required_suites": ["unit"]}})
    assert deployment_settings(other) is not first
    # A settings block replaced after loading is checked again, errors included.
    config.automation("deployment").settings = {"environments": {"nowhere": {}}}
    with pytest.raises(ConfigError) as caught:
        deployment_settings(config)
    assert "environments.nowhere: unknown environment" in str(caught.value)


def test_broken_deployment_settings_are_not_kept() -> None:
    config = make_config({"staging": {"required_suites": "unit"}})
    for _ in range(2):
        with pytest.raises(ConfigError):
            deployment_settings(config)


def test_the_packaged_functions_metadata_keeps_the_precondition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function archives carry entry points written from pyproject.toml: a declaration with a
    precondition reads back the same from them."""
    spec = importlib.util.spec_from_file_location(
        "package_functions", REPO / "scripts" / "package_functions.py"
    )
    assert spec is not None and spec.loader is not None
    packager = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(packager)
    for name, data in packager.distribution_metadata():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    declared = discover_declarations()["deployment"]
    assert declared.kinds == {EventKind.push, EventKind.run_finished}
    assert declared.condition(EventKind.run_finished) == "settings.environments.*.required_suites"
    assert declared.condition(EventKind.push) is None
