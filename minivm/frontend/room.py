"""Room for the compiler: the one part of minivm that recurses on the host.

Parsing, name resolution and compiling walk the syntax tree recursively, so a deeply nested
program (up to the parser's ``MAX_NESTING``, 20,000 levels; fewer on a fallback stack, see
``parser.nesting_limit``) needs a deep host stack. The
compiler gets a thread of its own with a large stack and a raised host recursion limit, and
nothing else does (guest threads run with the host's defaults, see ``runtime/machine.py``).
The command line and the Python API (``minivm.compile``) both compile through here.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from minivm.bytecode.code import CodeObject

COMPILE_STACK_BYTES = 512 * 1024 * 1024
COMPILE_RECURSION_LIMIT = 200_000
# Smaller stacks to fall back on where the OS refuses the large one (a process whose address
# space is limited, ``ulimit -v``, as on many judges and sandboxes): the recursion limit
# shrinks with the stack, so deep nesting stays a host error instead of a crash.
FALLBACK_STACK_BYTES = (64 * 1024 * 1024, 16 * 1024 * 1024)


def with_big_stack(function: Callable[[], object]) -> object:
    """Call ``function`` on a thread with a large stack (``COMPILE_STACK_BYTES``, or a
    smaller one of ``FALLBACK_STACK_BYTES`` if the OS refuses it) and a raised host
    recursion limit (``COMPILE_RECURSION_LIMIT``, scaled to the stack), and return (or
    raise) its result. The limit is the host's, for the whole process: the caller waits meanwhile, and
    the previous limit is back when this returns."""
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    old_limit = sys.getrecursionlimit()
    try:
        for stack_bytes in (COMPILE_STACK_BYTES, *FALLBACK_STACK_BYTES):
            worker = threading.Thread(target=body, name="minivm-compile", daemon=True)
            limit = COMPILE_RECURSION_LIMIT * stack_bytes // COMPILE_STACK_BYTES
            sys.setrecursionlimit(max(old_limit, limit))
            # The stack size applies when the OS thread is created, i.e. at start().
            old_size = threading.stack_size()
            threading.stack_size(stack_bytes)
            try:
                worker.start()
                break
            except RuntimeError:  # "can't start new thread": no room for this stack
                if stack_bytes == FALLBACK_STACK_BYTES[-1]:
                    raise
            finally:
                threading.stack_size(old_size)
        while worker.is_alive():
            worker.join(0.05)
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


def compile_with_room(source: str, file: str = "<input>", interactive: bool = False) -> CodeObject:
    """``compile_source`` on a thread with room for deep nesting; raises what it raises
    (``SourceError`` for bad source, also for nesting deeper than the stack it got affords).
    ``interactive``: as ``compile_source`` (the REPL)."""
    from minivm.frontend.compiler import compile_source
    from minivm.frontend.parser import nesting_limit

    def body() -> CodeObject:
        # On a fallback stack the recursion limit is lower, and so is the nesting it affords:
        # beyond it the walk would end in the host's RecursionError, a minivm bug to the user.
        return compile_source(source, file, interactive, nesting_limit(sys.getrecursionlimit()))

    return with_big_stack(body)
