"""`make screenshots` in a temporary directory: the sample store (every automation on its bundled
sample, plus an applied and verified performance change), the console served and drawn by headless
Chromium into two 1280×900 PNGs that show real pages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A blank 1280×900 page compresses to a few kilobytes; drawn text and charts take far more.
MIN_BYTES = 40_000

pytestmark = pytest.mark.timeout(300)


def _script() -> ModuleType:
    path = ROOT / "scripts" / "console_screenshots.py"
    spec = importlib.util.spec_from_file_location("console_screenshots", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return _script()


def test_the_screenshots_show_the_overview_and_a_performance_run(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the workspace automation analyzes the repository it runs in
    monkeypatch.delenv("CONFIG_PATH", raising=False)
    monkeypatch.delenv("ORCHESTRA_STORE", raising=False)
    shots = script.make_screenshots(tmp_path / "images")
    by_name = {shot.path.name: shot for shot in shots}
    assert sorted(by_name) == ["console-overview.png", "console-performance-run.png"]
    for shot in shots:
        assert shot.path.parent == tmp_path / "images"
        assert script.png_size(shot.path) == (1280, 900) == (shot.width, shot.height)
        assert shot.size == shot.path.stat().st_size > MIN_BYTES, shot
    # The run page shows the performance charts: the whole series and the one around the change.
    assert by_name["console-performance-run.png"].charts >= 2


def test_the_sample_store_holds_every_automation_and_a_verified_change(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("CONFIG_PATH", raising=False)
    monkeypatch.delenv("ORCHESTRA_STORE", raising=False)
    built = script.build_store(tmp_path)
    try:
        assert sorted(r.task for r in built.runs) == sorted(built.app.registry.names())
        assert all(r.mode == "analyze" for r in built.runs)
        run = built.performance_run
        assert run.task == "performance" and run.mode == "apply" and run.status == "succeeded"
        (action,) = [a for a in run.actions if a.applied_at is not None]
        verification = action.result["verification"]
        assert verification["outcome"] == "passed" and verification["after"]["series"], verification
    finally:
        built.app.close()


def test_a_png_header_is_read_and_anything_else_refused(script: ModuleType, tmp_path: Path) -> None:
    fake = tmp_path / "not.png"
    fake.write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(script.ScreenshotError, match="not a PNG file"):
        script.png_size(fake)
