"""Every error minivm reports, and the one place their messages are formatted.

Three families, kept apart on purpose:

* ``SourceError`` — the guest program cannot be compiled (syntax or compile error, exit 2).
* ``GuestError`` — the guest program failed while running (runtime error, exit 1).
* ``InternalError`` — minivm itself is broken (a violated invariant); never the guest's fault.
"""

from __future__ import annotations

import dataclasses


class MinivmError(Exception):
    """Root of every error minivm raises on purpose."""


@dataclasses.dataclass(frozen=True)
class Location:
    """A point in a source file: 1-based line and column."""

    file: str
    line: int
    column: int = 0


class SourceError(MinivmError):
    """A syntax or compile error: the program is rejected before it runs."""

    def __init__(self, kind: str, message: str, location: Location, source_line: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.location = location
        self.source_line = source_line


@dataclasses.dataclass(frozen=True)
class CallSite:
    """One entry of a guest call chain: which function, where."""

    function: str
    file: str
    line: int


class GuestError(MinivmError):
    """A runtime error of the guest program; the VM fills in thread and call chain."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.thread_id: int | None = None
        self.chain: tuple[CallSite, ...] = ()


class InternalError(MinivmError):
    """A bug in minivm itself, such as a broken lock invariant. Stops the VM at once."""


class UsageError(MinivmError):
    """Bad command-line use (exit 2)."""


def split_source_lines(text: str) -> list[str]:
    """The lines of a source text as the parser counts them: split at ``\n`` only.

    ``str.splitlines()`` also breaks at ``\r``, ``\f``, ``\x1c``-``\x1e``, ``\x85``,
    ``\u2028`` and ``\u2029``, which the parser does not count, so every place that shows a
    line of source uses this instead. A ``\r`` ending a line (CRLF files) is dropped; a final
    line break does not start another line.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# Characters that would act on the terminal (or reorder what it shows) if echoed raw.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _shown_char(char: str) -> str:
    code = ord(char)
    if char == "\t":
        return " "
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": ␀ ␇ ␌ ␍ ␛ ...
    if code == 0x7F:
        return "\u2421"  # ␡
    if 0x80 <= code < 0xA0 or char in "\u2028\u2029" or char in _BIDI_CONTROLS:
        return "\ufffd"  # �
    return char


def displayable_line(text: str) -> str:
    """A source line made safe to echo: a tab becomes one space and every control
    character one visible stand-in (``␌`` for a form feed, ``�`` for the rest), so the
    terminal is not affected and each character still takes one column under the caret."""
    if text.isprintable():
        return text
    return "".join(_shown_char(c) for c in text)


def _source_line_with_caret(source_line: str, column: int) -> list[str]:
    if not source_line:
        return []
    text = displayable_line(source_line.rstrip("\n"))
    caret = " " * max(column - 1, 0) + "^"
    return ["    " + text, "    " + caret]


def format_source_error(error: SourceError) -> str:
    """``file:line:col: syntax error: message``, the line, and a caret under the column."""
    loc = error.location
    # The message may quote source text (an unknown escape): shown as safely as the line.
    lines = [f"{loc.file}:{loc.line}:{loc.column}: {error.kind}: {displayable_line(error.message)}"]
    lines += _source_line_with_caret(error.source_line, loc.column)
    return "\n".join(lines)


def format_guest_error(error: GuestError, source_lines: dict[str, list[str]] | None = None) -> str:
    """The runtime error, its thread, and the guest call chain (most recent call last)."""
    if error.thread_id is None:  # not one thread's error: a deadlock of all of them
        head = f"error: {error.message}"
    else:
        head = f"error in thread {error.thread_id}: {error.message}"
    if not error.chain:
        return head
    lines = [head, "  call chain (most recent call last):"]
    for entry in elide_chain(error.chain):
        if isinstance(entry, LeftOut):
            lines.append(f"    {entry}")
            continue
        lines.append(f"    {entry.file}:{entry.line} in {entry.function}")
        text = _line_text(source_lines, entry.file, entry.line)
        if text:
            lines.append(f"      {text}")
    return "\n".join(lines)


# A run of identical call-chain entries (unbounded recursion) shows its first few and last
# few entries around one note, as Python's tracebacks do; so does a chain that is still
# over-long after that (mutual recursion), around its middle.
REPEAT_HEAD, REPEAT_TAIL = 3, 2
CHAIN_HEAD, CHAIN_TAIL = 20, 20


@dataclasses.dataclass(frozen=True)
class LeftOut:
    """A note standing for call-chain entries that are not shown."""

    calls: int
    repeats: bool  # the entries are all the same as the one shown before the note

    def __str__(self) -> str:
        if self.repeats:
            return f"[previous line repeated {self.calls} more times]"
        return f"[... {self.calls} more calls ...]"


def elide_chain(chain: tuple[CallSite, ...]) -> list[CallSite | LeftOut]:
    """The entries of a call chain to show, with a ``LeftOut`` note where entries are not
    shown: ``[previous line repeated 995 more times]`` inside a run of identical entries,
    ``[... 960 more calls ...]`` in the middle of a chain still longer than 41 entries."""
    shown: list[CallSite | LeftOut] = []
    i = 0
    while i < len(chain):
        j = i
        while j + 1 < len(chain) and chain[j + 1] == chain[i]:
            j += 1
        count = j - i + 1
        if count > REPEAT_HEAD + REPEAT_TAIL + 1:
            shown += [chain[i]] * REPEAT_HEAD
            shown.append(LeftOut(count - REPEAT_HEAD - REPEAT_TAIL, repeats=True))
            shown += [chain[i]] * REPEAT_TAIL
        else:
            shown += chain[i : j + 1]
        i = j + 1
    sites = [k for k, entry in enumerate(shown) if isinstance(entry, CallSite)]
    if len(sites) <= CHAIN_HEAD + CHAIN_TAIL + 1:
        return shown
    cut, resume = sites[CHAIN_HEAD], sites[-CHAIN_TAIL]
    hidden = sum(e.calls if isinstance(e, LeftOut) else 1 for e in shown[cut:resume])
    return [*shown[:cut], LeftOut(hidden, repeats=False), *shown[resume:]]


def _line_text(source_lines: dict[str, list[str]] | None, file: str, line: int) -> str:
    if not source_lines or file not in source_lines:
        return ""
    lines = source_lines[file]
    if 1 <= line <= len(lines):
        return displayable_line(lines[line - 1].strip())
    return ""


def format_internal_error(error: BaseException) -> str:
    """How a bug of minivm itself is shown: clearly not the guest program's fault."""
    return f"minivm internal error: {error}\n(this is a bug in minivm, not in your program)"
