"""Type-versioned loops: a loop whose int locals stay ints is written twice.

``while n > 0 { n = n - 1; }``: if ``n`` is an int when the loop starts, it is an int on
every iteration, because the only store to it in the loop stores int arithmetic on ints.
Such locals (*int-stable* in the loop) are tested once, before the loop::

    if l0.__class__ is int:
        while True: ...     # every load of l0 is known to be an int: no test per iteration
    else:
        while True: ...     # the general version

A local is int-stable in a loop if every store to it inside the loop (at any depth) stores
an int computed, within the same block, from constants and int-stable locals by operations
that give ints on ints (``+ - * // %`` with a constant non-zero divisor, unary ``-``); a
value that comes from a call, a global, an index or another block may be anything. The
set is found by elimination: assume every candidate is stable, drop those with a store that
is not provably an int, repeat until nothing changes. Only locals the loop's arithmetic
actually uses are worth a version; versions nest at most ``MAX_VERSIONED`` deep, so code
grows at most fourfold.
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.runtime.compiled import structure as st
from minivm.runtime.compiled.emitter import INT, CopyEmitter
from minivm.runtime.compiled.stack import temp
from minivm.runtime.compiled.units import units

MAX_VERSIONED = 2
_LOADS = (op.LOAD_LOCAL, op.LOAD_LOCAL_CHECKED)
_NEVER_INT = (op.MAKE_CELL, op.CLEAR_LOCAL)


def _unit_runs(code, nodes: tuple):
    """Every unit of ``nodes``, at any depth (branches, operands, nested loops)."""
    for unit in units(code, nodes):
        control = unit.control
        if isinstance(control, st.Loop):
            yield from _unit_runs(code, control.body)
            continue
        yield unit
        for child in ("then", "orelse", "right"):
            nested = getattr(control, child, None)
            if isinstance(nested, tuple):
                yield from _unit_runs(code, nested)


def int_stable(gen, loop: st.Loop) -> frozenset[int]:
    """The locals worth testing once before ``loop`` (beyond those already known ints)."""
    code = gen.code
    runs = list(_unit_runs(code, loop.body))
    pcs = [pc for unit in runs for pc in unit.ops]
    loaded = {code.instructions[pc][1] for pc in pcs if code.instructions[pc][0] in _LOADS}
    never = {code.instructions[pc][1] for pc in pcs if code.instructions[pc][0] in _NEVER_INT}
    candidates = frozenset(loaded - never - gen.known)
    mark = gen.writer.mark()
    try:
        while candidates:
            used: set[int] = set()
            bad: set[int] = set()
            for unit in runs:
                block = unit.pcs
                if not block:
                    continue
                depth = gen.shape.depths[block[0]] or 0
                stack = [temp(i) for i in range(depth)]
                emitter = CopyEmitter(gen, INT, stack, block, candidates)
                for i, pc in enumerate(block):
                    emitter.index = i
                    emitter.instruction(pc)
                used |= emitter.used_guards
                bad |= {slot for slot, entry in emitter.stored.items() if entry.typ != "int"}
            if not bad & candidates:
                return candidates & used
            candidates = candidates - bad
        return frozenset()
    finally:
        gen.writer.truncate(mark)
