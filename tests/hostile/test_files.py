"""Billing exports, AI request logs, the AI policy file and the service YAML, hostile or broken:
each ends in exit code 2 with one failed run that names the file (and line), in bounded memory
and time, without a traceback, without quoting more than an excerpt of any line, and without
touching runs recorded before — through the real CLI."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ORCHESTRA = [sys.executable, "-m", "orchestra.cli.main"]
SECRET = "secret-token-123"
SECRET_LINE = f"ORCHESTRA_API_TOKENS={SECRET}"
# The excerpt bound of error messages: a longer piece of any input line must never appear.
EXCERPT = 40
LIMIT = 64 * 1024  # inputs.max_bytes of the small-limit configuration

BILLING_HEADER = "service.description,sku.description,usage_start_time,project.id,cost,credits,currency"
PAD = "x" * 45  # pushes what follows past the excerpt


def billing_row(day: int, cost: str = "1.5") -> str:
    return f"Cloud Run,CPU,2025-01-{day:02d} 00:00:00 UTC,shop,{cost},[],USD"


def usage_row(status: str = "ok", **extra: object) -> str:
    record: dict[str, object] = {
        "timestamp": "2025-03-01T00:00:00Z",
        "model": "gemini-2.5-flash",
        "input_tokens": 10,
        "output_tokens": 5,
        "latency_ms": 120,
        "status": status,
        **extra,
    }
    return json.dumps(record, ensure_ascii=False)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIG_PATH", "ORCHESTRA_STORE")}
    # A FIFO or an endless device must never make the command wait: the timeout fails the test.
    return subprocess.run(
        [*ORCHESTRA, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def stored_runs(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select id, data from docs where collection = 'runs'").fetchall())


@pytest.fixture(scope="module")
def earlier_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one successful cost run and one ai-services run (the bundled samples)."""
    base = tmp_path_factory.mktemp("earlier")
    db = base / "state.db"
    for task in ("cost", "ai-services"):
        done = run_cli("run", task, "--store", f"sqlite:///{db}", "--format", "json", cwd=base)
        assert done.returncode == 0, done.stderr
    return db


@pytest.fixture
def store(earlier_store: Path, tmp_path: Path) -> Path:
    db = tmp_path / "state.db"
    shutil.copyfile(earlier_store, db)
    return db


# ----- the hostile files -----

Maker = Callable[[Path], Path]


def fifo(tmp: Path, name: str) -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def text_file(name: str, text: str) -> Maker:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


def bytes_file(name: str, data: bytes) -> Maker:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return make


def gzip_bomb(name: str, first_line: str) -> Maker:
    """A small .gz whose text goes on (blank lines) far past the input limit."""

    def make(tmp: Path) -> Path:
        path = tmp / name
        with gzip.open(path, "wb", compresslevel=9) as out:
            out.write(first_line.encode() + b"\n")
            block = b"\n" * (1 << 20)
            for _ in range(8):
                out.write(block)
        assert path.stat().st_size < LIMIT  # small on disk: only the decompressed stream is large
        return path

    return make


GARBAGE = random.Random(20250301).randbytes(8192)
LATIN1_BILLING = f"{BILLING_HEADER}\n{billing_row(1)}\nCaf\xe9 Service,CPU,2025-01-02,shop,1,[],USD\n".encode(
    "latin-1"
)
LATIN1_USAGE = (usage_row() + "\n" + usage_row(route="caf\xe9") + "\n").encode("latin-1")
# Mostly bad rows (the run fails), each bad value holding the secret past the excerpt bound.
LEAKY_BILLING = "\n".join(
    [BILLING_HEADER, billing_row(1), *(billing_row(d, f"{PAD}{SECRET_LINE}") for d in range(2, 6))]
)
LEAKY_USAGE = "\n".join([usage_row(), *(usage_row(status=f"{PAD}{SECRET_LINE}") for _ in range(4))])
DEEP_USAGE = "\n".join([usage_row(), *("[" * 100_000 for _ in range(3))])
SURROGATE_USAGE = "\n".join([usage_row(), *(usage_row().replace('"ok"', '"ok\\ud800"') for _ in range(3))])
ESCAPES_BILLING = "\n".join(
    [BILLING_HEADER, billing_row(1), *(f'"\x1b[2J{PAD}",CPU,2025-01-0{d},shop,1,[],USD' for d in range(2, 6))]
)
OVERSIZED_BILLING = "\n".join([BILLING_HEADER, *(billing_row(d % 28 + 1) for d in range(LIMIT // 40))])


@dataclass(frozen=True)
class Case:
    name: str
    task: str
    flag: str  # "--billing", "--usage", or a --param key naming a file
    make: Callable[[Path], Path] | str  # a maker, or a fixed path
    expected: str
    small_limit: bool = False


CASES = [
    # cost: --billing
    Case("billing-dev-zero", "cost", "--billing", "/dev/zero", "not a regular file"),
    Case("billing-dev-urandom", "cost", "--billing", "/dev/urandom", "not a regular file"),
    Case("billing-fifo", "cost", "--billing", lambda t: fifo(t, "billing.csv"), "not a regular file"),
    Case("billing-directory", "cost", "--billing", lambda t: t, "is a directory"),
    Case(
        "billing-over-limit",
        "cost",
        "--billing",
        text_file("big.csv", OVERSIZED_BILLING),
        f"larger than the input limit of {LIMIT} bytes",
        small_limit=True,
    ),
    Case(
        "billing-gzip-bomb",
        "cost",
        "--billing",
        gzip_bomb("bomb.csv.gz", BILLING_HEADER),
        f"decompresses to more than the input limit of {LIMIT} bytes",
        small_limit=True,
    ),
    Case(
        "billing-not-gzip", "cost", "--billing", bytes_file("fake.csv.gz", GARBAGE), "not a valid gzip file"
    ),
    Case("billing-binary", "cost", "--billing", bytes_file("garbage.csv", GARBAGE), ":1: not UTF-8 text"),
    Case("billing-latin1", "cost", "--billing", bytes_file("latin1.csv", LATIN1_BILLING), "not UTF-8 text"),
    Case("billing-secret", "cost", "--billing", text_file("leaky.csv", LEAKY_BILLING), "rows are malformed"),
    Case(
        "billing-terminal-escapes",
        "cost",
        "--billing",
        text_file("escapes.csv", ESCAPES_BILLING),
        "holds control characters",
    ),
    # ai-services: --usage
    Case("usage-dev-zero", "ai-services", "--usage", "/dev/zero", "not a regular file"),
    Case("usage-dev-urandom", "ai-services", "--usage", "/dev/urandom", "not a regular file"),
    Case("usage-fifo", "ai-services", "--usage", lambda t: fifo(t, "usage.jsonl"), "not a regular file"),
    Case("usage-directory", "ai-services", "--usage", lambda t: t, "is a directory"),
    Case(
        "usage-gzip-bomb",
        "ai-services",
        "--usage",
        gzip_bomb("bomb.jsonl.gz", usage_row()),
        f"decompresses to more than the input limit of {LIMIT} bytes",
        small_limit=True,
    ),
    Case(
        "usage-binary", "ai-services", "--usage", bytes_file("garbage.jsonl", GARBAGE), ":1: not UTF-8 text"
    ),
    Case(
        "usage-latin1",
        "ai-services",
        "--usage",
        bytes_file("latin1.jsonl", LATIN1_USAGE),
        "not UTF-8 text",
    ),
    Case(
        "usage-secret", "ai-services", "--usage", text_file("leaky.jsonl", LEAKY_USAGE), "rows are malformed"
    ),
    Case(
        "usage-deep-nesting",
        "ai-services",
        "--usage",
        text_file("deep.jsonl", DEEP_USAGE),
        "nested too deeply",
    ),
    Case(
        "usage-lone-surrogate",
        "ai-services",
        "--usage",
        text_file("surrogate.jsonl", SURROGATE_USAGE),
        "lone surrogate",
    ),
    Case(
        "usage-endless-line",
        "ai-services",
        "--usage",
        text_file("endless.jsonl", usage_row() + "\n{" + "a" * (17 << 20)),
        ":2: line longer than 16,777,216 bytes",
    ),
    # the service YAML the performance automation reads (through the Cloud Run YAML actuator)
    Case("service-yaml-dev-zero", "performance", "service_yaml", "/dev/zero", "not a regular file"),
    Case(
        "service-yaml-fifo",
        "performance",
        "service_yaml",
        lambda t: fifo(t, "svc.yaml"),
        "not a regular file",
    ),
    Case(
        "service-yaml-binary",
        "performance",
        "service_yaml",
        bytes_file("svc.yaml", GARBAGE),
        "not valid YAML",
    ),
    Case(
        "service-yaml-secret-alias",
        "performance",
        "service_yaml",
        text_file("svc.yaml", f"apiVersion: serving.knative.dev/v1\nkind: Service\nspec: *{PAD}{SECRET}\n"),
        "svc.yaml:3:7: not valid YAML",
    ),
    Case(
        "service-yaml-secret-kind",
        "performance",
        "service_yaml",
        text_file("svc.yaml", f"apiVersion: serving.knative.dev/v1\nkind: {PAD}{SECRET_LINE}\n"),
        "expected apiVersion serving.knative.dev/v1 and kind Service",
    ),
    Case(
        "service-yaml-over-limit",
        "performance",
        "service_yaml",
        text_file("svc.yaml", "# padding\n" * 30_000),
        "the limit for a YAML document",
    ),
]


def input_lines(path: Path) -> list[str]:
    """The lines of a hostile input file; of a very long line, its two ends (what a reader that
    quotes too much would quote)."""
    if not path.is_file() or path.suffix == ".gz":
        return []
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return [
        part for line in lines for part in ((line,) if len(line) <= 8192 else (line[:4096], line[-4096:]))
    ]


def longest_quoted_run(output: str, lines: list[str]) -> int:
    """The longest piece of any input line (beyond EXCERPT characters) found in ``output``."""
    for line in lines:
        for start in range(0, max(0, len(line) - EXCERPT)):
            if line[start : start + EXCERPT + 1] in output:
                return EXCERPT + 1
    return 0


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_files_end_in_one_bad_input_run(case: Case, tmp_path: Path, store: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    target = Path(case.make) if isinstance(case.make, str) else case.make(work)
    before = stored_runs(store)
    args = ["run", case.task, "--store", f"sqlite:///{store}", "--format", "json"]
    if case.flag.startswith("--"):
        args += [case.flag, str(target)]
    else:
        args += ["--param", f"{case.flag}={target}"]
    if case.small_limit:
        config = tmp_path / "small-inputs.yaml"
        config.write_text(
            "default_environment: development\n"
            "environments: {development: {automation_level: 1}}\n"
            f"inputs: {{max_bytes: {LIMIT}}}\n"
        )
        args += ["--config", str(config)]

    done = run_cli(*args, cwd=work)

    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    run = json.loads(done.stdout)
    assert run["status"] == "failed", run
    assert run["error"]["bad_input"] is True and run["error"]["type"] == "InputError", run["error"]
    message = run["error"]["message"]
    assert case.expected in message, message
    assert message.startswith(str(target.resolve())), message  # names the file
    assert SECRET not in output
    assert longest_quoted_run(output, input_lines(target)) == 0, output
    after = stored_runs(store)
    assert {k: after[k] for k in before} == before  # earlier runs untouched
    assert set(after) - set(before) == {run["id"]}  # exactly one new run: this one


def test_policy_file_that_is_not_a_file_fails_the_apply_run(tmp_path: Path, store: Path) -> None:
    before = stored_runs(store)
    args = ["run", "ai-services", "--mode", "apply", "--automation-level", "3"]
    args += ["--param", "policy_path=/dev/zero", "--store", f"sqlite:///{store}", "--format", "json"]
    done = run_cli(*args, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in output, output
    run = json.loads(done.stdout)
    assert run["error"]["bad_input"] is True
    assert (
        run["error"]["message"] == "/dev/zero: not a regular file (a device, FIFO or socket); expected a file"
    )
    assert all(action["status"] != "applied" for action in run["actions"])
    after = stored_runs(store)
    assert {k: after[k] for k in before} == before


def test_policy_file_with_a_secret_is_refused_with_an_excerpt(tmp_path: Path, store: Path) -> None:
    policy = tmp_path / "ai-policy.yaml"
    original = f"version: 1\nrouting:\n  - route: {PAD}{SECRET_LINE}\n    bogus: 1\n"
    policy.write_text(original)
    args = ["run", "ai-services", "--mode", "apply", "--automation-level", "3"]
    args += ["--param", f"policy_path={policy}", "--store", f"sqlite:///{store}", "--format", "json"]
    done = run_cli(*args, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in output, output
    run = json.loads(done.stdout)
    assert "does not match schema version 1" in run["error"]["message"], run["error"]
    assert SECRET not in output
    assert policy.read_text() == original  # nothing written over a broken file


def test_a_few_bad_rows_become_a_finding_quoting_only_excerpts(tmp_path: Path, store: Path) -> None:
    """Under the bad-row limit the run succeeds; the stored reasons still quote only excerpts."""
    rows = [billing_row(d % 28 + 1) for d in range(400)]
    rows[7] = billing_row(3, f"{PAD}{SECRET_LINE}")
    billing = tmp_path / "mostly-good.csv"
    billing.write_text("\n".join([BILLING_HEADER, *rows]) + "\n")
    done = run_cli(
        "run",
        "cost",
        "--billing",
        str(billing),
        "--store",
        f"sqlite:///{store}",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    finding = next(f for f in run["findings"] if f["id"] == "input:malformed-rows")
    assert finding["evidence"]["lines"] == [
        {"line": 9, "reason": f"cost: '{PAD[:EXCERPT]}…' is not a number"}
    ]
    stored = stored_runs(store)[run["id"]]
    assert SECRET not in stored and SECRET not in done.stdout
