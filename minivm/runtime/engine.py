"""Which engine runs a machine's threads: the interpreter or the compiled tier.

The interpreter (``interpreter.execute``) is the reference engine and the one that can stop
at every instruction: tracing instructions (``--trace``, ``--trace-json``) needs it. The
compiled tier (``runtime/compiled``) runs the same programs with the same checks at the same
instructions, several times faster. The step limit (``--max-steps``) works on both: it
shortens the budget, so the check comes exactly where the limit falls, on either engine.

``engine`` is ``auto`` (the compiled tier unless the run needs the interpreter, or, before
CPython 3.11, the recursion limit is very deep), ``interp`` or ``compiled``. The interpreter
is needed to trace instructions (``--trace``, ``--trace-json``, the debugger) and for
``--check-at backedge`` (which looks at the instruction about to run at every check). Forcing
``compiled`` for such a run is an error (``ValueError``; a usage error on the command line),
not a silent change of engine.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

ENGINE_NAMES = ("auto", "interp", "compiled")


def check_engine_name(name: str) -> str:
    """``name`` if it names an engine; else ``ValueError`` listing the valid names."""
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine '{name}' (choose from: {', '.join(ENGINE_NAMES)})")
    return name


# Before CPython 3.11 every host call also recursed on the C stack: a guest recursion deeper
# than this could overflow a spawned thread's stack on the compiled engine (one host call
# per guest call), while the interpreter keeps guest frames on the heap.
DEEP_RECURSION_BEFORE_311 = 20_000


def choose_engine(name: str, needs_interpreter: str = "", recursion_limit: int = 1000) -> str:
    """``interp`` or ``compiled`` for a run. ``needs_interpreter`` says what the run asks that
    only the interpreter can do (``"trace every instruction"``), or is empty. ``auto`` then
    picks the interpreter (so it does before CPython 3.11 for a ``recursion_limit`` deeper
    than ``DEEP_RECURSION_BEFORE_311`` guest calls); forcing ``compiled`` raises
    ``ValueError`` naming the reason."""
    check_engine_name(name)
    if name == "compiled" and needs_interpreter:
        raise ValueError(f"the compiled engine cannot {needs_interpreter}: use --engine interp or auto")
    if name == "auto":
        deep = sys.version_info < (3, 11) and recursion_limit > DEEP_RECURSION_BEFORE_311
        return "interp" if needs_interpreter or deep else "compiled"
    return name


def make_runner(vm, name: str) -> Callable:
    """The function ``Machine.thread_main`` calls to run one thread to its end."""
    if name == "compiled":
        from minivm.runtime.compiled.engine import CompiledEngine

        return CompiledEngine(vm).run
    from minivm.runtime.interpreter import execute

    return lambda thread: execute(vm, thread)
