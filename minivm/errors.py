"""Every error minivm reports, and the one place their messages are formatted.

Three families, kept apart on purpose:

* ``SourceError`` — the guest program cannot be compiled (syntax or compile error, exit 2).
* ``GuestError`` — the guest program failed while running (runtime error, exit 1).
* ``InternalError`` — minivm itself is broken (a violated invariant); never the guest's fault.
"""

from __future__ import annotations

import attrs


class MinivmError(Exception):
    """Root of every error minivm raises on purpose."""


@attrs.frozen
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


@attrs.frozen
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


def _source_line_with_caret(source_line: str, column: int) -> list[str]:
    if not source_line:
        return []
    text = source_line.rstrip("\n").expandtabs(1)
    caret = " " * max(column - 1, 0) + "^"
    return ["    " + text, "    " + caret]


def format_source_error(error: SourceError) -> str:
    """``file:line:col: syntax error: message``, the line, and a caret under the column."""
    loc = error.location
    lines = [f"{loc.file}:{loc.line}:{loc.column}: {error.kind}: {error.message}"]
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
    for site in error.chain:
        lines.append(f"    {site.file}:{site.line} in {site.function}")
        text = _line_text(source_lines, site.file, site.line)
        if text:
            lines.append(f"      {text}")
    return "\n".join(lines)


def _line_text(source_lines: dict[str, list[str]] | None, file: str, line: int) -> str:
    if not source_lines or file not in source_lines:
        return ""
    lines = source_lines[file]
    if 1 <= line <= len(lines):
        return lines[line - 1].strip()
    return ""


def format_internal_error(error: BaseException) -> str:
    """How a bug of minivm itself is shown: clearly not the guest program's fault."""
    return f"minivm internal error: {error}\n(this is a bug in minivm, not in your program)"
