"""Call sites: the host code of one guest ``CALL``, after its block has been charged.

Each site has a cache in its host function's namespace: ``C<pc>``, the last guest function
called there with its entry, as one tuple (two threads running at once under ``none`` never
see one function with another's entry), and ``B<pc>``, the last builtin called there that
cannot block. A miss goes to the engine's ``resolve``, which checks the call as the
interpreter does and fills the cache::

    k = C10
    if s0 is k[0]: s0 = k[1](clock, budget, room - 1, s0, s1); budget = clock.ticks
    elif s0 is B10: s0 = s0.impl(clock.thread, [s1])
    else: s0 = resolve(s0, 1, S10)(clock, budget, room - 1, s0, s1); budget = clock.ticks

A callee read from a global named like a builtin is tested against the builtin first, and
the commonest builtins of loops (``len``, ``has``, ``push``, ``str``) are done inline when
the callee *is* that builtin and its arguments are of the usual types; anything else goes
to the builtin itself, so every error is the builtin's own.
"""

from __future__ import annotations

from minivm.runtime.builtins import BUILTINS
from minivm.runtime.compiled.lines import LineInfo
from minivm.runtime.compiled.stack import Entry, temp


def _len(result: str, args: list[str]) -> list[str]:
    (x,) = args
    test = f"{x}.__class__ is str or {x}.__class__ is MvList or {x}.__class__ is MvMap"
    return [f"if {test}: {result} = len({x})", None]


def _has(result: str, args: list[str]) -> list[str]:
    m, k = args
    test = f"{m}.__class__ is MvMap and ({k}.__class__ is str or {k}.__class__ is int)"
    return [f"if {test}: {result} = {k} in {m}", None]


def _push(result: str, args: list[str]) -> list[str]:
    target, value = args
    return [
        f"if {target}.__class__ is MvList:",
        f"    {target}.append({value})",
        f"    if {value}.__class__ in HEAP: {value}.rc += 1",
        f"    {result} = None",
        None,
    ]


def _str(result: str, args: list[str]) -> list[str]:
    (x,) = args
    return [f"{result} = to_str({x})"]


# Builtins done inline: name -> (argument count, lines; None marks where the general
# call goes, as the ``else`` of the inline test).
INLINE = {"len": (1, _len), "has": (2, _has), "push": (2, _push), "str": (1, _str)}


def write_call(gen, pc: int, stack: list[Entry]) -> list[Entry]:
    """Write the call at ``pc`` (callee and arguments on ``stack``); returns the stack after."""
    w = gen.writer
    n = gen.code.instructions[pc][1]
    position = len(stack) - n - 1
    callee, args = stack[position], stack[position + 1 :]
    info = LineInfo(pc, 0, "call", "", tuple(e.expr for e in stack[:position] if e.kind == "temp"), pc + 1)
    gen.max_indent = max(gen.max_indent, w.indent)
    f = callee.expr
    if callee.kind == "const":
        w.line(f"s{position} = {f}", info)
        f = f"s{position}"
    listed = ", ".join(a.expr for a in args)
    passed = "".join(f", {a.expr}" for a in args)
    result = f"s{position}"
    guest = f"{result} = k[1](clock, budget, room - 1, {f}{passed}); budget = clock.ticks"
    builtin = f"{result} = {f}.impl(clock.thread, [{listed}])"
    miss = f"{result} = resolve({f}, {n}, S{pc})(clock, budget, room - 1, {f}{passed}); budget = clock.ticks"
    inline = INLINE.get(callee.origin)
    if inline is not None and inline[0] == n:
        # `if f is BI_len:` then the inline test; its `else` is the builtin's own call.
        w.line(f"if {f} is BI_{callee.origin}:", info)
        w.indent += 1
        for text in inline[1](result, [a.expr for a in args]):
            if text is None:
                w.line(f"else: {builtin}", info)
            else:
                w.line(text, info)
        w.indent -= 1
        w.line("else:", info)
        w.indent += 1
    w.line(f"k = C{pc}", info)
    if callee.origin in BUILTINS:
        w.line(f"if {f} is B{pc}: {builtin}", info)
        w.line(f"elif {f} is k[0]: {guest}", info)
    else:
        w.line(f"if {f} is k[0]: {guest}", info)
        w.line(f"elif {f} is B{pc}: {builtin}", info)
    w.line(f"else: {miss}", info)
    if inline is not None and inline[0] == n:
        w.indent -= 1
    gen.sites.append((pc, n))
    return [*stack[:position], temp(position)]


# The builtins inline code compares callees with (the same objects in every machine).
INLINE_NAMES = {f"BI_{name}": BUILTINS[name] for name in INLINE}
