"""The ``run`` command's observation options at work: traces, statistics, timelines and plots.

The flags themselves are defined in ``minivm.commands.run`` (``add_observe_options``), so that a run
that watches nothing never imports this package."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from minivm.observe.events import Collector, EventBus, JsonLinesSink, Sink, TextTraceSink
from minivm.observe.stats import write_table
from minivm.observe.timeline import chrome_trace, slices, write_chrome_trace
from minivm.outputs import cannot_write, cannot_write_message, open_output


class ObserveSession:
    """What was asked for on the command line, the event bus built for it, and the output
    written when the run ends."""

    def __init__(self, args: argparse.Namespace | None = None):
        self.args = args
        self.events: EventBus | None = None
        self.collector: Collector | None = None
        self.error = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ObserveSession:
        """Build the session (and its sinks) for parsed ``run`` options."""
        session = cls(args)
        if args.plot:
            try:
                from minivm.observe.plot import _pyplot

                _pyplot()
            except Exception as exc:  # missing matplotlib: say so before running
                session.error = f"minivm: {exc}"
                return session
            if not args.plot.lower().endswith((".png", ".svg", ".pdf")):
                session.error = "minivm: --plot wants a .png, .svg or .pdf file name"
                return session
        sinks: list[Sink] = []
        bus_start = None
        if args.trace or args.trace_gil:
            sinks.append(TextTraceSink(sys.stderr, instructions=args.trace, started_ns=0))
        for path in (args.stats_json, args.timeline, args.plot):
            problem = cannot_write(path)
            if problem:
                session.error = problem
                return session
        if args.trace_json:
            try:
                sinks.append(JsonLinesSink(open_output(args.trace_json)))
            except OSError as exc:
                session.error = cannot_write_message(args.trace_json, exc)
                return session
        if args.timeline or args.plot:
            session.collector = Collector()
            sinks.append(session.collector)
        if sinks:
            session.events = EventBus(sinks)
            session.events.check_interval = args.check_interval
            bus_start = session.events.started_ns
            for sink in sinks:
                if isinstance(sink, TextTraceSink):
                    sink.started_ns = bus_start
        return session

    def finish(self, result) -> list[str]:
        """Write statistics, timelines and plots after the run, from its ``minivm.api.Result``
        (``stats`` and the ``figures`` snapshot); ``None`` (the run never started) writes
        nothing but closes the event bus. Returns a ``cannot write`` message for each output
        file that could not be written in full (a full disk), the others being written."""
        problems: list[str] = []
        args = self.args
        if self.events is not None:
            try:
                self.events.close()
            except OSError as exc:
                _report(problems, cannot_write_message((args and args.trace_json) or "the trace", exc))
        if args is None or result is None:
            return problems
        if args.stats or args.stats_json:
            stats = result.stats
            if args.stats:
                # Standard error refusing the table has nowhere to be told (as Python's own).
                with contextlib.suppress(OSError):
                    write_table(stats, sys.stderr)
            if args.stats_json:
                _attempt(args.stats_json, problems, lambda: _write_json(args.stats_json, stats))
        if self.collector is not None:
            figures = result.figures
            title = (
                f"minivm: policy {figures.policy}, check interval "
                f"{figures.check_interval}, switch interval {figures.switch_interval} s"
            )
            uses_gil = figures.uses_gil
            if args.timeline:
                document = chrome_trace(
                    self.collector.events, figures.started_ns, figures.ended_ns, title, uses_gil
                )
                _attempt(args.timeline, problems, lambda: write_chrome_trace(args.timeline, document))
            if args.plot:
                from minivm.observe.plot import plot_timeline

                parts = slices(self.collector.events, figures.ended_ns, uses_gil)
                _attempt(args.plot, problems, lambda: plot_timeline(args.plot, parts, figures.started_ns, title))
        return problems


def _write_json(path: str, value: object) -> None:
    with open_output(path) as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")


def _attempt(path: str, problems: list[str], write) -> None:
    """``write()`` the output file ``path``; an ``OSError`` (the disk filled up since the check
    before the run) becomes a ``cannot write`` message in ``problems``, not a crash."""
    try:
        write()
    except OSError as exc:
        _report(problems, cannot_write_message(path, exc))


def _report(problems: list[str], message: str) -> None:
    if message:  # empty: standard output's reader went away, nothing to say
        problems.append(message)
