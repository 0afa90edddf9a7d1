"""Which files a trigger may name, and how input files are opened: the core of the trust model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from orchestra.errors import InputError
from orchestra.inputs import (
    InputDir,
    InputPath,
    InputPolicy,
    Origin,
    OutputPath,
    excerpt,
    open_input,
    resolve_input,
    text_lines,
    validation_context,
)
from pydantic import BaseModel, ValidationError

SECRET = "ORCHESTRA_API_TOKENS=tok-7f3a9c=user:root"


class Paths(BaseModel):
    source: InputPath | None = None
    tree: InputDir | None = None
    target: OutputPath | None = None


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.env"
    secret.write_text(SECRET + "\n")
    (allowed / "cpu.csv").write_text("timestamp,value\n")
    (allowed / "link-out").symlink_to(secret)
    (allowed / "sub").mkdir()
    return {"allowed": allowed, "outside": outside, "secret": secret}


def remote(layout: dict[str, Path]) -> dict[str, object]:
    return validation_context(InputPolicy(Origin.remote, (Path(os.path.realpath(layout["allowed"])),)))


def test_local_triggers_may_name_any_file_and_get_it_resolved(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("x")
    local = validation_context(InputPolicy(Origin.local))
    parsed = Paths.model_validate({"source": "a.csv", "target": "out/policy.yaml"}, context=local)
    assert parsed.source == str(tmp_path / "a.csv")
    assert parsed.target == str(tmp_path / "out" / "policy.yaml")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", "/proc/self/environ"),
        ("source", "/etc/passwd"),
        ("source", "{secret}"),
        ("source", "{allowed}/../outside/secret.env"),
        ("source", "{allowed}/link-out"),
        ("source", "allowed/cpu.csv"),  # relative: resolved against the server's cwd
        ("source", "file://{allowed}/cpu.csv"),
        ("source", "{allowed}/cpu.csv\x00"),
        ("tree", "/"),
        ("tree", "{outside}"),
        ("target", "{allowed}/policy.yaml"),  # outputs are never chosen remotely
        ("target", "/tmp/anything"),
    ],
)
def test_remote_triggers_cannot_reach_outside_the_allowed_directories(layout, field, value) -> None:
    raw = value.format(**layout)
    with pytest.raises(ValidationError) as info:
        Paths.model_validate({field: raw}, context=remote(layout))
    [problem] = info.value.errors()
    assert problem["loc"] == (field,)
    # The message names the rule, never the path or what it points at.
    assert str(layout["outside"]) not in problem["msg"] and "secret" not in problem["msg"]
    assert "tok-7f3a9c" not in str(info.value.errors(include_input=False))


def test_remote_triggers_may_read_inside_the_allowed_directories(layout) -> None:
    parsed = Paths.model_validate(
        {"source": f"{layout['allowed']}/sub/../cpu.csv", "tree": str(layout["allowed"] / "sub")},
        context=remote(layout),
    )
    assert parsed.source == os.path.realpath(layout["allowed"] / "cpu.csv")
    assert parsed.tree == os.path.realpath(layout["allowed"] / "sub")


def test_an_allowed_directory_reached_through_a_symlink_is_resolved_first(layout, tmp_path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(layout["allowed"])
    policy = InputPolicy(Origin.remote, (Path(os.path.realpath(alias)),))
    assert resolve_input(f"{alias}/cpu.csv", policy) == os.path.realpath(layout["allowed"] / "cpu.csv")


def test_without_a_context_the_strictest_policy_applies(layout) -> None:
    with pytest.raises(ValidationError, match="remote triggers may not name local files"):
        Paths.model_validate({"source": str(layout["allowed"] / "cpu.csv")})


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/dev/zero", "not a regular file"),
        ("/dev/urandom", "not a regular file"),
        ("/dev/null", "not a regular file"),
        ("{tmp}", "is a directory"),
        ("{tmp}/missing.csv", "file not found"),
    ],
)
def test_only_regular_files_are_opened(tmp_path, path, message) -> None:
    with pytest.raises(InputError, match=message):
        open_input(path.format(tmp=tmp_path), max_bytes=1024)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        open_input(fifo, max_bytes=1024)


def test_files_over_the_limit_are_refused_before_reading(tmp_path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(InputError, match="larger than the input limit of 1024 bytes") as info:
        open_input(big, max_bytes=1024)
    assert info.value.where == str(big)


def test_a_file_that_grows_while_read_stops_at_the_limit(tmp_path) -> None:
    growing = tmp_path / "growing.log"
    growing.write_bytes(b"a" * 1000)
    with open_input(growing, max_bytes=1024) as reader:
        with growing.open("ab") as more:
            more.write(b"b" * 5000)
        with pytest.raises(InputError, match="larger than the input limit"):
            while reader.read(300):
                pass


def lines_of(data: bytes, chunk: int = 3) -> list[tuple[int, str]]:
    class Reader:
        def __init__(self) -> None:
            self.offset = 0

        def read(self, size: int) -> bytes:
            part = data[self.offset : self.offset + size]
            self.offset += len(part)
            return part

    return list(text_lines(Reader(), "f.csv", chunk_bytes=chunk))


def test_text_lines_streams_utf8_across_chunk_boundaries() -> None:
    data = "\ufeffheader\r\nzwölf,€\n\nlast".encode()
    assert lines_of(data) == [(1, "header"), (2, "zwölf,€"), (3, ""), (4, "last")]
    assert lines_of(b"a\nb\n") == [(1, "a"), (2, "b")]
    assert lines_of(b"") == []


def test_text_lines_refuses_an_endless_line() -> None:
    class Endless:
        def read(self, size: int) -> bytes:
            return b"x" * size

    with pytest.raises(InputError, match="line longer than 1000 characters") as info:
        for _ in text_lines(Endless(), "f.csv", chunk_bytes=256, max_line_chars=1000):
            pass
    assert str(info.value).startswith("f.csv:1:")


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        (b"ok\nstill ok\n\xff\xfe bad\n", "f.csv:3", "not UTF-8"),
        (b"ok\nstill ok\nfine\nalso fine\n\xff", "f.csv:5", "not UTF-8"),
        (b"ok\nLatin-1 caf\xe9\n", "f.csv:2", "not UTF-8"),
        (b"ok\nbin\x00ary\n", "f.csv:2", "NUL bytes"),
    ],
)
def test_text_lines_names_the_line_of_binary_input(data, where, message) -> None:
    with pytest.raises(InputError, match=message) as info:
        lines_of(data)
    assert str(info.value).startswith(where)


def test_excerpt_is_bounded_and_printable() -> None:
    shown = excerpt("\x1b[31m" + SECRET * 10)
    assert len(shown) <= 40 * 4 + 4
    assert "\x1b" not in shown and "\\x1b" in shown
    assert SECRET * 2 not in shown
    assert excerpt(b"caf\xc3\xa9") == "'caf\\xe9'"
    assert excerpt("it's") == "'it\\'s'"
