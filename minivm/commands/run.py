"""``minivm run``: one run of a program through ``minivm.api``, as a notebook would run it,
printing to this process's streams; with the options that watch it (``--trace``,
``--stats``, ``--timeline``, ...: ``minivm/observe/options.py`` does the work) and those that
record or replay its schedule (``--record``, ``--replay``: ``minivm/schedule/``)."""

from __future__ import annotations

import argparse
import sys

from minivm.commands.interactive import cmd_debug
from minivm.commands.source import EXIT_RUNTIME, EXIT_USAGE, UsageError, read_source
from minivm.commands.vm_options import add_vm_options, vm_settings

# What ``run`` can be asked to watch (see minivm/observe/options.py, which does the work).
OBSERVE_OPTIONS = ("trace", "trace_gil", "trace_json", "stats", "stats_json", "timeline", "plot")


def add_run_parser(sub) -> argparse.ArgumentParser:
    """Register ``minivm run`` on the command line's sub-parsers."""
    run = sub.add_parser("run", help="run a program", description="Run a minivm program.")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="the .mv file to run (- reads standard input)")
    source.add_argument("-c", dest="code", metavar="CODE", help="run CODE instead of a file")
    add_vm_options(run)
    add_observe_options(run)
    run.add_argument("--debug", action="store_true", help="debug the program (as minivm debug FILE)")
    add_schedule_options(run)
    run.set_defaults(handler=cmd_run, run_parser=run)
    return run


# What ``run --debug`` honours besides the program: the debugger runs it under its own manual
# policy (``minivm debug`` takes only ``--check-interval``).
DEBUG_OPTIONS = {"file", "code", "debug", "check_interval", "help"}


def debug_conflicts(args: argparse.Namespace) -> list[str]:
    """The options given with ``run --debug`` that the debugger would not honour, as typed
    (``--trace``, ``--policy``, ...): every option not at its default, save ``DEBUG_OPTIONS``."""
    return [
        action.option_strings[-1]
        for action in args.run_parser._actions
        if action.option_strings and action.dest not in DEBUG_OPTIONS
        and getattr(args, action.dest, action.default) != action.default
    ]  # fmt: skip


def add_observe_options(parser: argparse.ArgumentParser) -> None:
    """Add the tracing and statistics flags to ``minivm run``."""
    group = parser.add_argument_group("watching the GIL")
    group.add_argument("--trace", action="store_true",
                       help="trace every instruction and GIL event on stderr")  # fmt: skip
    group.add_argument("--trace-gil", action="store_true",
                       help="trace GIL and thread events only on stderr (cheap)")  # fmt: skip
    group.add_argument("--trace-json", metavar="PATH",
                       help="write every event (instructions too) as JSON Lines")  # fmt: skip
    group.add_argument("--stats", action="store_true", help="print statistics on stderr")
    group.add_argument("--stats-json", metavar="PATH", help="write statistics as JSON")
    group.add_argument("--timeline", metavar="PATH",
                       help="write a Chrome trace (Perfetto, chrome://tracing) of the GIL")  # fmt: skip
    group.add_argument("--plot", metavar="PATH",
                       help="draw the GIL timeline to a .png or .svg (needs minivm[plot])")  # fmt: skip


def add_schedule_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--record`` and ``--replay`` to ``minivm run`` (see docs/schedules.md)."""
    group = parser.add_argument_group("schedules").add_mutually_exclusive_group()
    group.add_argument("--record", metavar="PATH",
                       help="write the run's schedule (who ran how long, what time() returned) as JSON")  # fmt: skip
    group.add_argument("--replay", metavar="SCHEDULE",
                       help="rerun a recorded schedule exactly (a file, or a compact mvs1/... line); "
                       "overrides --policy, --check-interval and --check-at")  # fmt: skip


def cmd_run(args: argparse.Namespace) -> int:
    """``minivm run``: through ``minivm.api``, as a notebook would run the program, printing
    to this process's streams; returns the run's exit status (2 when a replayed schedule does
    not fit). Raises ``SourceError`` for a program that does not compile, ``UsageError`` for
    options that cannot go together, ``KeyboardInterrupt`` when interrupted."""
    from minivm import api

    if args.debug:
        conflicts = debug_conflicts(args)
        if conflicts:  # silently ignored, they would make a person believe they apply
            raise UsageError(
                f"minivm: --debug cannot go with {', '.join(conflicts)} (the debugger takes only "
                "--check-interval: see minivm debug --help)"
            )
        return cmd_debug(args)
    name, text = read_source(args)
    program = api.compile(text, filename=name)
    schedules = None  # first: a replay sets the check interval the observers report
    if args.record or args.replay:
        from minivm.schedule.session import ScheduleSession, ScheduleUsageError

        try:
            schedules = ScheduleSession(args, text)
        except ScheduleUsageError as exc:
            raise UsageError(str(exc)) from None
    session = None
    if any(getattr(args, option) for option in OBSERVE_OPTIONS):
        from minivm.observe.options import ObserveSession

        session = ObserveSession.from_args(args)
        if session.error:
            raise UsageError(session.error)
    events = session.events if session else None
    if schedules and schedules.sinks():
        from minivm.observe.events import EventBus

        if events is None:
            events = EventBus(schedules.sinks())
        else:
            events.sinks.extend(schedules.sinks())
    try:
        run = api.prepare(
            program, stdout=sys.stdout, stderr=sys.stderr, events=events or False,
            control=schedules.policy if schedules else None, **vm_settings(args),
        )  # fmt: skip
    except ValueError as exc:  # an engine that cannot do what the options ask
        raise UsageError(f"minivm: {exc}") from None
    if schedules:
        schedules.attach(run.machine)
        for note in schedules.notes:
            print(note, file=sys.stderr)
    problems: list[str] = []
    try:
        status = run.start().wait().exit_status
    finally:
        if session:
            problems = session.finish(run.result)
    if schedules:
        try:
            problem = schedules.finish()
        except OSError as exc:  # the disk filled up since the check before the run
            from minivm.outputs import cannot_write_message

            message = cannot_write_message(args.record, exc)
            if message:  # empty: standard output's reader went away, nothing to say
                problems.append(message)
            problem = None
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_USAGE
    for problem in problems:  # the run itself went as its status says; an output file did not
        print(problem, file=sys.stderr)
    return max(status, EXIT_RUNTIME) if problems else status
