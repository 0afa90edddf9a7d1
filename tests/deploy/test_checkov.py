"""checkov over terraform/ and the GKE manifest: zero failed checks, every skip explained."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from .conftest import ROOT, find_tool

SCANNED = ["terraform", "deploy/gke"]
_INLINE_SKIP = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """One checkov run per test session (it takes a few seconds)."""
    checkov = find_tool(
        "checkov",
        ROOT / ".venv-tools" / "bin" / "checkov",
        hint="`make tools` installs it into .venv-tools (its pins conflict with requirements-dev.txt)",
    )
    out = tmp_path_factory.mktemp("checkov")
    args = [checkov, "--skip-download", "--quiet", "-o", "json", "--output-file-path", str(out)]
    for path in SCANNED:
        args += ["-d", path]
    # --skip-download: no calls to the vendor's platform; the checks ship with the package.
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    report_file = out / "results_json.json"
    assert report_file.is_file(), (
        f"checkov wrote no report (exit {result.returncode}):\n{result.stderr[-3000:]}"
    )
    data = json.loads(report_file.read_text())
    return data if isinstance(data, list) else [data]


def test_checkov_has_no_failed_checks(checkov_reports: list[dict[str, Any]]) -> None:
    failures = [
        f"{r['check_type']}: {c['check_id']} {c['check_name']} — {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for r in checkov_reports
        for c in r["results"].get("failed_checks", [])
    ]
    assert not failures, "checkov failed checks:\n" + "\n".join(failures)
    for report in checkov_reports:
        assert report["summary"]["failed"] == 0, report["summary"]
        assert report["summary"]["parsing_errors"] == 0, report["summary"]


def test_checkov_scanned_everything(checkov_reports: list[dict[str, Any]]) -> None:
    by_type = {r["check_type"]: r["summary"] for r in checkov_reports}
    assert {"terraform", "kubernetes", "dockerfile"} <= set(by_type), by_type
    # A parse that silently found nothing would pass with zero failures.
    assert by_type["terraform"]["resource_count"] >= 40
    assert by_type["terraform"]["passed"] >= 40
    assert by_type["kubernetes"]["resource_count"] >= 3


def test_every_skip_is_documented(checkov_reports: list[dict[str, Any]]) -> None:
    for report in checkov_reports:
        for check in report["results"].get("skipped_checks", []):
            reason = (check["check_result"].get("suppress_comment") or "").strip()
            assert len(reason) >= 30, f"{check['check_id']} on {check['resource']} skipped without a reason"
    for base in SCANNED:
        for path in sorted((ROOT / base).rglob("*")):
            if not path.is_file() or path.suffix not in {".tf", ".yaml", ".yml", ""}:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                match = _INLINE_SKIP.search(line)
                if match:
                    assert match.group(2) and len(match.group(2).strip()) >= 30, (
                        f"{path.relative_to(ROOT)}:{number}: skip of {match.group(1)} needs a reason"
                    )
