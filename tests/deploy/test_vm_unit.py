"""The systemd unit for continuous mode on a VM (deploy/vm/): command line, stop, state, hardening."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT

VM_DIR = ROOT / "deploy" / "vm"
UNIT = VM_DIR / "orchestra-controller.service"
ENV_EXAMPLE = VM_DIR / "controller.env.example"
INSTALLED_BINARY = "/opt/orchestra/.venv/bin/orchestra"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str, where: str) -> Unit:
    """Sections of a unit file, every key with all its values in order (systemd keys repeat)."""
    sections: Unit = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if not sep or current is None:
            raise ValueError(f"{where}:{number}: expected KEY=VALUE inside a [Section]")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _unit() -> Unit:
    return parse_unit(UNIT.read_text(), str(UNIT))


def _one(unit: Unit, section: str, key: str) -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}: expected exactly one value, got {values}"
    return values[0]


def _env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _argv(unit: Unit) -> list[str]:
    """ExecStart with ${VAR} taken from Environment= overridden by the example environment file,
    as systemd resolves it."""
    env = dict(v.split("=", 1) for v in unit["Service"]["Environment"])
    env.update(_env_file(ENV_EXAMPLE))
    command = _one(unit, "Service", "ExecStart")
    unresolved = set(re.findall(r"\$\{(\w+)\}", command)) - env.keys()
    assert not unresolved, f"ExecStart uses variables nothing defines: {sorted(unresolved)}"
    return shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], command))


def test_parser_rejects_keys_outside_a_section() -> None:
    with pytest.raises(ValueError, match="x.service:1"):
        parse_unit("ExecStart=/bin/true\n", "x.service")
    parsed = parse_unit("[Service]\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged\n", "u")
    assert parsed == {"Service": {"SystemCallFilter": ["@system-service", "~@privileged"]}}


def test_execstart_runs_the_continuous_controller_from_the_virtualenv() -> None:
    unit = _unit()
    argv = _argv(unit)
    assert argv[0] == INSTALLED_BINARY
    assert argv[1:4] == ["controller", "--mode", "continuous"]
    assert argv[argv.index("--port") + 1] == "8080"
    assert argv[argv.index("--environment") + 1] == "production"


def test_execstart_options_are_accepted_by_the_controller_command() -> None:
    from orchestra.cli.controller import controller_cmd

    argv = _argv(_unit())
    ctx = controller_cmd.make_context("controller", argv[2:])
    assert ctx.params["mode"] == "continuous"
    assert ctx.params["port"] == 8080 and ctx.params["host"] == "0.0.0.0"


def test_environment_file_carries_config_store_and_project() -> None:
    unit = _unit()
    assert _one(unit, "Service", "EnvironmentFile") == "/etc/orchestra/controller.env"
    example = _env_file(ENV_EXAMPLE)
    assert example["CONFIG_PATH"] == "/etc/orchestra/config.yaml"
    assert example["ORCHESTRA_STORE"].startswith("firestore://")
    assert example["GOOGLE_CLOUD_PROJECT"] == "PROJECT_ID"


def test_runs_as_a_dedicated_user_and_restarts_on_failure() -> None:
    unit = _unit()
    assert _one(unit, "Service", "User") == "orchestra"
    assert _one(unit, "Service", "Group") == "orchestra"
    assert _one(unit, "Service", "Restart") == "on-failure"
    assert "network-online.target" in _one(unit, "Unit", "After")
    assert _one(unit, "Install", "WantedBy") == "multi-user.target"


def test_stop_is_sigterm_with_room_for_the_grace_period() -> None:
    unit = _unit()
    argv = _argv(unit)
    grace = float(argv[argv.index("--grace-seconds") + 1])
    assert _one(unit, "Service", "KillSignal") == "SIGTERM"
    assert _one(unit, "Service", "KillMode") == "mixed"
    timeout = _one(unit, "Service", "TimeoutStopSec")
    assert timeout.endswith("s")
    assert float(timeout[:-1]) >= grace + 10


def test_state_directory_is_the_only_writable_path() -> None:
    service = _unit()["Service"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["StateDirectory"] == ["orchestra"]
    assert service["WorkingDirectory"] == ["/var/lib/orchestra"]
    assert "ReadWritePaths" not in service
    assert service["UMask"] == ["0077"]


def test_hardening_options_have_safe_values() -> None:
    service = _unit()["Service"]
    expected = {
        "NoNewPrivileges": ["yes"],
        "CapabilityBoundingSet": [""],
        "AmbientCapabilities": [""],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"],
        "ProtectKernelTunables": ["yes"],
        "ProtectKernelModules": ["yes"],
        "ProtectKernelLogs": ["yes"],
        "ProtectControlGroups": ["yes"],
        "ProtectClock": ["yes"],
        "RestrictNamespaces": ["yes"],
        "RestrictRealtime": ["yes"],
        "RestrictSUIDSGID": ["yes"],
        "LockPersonality": ["yes"],
        "MemoryDenyWriteExecute": ["yes"],
        "SystemCallArchitectures": ["native"],
        "SystemCallFilter": ["@system-service", "~@privileged"],
    }
    wrong = {key: service.get(key) for key, value in expected.items() if service.get(key) != value}
    assert not wrong, f"hardening keys missing or weakened: {wrong}"
    families = set(_one(_unit(), "Service", "RestrictAddressFamilies").split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6"}


MDWE_PROBE = textwrap.dedent(
    """
    import ctypes, mmap, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        sys.exit(f"PR_SET_MDWE failed: errno {ctypes.get_errno()} (needs Linux 6.3 or later)")
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        pass
    else:
        sys.exit("a writable and executable mapping was allowed: the probe checks nothing")
    import numpy, grpc, google.cloud.firestore, google.cloud.bigquery, google.cloud.monitoring_v3
    numpy.linalg.svd(numpy.arange(16.0).reshape(4, 4))
    from orchestra.cli.main import main
    sys.argv = ["orchestra", *sys.argv[1:]]
    sys.exit(main())
    """
)


def test_controller_runs_with_write_execute_memory_denied(tmp_path: Path) -> None:
    """MemoryDenyWriteExecute=yes holds for this code: one controller pass, with the libraries it
    loads, succeeds in a process the kernel refuses writable-executable memory."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MDWE_PROBE,
            "controller",
            "--mode",
            "once",
            "--format",
            "json",
            "--store",
            f"sqlite:///{tmp_path / 'state.db'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"status": "succeeded"' in done.stdout


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on the unit with ExecStart pointing at this checkout's binary
    (verify checks that the command exists)."""
    local = Path(sys.executable).with_name("orchestra")
    path = tmp_path / UNIT.name
    path.write_text(unit_text.replace(INSTALLED_BINARY, str(local)))
    return subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """The parse tests above are the check everywhere; where systemd-analyze is installed it must
    also accept every line (it exits 0 on unparsable values, so stderr must be empty too) and a
    broken value must be reported."""
    if shutil.which("systemd-analyze") is None:
        return
    good = _verify(UNIT.read_text(), tmp_path)
    assert good.returncode == 0 and good.stderr == "", good.stderr
    broken = _verify(UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=bogus"), tmp_path)
    assert "ProtectSystem" in broken.stderr or "protect system" in broken.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert security.returncode == 0, security.stdout[-3000:]


def test_ide_task_names_match_the_documentation() -> None:
    """The IDE tasks the README names exist in .vscode/tasks.json under exactly those labels."""
    tasks_text = (ROOT / ".vscode" / "tasks.json").read_text()
    tasks = json.loads(
        "\n".join(line for line in tasks_text.splitlines() if not line.lstrip().startswith("//"))
    )
    labels = {task["label"] for task in tasks["tasks"]}
    documented = {"Orchestra: analyze workspace", "Orchestra: optimize workspace"}
    readme = " ".join((ROOT / "README.md").read_text().split())
    for name in documented:
        assert f'"{name}"' in readme, f"README.md does not name the IDE task {name!r}"
    assert documented <= labels, f"tasks.json labels {sorted(labels)} lack {sorted(documented - labels)}"
    assert all(label.startswith("Orchestra: ") for label in labels), sorted(labels)
