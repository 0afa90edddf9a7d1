"""Untrusted YAML text to plain data, with bounds checked before the parser builds anything.

Configuration files and ``--param`` values are YAML written by people, and sometimes by
mistake or on purpose something else: binary files, text in another encoding, megabytes of
nested brackets (libyaml's composer recurses in C and crashes the process on deep input), alias
"billion laughs" expansions, or tags that ask for Python objects. :func:`load` refuses all of
them with one line naming where (line and column) and what is accepted, in this order:

1. size: at most ``max_bytes`` of UTF-8 (checked before decoding or parsing anything);
2. encoding: strict UTF-8, one leading byte order mark allowed;
3. characters: YAML's printable set only (no NUL or other control characters);
4. structure, from libyaml's event stream (iterative: no recursion, stops at the first
   problem): nesting at most ``max_depth`` levels, at most ``max_nodes`` nodes once aliases are
   expanded, aliases only to complete anchors, and only YAML's standard tags;
5. values: the safe constructor builds the data; a scalar it cannot build (a 5,000-digit
   integer, the 45th of a month) is reported at its position instead of escaping as a crash.

Only then is the text composed into Python data (libyaml's safe loader when PyYAML has it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import InputError

KIB = 1024
MIB = 1024 * KIB
MAX_CONFIG_BYTES = 1 * MIB
MAX_PARAM_BYTES = 64 * KIB
MAX_DEPTH = 64
MAX_NODES = 100_000

# Tags the safe constructor builds: YAML's standard types (yaml.org/type), nothing language-specific.
_STANDARD = "tag:yaml.org,2002:"
STANDARD_TAGS = frozenset(
    _STANDARD + name
    for name in (
        "str",
        "int",
        "float",
        "bool",
        "null",
        "seq",
        "map",
        "timestamp",
        "binary",
        "set",
        "omap",
        "pairs",
    )
)
_NON_SPECIFIC = "!"
# YAML's printable characters (1.1 and 1.2 agree): tab, line feed, carriage return, printable
# ASCII, NEL and the printable Unicode planes without surrogates and non-characters.
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BOM = "\ufeff"

_CBase = getattr(yaml, "CSafeLoader", None)
# libyaml's parser when PyYAML was built with it: parsing is on every CLI call and cold start.
_Base: type[Any] = _CBase if _CBase is not None else yaml.SafeLoader


class YamlTextError(InputError):
    """YAML text refused before or while parsing. ``line`` and ``column`` are 1-based (None when
    the problem is the whole text, e.g. its size)."""

    def __init__(self, problem: str, *, source: str, line: int | None = None, column: int | None = None):
        self.problem = " ".join(problem.split())  # one line, whatever the parser said
        self.source = source
        self.line = line
        self.column = column
        super().__init__(self.detail, where=source)

    @property
    def detail(self) -> str:
        """``line L, column C: problem`` (just the problem when it is about the whole text),
        without the source."""
        if self.line is None:
            return self.problem
        return f"line {self.line}, column {self.column}: {self.problem}"


def _line_column(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _byte_line_column(data: bytes, index: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, index) + 1
    return data.count(b"\n", 0, index) + 1, index - line_start + 1


def _limit_text(max_bytes: int) -> str:
    if max_bytes % MIB == 0:
        return f"{max_bytes // MIB} MiB"
    if max_bytes % KIB == 0:
        return f"{max_bytes // KIB} KiB"
    return f"{max_bytes} bytes"


def decode(data: str | bytes, *, source: str, max_bytes: int) -> str:
    """Steps 1-3: the size bound, strict UTF-8 and printable characters; returns the text without
    its byte order mark."""
    too_big = f"larger than the limit of {_limit_text(max_bytes)}"
    if isinstance(data, bytes):
        if len(data) > max_bytes:
            raise YamlTextError(f"{len(data)} bytes: {too_big}", source=source)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line, column = _byte_line_column(data, exc.start)
            raise YamlTextError(
                f"not valid UTF-8 (invalid byte at offset {exc.start}); only UTF-8 text is accepted",
                source=source,
                line=line,
                column=column,
            ) from None
    else:
        # Characters never outnumber bytes: a cheap first check before encoding anything.
        if len(data) > max_bytes:
            raise YamlTextError(f"{len(data)} characters: {too_big}", source=source)
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError as exc:  # lone surrogates: undecodable bytes smuggled into a str
            line, column = _line_column(data, exc.start)
            raise YamlTextError(
                "not valid UTF-8 (an undecodable byte); only UTF-8 text is accepted",
                source=source,
                line=line,
                column=column,
            ) from None
        if size > max_bytes:
            raise YamlTextError(f"{size} bytes: {too_big}", source=source)
        text = data[1:] if data.startswith(_BOM) else data
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        line, column = _line_column(text, bad.start())
        raise YamlTextError(
            f"control character U+{ord(bad.group()):04X} is not allowed (YAML allows tab, line breaks "
            "and printable characters)",
            source=source,
            line=line,
            column=column,
        )
    return text


@dataclass
class _Open:
    """A collection whose end event has not been seen yet."""

    anchor: str | None
    first_node: int
    height: int = 0


def _mark_position(mark: Any) -> tuple[int | None, int | None]:
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def _events(text: str) -> Iterator[yaml.Event]:
    return yaml.parse(text, Loader=_Base)


def check_structure(
    text: str, *, source: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> None:
    """Step 4, on libyaml's event stream: depth, expanded size, aliases and tags.

    ``nodes`` counts every node the loaded data will present to a reader that walks it as a tree,
    so an alias counts as the whole subtree it names (this is what bounds "billion laughs"); the
    depth of an alias is its own depth plus the height of what it names.
    """
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, height)
    stack: list[_Open] = []
    nodes = 0

    def fail(problem: str, event: yaml.Event) -> YamlTextError:
        line, column = _mark_position(event.start_mark)
        return YamlTextError(problem, source=source, line=line, column=column)

    def close(height: int) -> None:
        if stack:
            stack[-1].height = max(stack[-1].height, height + 1)

    try:
        for event in _events(text):
            if isinstance(event, yaml.AliasEvent):
                name = event.anchor or ""
                if name not in anchors:
                    if any(frame.anchor == name for frame in stack):
                        raise fail(f"alias *{name} refers to a collection that contains it", event)
                    raise fail(f"alias *{name} names no anchor defined before it", event)
                size, height = anchors[name]
                nodes += size
                if len(stack) + height > max_depth:
                    raise fail(f"nesting deeper than {max_depth} levels (through alias *{name})", event)
                if nodes > max_nodes:
                    raise fail(f"more than {max_nodes} values once aliases are expanded", event)
                close(height)
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                if stack:
                    frame = stack.pop()
                    if frame.anchor is not None:
                        anchors[frame.anchor] = (nodes - frame.first_node + 1, frame.height)
                    close(frame.height)
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue  # stream and document boundaries
            tag = getattr(event, "tag", None)
            if tag is not None and tag != _NON_SPECIFIC and tag not in STANDARD_TAGS:
                shown = "!!" + tag[len(_STANDARD) :] if tag.startswith(_STANDARD) else tag
                raise fail(
                    f"tag {shown[:80]!r} is not allowed; accepted: YAML's standard tags "
                    "(!!str, !!int, !!float, !!bool, !!null, !!seq, !!map, !!timestamp, …)",
                    event,
                )
            nodes += 1
            if nodes > max_nodes:
                raise fail(f"more than {max_nodes} values", event)
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append(_Open(event.anchor, nodes))
                if len(stack) > max_depth:
                    raise fail(f"nesting deeper than {max_depth} levels", event)
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    anchors[event.anchor] = (1, 0)
                close(0)
    except yaml.YAMLError as exc:
        raise _from_yaml_error(exc, source) from None


def _from_yaml_error(exc: yaml.YAMLError, source: str) -> YamlTextError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, column = _mark_position(mark)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
    return YamlTextError(problem, source=source, line=line, column=column)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, with values it cannot build reported at their node."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this {_kind(node)}: {_first_clause(exc)}", node.start_mark
            ) from None


def _first_clause(exc: BaseException) -> str:
    return str(exc).split(";")[0].strip()


def _kind(node: yaml.Node) -> str:
    tag = node.tag or ""
    return tag[len(_STANDARD) :] if tag.startswith(_STANDARD) else "value"


def load(
    data: str | bytes,
    *,
    source: str,
    max_bytes: int = MAX_CONFIG_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Any:
    """Safe YAML text (or bytes) to data, or :class:`YamlTextError` naming ``source``, line and
    column. One document; an empty text is ``None``."""
    text = decode(data, source=source, max_bytes=max_bytes)
    check_structure(text, source=source, max_depth=max_depth, max_nodes=max_nodes)
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _from_yaml_error(exc, source) from None
    except (ValueError, OverflowError, TypeError) as exc:  # a value built outside construct_object
        raise YamlTextError(f"cannot read a value: {_first_clause(exc)}", source=source) from None
