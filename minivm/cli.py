"""The ``minivm`` command line: ``run``, ``repl``, ``debug``, ``dis``, ``bench``, ``explore`` and ``experiment``.

Exit status: 0 success, 1 a runtime error in any thread, 2 bad input (usage, missing file,
syntax or compile error), 130 interrupted. No error shows a Python traceback of the VM
(set ``MINIVM_DEBUG=1`` to see one for a bug of minivm itself).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading

from minivm import __version__
from minivm.arguments import engine_name, policy_name, positive_float, positive_int
from minivm.errors import SourceError, format_internal_error, format_source_error
from minivm.gil.policies import POLICY_NAMES
from minivm.runtime.engine import ENGINE_NAMES

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _UsageError(Exception):
    pass


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, exiting with status 2 and a one-line hint, as usage errors should."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_vm_options(parser: argparse.ArgumentParser) -> None:
    """The options that configure a VM, shared by ``run`` and ``experiment``'s defaults."""
    parser.add_argument(
        "--policy", type=policy_name, default="ticks", metavar="NAME",
        help=f"lock policy: {', '.join(POLICY_NAMES)} (default: ticks)",
    )
    parser.add_argument(
        "--check-interval", type=positive_int, default=100, metavar="N",
        help="ticks (instructions) between checks (default: 100)",
    )
    parser.add_argument(
        "--switch-interval", type=positive_float, default=0.005, metavar="SECONDS",
        help="how long a waiter waits before a drop request, for the timed policy (default: 0.005)",
    )
    parser.add_argument(
        "--check-at", choices=("every", "backedge"), default="every",
        help="where the check may fall: after any instruction (every, CPython 2 and 3.2-3.9) "
        "or only at a function's entry and backward jumps (backedge, CPython 3.10+); default: every",
    )
    parser.add_argument(
        "--host-switch-interval", type=positive_float, default=None, metavar="SECONDS",
        help="the host Python's own switch interval while 2+ guest threads are alive "
        "(default: 1e-05, or 1e-06 under --policy none; see docs/gil.md)",
    )
    parser.add_argument(
        "--recursion-limit", type=positive_int, default=1000, metavar="N",
        help="maximum depth of guest calls (default: 1000)",
    )
    parser.add_argument(
        "--max-steps", type=positive_int, default=None, metavar="N",
        help="stop with an error after N instructions in all (default: no limit)",
    )
    parser.add_argument(
        "--max-threads", type=positive_int, default=10_000, metavar="N",
        help="refuse to spawn more than N threads in a run (default: 10000)",
    )
    parser.add_argument(
        "--heap-check", action="store_true",
        help="audit every reference count at exit (exit 1 on a mismatch)",
    )
    parser.add_argument(
        "--engine", type=engine_name, default="auto", metavar="NAME",
        help=f"{', '.join(ENGINE_NAMES)}: the interpreter, or guest functions compiled to host "
        "functions (default: auto, the compiled one unless tracing instructions)",
    )  # fmt: skip


# What ``run`` can be asked to watch (see minivm/observe/options.py, which does the work).
OBSERVE_OPTIONS = ("trace", "trace_gil", "trace_json", "stats", "stats_json", "timeline", "plot")


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


# Commands whose module is imported only when that command runs (start-up time): name ->
# (module, function that registers its sub-parser, the one-line help ``minivm --help`` shows).
# tests/test_startup.py checks that these help lines match what the modules register.
LAZY_COMMANDS = {
    "bench": ("minivm.observe.bench", "add_bench_parser", "measure minivm against CPython itself"),
    "explore": (
        "minivm.explore.command",
        "add_explore_parser",
        "run a program under many schedules and report every outcome",
    ),
    "experiment": (
        "minivm.observe.experiment",
        "add_experiment_parser",
        "run a program under several policies and intervals and compare",
    ),
}


def command_word(argv: list[str]) -> str | None:
    """The command named on a command line (the first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line. ``command`` is the command about to run: the modules of the
    other commands in ``LAZY_COMMANDS`` are not imported (``minivm --help`` still lists them
    with their help line). ``None`` registers every command in full."""
    parser = _ArgumentParser(
        prog="minivm",
        description="A bytecode VM that makes the global interpreter lock something you can "
        "run, watch and change.",
    )
    parser.add_argument("--version", action="version", version=f"minivm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)

    run = sub.add_parser("run", help="run a program", description="Run a minivm program.")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="the .mv file to run")
    source.add_argument("-c", dest="code", metavar="CODE", help="run CODE instead of a file")
    add_vm_options(run)
    add_observe_options(run)
    run.add_argument("--debug", action="store_true", help="debug the program (as minivm debug FILE)")
    add_schedule_options(run)
    run.set_defaults(handler=cmd_run)

    debug = sub.add_parser(
        "debug", help="step through a program, choosing which thread runs",
        description="Stop before the first instruction and take commands (step, next, continue, "
        "break, threads, where, locals, print, gil, run T, schedule manual, record, quit; help "
        "lists them). The GIL follows fifo order until you choose. See docs/debugging.md.",
    )
    debug.add_argument("file", help="the .mv file to debug")
    debug.add_argument("--check-interval", type=positive_int, default=100, metavar="N",
                       help="ticks (instructions) between checks (default: 100)")  # fmt: skip
    debug.set_defaults(handler=cmd_debug, code=None)

    repl = sub.add_parser(
        "repl", help="type statements and expressions at a prompt",
        description="A prompt for minivm statements and expressions (also: minivm with no "
        "arguments on a terminal). See docs/debugging.md.",
    )
    add_vm_options(repl)
    repl.set_defaults(handler=cmd_repl)

    dis = sub.add_parser(
        "dis", help="show a program's bytecode", description="Disassemble every code object."
    )
    dis_source = dis.add_mutually_exclusive_group(required=True)
    dis_source.add_argument("file", nargs="?", help="the .mv file to disassemble")
    dis_source.add_argument("-c", dest="code", metavar="CODE", help="disassemble CODE")
    dis.add_argument(
        "--compiled", action="store_true", help="show the host source the compiled engine generates"
    )
    dis.set_defaults(handler=cmd_dis)

    for name, (module, function, help_line) in LAZY_COMMANDS.items():
        if command is None or command == name:
            getattr(importlib.import_module(module), function)(sub)
        else:
            sub.add_parser(name, help=help_line)
    sub.choices["experiment"].set_defaults(handler=cmd_experiment)
    sub.choices["explore"].set_defaults(handler=cmd_explore)
    return parser


def read_source(args: argparse.Namespace) -> tuple[str, str]:
    """(file name, text) from ``FILE`` or ``-c``; raises ``SourceError`` or ``_UsageError``."""
    from minivm.frontend.parser import decode_source

    if args.code is not None:
        return "<string>", args.code
    path = args.file
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise _UsageError(f"minivm: cannot open '{path}': no such file") from None
    except IsADirectoryError:
        raise _UsageError(f"minivm: cannot open '{path}': it is a directory") from None
    except OSError as exc:
        raise _UsageError(f"minivm: cannot open '{path}': {exc.strerror}") from None
    return path, decode_source(data, path)


def compile_program(name: str, text: str):
    """Source → code object on a big stack (deeply nested programs compile too)."""
    from minivm.frontend.room import compile_with_room

    return compile_with_room(text, name)


def cmd_dis(args: argparse.Namespace) -> int:
    """``minivm dis``."""
    from minivm.bytecode.disasm import disassemble

    name, text = read_source(args)
    code = compile_program(name, text)
    if args.compiled:
        from minivm.runtime.compiled.listing import compiled_listing

        sys.stdout.write(compiled_listing(code))
    else:
        sys.stdout.write(disassemble(code))
    return EXIT_OK


def cmd_experiment(args: argparse.Namespace) -> int:
    """``minivm experiment``: compile here, then run every combination."""
    from minivm import api
    from minivm.observe.experiment import run_experiment

    args.code, args.file = None, args.program
    name, text = read_source(args)
    return run_experiment(args, api.compile(text, filename=name))


def cmd_explore(args: argparse.Namespace) -> int:
    """``minivm explore``: compile here, then run the program under many schedules."""
    from minivm.explore.command import run_explore

    args.code, args.file = None, args.program
    name, text = read_source(args)
    return run_explore(args, name, text, compile_program(name, text))


def vm_settings(args: argparse.Namespace) -> dict:
    """The ``minivm.api.run`` settings from parsed ``run`` options (``VMConfig``'s fields)."""
    return {
        "policy": args.policy,
        "check_interval": args.check_interval,
        "switch_interval": args.switch_interval,
        "host_switch_interval": args.host_switch_interval,
        "check_at": args.check_at,
        "recursion_limit": args.recursion_limit,
        "max_steps": args.max_steps,
        "max_threads": args.max_threads,
        "heap_check": args.heap_check,
        "engine": args.engine,
    }


def cmd_run(args: argparse.Namespace) -> int:
    """``minivm run``: through ``minivm.api``, as a notebook would run the program, printing
    to this process's streams."""
    from minivm import api

    if args.debug:
        return cmd_debug(args)
    name, text = read_source(args)
    program = api.compile(text, filename=name)
    schedules = None  # first: a replay sets the check interval the observers report
    if args.record or args.replay:
        from minivm.schedule.session import ScheduleSession, ScheduleUsageError

        try:
            schedules = ScheduleSession(args, text)
        except ScheduleUsageError as exc:
            raise _UsageError(str(exc)) from None
    session = None
    if any(getattr(args, option) for option in OBSERVE_OPTIONS):
        from minivm.observe.options import ObserveSession

        session = ObserveSession.from_args(args)
        if session.error:
            raise _UsageError(session.error)
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
        raise _UsageError(f"minivm: {exc}") from None
    if schedules:
        schedules.attach(run.machine)
        for note in schedules.notes:
            print(note, file=sys.stderr)
    try:
        status = run.start().wait().exit_status
    finally:
        if session:
            session.finish(run.result)
    if schedules:
        problem = schedules.finish()
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_USAGE
    return status


def cmd_debug(args: argparse.Namespace) -> int:
    """``minivm debug FILE`` (and ``minivm run --debug``): always under the manual policy."""
    from minivm import api
    from minivm.debug import run_debugger

    name, text = read_source(args)
    return run_debugger(api.compile(text, filename=name), args.check_interval)


def cmd_repl(args: argparse.Namespace) -> int:
    """``minivm repl``."""
    from minivm.repl import run_repl

    return run_repl(vm_settings(args))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``minivm`` command; returns (and exits with) the status."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # ints of any size print in full
    parser = build_parser(command_word(sys.argv[1:] if argv is None else argv) or "")
    words = sys.argv[1:] if argv is None else argv
    if not words and sys.stdin.isatty() and sys.stdout.isatty():
        words = ["repl"]  # like python: no arguments on a terminal opens the prompt
        parser = build_parser("repl")
    args = parser.parse_args(words)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return _exit(EXIT_USAGE)
    try:
        status = args.handler(args)
    except SourceError as error:
        print(format_source_error(error), file=sys.stderr)
        status = EXIT_USAGE
    except _UsageError as error:
        print(str(error), file=sys.stderr)
        status = EXIT_USAGE
    except KeyboardInterrupt:
        print("minivm: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    except BrokenPipeError:
        status = EXIT_OK
    except Exception as error:  # a bug in minivm itself
        if os.environ.get("MINIVM_DEBUG"):
            raise
        print(format_internal_error(error), file=sys.stderr)
        status = EXIT_RUNTIME
    return _exit(status)


def _exit(status: int) -> int:
    """Flush and end the process. Guest threads still running (after an abort or Ctrl-C)
    are daemon threads; ``os._exit`` ends them without waiting on the host's shutdown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            # The reader went away: point stdout at /dev/null so the host's own final
            # flush at exit does not complain (the recipe of Python's signal docs).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
        except (ValueError, OSError):
            pass
    if any(t.daemon and t.is_alive() for t in threading.enumerate()):
        os._exit(status)
    return status
