"""Which local files a trigger may make Orchestra read or write, and how input files are opened.

The trust model: a *local* trigger (the CLI, git hooks, the continuous controller reading its own
configuration) acts for whoever runs it and may name local files. A *remote* trigger (the HTTP
controller, Pub/Sub schedules and alerts, webhooks, dead-letter replay) acts for a caller who has
no business with the server's disk: it may name input files only inside the directories an
operator listed in ``inputs.allowed_dirs``, and never an output file.

Parameter models declare which of their fields are paths with :data:`InputPath`,
:data:`InputDir` and :data:`OutputPath`. The check runs inside pydantic validation and reads the
trust policy from the validation context (:func:`validation_context`); with no context the
strictest policy applies, so a forgotten context refuses instead of reading.

Refusals name the field and say what is accepted; they never repeat the path or anything read
from it, so a caller cannot probe which files exist.

:func:`open_input` opens a file for reading only if it is a regular file within the size limit:
``/dev/zero``, FIFOs and sockets would otherwise never end.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, ValidationInfo

from .errors import InputError

if TYPE_CHECKING:
    from .config import Config

INPUTS_KEY = "inputs"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
EXCERPT_CHARS = 40
MAX_LINE_CHARS = 16 * 1024 * 1024


class Origin(StrEnum):
    """Who a trigger acts for: someone at this machine, or a caller over the network."""

    local = "local"
    remote = "remote"


@dataclass(frozen=True)
class InputPolicy:
    origin: Origin
    allowed_dirs: tuple[Path, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def for_config(cls, config: Config, origin: Origin) -> InputPolicy:
        inputs = getattr(config, "inputs", None)
        if inputs is None:
            return cls(origin)
        dirs = tuple(Path(os.path.realpath(d)) for d in inputs.allowed_dirs)
        return cls(origin, dirs, inputs.max_bytes)

    @property
    def remote(self) -> bool:
        return self.origin == Origin.remote


STRICTEST = InputPolicy(Origin.remote)


def max_input_bytes(config: Config) -> int:
    """``inputs.max_bytes`` of ``config``: the largest input file any automation reads."""
    inputs = getattr(config, "inputs", None)
    return int(inputs.max_bytes) if inputs is not None else DEFAULT_MAX_BYTES


def validation_context(policy: InputPolicy) -> dict[str, Any]:
    """The pydantic validation context that carries ``policy`` to the path fields."""
    return {INPUTS_KEY: policy}


def local_context() -> dict[str, Any]:
    """Validation context of a local trigger with the default limits (library callers, tests)."""
    return validation_context(InputPolicy(Origin.local))


def policy_of(info: ValidationInfo | None) -> InputPolicy:
    context = info.context if info is not None else None
    if isinstance(context, dict):
        policy = context.get(INPUTS_KEY)
        if isinstance(policy, InputPolicy):
            return policy
    return STRICTEST


def _within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def resolve_input(raw: str, policy: InputPolicy, *, what: str = "input file") -> str:
    """``raw`` as an absolute path with symlinks and ``..`` resolved, if ``policy`` lets the
    trigger name it; ValueError (no path in the message) otherwise."""
    if not raw or "\x00" in raw:
        raise ValueError(f"expected a path to an {what}")
    if "://" in raw:
        raise ValueError(f"expected a path to an {what}; URLs are not read from here")
    resolved = Path(os.path.realpath(os.path.expanduser(raw) if not policy.remote else raw))
    if policy.remote:
        if not policy.allowed_dirs:
            raise ValueError(
                f"remote triggers may not name local files; the {what} comes from configuration or a "
                "cloud source, or from a directory listed in inputs.allowed_dirs"
            )
        if not raw.startswith("/") or not any(_within(resolved, d) for d in policy.allowed_dirs):
            raise ValueError(
                f"not within the directories remote triggers may read (inputs.allowed_dirs); "
                f"give an absolute path to an {what} inside one of them"
            )
    return str(resolved)


def _input_path(value: str, info: ValidationInfo) -> str:
    return resolve_input(value, policy_of(info))


def _input_dir(value: str, info: ValidationInfo) -> str:
    return resolve_input(value, policy_of(info), what="input directory")


def _output_path(value: str, info: ValidationInfo) -> str:
    policy = policy_of(info)
    if policy.remote:
        raise ValueError(
            "remote triggers may not choose where files are written; the output path comes from configuration"
        )
    if not value or "\x00" in value:
        raise ValueError("expected a file path")
    return str(Path(os.path.abspath(os.path.expanduser(value))))


# A file the trigger asks Orchestra to read.
InputPath = Annotated[str, AfterValidator(_input_path)]
# A directory the trigger asks Orchestra to read (a repository, a test suite's checkout).
InputDir = Annotated[str, AfterValidator(_input_dir)]
# A file the trigger asks Orchestra to write: local triggers only.
OutputPath = Annotated[str, AfterValidator(_output_path)]


def excerpt(text: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """A bounded, printable rendering of a piece of input for an error message: at most
    ``limit`` characters, control and non-ASCII characters escaped (``\\x1b``), quoted."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    clipped = text[:limit]
    shown = clipped.encode("ascii", errors="backslashreplace").decode("ascii")
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in shown)
    return "'" + shown.replace("'", "\\'") + ("…" if len(text) > limit else "") + "'"


class _BoundedReader:
    """A binary reader that refuses to go past ``limit`` bytes (a file that grows while read)."""

    def __init__(self, raw: IO[bytes], limit: int, where: str, size: int = 0) -> None:
        self._raw = raw
        self.size = size  # when opened: a hint for sizing buffers, not a limit
        self._left = limit
        self._limit = limit
        self._where = where

    def _account(self, data: bytes) -> bytes:
        self._left -= len(data)
        if self._left < 0:
            raise InputError(f"larger than the input limit of {self._limit} bytes", where=self._where)
        return data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._left + 1
        return self._account(self._raw.read(min(size, self._left + 1)))

    def read1(self, size: int = -1) -> bytes:
        return self.read(size if size and size > 0 else 1 << 16)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        """The open file's descriptor (for a reader that maps or hands on the checked file)."""
        return int(self._raw.fileno())

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def __enter__(self) -> _BoundedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_input(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    where: str | None = None,
    limit_name: str = "inputs.max_bytes",
) -> Any:
    """Open ``path`` for binary reading: a regular file of at most ``max_bytes``. InputError
    naming ``where`` (default: the path) otherwise. The returned reader refuses to read past the
    limit even if the file grows."""
    where = where or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError("file not found", where=where) from None
    except IsADirectoryError:
        raise InputError("is a directory; expected a file", where=where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=where) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError("is a directory; expected a file", where=where)
        if not stat.S_ISREG(info.st_mode):
            raise InputError("not a regular file (a device, FIFO or socket); expected a file", where=where)
        if info.st_size > max_bytes:
            raise InputError(
                f"{info.st_size} bytes, larger than the input limit of {max_bytes} bytes ({limit_name})",
                where=where,
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        raw = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return _BoundedReader(raw, max_bytes, where, info.st_size)


def text_blocks(
    reader: Any, where: str, *, chunk_bytes: int = 1 << 20, max_line_chars: int = MAX_LINE_CHARS
) -> Iterator[tuple[int, str]]:
    """Whole lines of a UTF-8 stream read in chunks, a block of them at a time: (number of the
    block's first line, 1-based; its text). Every block but the last ends with ``\n``; line
    endings are kept as they are (``\r\n`` too). A UTF-8 byte order mark is skipped.
    InputError naming the line for bytes that are not UTF-8, for NUL bytes (binary input) and
    for a line longer than ``max_line_chars`` (it would otherwise be assembled whole, however
    long); the lines before a too-long one are yielded first."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    number = 0  # lines yielded so far
    pending = ""
    first = True
    while True:
        chunk = reader.read(chunk_bytes)
        final = not chunk
        try:
            text = decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            # exc.object is what the decoder was working on: this chunk, after any bytes it held.
            bad_line = number + 1 + bytes(exc.object[: exc.start]).count(b"\n")
            raise InputError(
                "not UTF-8 text (binary data?); expected a text file", where=f"{where}:{bad_line}"
            ) from None
        if first and text.startswith("\ufeff"):
            text = text[1:]
        first = False if text or final else first
        if "\x00" in text:
            offset = text.index("\x00")
            bad_line = number + (pending + text[:offset]).count("\n") + 1
            raise InputError(
                "contains NUL bytes (binary data?); expected a text file", where=f"{where}:{bad_line}"
            )
        pending += text
        cut = len(pending) if final else pending.rfind("\n") + 1
        if cut:
            block, pending = pending[:cut], pending[cut:]
            long_line = _long_line(block, max_line_chars) if len(block) > max_line_chars else None
            if long_line is not None:
                offset, index = long_line
                if offset:
                    yield number + 1, block[:offset]
                raise InputError(
                    f"line longer than {max_line_chars} characters", where=f"{where}:{number + index + 1}"
                )
            yield number + 1, block
            number += block.count("\n") + (not block.endswith("\n"))
        if len(pending) > max_line_chars:
            raise InputError(f"line longer than {max_line_chars} characters", where=f"{where}:{number + 1}")
        if final:
            return


def _long_line(block: str, max_line_chars: int) -> tuple[int, int] | None:
    """(offset, 0-based index) of the first line of ``block`` longer than ``max_line_chars``."""
    start = index = 0
    while start < len(block):
        end = block.find("\n", start)
        end = len(block) if end < 0 else end
        if end - start > max_line_chars:
            return start, index
        start, index = end + 1, index + 1
    return None


def text_lines(
    reader: Any, where: str, *, chunk_bytes: int = 1 << 20, max_line_chars: int = MAX_LINE_CHARS
) -> Iterator[tuple[int, str]]:
    """Numbered lines (1-based, without line endings) of a UTF-8 stream read in chunks, checked
    as :func:`text_blocks` checks them."""
    for first, block in text_blocks(reader, where, chunk_bytes=chunk_bytes, max_line_chars=max_line_chars):
        lines = block.split("\n")
        if block.endswith("\n"):
            lines.pop()
        for number, line in enumerate(lines, first):
            yield number, line.removesuffix("\r")


def iter_text(lines: Iterable[tuple[int, str]]) -> Iterator[str]:
    """Only the text of :func:`text_lines` (for parsers that count lines themselves)."""
    for _, line in lines:
        yield line
