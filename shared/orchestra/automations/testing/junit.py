"""JUnit XML: the shapes pytest, Maven Surefire and go-junit-report write.

- ``<testsuites>`` (optionally nested) or a single ``<testsuite>`` root;
- ``<testcase classname name time>`` with ``<failure>``, ``<error>``, ``<skipped>`` children;
  Surefire's rerun elements ``<flakyFailure>``/``<flakyError>`` (failed, then passed on rerun)
  and ``<rerunFailure>``/``<rerunError>`` (failed on every rerun) are kept as rerun counts;
- every attribute but ``name`` is optional; ``time`` may be missing, empty or use a thousands
  separator (``1,234.5``).

Parsed with expat directly so problems carry a line number, and DTDs/entities are refused (a
results file never needs them; refusing them closes entity-expansion attacks).
"""

from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ...errors import InputError

MAX_BYTES = 64 * 1024 * 1024
MESSAGE_CHARS = 500


class Outcome(StrEnum):
    passed = "passed"
    failed = "failed"
    error = "error"
    skipped = "skipped"


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


@dataclass
class TestCase:
    __test__ = False  # not a pytest test class

    id: str
    suite: str
    classname: str
    name: str
    outcome: Outcome
    duration_seconds: float | None
    message: str | None = None
    reruns_failed: int = 0
    line: int = 0

    @property
    def flaky_rerun(self) -> bool:
        """Failed at least once, then passed when re-run (Surefire ``flakyFailure``)."""
        return self.outcome == Outcome.passed and self.reruns_failed > 0


class _Refused(Exception):
    pass


def _parse_tree(data: bytes, where: str) -> Node:
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Node] = []
    root: list[Node] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = Node(tag, attrs, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(tag: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack and stack[-1].tag in (
            "failure",
            "error",
            "skipped",
            "flakyFailure",
            "flakyError",
            "rerunFailure",
            "rerunError",
        ):
            stack[-1].text.append(text)

    def refuse(*_: object) -> None:
        raise _Refused(f"line {parser.CurrentLineNumber}: DTDs and entity declarations are not accepted")

    # Text arrives in one call per run of characters, not one per line or entity.
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise InputError(
            f"not well-formed XML: {xml.parsers.expat.errors.messages.get(exc.code, str(exc))} "
            f"(line {exc.lineno}, column {exc.offset + 1}); expected JUnit XML "
            "(<testsuites>/<testsuite>/<testcase>)",
            where=f"{where}:{exc.lineno}",
        ) from None
    except _Refused as exc:
        raise InputError(str(exc), where=where) from None
    if not root:
        raise InputError("empty document; expected JUnit XML", where=where)
    return root[0]


def _duration(value: str | None, where: str, line: int) -> float | None:
    if value is None or not value.strip():
        return None
    text = value.strip().replace(",", "")
    try:
        seconds = float(text)
    except ValueError:
        raise InputError(
            f"testcase time {value!r} is not a number of seconds", where=f"{where}:{line}"
        ) from None
    if seconds < 0 or seconds != seconds:
        raise InputError(f"testcase time {value!r} is negative or NaN", where=f"{where}:{line}")
    return seconds


def _message(node: Node) -> str:
    parts = [node.attrs.get("message", "").strip(), "".join(node.text).strip()]
    text = "\n".join(p for p in parts if p)
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


_WS = re.compile(r"\s+")


def _case(node: Node, suite: str, where: str) -> TestCase:
    name = node.attrs.get("name")
    if not name:
        raise InputError("<testcase> without a name attribute", where=f"{where}:{node.line}")
    classname = node.attrs.get("classname") or node.attrs.get("class") or suite
    outcome = Outcome.passed
    message: str | None = None
    reruns = 0
    for child in node.children:
        if child.tag == "failure" and outcome != Outcome.error:
            outcome, message = Outcome.failed, _message(child)
        elif child.tag == "error":
            outcome, message = Outcome.error, _message(child)
        elif child.tag == "skipped" and outcome == Outcome.passed:
            outcome, message = Outcome.skipped, _message(child) or None
        elif child.tag in ("flakyFailure", "flakyError", "rerunFailure", "rerunError"):
            reruns += 1
            if message is None and child.tag.startswith("flaky"):
                message = _message(child)
    return TestCase(
        id=f"{classname}::{_WS.sub(' ', name)}",
        suite=suite,
        classname=classname,
        name=name,
        outcome=outcome,
        duration_seconds=_duration(node.attrs.get("time"), where, node.line),
        message=message or None,
        reruns_failed=reruns,
        line=node.line,
    )


def _walk(node: Node, suite: str, where: str, out: list[TestCase]) -> None:
    for child in node.children:
        if child.tag == "testsuite":
            _walk(child, child.attrs.get("name") or suite, where, out)
        elif child.tag == "testsuites":
            _walk(child, suite, where, out)
        elif child.tag == "testcase":
            out.append(_case(child, suite, where))


def parse_junit_bytes(data: bytes, where: str = "<junit>") -> list[TestCase]:
    root = _parse_tree(data, where)
    if root.tag not in ("testsuites", "testsuite"):
        raise InputError(
            f"root element is <{root.tag}>; expected <testsuites> or <testsuite> (JUnit XML)",
            where=f"{where}:{root.line}",
        )
    cases: list[TestCase] = []
    if root.tag == "testsuite":
        _walk(Node("testsuites", {}, root.line, [root]), root.attrs.get("name") or "", where, cases)
    else:
        _walk(root, root.attrs.get("name") or "", where, cases)
    return cases


def parse_junit(path: str | Path) -> list[TestCase]:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{size} bytes; JUnit files over {MAX_BYTES} bytes are refused", where=str(p))
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError("JUnit XML file not found (did the suite write it?)", where=str(p)) from None
    except IsADirectoryError:
        raise InputError("is a directory; expected a JUnit XML file", where=str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(p)) from None
    return parse_junit_bytes(data, str(p))
