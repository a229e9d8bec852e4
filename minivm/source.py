"""The source file: its name, its text, its lines (split once) and how a place in it is shown.

Every error that points into the program — a syntax or compile error with its caret, a
runtime error's call chain with the line of each call — is built from one ``SourceFile``;
code objects keep a reference to the one they were compiled from, so the runtime needs no
table of source lines of its own (clox keeps the line table beside the chunk for the same
reason: an error can always say where it happened).

This module imports nothing else of minivm: errors, bytecode and runtime may all refer to it.
"""

from __future__ import annotations

import dataclasses


def split_lines(text: str) -> tuple[str, ...]:
    """The lines of a source text as the parser counts them: split at ``\\n`` only.

    ``str.splitlines()`` also breaks at ``\\r``, ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``,
    ``\\u2028`` and ``\\u2029``, which the parser does not count, so a line number would name
    the wrong line. A ``\\r`` ending a line (CRLF files) is dropped; a final line break does
    not start another line. ``""`` has no lines.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return tuple(line[:-1] if line.endswith("\r") else line for line in lines)


@dataclasses.dataclass(frozen=True, eq=False)
class SourceFile:
    """One program text under its name (a path, ``<string>``, ``<repl-3>``...).

    ``lines`` is the text split once by ``split_lines``; ``line(n)`` is line ``n`` (1-based)
    or ``""`` past either end, so error construction never needs a bounds check of its own.
    Identity, not value, is what counts: two runs of the same text are two files.
    """

    name: str
    text: str
    lines: tuple[str, ...] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", split_lines(self.text))

    def line(self, number: int) -> str:
        """The text of line ``number`` (1-based, no line break), ``""`` if there is none."""
        if 0 < number <= len(self.lines):
            return self.lines[number - 1]
        return ""

    def end(self) -> tuple[int, int]:
        """``(line, column)`` just past the last character: where "end of file" is reported."""
        if not self.lines:
            return 1, 1
        return len(self.lines), len(self.lines[-1]) + 1


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


def displayable_text(text: str) -> str:
    """``text`` of several lines (a runtime error's message, which may quote the program's
    strings) made safe to echo like a source line, keeping its line breaks and tabs: an
    escape sequence in a map key must not clear the terminal the error is read on."""
    if text.isprintable():
        return text
    return "\n".join(displayable_line(part) if part.isprintable() else _keep_tabs(part) for part in text.split("\n"))


def _keep_tabs(line: str) -> str:
    return "\t".join(displayable_line(piece) for piece in line.split("\t"))


def render_location(file: str, line: int, column: int, text: str, what: str) -> str:
    """A place in the source as every compile-time error shows it::

        file:line:col: what
            the line
               ^

    ``column`` is 1-based (the caret stands under it); ``text`` is the line itself (no line
    break); with no text the place is one line alone. ``what`` (``syntax error: ...``) is
    made displayable like the line, since a message may quote source text."""
    head = f"{file}:{line}:{column}: {displayable_line(what)}"
    if not text:
        return head
    shown = displayable_line(text.rstrip("\n"))
    caret = " " * _cells(shown[: max(column - 1, 0)]) + "^"
    return "\n".join([head, "    " + shown, "    " + caret])


def _cells(text: str) -> int:
    """Terminal columns ``text`` takes: two for a wide character (CJK, most emoji), none for
    a combining mark or a zero-width format character, one for the rest (what Python's
    own tracebacks count, 3.13+), so the caret stands under its character."""
    if text.isascii():
        return len(text)
    import unicodedata  # only for a line with non-ASCII text, and only to show an error

    cells = 0
    for char in text:
        if unicodedata.east_asian_width(char) in "WF":
            cells += 2
        elif not (unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf")):
            cells += 1
    return cells
