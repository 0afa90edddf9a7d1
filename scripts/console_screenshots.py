"""Screenshots of the operator console for the README, made from the bundled sample data.

    .venv/bin/python scripts/console_screenshots.py [--out docs/images]     (make screenshots)

1. A SQLite store in a temporary directory gets what ``make run`` makes: with the built-in
   default configuration, every automation analyzes its bundled sample (analyze mode,
   development). Then the performance automation
   applies its recommendation to a copy of the sample service YAML (local adapters: no cloud),
   having seen the sample's CPU series up to the end of a breach episode; the series' next real
   samples are what it sees after the change, so the run page has a before/after chart.
2. The console is served on a loopback port, signed in through its one-time login URL.
3. Headless Chromium (Debian's ``chromium`` and ``chromedriver``) saves 1280×900 PNGs:
   ``console-overview.png`` (the overview) and ``console-performance-run.png`` (the applied
   performance run, scrolled to its charts).

The clock is fixed and ids are seeded: dates, ids and findings are the same from one run to the
next (the workspace automation analyzes the repository the script runs in).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import shutil
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestra.app import App, build_app, load_config
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import default_config_text
from orchestra.console.app import create_console
from orchestra.console.auth import LocalAuth
from orchestra.inputs import Origin
from orchestra.models import Mode, Run, RunStatus, TriggerKind
from orchestra.runner import RunRequest
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "shared" / "orchestra" / "samples" / "performance"
CPU_SAMPLE = SAMPLES / "ec2_cpu_utilization_825cc2.csv"
SERVICE_YAML = SAMPLES / "service.yaml"
CHROMIUM = Path(os.environ.get("ORCHESTRA_CHROMIUM") or "/usr/bin/chromium")
CHROMEDRIVER = Path(os.environ.get("ORCHESTRA_CHROMEDRIVER") or "/usr/bin/chromedriver")
WIDTH, HEIGHT = 1280, 900
OVERVIEW_PNG = "console-overview.png"
PERFORMANCE_PNG = "console-performance-run.png"
# A Thursday morning: inside production's default deployment window.
NOW = dt.datetime(2026, 1, 8, 10, 0, tzinfo=dt.UTC)
OPERATOR = "user:operator"
# The performance automation sees the CPU series up to the end of the sample's second breach
# episode (2014-04-16 03:24), then the next five hours of real samples as "after the change".
SEEN_UNTIL = "2014-04-16 03:25:00"
AFTER_UNTIL = "2014-04-16 08:30:00"


class ScreenshotError(Exception):
    """A step of making the screenshots failed; the message says which and what to do."""


@dataclass(frozen=True)
class Built:
    """The sample store and what the screenshots show from it."""

    app: App
    clock: FakeClock
    runs: list[Run]
    performance_run: Run


@dataclass(frozen=True)
class Shot:
    path: Path
    width: int
    height: int
    size: int
    charts: int


def _cpu_rows(until: str, after: str | None = None) -> list[list[str]]:
    """The sample's CPU rows before ``until`` (or, with ``after``, from ``until`` to ``after``)."""
    with CPU_SAMPLE.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    if after is None:
        picked = [r for r in body if r[0] < until]
    else:
        picked = [r for r in body if until <= r[0] < after]
    return [header, *picked] if after is None else picked


def build_store(workdir: Path) -> Built:
    """Runs every automation on its sample, then an applied, verified performance change."""
    config_path = workdir / "config.yaml"
    config_path.write_text(default_config_text())  # the built-in defaults, as `make run` uses
    clock = FakeClock(NOW)
    app = build_app(
        config=load_config(config_path),
        store_url=f"sqlite:///{workdir / 'state.db'}",
        clock=clock,
        ids=RandomIds(2026),
    )
    runs: list[Run] = []
    for name in app.registry.names():
        runs.append(_submit(app, name, Mode.analyze, {}, f"readme:{name}"))
        clock.advance(seconds=7)

    cpu = workdir / "cpu.csv"
    with cpu.open("w", newline="") as handle:
        csv.writer(handle).writerows(_cpu_rows(SEEN_UNTIL))
    service_yaml = workdir / "service.yaml"
    shutil.copyfile(SERVICE_YAML, service_yaml)
    params = {"metrics": {"cpu": str(cpu)}, "service_yaml": str(service_yaml)}
    applied = _submit(app, "performance", Mode.apply, params, "readme:performance-change", level=3)
    if not any(a.applied_at for a in applied.actions):
        raise ScreenshotError(
            f"the performance automation applied nothing to the sample ({applied.status}: "
            f"{applied.reason or 'no action'}); the run page would have no before/after chart"
        )
    # The samples that follow arrive; the pending verification is checked again.
    with cpu.open("a", newline="") as handle:
        csv.writer(handle).writerows(_cpu_rows(SEEN_UNTIL, AFTER_UNTIL))
    clock.advance(minutes=20)
    app.runner.recheck_verifications("performance", "development")
    performance_run = app.store.get_run(applied.id)
    if performance_run is None or performance_run.status != RunStatus.succeeded:
        status = performance_run.status if performance_run else "missing"
        raise ScreenshotError(f"the applied performance run {applied.id} is {status}, not succeeded")
    return Built(app=app, clock=clock, runs=runs, performance_run=performance_run)


def _submit(app: App, task: str, mode: Mode, params: dict[str, object], trigger: str, level: int = 1) -> Run:
    outcome = app.runner.submit(
        RunRequest(
            task=task,
            environment="development",
            mode=mode,
            automation_level=level,
            params=params,
            trigger_kind=TriggerKind.manual,
            trigger_id=trigger,
            requested_by=OPERATOR,
            origin=Origin.local,
        )
    )
    return outcome.run


@contextmanager
def serve_console(app: App, clock: FakeClock) -> Iterator[str]:
    """The console on a free loopback port; yields its one-time login URL."""
    auth = LocalAuth(OPERATOR, clock)
    server = make_server("127.0.0.1", 0, _Late(), threaded=True, request_handler=_QuietHandler)
    port = server.socket.getsockname()[1]
    server.app.target = create_console(  # type: ignore[attr-defined]
        lambda: app, auth, allowed_hosts=frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})
    )
    thread = threading.Thread(target=server.serve_forever, name="console", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/login?token={auth.issue_login_token()}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


class _QuietHandler(WSGIRequestHandler):
    """No access log: the script prints only the PNGs it saved."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _Late:
    """The WSGI entry the server starts with: the console needs the bound port first."""

    target: object = None

    def __call__(self, environ: dict[str, object], start_response: object) -> object:
        if self.target is None:
            raise RuntimeError("the console is not plugged in yet")
        return self.target(environ, start_response)  # type: ignore[operator]


@contextmanager
def browser(profile: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            raise ScreenshotError(f"{path} is missing: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        # The viewport itself is 1280×900, whatever the window decorations take.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (IHDR)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ScreenshotError(f"{path}: not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _save(driver: object, path: Path, charts: int) -> Shot:
    if not driver.save_screenshot(str(path)):  # type: ignore[attr-defined]
        raise ScreenshotError(f"chromium saved no screenshot to {path}")
    width, height = png_size(path)
    return Shot(path=path, width=width, height=height, size=path.stat().st_size, charts=charts)


def take_screenshots(built: Built, out_dir: Path, scratch: Path) -> list[Shot]:
    from selenium.webdriver.common.by import By

    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    with serve_console(built.app, built.clock) as login_url, browser(scratch / "chromium-profile") as driver:
        driver.get(login_url)  # type: ignore[attr-defined]
        if not driver.find_elements(By.ID, "identity"):  # type: ignore[attr-defined]
            raise ScreenshotError("the console's login URL did not sign in")
        shots.append(_save(driver, out_dir / OVERVIEW_PNG, charts=0))
        base = login_url.split("/login", 1)[0]
        driver.get(f"{base}/runs/{built.performance_run.id}")  # type: ignore[attr-defined]
        sections = driver.find_elements(By.CSS_SELECTOR, "section.plugin")  # type: ignore[attr-defined]
        charts = driver.find_elements(By.CSS_SELECTOR, "section.plugin svg")  # type: ignore[attr-defined]
        if not sections or not charts:
            raise ScreenshotError(f"run {built.performance_run.id}: the page shows no performance chart")
        driver.execute_script("arguments[0].scrollIntoView(true);", sections[0])  # type: ignore[attr-defined]
        shots.append(_save(driver, out_dir / PERFORMANCE_PNG, charts=len(charts)))
    return shots


def make_screenshots(out_dir: Path) -> list[Shot]:
    """Everything in a temporary directory, the PNGs into ``out_dir``."""
    with tempfile.TemporaryDirectory(prefix="orchestra-screenshots-") as tmp:
        workdir = Path(tmp)
        built = build_store(workdir)
        try:
            return take_screenshots(built, out_dir, workdir)
        finally:
            built.app.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where the PNGs go")
    args = parser.parse_args(argv)
    try:
        shots = make_screenshots(args.out)
    except ScreenshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for shot in shots:
        print(f"{shot.path} {shot.width}x{shot.height} {shot.size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
