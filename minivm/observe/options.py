"""The ``run`` command's observation options at work: traces, statistics, timelines and plots.

The flags themselves are defined in ``minivm.commands.run`` (``add_observe_options``), so that a run
that watches nothing never imports this package."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from minivm.observe.events import Collector, EventBus, JsonLinesSink, Sink, TextTraceSink
from minivm.observe.stats import write_table
from minivm.observe.timeline import chrome_trace, slices, write_chrome_trace


def _cannot_write_message(path: str, exc: OSError) -> str:
    return f"minivm: cannot write '{path}': {exc.strerror or exc}"


def cannot_write(path: str | None) -> str:
    """The usage error for an output file that cannot be created, or ``""`` when it can (or
    when no file was asked for). Checked before the run, so that a run is not wasted; a file
    that did not exist is not left behind."""
    if not path:
        return ""
    existed = os.path.lexists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return _cannot_write_message(path, exc)
    if not existed:
        with contextlib.suppress(OSError):
            os.remove(path)
    return ""


class ObserveSession:
    """What was asked for on the command line, the event bus built for it, and the output
    written when the run ends."""

    def __init__(self, args: argparse.Namespace | None = None):
        self.args = args
        self.events: EventBus | None = None
        self.collector: Collector | None = None
        self.json_sink: JsonLinesSink | None = None
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
                session.json_sink = JsonLinesSink(open(args.trace_json, "w", encoding="utf-8"))  # noqa: SIM115
                sinks.append(session.json_sink)
            except OSError as exc:
                session.error = _cannot_write_message(args.trace_json, exc)
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
        file the device refused (a full disk), empty when all were written."""
        problems: list[str] = []
        args = self.args
        if self.events is not None:
            self.events.close()
        if self.json_sink is not None and self.json_sink.failure is not None:
            problems.append(_cannot_write_message(args.trace_json, self.json_sink.failure))
        if args is None or result is None:
            return problems
        if args.stats:
            # Standard error refusing the table has nowhere to be reported (as Python's own).
            with contextlib.suppress(OSError):
                write_table(result.stats, sys.stderr)
        for path, write in self._files(args, result):
            try:
                write(path)
            except OSError as exc:
                problems.append(_cannot_write_message(path, exc))
        return problems

    def _files(self, args: argparse.Namespace, result) -> list:
        """(path, function that writes it) for each output file asked for."""
        files: list = []
        if args.stats_json:
            files.append((args.stats_json, lambda path: _write_json(path, result.stats)))
        if self.collector is not None:
            figures = result.figures
            title = (
                f"minivm: policy {figures.policy}, check interval "
                f"{figures.check_interval}, switch interval {figures.switch_interval} s"
            )
            uses_gil = figures.uses_gil
            events = self.collector.events
            if args.timeline:
                document = chrome_trace(events, figures.started_ns, figures.ended_ns, title, uses_gil)
                files.append((args.timeline, lambda path: write_chrome_trace(path, document)))
            if args.plot:
                from minivm.observe.plot import plot_timeline

                parts = slices(events, figures.ended_ns, uses_gil)
                files.append((args.plot, lambda path: plot_timeline(path, parts, figures.started_ns, title)))
        return files


def _write_json(path: str, document: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
