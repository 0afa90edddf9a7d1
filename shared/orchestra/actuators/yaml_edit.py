"""Edit a YAML document in place: only the bytes of the values that change.

The owner's file keeps its comments, key order, quoting, block scalars, blank lines and line
endings: the document is composed once to find where each node is (PyYAML's marks), and each
change is a replacement of one scalar's text, an insertion of missing keys next to their
siblings, or the removal of one key's line. Nothing else is re-emitted.

A replaced scalar keeps its quoting style (plain stays plain unless the new text would then read
as something other than a string, where a string is needed: it is single-quoted). Missing keys are
added after the last sibling whose value is on one line, at that sibling's indentation (or inside
the braces of a flow mapping); a missing or empty parent mapping is created with them. A
document this cannot edit safely raises :class:`~orchestra.errors.InputError` naming the place.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import InputError

MAX_DIFF_LINES = 80
MAX_DIFF_CHARS = 6000

Key = str | int
Tree = dict[str, Any]  # nested keys -> ScalarText leaves


@dataclass(frozen=True)
class ScalarText:
    """A value to write: its text, and whether it must read back as a string."""

    value: str
    string: bool = True


@dataclass(order=True)
class _Edit:
    start: int
    end: int
    text: str = field(compare=False)


def _plain_reads_as_string(text: str) -> bool:
    if not text or text != text.strip() or any(c in text for c in ":#{}[],&*!|>'\"%@`\n"):
        return False
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _double_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_scalar(value: ScalarText, style: str | None = None) -> str:
    """``value`` as YAML text in ``style`` ('' / None plain, "'" or '"'), quoted when plain text
    would not read back as intended."""
    if style == '"':
        return _double_quoted(value.value)
    if style == "'":
        return _quoted(value.value)
    if value.string:
        return value.value if _plain_reads_as_string(value.value) else _quoted(value.value)
    return value.value


class DocumentEditor:
    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self.newline = "\r\n" if "\r\n" in text else "\n"
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:  # checked by the safe loader before: only a defect lands here
            raise InputError(f"cannot edit in place: {type(exc).__name__}", where=where) from None
        if not isinstance(root, yaml.MappingNode):
            raise InputError("cannot edit in place: the document is not a mapping", where=where)
        self.root = root
        self._edits: list[_Edit] = []
        self._inserts: dict[int, tuple[yaml.Node, Tree]] = {}
        self._deleted: set[int] = set()

    # ----- lookups -----

    def _position(self, node: yaml.Node) -> str:
        return f"{self.where}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    @staticmethod
    def _pair(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
        for k, v in mapping.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
        return None

    def node(self, path: list[Key]) -> yaml.Node | None:
        node: yaml.Node = self.root
        for key in path:
            if isinstance(key, int):
                if not isinstance(node, yaml.SequenceNode) or key >= len(node.value):
                    return None
                node = node.value[key]
            else:
                if not isinstance(node, yaml.MappingNode):
                    return None
                pair = self._pair(node, key)
                if pair is None:
                    return None
                node = pair[1]
        return node

    # ----- changes -----

    def set(self, path: list[Key], value: ScalarText) -> None:
        """Set the scalar at ``path`` (a list of keys and sequence indexes), creating the
        missing mappings on the way."""
        node: yaml.Node = self.root
        for depth, key in enumerate(path):
            rest = path[depth:]
            if isinstance(key, int):
                if not isinstance(node, yaml.SequenceNode) or key >= len(node.value):
                    raise InputError(f"cannot edit in place: no item {key} here", where=self._position(node))
                node = node.value[key]
                continue
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
                self._fill_null(node, _tree(rest, value))
                return
            if not isinstance(node, yaml.MappingNode):
                raise InputError(
                    f"cannot edit in place: expected a mapping to hold {'.'.join(map(str, rest))}",
                    where=self._position(node),
                )
            pair = self._pair(node, key)
            if pair is None:
                self._insert(node, _tree(rest[1:], value, key))
                return
            node = pair[1]
        if not isinstance(node, yaml.ScalarNode):
            raise InputError("cannot edit in place: expected a single value here", where=self._position(node))
        self._replace_scalar(node, value)

    def delete(self, path: list[Key]) -> None:
        """Remove the key at ``path`` (with its one-line scalar value) when present."""
        parent = self.node(path[:-1])
        if not isinstance(parent, yaml.MappingNode) or not isinstance(path[-1], str):
            return
        pair = self._pair(parent, path[-1])
        if pair is None:
            return
        key, value = pair
        if not isinstance(value, yaml.ScalarNode) or value.start_mark.line != value.end_mark.line:
            raise InputError("cannot edit in place: expected a one-line value", where=self._position(value))
        if parent.flow_style:
            items = parent.value
            at = next(i for i, (k, _) in enumerate(items) if k is key)
            if at + 1 < len(items):
                start, end = key.start_mark.index, items[at + 1][0].start_mark.index
            elif at > 0:
                start, end = items[at - 1][1].end_mark.index, value.end_mark.index
            else:
                start, end = key.start_mark.index, value.end_mark.index
            self._edits.append(_Edit(start, end, ""))
        else:
            start = self._line_start(key.start_mark.index)
            if self.text[start : key.start_mark.index].strip(" ") not in ("",):
                raise InputError(
                    "cannot edit in place: the key does not start its line", where=self._position(key)
                )
            end = self._line_end(value.end_mark.index)
            end = end + len(self.newline) if self.text.startswith(self.newline, end) else end
            self._edits.append(_Edit(start, end, ""))
        self._deleted.add(id(key))

    # ----- text -----

    def _line_start(self, index: int) -> int:
        return self.text.rfind("\n", 0, index) + 1

    def _line_end(self, index: int) -> int:
        """The index of the line break ending the line ``index`` is on (the text's length if none)."""
        at = self.text.find("\n", index)
        if at < 0:
            return len(self.text)
        return at - 1 if at > 0 and self.text[at - 1] == "\r" else at

    def _replace_scalar(self, node: yaml.ScalarNode, value: ScalarText) -> None:
        start, end = node.start_mark.index, node.end_mark.index
        style = node.style
        if style in ("|", ">"):
            # A block scalar becomes a one-line value; the lines it held go with it.
            text = render_scalar(value, "'") + self.newline
            original = self.text[start:end]
            if not original.endswith("\n"):
                text = text[: -len(self.newline)]
            self._edits.append(_Edit(start, end, text))
            return
        text = render_scalar(value, style)
        self._edits.append(_Edit(start, end, text if end > start else " " + text))

    def _fill_null(self, node: yaml.ScalarNode, tree: Tree) -> None:
        start, end = node.start_mark.index, node.end_mark.index
        text = _flow(tree)
        if start == end:
            text = " " + text
        self._edits.append(_Edit(start, end, text))

    def _insert(self, mapping: yaml.MappingNode, tree: Tree) -> None:
        held = self._inserts.get(id(mapping))
        if held is None:
            self._inserts[id(mapping)] = (mapping, tree)
        else:
            _merge(held[1], tree)

    def _render_inserts(self) -> None:
        for mapping, tree in self._inserts.values():
            self._edits.append(self._insertion(mapping, tree))

    def _insertion(self, mapping: yaml.MappingNode, tree: Tree) -> _Edit:
        if mapping.flow_style or not mapping.value:
            if not mapping.flow_style or self.text[mapping.start_mark.index] != "{":
                raise InputError(
                    "cannot edit in place: an empty block mapping", where=self._position(mapping)
                )
            at = mapping.start_mark.index + 1
            body = ", ".join(f"{k}: {_flow(v)}" for k, v in tree.items())
            return _Edit(at, at, body + (", " if mapping.value else ""))
        column = mapping.value[0][0].start_mark.column
        kept = [(k, v) for k, v in mapping.value if id(k) not in self._deleted]
        one_line = [
            (k, v)
            for k, v in kept
            if isinstance(v, yaml.ScalarNode)
            and v.style not in ("|", ">")
            and k.start_mark.line == v.end_mark.line
        ]
        lines = _block(tree, column, self.newline)
        if one_line:
            value = one_line[-1][1]
            at = self._line_end(value.end_mark.index)
            return _Edit(at, at, self.newline + lines)
        first = mapping.value[0][0]
        start = self._line_start(first.start_mark.index)
        if self.text[start : first.start_mark.index].strip(" "):
            raise InputError(
                "cannot edit in place: no line to add the new keys after", where=self._position(mapping)
            )
        return _Edit(start, start, lines + self.newline)

    def render(self) -> str:
        self._render_inserts()
        edits = sorted(self._edits)
        for before, after in zip(edits, edits[1:], strict=False):
            if after.start < before.end:
                raise InputError("cannot edit in place: overlapping changes", where=self.where)
        out = self.text
        for edit in reversed(edits):
            out = out[: edit.start] + edit.text + out[edit.end :]
        return out


def _tree(path: list[Key], value: ScalarText, head: str | None = None) -> Tree | ScalarText:
    keys = ([head] if head is not None else []) + [str(k) for k in path]
    result: Any = value
    for key in reversed(keys):
        result = {key: result}
    return result


def _merge(into: Tree, more: Tree) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _key(key: str) -> str:
    return key if _plain_reads_as_string(key) else _quoted(key)


def _flow(tree: Tree | ScalarText) -> str:
    if isinstance(tree, ScalarText):
        return render_scalar(tree)
    return "{" + ", ".join(f"{_key(k)}: {_flow(v)}" for k, v in tree.items()) + "}"


def _block(tree: Tree, column: int, newline: str) -> str:
    lines: list[str] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"{' ' * column}{_key(key)}:")
            lines.append(_block(value, column + 2, newline))
        else:
            lines.append(f"{' ' * column}{_key(key)}: {render_scalar(value)}")
    return newline.join(lines)


def unified_diff(before: str, after: str, name: str) -> str:
    """A unified diff of two texts (one line of context), at most :data:`MAX_DIFF_LINES` lines
    and :data:`MAX_DIFF_CHARS` characters."""
    lines = list(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), name, name, n=1
        )
    )
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        shown = line if line.endswith("\n") else line + "\n"
        if i >= MAX_DIFF_LINES or size + len(shown) > MAX_DIFF_CHARS:
            out.append(f"… {len(lines) - i} more diff line(s)\n")
            break
        out.append(shown)
        size += len(shown)
    return "".join(out)
