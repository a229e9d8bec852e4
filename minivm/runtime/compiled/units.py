"""Units: a node sequence cut into blocks, each with the control instruction that ends it.

A *unit* is what one block's copies and the flow after them are made of: the plain
instructions of a block (``ops``) and the node that ends it (``control``): a branch, a
``break``, a return, a call (an ``Op`` whose instruction is ``CALL``), a ``Loop`` (with no
ops: a loop begins a block of its own), or nothing for the instructions at the end of a
sequence. ``measure`` gives the ticks of the longest way through a run of units, which a
*region* charges at once (see ``regions``).
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.runtime.compiled import structure as st


class Unit:
    """One block (``ops`` then the instruction of ``control``, if it has one) and its flow."""

    __slots__ = ("control", "ops")

    def __init__(self, ops: tuple[int, ...], control: object = None):
        self.ops = ops
        self.control = control

    def __repr__(self) -> str:
        return f"Unit({self.ops!r}, {self.control!r})"

    @property
    def pcs(self) -> list[int]:
        """The instructions the block charges: its ops, its control instruction, and what
        runs right after that in the same block (a ``for`` loop's ``FOR_ITER``)."""
        control = self.control
        if control is None or isinstance(control, st.Loop):
            return list(self.ops)
        return [*self.ops, control.pc, *getattr(control, "also", ())]


def is_call(code: CodeObject, node) -> bool:
    """Whether ``node`` is a ``CALL`` instruction."""
    return isinstance(node, st.Op) and code.instructions[node.pc][0] == op.CALL


def units(code: CodeObject, nodes: tuple) -> list[Unit]:
    """``nodes`` cut into units."""
    result: list[Unit] = []
    pending: list[int] = []
    for node in nodes:
        if isinstance(node, st.Op) and not is_call(code, node):
            pending.append(node.pc)
            continue
        if isinstance(node, st.Loop):
            if pending:
                result.append(Unit(tuple(pending)))
            result.append(Unit((), node))
        else:
            result.append(Unit(tuple(pending), node))
        pending = []
    if pending:
        result.append(Unit(tuple(pending)))
    return result


def straight(code: CodeObject, nodes: tuple) -> bool:
    """Whether ``nodes`` can run inside a region: no loop and no call, at any depth."""
    return all(_straight_unit(code, unit) for unit in units(code, nodes))


def _straight_unit(code: CodeObject, unit: Unit) -> bool:
    control = unit.control
    if isinstance(control, st.Loop) or is_call(code, control):
        return False
    if isinstance(control, st.If):
        return straight(code, control.then) and straight(code, control.orelse)
    if isinstance(control, st.AndOr):
        return straight(code, control.right)
    return True


def fits_region(code: CodeObject, unit: Unit) -> bool:
    """Whether a unit may be part of a region (a call may, as the region's last unit)."""
    return is_call(code, unit.control) or _straight_unit(code, unit)


def measure(code: CodeObject, run: list[Unit], charged: int = 0) -> tuple[int | None, int]:
    """Ticks charged on the way through ``run`` from ``charged``: (at its end, or None if no
    way gets there; the most on any way, including ways that leave early)."""
    longest = charged
    for unit in run:
        charged += len(unit.pcs)
        control = unit.control
        if isinstance(control, (st.Return, st.Continue, st.Break)):
            return None, max(longest, charged)
        if isinstance(control, st.ExitIf):
            longest = max(longest, charged)
        elif isinstance(control, st.If):
            ends = []
            for branch in (control.then, control.orelse):
                end, most = measure(code, units(code, branch), charged)
                longest = max(longest, most)
                if end is not None:
                    ends.append(end)
            if not ends:
                return None, longest
            charged = max(ends)
        elif isinstance(control, st.AndOr):
            end, most = measure(code, units(code, control.right), charged)
            longest = max(longest, most)
            charged = end if end is not None else charged
    return charged, max(longest, charged)


def stores_locals(code: CodeObject, nodes: tuple) -> bool:
    """Whether ``nodes`` assign a local anywhere (then values on the stack that are locals
    must be copied out before flow that may or may not run them)."""
    stores = (op.STORE_LOCAL, op.CLEAR_LOCAL, op.MAKE_CELL)
    for node in nodes:
        if isinstance(node, st.Op) and code.instructions[node.pc][0] in stores:
            return True
        for child in ("then", "orelse", "right", "body"):
            if stores_locals(code, getattr(node, child, ())):
                return True
    return False
