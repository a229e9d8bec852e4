"""The streams of a run: where guest ``print`` goes, and where runtime errors go.

Both are ``Output`` objects (whole lines under the stream's lock, so lines never tear even
with no GIL). A reader that goes away from standard output (``minivm run x.mv | head``) stops
the run quietly, as a Unix tool stops on SIGPIPE: ``on_closed`` is the run's abort.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from minivm.runtime.output import Output


class Streams:
    """``output`` (guest ``print``) and ``errors`` (runtime errors, the heap audit) of one
    run, over ``stdout`` and ``stderr`` (default: the process's own, read when the run is
    built). ``on_closed``: called once when standard output's reader has gone."""

    def __init__(
        self,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        on_closed: Callable[[], None] | None = None,
    ):
        self.output = Output(stdout or sys.stdout, on_closed=on_closed, report_failures=True)
        self.errors = Output(stderr or sys.stderr)

    def flush(self) -> None:
        """Flush both streams (a closed pipe is ignored)."""
        self.output.flush()
        self.errors.flush()
