"""The import rules of ``[tool.importlinter]``: kept by the tree, and able to catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the ``orchestra`` package under ``root/shared``, with ``root``'s rules."""
    env = {**os.environ, "PYTHONPATH": str(root / "shared")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its rules, free to be broken."""
    shutil.copytree(
        ROOT / "shared" / "orchestra",
        tmp_path / "shared" / "orchestra",
        ignore=shutil.ignore_patterns("__pycache__", "samples"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_module(tree: Path, dotted: str, source: str) -> None:
    path = tree / "shared" / Path(*dotted.split(".")).with_suffix(".py")
    path.write_text(source, encoding="utf-8")


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        (
            "orchestra.automations.infrastructure.borrowed",
            "from ..performance.recommend import plan\n",
            "Automations import the core and the toolkit, never each other",
        ),
        (
            "orchestra.automations.cost.deferred",
            "def f():\n    from ..ai_services import usage\n    return usage\n",
            "Automations import the core and the toolkit, never each other",
        ),
        (
            "orchestra.automations.testing.commands",
            "from ...cli import common\n",
            "Automations do not import the CLI",
        ),
        (
            "orchestra.toolkit.reach",
            "from ..automations.testing import results\n",
            "The toolkit imports the core only, never an automation or the CLI",
        ),
        (
            "orchestra.store.upward",
            "from ..runner import Runner\n",
            "Core layers: each imports only the layers below it",
        ),
    ],
)
def test_a_breach_breaks_its_contract(tree: Path, module: str, source: str, contract: str) -> None:
    _add_module(tree, module, source)
    result = _lint(tree)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout, result.stdout


def test_the_toolkit_loads_no_automation() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import orchestra.toolkit as t\n"
        "for m in pkgutil.walk_packages(t.__path__, 'orchestra.toolkit.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.startswith('orchestra.automations')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
