"""Hostile configuration is refused before it can do harm: through the real CLI, each bad file is
exit code 2 with exactly one ``error:`` headline naming the field or the line and column, never
a traceback, and nothing is written to the store. ``--param`` values and the controller's list
filter follow the same rule."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from orchestra import app as app_module
from orchestra.app import build_app
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import check_cron, load_config, parse_config
from orchestra.errors import ConfigError
from orchestra.store.sqlite import SqliteStateStore

from tests.functions.conftest import FUNCTIONS_CONFIG, make_client
from tests.functions.plugins import build_registry

ORCHESTRA = Path(sys.executable).with_name("orchestra")

BASE = """\
default_environment: development
environments:
  development: {automation_level: 1}
  production: {protected: true, approval_required_risk: high}
"""


def with_base(extra: str) -> bytes:
    return (BASE + extra).encode()


def nested_mappings(depth: int) -> bytes:
    lines = [f"{'  ' * level}k{level}:" for level in range(depth)]
    return with_base("x:\n" + "\n".join("  " + line for line in lines) + " 1\n")


BILLION_LAUGHS = with_base(
    'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
)


@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    expect: str  # the field path or "line L, column C" the single error must name


def hostile_cases(marker: Path) -> list[Case]:
    return [
        Case(
            "approval ttl 1e300",
            with_base("runner: {approval_ttl_hours: 1e300}\n"),
            "runner.approval_ttl_hours",
        ),
        Case(
            "max deliveries 1e35",
            with_base("runner: {retry: {max_deliveries: 1.0e+35}}\n"),
            "runner.retry.max_deliveries",
        ),
        Case("lease .inf", with_base("runner: {lease: {seconds: .inf}}\n"), "runner.lease.seconds"),
        Case(
            "lease .nan",
            with_base("runner: {lease: {heartbeat_seconds: .nan}}\n"),
            "runner.lease.heartbeat_seconds",
        ),
        Case(
            "retention days",
            with_base("runner: {retention: {runs_days: 99999999999}}\n"),
            "runner.retention.runs_days",
        ),
        Case(
            "breaker window 1e300",
            with_base("runner: {breaker: {window_seconds: 1.0e+300}}\n"),
            "runner.breaker.window_seconds",
        ),
        Case(
            "threshold above -50",
            with_base("thresholds:\n  cpu: {metric: cpu, above: -50, for_minutes: 15, focus: cpu}\n"),
            "thresholds.cpu.above",
        ),
        Case(
            "threshold above 100 percent",
            with_base("thresholds:\n  mem: {metric: memory, above: 150, for_minutes: 10, focus: memory}\n"),
            "thresholds.mem.above",
        ),
        Case(
            "for_minutes 0",
            with_base("thresholds:\n  cpu: {metric: cpu, above: 70, for_minutes: 0, focus: cpu}\n"),
            "thresholds.cpu.for_minutes",
        ),
        Case(
            "7-field cron",
            with_base('automations:\n  cost: {schedule: "0 0 6 * * * 2026"}\n'),
            "automations.cost.schedule",
        ),
        Case(
            "6-field cron in a test suite",
            with_base(
                "automations:\n  testing:\n    settings:\n      suites:\n        unit:\n"
                '          command: ["true"]\n          triggers: {schedule: "0 0 3 * * *"}\n'
            ),
            "automations.testing.settings.suites.unit.triggers.schedule",
        ),
        Case(
            "automation setting 1e300",
            with_base("automations:\n  performance:\n    settings: {settle_seconds: 1.0e+300}\n"),
            "automations.performance.settings.settle_seconds",
        ),
        Case("unknown key", with_base("runner: {retyr: {attempts: 2}}\n"), "runner.retyr: unknown key"),
        Case(
            "approver group not configured",
            with_base("groups: {}\n").replace(
                b"production: {protected: true,",
                b"production: {approvers: [group:ops@corp.example], protected: true,",
            ),
            "environments.production.approvers",
        ),
        Case("relative input dir", with_base("inputs: {allowed_dirs: [data/in]}\n"), "inputs.allowed_dirs"),
        Case("binary file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "line 1, column 1"),
        Case("non-UTF-8", with_base("store: caf") + b"\xe9\n", "line 5, column 11"),
        Case("NUL byte", with_base("store: a\x00b\n"), "line 5, column 9"),
        Case("2 MiB", with_base("# " + "x" * (2 * 1024 * 1024) + "\n"), "(file):"),
        Case("100,000 nested [", with_base("x: " + "[" * 100_000 + "\n"), "line 5, column 67"),
        Case("deeply nested mappings", nested_mappings(200), "nesting deeper than 64 levels"),
        Case(
            "python tag",
            with_base(f"store: !!python/object/apply:os.system ['touch {marker}']\n"),
            "line 5, column 8",
        ),
        Case("local tag", with_base("store: !env ORCHESTRA_STORE\n"), "line 5, column 8"),
        Case("billion laughs", BILLION_LAUGHS, "more than 100000 values once aliases are expanded"),
        Case("recursive alias", with_base("x: &x [1, *x]\n"), "line 5, column 11"),
        Case(
            "5000-digit integer",
            with_base("runner: {approval_ttl_hours: " + "9" * 5000 + "}\n"),
            "line 5, column 30",
        ),
        Case("impossible date", with_base("x: 2026-13-45\n"), "line 5, column 4"),
        Case("YAML syntax", with_base("runner: {retry: [1, 2\n"), "(yaml) line"),
    ]


CASE_NAMES = [case.name for case in hostile_cases(Path("/nonexistent"))]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


def cli_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIG_PATH", "ORCHESTRA_EXTRA_AUTOMATIONS")}
    env["ORCHESTRA_STORE"] = f"sqlite:///{workdir / 'state.db'}"
    env["ORCHESTRA_LOG_LEVEL"] = "WARNING"
    return env


def run_cli(workdir: Path, *args: str | bytes) -> tuple[int, str]:
    proc = subprocess.run(
        [str(ORCHESTRA), *args],
        cwd=workdir,
        env=cli_env(workdir),
        capture_output=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def assert_refused(code: int, out: str, expect: str, workdir: Path, allowed_files: set[str]) -> None:
    assert code == 2, out
    assert "Traceback" not in out, out
    headlines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(headlines) == 1, out
    assert expect in out, out
    # Nothing was written: no store, no state directory, nothing but the input itself.
    assert {p.name for p in workdir.iterdir()} <= allowed_files, sorted(p.name for p in workdir.iterdir())


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_configuration_is_refused_by_the_cli(name: str, workdir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    case = next(c for c in hostile_cases(marker) if c.name == name)
    path = workdir / "config.yaml"
    path.write_bytes(case.content)
    code, out = run_cli(workdir, "config", "validate", "--config", str(path))
    assert_refused(code, out, case.expect, workdir, {"config.yaml"})
    assert not marker.exists()


def test_the_error_lines_never_echo_a_large_file(workdir: Path) -> None:
    path = workdir / "config.yaml"
    path.write_bytes(with_base("# SECRET-" + "x" * (2 * 1024 * 1024) + "\n"))
    code, out = run_cli(workdir, "config", "validate", "--config", str(path))
    assert code == 2 and "SECRET" not in out and len(out) < 1000


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("approval ttl 1e300", "runner.approval_ttl_hours"),
        ("threshold above -50", "thresholds.cpu.above"),
        ("100,000 nested [", "(yaml) line 5, column 67: nesting deeper than 64 levels"),
        ("binary file", "(yaml) line 1, column 1: not valid UTF-8"),
        ("2 MiB", "(file): "),
        ("python tag", "(yaml) line 5, column 8: tag '!!python/object/apply:os.system' is not allowed"),
        ("billion laughs", "more than 100000 values"),
    ],
)
def test_load_config_raises_config_error(name: str, expect: str, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    case = next(c for c in hostile_cases(marker) if c.name == name)
    path = tmp_path / "config.yaml"
    path.write_bytes(case.content)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.source == str(path)
    assert any(expect in problem for problem in raised.value.problems), raised.value.problems
    assert not marker.exists()


def test_an_endless_file_is_refused_before_it_is_read() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config("/dev/zero")
    assert raised.value.problems == ["(file): not a regular file (a device, FIFO or socket); expected a file"]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="invalid configuration") as raised:
        load_config(fifo)
    assert raised.value.problems == ["(file): not a regular file (a device, FIFO or socket); expected a file"]


def test_the_new_sections_are_validated_and_shown(tmp_path: Path, workdir: Path) -> None:
    text = BASE.replace(
        "production: {protected: true,",
        "production: {approvers: [carol@corp.example, group:release@corp.example], protected: true,",
    ) + (
        "identities: {'github:alice': alice@corp.example}\n"
        "groups: {release@corp.example: [alice@corp.example, bob@corp.example]}\n"
        "inputs: {allowed_dirs: [/srv/inputs], max_bytes: 1048576}\n"
    )
    config = parse_config(text, "sections")
    assert config.identities == {"github:alice": "alice@corp.example"}
    assert config.groups["release@corp.example"] == ["alice@corp.example", "bob@corp.example"]
    assert config.environments["production"].approvers == ["carol@corp.example", "group:release@corp.example"]
    assert config.environments["development"].approvers is None
    assert config.inputs.allowed_dirs == ["/srv/inputs"] and config.inputs.max_bytes == 1048576
    path = workdir / "config.yaml"
    path.write_text(text)
    code, out = run_cli(workdir, "config", "show", "--config", str(path))
    assert code == 0, out
    assert "github:alice: alice@corp.example" in out and "- /srv/inputs" in out


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        ("identities: {alice: alice@corp.example}\n", "identities: key 'alice': expected KIND:NAME"),
        ("identities: {'github:alice': ''}\n", "identities: github:alice: the e-mail is empty"),
        ("groups: {ops@corp.example: ['']}\n", "groups: ops@corp.example: member 0 is empty"),
        ("inputs: {max_bytes: 0}\n", "inputs.max_bytes"),
        ("inputs: {max_bytes: 68719476737}\n", "inputs.max_bytes"),
        ("runner: {retry: {initial_seconds: 10, max_seconds: 5}}\n", "initial_seconds must not be larger"),
    ],
)
def test_new_sections_refuse_nonsense(extra: str, expect: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(BASE + extra, "sections")
    assert any(expect in problem for problem in raised.value.problems), raised.value.problems


@pytest.mark.parametrize(
    "expression",
    [
        "0 2 * * * *",
        "0 0 2 * * * 2026",
        "@daily",
        "0 0 L * *",
        "0 0 * * 5#2",
        "0 0 ? * *",
        "0 0 31 2 *",
        "61 * * * *",
    ],
)
def test_cron_accepts_exactly_five_standard_fields(expression: str) -> None:
    with pytest.raises(ValueError, match="not a valid cron expression"):
        check_cron(expression)


@pytest.mark.parametrize(
    "expression", ["0 2 * * *", "*/30 * * * *", "0 9-16 * * mon-thu", "0 0 29 2 *", "0 0 * JAN SUN"]
)
def test_cron_keeps_standard_expressions(expression: str) -> None:
    assert check_cron(expression) == expression


def test_every_shipped_default_stays_valid() -> None:
    config = load_config(None)
    assert config.runner.approval_ttl_hours == 24 and config.inputs.max_bytes == 512 * 1024**2


# ------------------------------------------------------------------------------- --param


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("service_yaml=" + "[" * 100_000, "--param service_yaml: 100000 characters: larger than the limit"),
        ("service_yaml=" + "[" * 60_000, "--param service_yaml: line 1, column 65: nesting deeper than 64"),
        (
            "service={a: !!python/object/apply:os.system [touch MARKER]}",
            "--param service: line 1, column 5: tag",
        ),
        ("service=[1, 2", "--param service: line 2, column 1: did not find expected"),
        ("service={a: *b}", "--param service: line 1, column 5: alias *b"),
        (
            "service=[" + "x" * 70_000 + "]",
            "--param service: 70002 characters: larger than the limit of 64 KiB",
        ),
        ("service=[a]\x1b", "--param service: line 1, column 4: control character U+001B"),
        (b"service=caf\xe9", "--param service: line 1, column 4: not valid UTF-8"),
        (b"service=[caf\xe9]", "--param service: line 1, column 5: not valid UTF-8"),
    ],
)
def test_hostile_param_values_are_one_line_and_exit_2(value: str | bytes, expect: str, workdir: Path) -> None:
    if isinstance(value, str):
        value = value.replace("MARKER", str(workdir / "executed"))
    code, out = run_cli(workdir, "run", "performance", "--param", value)
    assert_refused(code, out, expect, workdir, set())
    assert len(out.strip().splitlines()) == 1, out


# ------------------------------------------------------------------------- HTTP list filter


@pytest.fixture
def controller_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("ORCHESTRA_API_TOKENS", "alice-token=user:alice")
    monkeypatch.delenv("ORCHESTRA_AUDIENCE", raising=False)
    monkeypatch.delenv("ORCHESTRA_EXTRA_AUTOMATIONS", raising=False)
    store = SqliteStateStore(tmp_path / "state.db")
    app = build_app(
        config=parse_config(FUNCTIONS_CONFIG, "functions-test-config"),
        store=store,
        clock=FakeClock(),
        ids=RandomIds(5),
        registry=build_registry(),
    )
    previous = app_module.set_app(app)
    try:
        yield make_client("controller")
    finally:
        app_module.set_app(previous)
        store.close()


@pytest.mark.parametrize("limit", ["²", "٣", "1²", "0", "5000", "9" * 5000, "-1", "1e3", " 5"])
def test_list_limit_takes_ascii_digits_only(controller_client, limit: str) -> None:  # type: ignore[no-untyped-def]
    response = controller_client.get(  # type: ignore[attr-defined]
        "/runs", query_string={"limit": limit}, headers={"Authorization": "Bearer alice-token"}
    )
    assert response.status_code == 400, response.data
    assert response.json["error"]["field"] == "limit"
    assert "1-" in response.json["error"]["message"]


def test_list_limit_still_accepts_a_number(controller_client) -> None:  # type: ignore[no-untyped-def]
    response = controller_client.get(  # type: ignore[attr-defined]
        "/runs", query_string={"limit": "7"}, headers={"Authorization": "Bearer alice-token"}
    )
    assert response.status_code == 200 and response.json["count"] == 0
