"""The ``run`` command's observation options: traces, statistics, timelines and plots."""

from __future__ import annotations

import argparse


def add_observe_options(parser: argparse.ArgumentParser) -> None:
    """Add the tracing and statistics flags to ``minivm run``."""


class ObserveSession:
    """What was asked for on the command line, the event sink built for it, and the output
    written when the run ends."""

    def __init__(self) -> None:
        self.events = None
        self.error = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ObserveSession:
        """Build the session for parsed ``run`` options."""
        return cls()

    def finish(self, machine) -> None:
        """Write statistics, timelines and plots after the run."""
