"""Check the system tools `make test` and `make lint` need, before anything is installed.

Runs with the interpreter the Makefile creates the virtualenv with (standard library only, so it
can also report an interpreter that is too old). Prints one line per missing or too-old tool,
with how to install it, and exits 1 if any; prints one summary line and exits 0 otherwise.

    python3 scripts/check_prerequisites.py [test|lint]

The versions named are the ones the suite is tested with (`.github/workflows/ci.yml` installs
the same ones); older ones than the minimum are refused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

PYTHON_VERSION = (3, 11)
JAVA_MIN = 17
TERRAFORM_MIN = (1, 5, 0)
GCLOUD_COMPONENTS = {
    "beta": "google-cloud-cli (the beta commands ship with it) or `gcloud components install beta`",
    "cloud-firestore-emulator": "apt-get install google-cloud-cli-firestore-emulator "
    "or `gcloud components install cloud-firestore-emulator`",
    "pubsub-emulator": "apt-get install google-cloud-cli-pubsub-emulator "
    "or `gcloud components install pubsub-emulator`",
}
SDK_HINT = "install the Google Cloud SDK: https://cloud.google.com/sdk/docs/install (apt: google-cloud-cli)"


@dataclass(frozen=True)
class Problem:
    tool: str
    what: str
    install: str

    def line(self) -> str:
        return f"missing prerequisite: {self.tool}: {self.what}; install: {self.install}"


def _run(argv: list[str], timeout_s: float = 60) -> tuple[int, str]:
    """Exit code and combined output of a version command (never raises for a broken tool)."""
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, env=env, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, f"{argv[0]} could not run: {type(exc).__name__}"
    return done.returncode, done.stdout + done.stderr


def check_python() -> list[Problem]:
    found = sys.version_info[:2]
    install = "apt-get install python3.11 python3.11-venv, then run make with PYTHON=python3.11"
    if found != PYTHON_VERSION:
        return [
            Problem(
                f"Python {PYTHON_VERSION[0]}.{PYTHON_VERSION[1]}",
                f"{sys.executable} is Python {found[0]}.{found[1]}",
                install,
            )
        ]
    code, _ = _run([sys.executable, "-c", "import ensurepip, venv"])
    if code != 0:
        return [Problem("Python venv", f"{sys.executable} cannot create virtualenvs", install)]
    return []


def check_commands(names: dict[str, str]) -> list[Problem]:
    return [
        Problem(name, "not on PATH", install) for name, install in names.items() if shutil.which(name) is None
    ]


def check_java() -> list[Problem]:
    install = (
        f"apt-get install openjdk-{JAVA_MIN}-jre-headless (Java {JAVA_MIN} or newer; the emulators run on it)"
    )
    if shutil.which("java") is None:
        return [Problem("java", "not on PATH", install)]
    code, out = _run(["java", "-version"])
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if code != 0 or not match:
        return [Problem("java", "`java -version` did not report a version", install)]
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < JAVA_MIN:
        return [Problem("java", f"Java {major} found, {JAVA_MIN} or newer needed", install)]
    return []


def check_gcloud() -> list[Problem]:
    if shutil.which("gcloud") is None:
        return [Problem("gcloud", "not on PATH", SDK_HINT)]
    code, out = _run(["gcloud", "version"])
    if code != 0:
        return [Problem("gcloud", f"`gcloud version` exited {code}", SDK_HINT)]
    installed = {line.split()[0] for line in out.splitlines() if line.strip()}
    return [
        Problem(f"gcloud component {name}", "not installed", install)
        for name, install in GCLOUD_COMPONENTS.items()
        if name not in installed
    ]


def check_terraform() -> list[Problem]:
    minimum = ".".join(map(str, TERRAFORM_MIN))
    install = (
        f"Terraform {minimum} or newer (tested: 1.11.4): https://developer.hashicorp.com/terraform/install"
    )
    if shutil.which("terraform") is None:
        return [Problem("terraform", "not on PATH", install)]
    code, out = _run(["terraform", "version"])
    match = re.search(r"Terraform v(\d+)\.(\d+)\.(\d+)", out)
    if code != 0 or not match:
        return [Problem("terraform", "`terraform version` did not report a version", install)]
    found = tuple(int(part) for part in match.groups())
    if found < TERRAFORM_MIN:
        return [
            Problem("terraform", f"v{'.'.join(match.groups())} found, {minimum} or newer needed", install)
        ]
    return []


BROWSER_FILES = (
    os.environ.get("ORCHESTRA_CHROMIUM") or "/usr/bin/chromium",
    os.environ.get("ORCHESTRA_CHROMEDRIVER") or "/usr/bin/chromedriver",
)
BROWSER_INSTALL = (
    "apt-get install -y chromium chromium-driver (as root; the console's browser tests need them), "
    "or name another install with ORCHESTRA_CHROMIUM and ORCHESTRA_CHROMEDRIVER"
)


def check_browser() -> list[Problem]:
    """Headless Chromium and its driver for the console's browser tests: installed here when
    missing and this runs as root with apt-get, else one line saying how."""
    missing = [path for path in BROWSER_FILES if not os.path.isfile(path)]
    if not missing:
        return []
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
        ):
            done = subprocess.run(argv, capture_output=True, text=True, env=quiet, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                return [Problem("chromium", f"`{' '.join(argv)}` failed ({tail[0]})", BROWSER_INSTALL)]
        missing = [path for path in BROWSER_FILES if not os.path.isfile(path)]
    return [Problem("chromium", f"{path} not found", BROWSER_INSTALL) for path in missing]


BASE_COMMANDS = {
    "git": "apt-get install git",
    "bash": "apt-get install bash",
}
TEST_COMMANDS = {
    "ps": "apt-get install procps (ps, pgrep, pkill)",
    "pgrep": "apt-get install procps (ps, pgrep, pkill)",
}
CHECKS: dict[str, list[Callable[[], list[Problem]]]] = {
    "lint": [check_python, lambda: check_commands(BASE_COMMANDS), check_terraform],
    "test": [
        check_python,
        lambda: check_commands({**BASE_COMMANDS, **TEST_COMMANDS}),
        check_java,
        check_gcloud,
        check_terraform,
        check_browser,
    ],
}


def main(argv: list[str]) -> int:
    target = argv[0] if argv else "test"
    if target not in CHECKS or len(argv) > 1:
        print(f"usage: check_prerequisites.py [{'|'.join(CHECKS)}] (got {' '.join(argv)!r})", file=sys.stderr)
        return 2
    problems = [problem for check in CHECKS[target] for problem in check()]
    for problem in problems:
        print(problem.line(), file=sys.stderr)
    if problems:
        print(f"make {target}: {len(problems)} prerequisite(s) missing (see README, Tests)", file=sys.stderr)
        return 1
    print(f"make {target}: prerequisites present")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
