"""Output files named on the command line (``--trace-json``, ``--stats-json``, ``--timeline``,
``--record``, ``bench --json``, ``experiment --csv``): one home for opening them, for checking
before a run that they can be written, and for naming them in messages.

As with most Unix tools, the name ``-`` means standard output: ``minivm run --stats-json - x.mv
| jq`` works. The program's own ``print`` goes there too, so the two share the stream: traces
written while the program runs interleave with its lines (whole lines, never torn), documents
written after the run come after its output.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

STANDARD_OUTPUT = "-"


def describe(path: str) -> str:
    """How messages name ``path``: ``'trace.json'``, or ``standard output`` for ``-``."""
    return "standard output" if path == STANDARD_OUTPUT else f"'{path}'"


def cannot_write_message(path: str, exc: OSError) -> str:
    """The one-line message for an output that could not be written (``exc``: why); ``""``
    when the reader of standard output went away (``| head``): a Unix tool stops quietly
    then, as on ``SIGPIPE``."""
    if path == STANDARD_OUTPUT and isinstance(exc, BrokenPipeError):
        return ""
    return f"minivm: cannot write {describe(path)}: {exc.strerror or exc}"


def cannot_write(path: str | None) -> str:
    """The usage error for an output file that cannot be created, or ``""`` when it can (or
    when none was asked for, or it is standard output). Checked before the work, so that a
    run or a benchmark is not wasted; a file that did not exist is not left behind."""
    if not path or path == STANDARD_OUTPUT:
        return ""
    existed = os.path.lexists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return cannot_write_message(path, exc)
    if not existed:
        with contextlib.suppress(OSError):
            os.remove(path)
    return ""


class _KeptOpen:
    """Standard output lent to a writer: ``close`` only flushes, so that the program's own
    output and ``minivm``'s messages can still use it afterwards."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()

    def __enter__(self) -> _KeptOpen:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_output(path: str, newline: str | None = None) -> TextIO:
    """Open ``path`` for writing text (UTF-8), or lend standard output for ``-``. Use it as a
    context manager or ``close`` it. Raises ``OSError`` as ``open`` does."""
    if path == STANDARD_OUTPUT:
        return _KeptOpen(sys.stdout)  # type: ignore[return-value]
    return open(path, "w", encoding="utf-8", newline=newline)
