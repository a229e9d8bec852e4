"""Regions: several blocks charged with one budget test, a loop's whole iteration included.

A *region* is a run of units with no loop and no call inside (a call may end it). Its
longest way through costs ``L`` ticks, so if ``budget >= L`` no check can fall anywhere in
it, whichever way it goes: one test, ``budget -= L``, and every block of the region runs
its fast code with no test of its own. Where a way through is shorter, the difference is
given back (``budget += k``) where that way ends: at an early exit (``break``,
``continue``, ``return``, a loop's exit test), at the shorter branch of an ``if`` (so both
branches meet having charged the same), on the short-cut of an ``and``/``or``, and before
a call (the callee must see the exact budget). Otherwise the region's blocks run one by one
as usual (``codegen``). A loop whose body is one region costs one budget test per
iteration::

    while True:
        if budget >= 9 and l0.__class__ is int:
            budget -= 9
            if not (l0 > 0):
                budget += 5
                break
            l0 = (l0 - 1)
        else:
            ...   # the same blocks, each with its own copies and checks

This is the prototype's "a block may run on past a loop's exit test", generalised.
"""

from __future__ import annotations

from minivm.runtime.compiled import structure as st
from minivm.runtime.compiled.emitter import FAST, INT, CopyEmitter
from minivm.runtime.compiled.stack import Entry, temp
from minivm.runtime.compiled.units import Unit, is_call, measure, stores_locals, units


class RegionWriter:
    """Writes the fast code of one region: ``mode`` INT (with ``guard``) or FAST."""

    def __init__(self, gen, run: list[Unit], mode: str, guard: frozenset[int]):
        self.gen = gen
        self.code = gen.code
        self.run = run
        self.mode = mode
        self.guard = guard
        self.total = measure(self.code, run)[1]
        self.used_guards: set[int] = set()

    def write(self, stack: list[Entry]) -> list[Entry] | None:
        """Write the region (its budget already charged); returns the stack at its end."""
        end = self.units(self.run, stack, 0, {}, last=True)
        return None if end is None else end[0]

    def refund(self, charged: int, pc: int) -> None:
        """Give back what the region charged beyond the ``charged`` ticks of this way."""
        if self.total > charged:
            self.gen.writer.line(f"budget += {self.total - charged}", self.gen.info(pc))

    def emitter(self, stack, pcs, stored, charged) -> CopyEmitter:
        """The emitter for one block of the region, ``charged`` ticks into it."""
        ahead = self.total - charged - len(pcs)
        return CopyEmitter(self.gen, self.mode, stack, pcs, self.guard, stored, ahead)

    def units(self, run: list[Unit], stack, charged: int, stored: dict, last: bool = False):
        """Write ``run``; returns (stack, charged, stored) at its end, or None if flow ended."""
        w = self.gen.writer
        for unit in run:
            pcs = unit.pcs
            emitter = self.emitter(stack, pcs, stored, charged)
            for i, pc in enumerate(pcs):
                emitter.index = i
                emitter.instruction(pc)
            self.used_guards |= emitter.used_guards
            charged += len(pcs)
            control = unit.control
            info = self.gen.info(pcs[-1]) if pcs else self.gen.info(0)
            if control is None or isinstance(control, st.Goto):
                stack = emitter.stack
                continue
            if is_call(self.code, control):
                # A region's last unit: the callee must see the exact budget.
                stack = emitter.canonical()
                self.refund(charged, control.pc)
                stack = self.gen.call(control.pc, list(stack))
                charged = self.total
                continue
            if isinstance(control, st.Return):
                self.refund(charged, control.pc)
                w.line("clock.ticks = budget", info)
                w.line(f"return {emitter.stack[-1].expr}", info)
                return None
            if isinstance(control, st.Continue):
                self.refund(charged, control.pc)
                w.line("continue", info)
                return None
            if isinstance(control, st.Break):
                self.refund(charged, control.pc)
                self.gen.leave(control.pops, emitter.canonical())
                return None
            if isinstance(control, st.ExitIf):
                emitter.canonical(len(emitter.stack) - 1)
                cond = emitter.pop()
                w.line(f"if not {cond.expr}:", info)
                w.indent += 1
                self.refund(charged, control.pc)
                self.gen.leave(control.pops, emitter.stack)
                w.indent -= 1
                stack = emitter.stack
            elif isinstance(control, st.If):
                ended = self.if_(control, emitter, charged, stored)
                if ended is None:
                    return None
                stack, charged, stored = ended
            elif isinstance(control, st.AndOr):
                stack, charged, stored = self.and_or(control, emitter, charged, stored)
            else:
                raise AssertionError(f"unknown node {control}")
        if last:
            stack = CopyEmitter(self.gen, self.mode, stack, [run[-1].pcs[-1] if run[-1].pcs else 0], self.guard)
            stack = stack.canonical()
            self.refund(charged, 0)
        return stack, charged, stored

    def branch(self, nodes: tuple, stack, charged: int, stored: dict):
        """One branch, one level deeper (``pass`` if it writes nothing)."""
        w = self.gen.writer
        w.indent += 1
        mark = w.mark()
        end = self.units(units(self.code, nodes), list(stack), charged, dict(stored))
        if w.mark() == mark:
            w.line("pass", self.gen.info(0))
        w.indent -= 1
        return end

    def if_(self, node: st.If, emitter: CopyEmitter, charged: int, stored: dict):
        """``if``/``else`` inside a region: the shorter branch gives the difference back."""
        w = self.gen.writer
        emitter.canonical(len(emitter.stack) - 1, locals_too=True)
        cond = emitter.pop()
        stack = emitter.stack
        w.line(f"if {cond.expr}:", self.gen.info(node.pc))
        ends = [self.branch(node.then, stack, charged, stored)]
        then_end = w.mark()
        if node.orelse:
            w.line("else:", self.gen.info(node.pc))
            ends.append(self.branch(node.orelse, stack, charged, stored))
        else:
            ends.append((stack, charged, stored))
        live = [end for end in ends if end is not None]
        if not live:
            return None
        most = max(end[1] for end in live)
        # Equalise: a branch that charged less gives the difference back at its end.
        refunds = [None if end is None else most - end[1] for end in ends]
        if refunds[1]:
            if node.orelse:
                w.line(f"budget += {refunds[1]}", self.gen.info(node.pc), indent=1)
            else:
                w.line("else:", self.gen.info(node.pc))
                w.line(f"budget += {refunds[1]}", self.gen.info(node.pc), indent=1)
        if refunds[0]:
            w.insert(then_end, f"budget += {refunds[0]}", self.gen.info(node.pc), indent=1)
        merged = dict(stored)
        for end in live:
            for slot, entry in end[2].items():
                if stored.get(slot) is not entry:
                    merged[slot] = Entry(f"l{slot}", "local")  # stored on some way: type unknown
        return stack, most, merged

    def and_or(self, node: st.AndOr, emitter: CopyEmitter, charged: int, stored: dict):
        """``and``/``or`` inside a region: the short-cut gives the right operand's ticks back."""
        w = self.gen.writer
        position = len(emitter.stack) - 1
        emitter.canonical(position, locals_too=stores_locals(self.code, node.right))
        emitter.materialize(position)
        target = f"s{position}"
        below = emitter.stack[:position]
        w.line(f"if {target}:" if node.is_and else f"if not {target}:", self.gen.info(node.pc))
        w.indent += 1
        run = units(self.code, node.right)
        end_stack, end_charged, end_stored = self.units(run, list(below), charged, dict(stored))
        settle = CopyEmitter(self.gen, self.mode, end_stack, [node.pc], self.guard)
        settle.materialize(position)
        w.indent -= 1
        if end_charged > charged:
            w.line("else:", self.gen.info(node.pc))
            w.line(f"budget += {end_charged - charged}", self.gen.info(node.pc), indent=1)
        merged = dict(stored)
        for slot in end_stored:
            if stored.get(slot) is not end_stored[slot]:
                merged[slot] = Entry(f"l{slot}", "local")
        return [*below, temp(position)], end_charged, merged


def region_guard(gen, run: list[Unit], stack: list[Entry]) -> frozenset[int]:
    """The locals whose being ints lets the region compute int arithmetic directly."""
    mark = gen.writer.mark()
    sites = len(gen.sites)
    trial = RegionWriter(gen, run, INT, frozenset(range(gen.code.nlocals)) - gen.known)
    trial.write(stack)
    gen.writer.truncate(mark)
    del gen.sites[sites:]
    return frozenset(trial.used_guards)


__all__ = ["FAST", "INT", "RegionWriter", "region_guard"]
