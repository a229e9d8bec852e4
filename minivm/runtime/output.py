"""Output streams that write whole lines: a line is never torn, under ``none`` too.

Several writers may share one host stream (the program's ``print`` lines, runtime errors and
the ``--trace`` text all go to a terminal), so the lock belongs to the *stream*, not to the
writer: every ``Output`` over the same stream object shares one lock.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TextIO

_STREAM_LOCKS: dict[int, tuple[object, threading.Lock]] = {}
_STREAM_LOCKS_GUARD = threading.Lock()


def stream_lock(stream: object) -> threading.Lock:
    """The one lock that every line writer of ``stream`` takes (created on first use; the
    stream is kept alive with it, so its ``id`` cannot be reused)."""
    with _STREAM_LOCKS_GUARD:
        entry = _STREAM_LOCKS.get(id(stream))
        if entry is None or entry[0] is not stream:
            entry = (stream, threading.Lock())
            _STREAM_LOCKS[id(stream)] = entry
        return entry[1]


class Output:
    """A text stream that writes whole lines under the stream's lock: lines never tear, even
    with no GIL, and never interleave with another writer of the same stream.

    ``report_failures``: a write the device refuses (a full disk: ``OSError``) is raised to
    the writer, for the program's own output, whose ``print`` then fails. Otherwise (runtime
    errors, traces: standard error) the line is dropped, as Python drops what it cannot write
    to its standard error: there is nowhere left to report it, and raising in the middle of
    reporting a thread's error would leave that thread's end unrecorded and the run waiting.
    """

    def __init__(self, stream: TextIO, on_closed=None, report_failures: bool = False):
        self.stream = stream
        self.lock = stream_lock(stream)
        self.closed = False
        self.on_closed = on_closed
        self.report_failures = report_failures

    def write_line(self, text: str) -> None:
        """Write ``text`` and a newline as one piece. If the reader went away (``| head``),
        the run is stopped quietly, as a Unix tool stops on SIGPIPE. Raises ``OSError`` for
        a refused write only with ``report_failures``."""
        with self.lock:
            if self.closed:
                return
            try:
                try:
                    self.stream.write(text + "\n")
                except UnicodeEncodeError:
                    # The stream's encoding (PYTHONIOENCODING=ascii, a C locale) lacks a
                    # character: write it as a \xe9-style escape rather than lose the line.
                    self.stream.write(_encodable(text + "\n", self.stream))
            except (BrokenPipeError, ValueError):
                self.closed = True
            except OSError:
                if self.report_failures:
                    raise
        if self.closed and self.on_closed is not None:
            self.on_closed()

    def flush(self) -> None:
        """Flush the underlying stream, ignoring a closed pipe."""
        with self.lock, contextlib.suppress(BrokenPipeError, ValueError, OSError):
            if not self.closed:
                self.stream.flush()


def _encodable(text: str, stream: TextIO) -> str:
    """``text`` with every character the stream cannot encode written as an escape
    (``\xe9``, ``\u2028``), as Python itself writes to standard error."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    return text.encode(encoding, "backslashreplace").decode(encoding)
