"""Discovery through the ``orchestra.automations`` entry-point group, the open ``automations``
configuration, generated ``run TASK --help`` and plugin defaults for schedules."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib.metadata import distributions
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from orchestra.automation import Analysis, Automation, RunContext
from orchestra.cli.main import cli
from orchestra.config import Config, parse_config
from orchestra.errors import ConfigError
from orchestra.registry import ENTRY_POINT_GROUP, Registry, discover, registry
from orchestra.runner import RunRequest
from orchestra.scheduling import configured_schedules
from pydantic import BaseModel, ConfigDict, Field

from tests.plugins.helpers import install_fake_distribution

REPO = Path(__file__).resolve().parents[2]
BUILTINS = ["ai-services", "cost", "deployment", "infrastructure", "performance", "testing", "workspace"]

FAKE_MODULE = """
from orchestra.automation import Analysis, Automation
from pydantic import BaseModel, ConfigDict


class FakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = 1


class FakeAutomation(Automation):
    name = "fake-plugin"
    Settings = FakeSettings

    def analyze(self, ctx):
        return Analysis()
"""


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution declaring ``fake-plugin`` in the group, installed on sys.path."""
    yield from install_fake_distribution(
        tmp_path / "site",
        monkeypatch,
        name="fake-plugin",
        entry_points=f"[{ENTRY_POINT_GROUP}]\nfake-plugin = fake_plugin_mod:FakeAutomation\n",
        module="fake_plugin_mod",
        source=FAKE_MODULE,
    )


def test_builtins_come_from_this_package_entry_points() -> None:
    found = discover()
    assert [n for n in found if n in BUILTINS] == BUILTINS
    assert found["performance"] == "orchestra.automations.performance:PerformanceAutomation"
    assert set(BUILTINS) <= set(Registry().names())


def test_names_are_known_without_importing_any_plugin() -> None:
    code = (
        "import sys\n"
        "from orchestra.registry import registry\n"
        "names = registry.names()\n"
        "loaded = [m for m in sys.modules if m.startswith('orchestra.automations.')]\n"
        "print(len(names), loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    count, loaded = done.stdout.split(maxsplit=1)
    assert int(count) >= len(BUILTINS)
    assert loaded.strip() == "[]"


def test_an_installed_distribution_is_discovered_and_loaded_lazily(fake_distribution: Path) -> None:
    reg = Registry()
    assert "fake-plugin" in reg.names()
    assert "fake_plugin_mod" not in sys.modules
    cls = reg.get_class("fake-plugin")
    assert cls is not None and cls.name == "fake-plugin"
    assert reg.create("fake-plugin").analyze.__qualname__.startswith("FakeAutomation")


def test_explicit_paths_replace_discovery() -> None:
    reg = Registry({"only": "tests.runner.automations:Noop"})
    assert reg.names() == ["only"]
    assert "performance" not in reg


def test_unknown_task_lists_the_registered_ones() -> None:
    with pytest.raises(Exception, match=r"unknown automation 'nope'; accepted: ai-services, cost"):
        registry.create("nope")


def test_packaged_function_archive_carries_the_entry_points(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "package_functions_t", REPO / "scripts" / "package_functions.py"
    )
    assert spec and spec.loader
    packager = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = packager
    spec.loader.exec_module(packager)
    archive = tmp_path / "scheduled.zip"
    packager.write_archive(packager.archive_entries("scheduled"), archive)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path / "unpacked")
    [dist] = [d for d in distributions(path=[str(tmp_path / "unpacked")])]
    assert dist.metadata["Name"] == "orchestra-automation"
    names = sorted(ep.name for ep in dist.entry_points.select(group=ENTRY_POINT_GROUP))
    assert names == BUILTINS


# ------------------------------------------------------------------------ open config


class ExtraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: int = Field(1, ge=1, le=5)


class ExtraParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(description="what to look at")
    depth: int = Field(2, description="how far to go")
    tags: list[str] = Field(default_factory=list)


class Extra(Automation):
    name = "extra"
    description = "An operator automation registered at run time."
    Settings = ExtraSettings
    Params = ExtraParams
    default_schedule = "15 4 * * *"
    default_environments: ClassVar[tuple[str, ...]] = ("staging", "nowhere")

    def analyze(self, ctx: RunContext) -> Analysis:
        return Analysis()


@pytest.fixture
def extra() -> Iterator[type[Automation]]:
    registry.register(Extra)
    yield Extra
    registry.unregister("extra")


ENVS = "environments:\n  development: {}\n  staging: {}\n"


def checked(text: str) -> Config:
    """What every assembly does: parse, then check the automations against the registry."""
    return registry.check_config(parse_config(text))


def test_config_accepts_any_registered_automation(extra: type[Automation]) -> None:
    config = checked(ENVS + "automations:\n  extra:\n    settings: {level: 3}\n")
    assert config.automation("extra").settings == {"level": 3}


def test_settings_are_validated_once_into_the_plugin_model(extra: type[Automation]) -> None:
    config = checked(ENVS + "automations:\n  extra:\n    settings: {level: 3}\n")
    held = config.settings_for("extra", ExtraSettings)
    assert isinstance(held, ExtraSettings) and held.level == 3
    assert config.settings_for("extra", ExtraSettings) is held  # the model kept at load
    # An automation the configuration does not list gets its model's defaults.
    assert config.settings_for("unlisted", ExtraSettings) == ExtraSettings()
    # A settings block replaced after loading is validated again (errors included), not the old
    # model handed out.
    config.automation("extra").settings = {"level": 5}
    assert config.settings_for("extra", ExtraSettings).level == 5
    config.automation("extra").settings = {"level": 9}
    with pytest.raises(ConfigError, match=r"automations\.extra\.settings\.level:"):
        config.settings_for("extra", ExtraSettings)


def test_the_runner_hands_the_held_settings_to_every_run(extra: type[Automation], tmp_path: Path) -> None:
    from orchestra.clock import FakeClock, RandomIds
    from orchestra.runner import Runner
    from orchestra.store.sqlite import SqliteStateStore

    config = checked(ENVS + "automations:\n  extra:\n    settings: {level: 4}\n")
    store = SqliteStateStore(str(tmp_path / "state.db"))
    try:
        runner = Runner(config, store, clock=FakeClock(), ids=RandomIds(seed=1), registry=registry)
        outcome = runner.submit(RunRequest(task="extra", params={"target": "x"}))
        ctx = runner.context(outcome.run, registry.create("extra"))
        assert ctx.settings is config.settings_for("extra", ExtraSettings)
        assert ctx.settings.level == 4
    finally:
        store.close()


def test_the_configuration_module_knows_no_automation(extra: type[Automation]) -> None:
    # Parsing checks the schema only; the registry checks names and settings.
    unchecked = parse_config(ENVS + "automations:\n  extra:\n    settings: {level: 9}\n")
    with pytest.raises(ConfigError, match=r"automations\.extra\.settings\.level:"):
        unchecked.settings_for("extra", ExtraSettings)


def test_config_checks_settings_with_the_plugin_model(extra: type[Automation]) -> None:
    with pytest.raises(ConfigError) as raised:
        checked(ENVS + "automations:\n  extra:\n    settings: {level: 9, typo: 1}\n")
    text = str(raised.value)
    assert "automations.extra.settings.level:" in text
    assert "automations.extra.settings.typo: unknown key (typo?)" in text


def test_config_refuses_an_unregistered_name_listing_the_registered(extra: type[Automation]) -> None:
    with pytest.raises(ConfigError) as raised:
        checked(ENVS + "automations:\n  extrra: {}\n")
    assert "automations.extrra: unknown automation 'extrra'; accepted: ai-services, cost," in str(
        raised.value
    )
    assert "extra" in str(raised.value).split("accepted:", 1)[1]


def test_plugin_default_schedule_and_environments(extra: type[Automation]) -> None:
    config = parse_config(ENVS + "automations:\n  extra: {}\n  cost: {}\n")
    found = configured_schedules(config, "development", registry=registry)
    # cost has no default schedule and none configured; extra's default targets only the
    # environments this configuration has.
    assert [(s.task, s.cron, s.environment) for s in found.schedules] == [("extra", "15 4 * * *", "staging")]
    configured = parse_config(
        ENVS + "automations:\n  extra: {schedule: '0 1 * * *', environments: [development]}\n"
    )
    again = configured_schedules(configured, registry=registry).schedules
    assert [(s.cron, s.environment) for s in again] == [("0 1 * * *", "development")]
    disabled = parse_config(ENVS + "automations:\n  extra: {enabled: false}\n")
    assert configured_schedules(disabled, registry=registry).schedules == []


# ------------------------------------------------------------------------ run --help


def test_run_help_lists_registered_tasks(extra: type[Automation]) -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    tasks = result.output.split("Tasks:", 1)[1].split("Options:", 1)[0]
    for name in [*BUILTINS, "extra", "all"]:
        assert name in tasks


def test_run_task_help_lists_params_from_the_model(extra: type[Automation]) -> None:
    result = CliRunner().invoke(cli, ["run", "--mode", "apply", "extra", "--help"])
    assert result.exit_code == 0, result.output
    section = " ".join(result.output.split("Parameters of extra:", 1)[1].split("Options:", 1)[0].split())
    assert "An operator automation registered at run time." in section
    assert "--param target=str what to look at [required]" in section
    assert "--param depth=int how far to go [default: 2]" in section
    assert "--param tags=list[str] [default: []]" in section
    unknown = CliRunner().invoke(cli, ["run", "nope", "--help"])
    assert "unknown automation 'nope'" in unknown.output


def test_run_help_of_a_builtin_keeps_the_shortcut_flags() -> None:
    result = CliRunner().invoke(cli, ["run", "performance", "--help"])
    assert result.exit_code == 0
    assert "--param focus=" in result.output
    for flag in ("--metric", "--repo", "--service", "--billing", "--usage"):
        assert flag in result.output


# ------------------------------------------------------------------------ health


def test_health_includes_checks_of_configured_plugins(extra: type[Automation], tmp_path: Path) -> None:
    from orchestra.clock import FakeClock
    from orchestra.health import Check, Status, check_health
    from orchestra.store.sqlite import SqliteStateStore

    calls: list[str] = []

    def backlog(config: object, store: object, clock: object) -> list[Check]:
        calls.append("asked")
        return [Check(name="extra-backlog", ok=False, detail="3 items waiting")]

    extra.health_checks = classmethod(lambda cls, config, store, clock: backlog(config, store, clock))  # type: ignore[method-assign,assignment]
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        clock = FakeClock()
        unconfigured = check_health(parse_config(ENVS), store, clock, registry)
        assert "extra-backlog" not in [c.name for c in unconfigured.checks] and calls == []
        config = parse_config(ENVS + "automations:\n  extra: {}\n")
        report = check_health(config, store, clock, registry)
        assert [c for c in report.checks if c.name == "extra-backlog"][0].detail == "3 items waiting"
        assert report.status == Status.degraded
        # The plugin's default schedule counts for the schedules check too.
        schedules = [c for c in report.checks if c.name == "schedules"][0]
        assert schedules.data["never_ran"] == ["extra"]
    finally:
        del extra.health_checks
        store.close()
