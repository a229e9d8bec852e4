"""The commands a person drives: ``minivm debug`` (a stepping debugger in which the person
chooses who holds the GIL, ``minivm/debug/``) and ``minivm repl`` (a prompt over one
long-lived VM, ``minivm/repl/``). See docs/debugging.md."""

from __future__ import annotations

import argparse

from minivm.arguments import positive_int
from minivm.commands.source import read_source
from minivm.commands.vm_options import add_vm_options, vm_settings


def add_debug_parser(sub) -> argparse.ArgumentParser:
    """Register ``minivm debug`` on the command line's sub-parsers."""
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
    return debug


def add_repl_parser(sub) -> argparse.ArgumentParser:
    """Register ``minivm repl`` on the command line's sub-parsers."""
    repl = sub.add_parser(
        "repl", help="type statements and expressions at a prompt",
        description="A prompt for minivm statements and expressions (also: minivm with no "
        "arguments on a terminal). See docs/debugging.md.",
    )  # fmt: skip
    add_vm_options(repl)
    repl.set_defaults(handler=cmd_repl)
    return repl


def cmd_debug(args: argparse.Namespace) -> int:
    """``minivm debug FILE`` (and ``minivm run --debug``): always under the manual policy;
    exit status 0 (130 when Ctrl-C stops it). Raises ``SourceError`` for a program that does not compile."""
    from minivm import api
    from minivm.debug import run_debugger

    name, text = read_source(args)
    return run_debugger(api.compile(text, filename=name), args.check_interval)


def cmd_repl(args: argparse.Namespace) -> int:
    """``minivm repl``: the prompt until end of input or ``:quit``; exit status 0 (130 when
    interrupted)."""
    from minivm.repl import run_repl

    return run_repl(vm_settings(args))
