"""The ``minivm`` command line: ``run``, ``repl``, ``debug``, ``dis``, ``bench``, ``explore`` and ``experiment``.

This module is the dispatcher: it registers each command's sub-parser from the command's own
module (``minivm/commands/``: ``run`` with its options, ``debug`` and ``repl``, ``dis``; the
packages of ``bench``, ``explore`` and ``experiment``, imported only when they run), calls
the command, and turns what it raises into the exit status and one line on standard error.

Exit status: 0 success, 1 a runtime error in any thread, 2 bad input (usage, missing file,
syntax or compile error), 130 interrupted. No error shows a Python traceback of the VM
(set ``MINIVM_DEBUG=1`` to see one for a bug of minivm itself).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
import threading

from minivm import __version__
from minivm.commands.dis import add_dis_parser
from minivm.commands.interactive import add_debug_parser, add_repl_parser
from minivm.commands.run import add_run_parser
from minivm.commands.source import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    UsageError,
    glue_code_argument,
    read_source,
)
from minivm.errors import SourceError, caused_by_interrupt, format_internal_error, format_source_error


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, exiting with status 2 and a one-line hint, as usage errors should."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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

    add_run_parser(sub)
    add_debug_parser(sub)
    add_repl_parser(sub)
    add_dis_parser(sub)
    for name, (module, function, help_line) in LAZY_COMMANDS.items():
        if command is None or command == name:
            getattr(importlib.import_module(module), function)(sub)
        else:
            sub.add_parser(name, help=help_line)
    sub.choices["experiment"].set_defaults(handler=cmd_experiment)
    sub.choices["explore"].set_defaults(handler=cmd_explore)
    return parser


def cmd_experiment(args: argparse.Namespace) -> int:
    """``minivm experiment``: compile here, then run every combination."""
    from minivm import api
    from minivm.observe.experiment import run_experiment

    args.code, args.file = None, args.program
    name, text = read_source(args)
    return run_experiment(args, api.compile(text, filename=name))


def cmd_explore(args: argparse.Namespace) -> int:
    """``minivm explore``: compile here, then run the program under many schedules."""
    from minivm import api
    from minivm.explore.command import run_explore

    args.code, args.file = None, args.program
    name, text = read_source(args)
    return run_explore(args, name, text, api.compile(text, filename=name).code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``minivm`` command; returns (and exits with) the status."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # ints of any size print in full
    _open_closed_streams()
    parser = build_parser(command_word(sys.argv[1:] if argv is None else argv) or "")
    words = sys.argv[1:] if argv is None else argv
    if not words and sys.stdin.isatty() and sys.stdout.isatty():
        words = ["repl"]  # like python: no arguments on a terminal opens the prompt
        parser = build_parser("repl")
    args = parser.parse_args(glue_code_argument(words))
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return _exit(EXIT_USAGE)
    try:
        status = args.handler(args)
    except SourceError as error:
        _say(format_source_error(error))
        status = EXIT_USAGE
    except UsageError as error:
        _say(str(error))
        status = EXIT_USAGE
    except KeyboardInterrupt:
        _say("minivm: interrupted")
        status = EXIT_INTERRUPTED
    except BrokenPipeError:
        status = EXIT_OK
    except MemoryError:
        # The process's own memory ran out outside a run (reading or compiling a source too
        # large or deep for a limited address space, ulimit -v); during a run it is the
        # program's runtime error instead (interpreter.host_limit_error). Python reports it
        # as MemoryError, status 1: no bug of minivm, and its message is empty.
        _say("minivm: out of memory (the program needs more than this process may use)")
        status = EXIT_RUNTIME
    except Exception as error:  # a bug in minivm itself, unless the device refused a write
        if caused_by_interrupt(error):  # a Ctrl-C that Python wrapped (a lazy import's class creation)
            _say("minivm: interrupted")
            return _exit(EXIT_INTERRUPTED)
        if isinstance(error, OSError) and error.errno in DEVICE_ERRNOS:
            _say(f"minivm: cannot write the output: {error.strerror}")
            return _exit(EXIT_RUNTIME)
        if os.environ.get("MINIVM_DEBUG"):
            raise
        _say(format_internal_error(error))
        status = EXIT_RUNTIME
    return _exit(status)


# Write errors that are the device's, not minivm's: a full disk or quota, a file too large,
# a failing disk (a tool's report sent to a full disk must not read as a minivm bug).
DEVICE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _say(message: str) -> None:
    """Print ``message`` on standard error. A standard error that refuses it (a full disk)
    has nowhere to be told, and must not turn the exit status into that of a VM bug."""
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr, flush=True)


def _open_closed_streams() -> None:
    """A standard stream whose descriptor was closed when the process started
    (``minivm run x.mv >&-``) is ``None`` in ``sys``: point it at the null device, so that
    what would go there is dropped (as Python's own ``print`` drops it) and a closed input
    reads as empty, instead of failing."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115


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
