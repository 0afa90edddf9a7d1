"""The soak is a tool of the repository: no function archive carries it, and nothing shipped
imports it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _packager():
    spec = importlib.util.spec_from_file_location(
        "package_functions", ROOT / "scripts" / "package_functions.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_function_archive_carries_the_soak():
    packager = _packager()
    names = packager.available_functions()
    assert "scheduled" in names
    for name in names:
        paths = [path for path, _ in packager.archive_entries(name)]
        assert any(p.startswith("orchestra/") for p in paths)
        assert not [p for p in paths if p.split("/", 1)[0] == "soak" or "soak/plugin" in p], name


def test_nothing_shipped_imports_the_soak():
    shipped = [
        *sorted((ROOT / "shared" / "orchestra").rglob("*.py")),
        *sorted((ROOT / "functions").rglob("*.py")),
    ]
    assert shipped
    offenders = [
        str(p.relative_to(ROOT))
        for p in shipped
        if any(line.strip().startswith(("import soak", "from soak")) for line in p.read_text().splitlines())
    ]
    assert offenders == []
