"""Which engine runs a machine's threads: the interpreter or the compiled tier.

The interpreter (``interpreter.execute``) is the reference engine and the one that can stop
at every instruction: tracing instructions (``--trace``, ``--trace-json``) and the step
limit (``--max-steps``) need it. The compiled tier (``runtime/compiled``) runs the same
programs with the same checks at the same instructions, several times faster.

``engine`` is ``auto`` (the compiled tier unless something needs every instruction),
``interp`` or ``compiled``. Forcing ``compiled`` together with instruction tracing or a
step limit is an error (``ValueError``; a usage error on the command line), not a silent
change of engine.
"""

from __future__ import annotations

from collections.abc import Callable

ENGINE_NAMES = ("auto", "interp", "compiled")


def check_engine_name(name: str) -> str:
    """``name`` if it names an engine; else ``ValueError`` listing the valid names."""
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine '{name}' (choose from: {', '.join(ENGINE_NAMES)})")
    return name


def needs_interpreter(tracing: bool, max_steps: int | None) -> str:
    """Why a run must stop at every instruction ("" if it need not)."""
    if tracing:
        return "tracing every instruction"
    if max_steps is not None:
        return "a step limit (--max-steps)"
    return ""


def choose_engine(name: str, tracing: bool, max_steps: int | None) -> str:
    """``interp`` or ``compiled`` for a run; ``ValueError`` for an impossible combination."""
    check_engine_name(name)
    reason = needs_interpreter(tracing, max_steps)
    if name == "compiled" and reason:
        raise ValueError(f"the compiled engine cannot run with {reason}: use --engine interp or auto")
    if name == "auto":
        return "interp" if reason else "compiled"
    return name


def make_runner(vm, name: str) -> Callable:
    """The function ``Machine.thread_main`` calls to run one thread to its end."""
    if name == "compiled":
        from minivm.runtime.compiled.engine import CompiledEngine

        return CompiledEngine(vm).run
    from minivm.runtime.interpreter import execute

    return lambda thread: execute(vm, thread)
