"""Code generation for one copy of one block: instructions become host statements.

The operand stack is simulated at translation time: each entry is a host *expression*, not
a push. A local or a constant is used where it is consumed (``l0 - 1``, not
``s0 = l0; s1 = 1; s0 = s0 - s1``); everything that reads shared state (a global, a cell)
or may fail is computed on its own line at its own instruction, into ``s<depth>``, the
host local that stands for that stack slot. So globals and cells are read when their
instruction runs (``x += 1`` on a global stays a read, an add and a write that a switch can
split), and a failing instruction fails on a line that maps back to its own ``pc``.

Three *modes* make the copies of a block (see ``codegen``): ``INT`` knows that the locals
of its guard are ints and computes int arithmetic and comparisons directly, as pure
expressions carried to their consumer; ``FAST`` and ``SLOW`` test types inline the way the
interpreter's loop does and call ``operations`` for everything else. ``SLOW`` also reaches
the check before each instruction (``codegen`` writes those lines).
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.runtime.compiled.handlers import HANDLERS
from minivm.runtime.compiled.stack import NON_HEAP_TYPES, Entry, nonzero_int, temp

INT, FAST, SLOW = "int", "fast", "slow"

# Host helpers a generated function calls for the general case (names in its namespace).
_GENERIC = {
    op.ADD: "op_add(heap, {a}, {b})", op.SUB: "op_sub({a}, {b})", op.MUL: "op_mul({a}, {b})",
    op.DIV: "op_div({a}, {b})", op.FLOOR_DIV: "op_floor_div({a}, {b})", op.MOD: "op_mod({a}, {b})",
    op.LT: "op_lt({a}, {b})", op.LE: "op_le({a}, {b})", op.GT: "op_gt({a}, {b})",
    op.GE: "op_ge({a}, {b})", op.EQ: "op_eq({a}, {b})", op.NE: "op_ne({a}, {b})",
}  # fmt: skip
_SYMBOL = {
    op.ADD: "+", op.SUB: "-", op.MUL: "*", op.FLOOR_DIV: "//", op.MOD: "%",
    op.LT: "<", op.LE: "<=", op.GT: ">", op.GE: ">=", op.EQ: "==", op.NE: "!=",
}  # fmt: skip
_COMPARISONS = frozenset({op.LT, op.LE, op.GT, op.GE, op.EQ, op.NE})
# Ops whose inline fast path also takes two strings (as the interpreter's does).
_STR_TOO = frozenset({op.ADD, op.EQ, op.NE})
TERMINATORS = frozenset(
    {op.POP_JUMP_IF_FALSE, op.JUMP_IF_FALSE_OR_POP, op.JUMP_IF_TRUE_OR_POP, op.JUMP, op.FOR_ITER,
     op.CALL, op.RETURN}
)  # fmt: skip


class CopyEmitter:
    """Writes one copy (``mode``) of one block's instructions onto ``gen``'s writer."""

    def __init__(
        self, gen, mode: str, stack: list[Entry], pcs: list[int], guard: frozenset[int],
        stored: dict[int, Entry] | None = None, ahead: int = 0,
    ):  # fmt: skip
        self.gen = gen
        self.code: CodeObject = gen.code
        self.mode = mode
        self.stack = list(stack)
        self.pcs = pcs
        self.guard = guard
        self.used_guards: set[int] = set()
        # Locals stored since the copy (or region) began: the entry stored, for its type.
        self.stored: dict[int, Entry] = {} if stored is None else stored
        # Ticks charged beyond this block's own (a region charges its longest path at once).
        self.ahead = ahead
        self.index = 0  # position of the current instruction in the block

    # -- writing lines
    def line(self, text: str, kind: str = "code", name: str = "") -> None:
        """One host line for the current instruction (errors on it map to its pc)."""
        n = len(self.pcs)
        i = self.index
        adjust = -(i + 1) if self.mode == SLOW else self.ahead + n - 1 - i
        self.gen.writer.line(text, self.gen.info(self.pcs[i], adjust, kind, name))

    def live_temps(self) -> tuple[str, ...]:
        """Host locals holding values on the simulated stack (roots for the heap)."""
        return tuple(dict.fromkeys(e.expr for e in self.stack if e.kind == "temp"))

    # -- the stack
    def push(self, entry: Entry) -> None:
        """Push a simulated entry."""
        self.stack.append(entry)

    def pop(self) -> Entry:
        """Pop the top simulated entry (no code: its expression is used where consumed)."""
        return self.stack.pop()

    def before_write(self, name: str) -> None:
        """``name`` is about to be assigned: first compute every pending entry that reads it."""
        for position, entry in enumerate(self.stack):
            in_place = entry.kind == "temp" and entry.expr == f"s{position}" == name
            if name in entry.refs and not in_place:
                self.materialize(position)

    def materialize(self, position: int) -> Entry:
        """Put the value at ``position`` into its host local ``s<position>``."""
        entry = self.stack[position]
        target = f"s{position}"
        if entry.kind == "temp" and entry.expr == target:
            return entry
        self.stack[position] = placeholder = temp(position, entry.typ)
        placeholder.guards = entry.guards
        self.before_write(target)
        self.line(f"{target} = {entry.expr}")
        return placeholder

    def set_temp(self, text: str, typ: str | None = None, kind: str = "code", name: str = "") -> None:
        """Push the value of ``text`` computed now, into ``s<depth>``."""
        position = len(self.stack)
        target = f"s{position}"
        self.before_write(target)
        self.line(f"{target} = {text}", kind, name)
        self.push(temp(position, typ))

    def operand(self) -> Entry:
        """Pop an entry usable twice in one expression (a pure one is computed first)."""
        if not self.stack[-1].simple:
            self.materialize(len(self.stack) - 1)
        return self.pop()

    def canonical(self, below: int | None = None, locals_too: bool = False) -> list[Entry]:
        """End of the copy: every slot (under ``below``) in ``s<position>``, a local or a
        constant, so that every copy of the block leaves its values in the same places; with
        ``locals_too`` locals are copied to their slots as well (before flow that branches)."""
        for position, entry in enumerate(self.stack[:below]):
            misplaced = entry.kind == "temp" and entry.expr != f"s{position}"
            if entry.kind == "pure" or misplaced or (locals_too and entry.kind == "local"):
                self.materialize(position)
        return self.stack


    # -- instructions
    def instruction(self, pc: int) -> None:
        """Write the code of the instruction at ``pc`` (control instructions write none)."""
        opcode, arg = self.code.instructions[pc]
        if opcode in TERMINATORS:
            return
        if opcode in _GENERIC:
            self.binary(opcode)
        else:
            HANDLERS[opcode](self, arg)

    def local_entry(self, slot: int) -> Entry:
        """The entry for reading guest local ``slot``, with its type when known here."""
        stored = self.stored.get(slot)
        if slot in self.gen.known:  # an int everywhere here (a type-versioned loop)
            typ, guards = "int", frozenset()
        elif stored is not None:
            typ, guards = stored.typ, stored.guards
        elif self.mode == INT and slot in self.guard:
            typ, guards = "int", frozenset({slot})
        else:
            typ, guards = None, frozenset()
        name = f"l{slot}"
        return Entry(name, "local", typ, frozenset({name}), guards)

    def binary(self, opcode: int) -> None:
        """A binary operator: a pure expression on ints, else the interpreter's inline test
        and its ``operations`` helper for everything else."""
        b, a = self.stack[-1], self.stack[-2]
        symbol = _SYMBOL.get(opcode)
        if a.typ == "int" and b.typ == "int" and symbol is not None:  # cannot fail: a pure value
            if opcode not in (op.FLOOR_DIV, op.MOD) or nonzero_int(b):
                self.pop()
                self.pop()
                self.used_guards |= a.guards | b.guards
                typ = "bool" if opcode in _COMPARISONS else "int"
                self.push(Entry(f"({a.expr} {symbol} {b.expr})", "pure", typ, a.refs | b.refs, a.guards | b.guards))
                return
        b = self.operand()
        a = self.operand()
        generic = _GENERIC[opcode].format(a=a.expr, b=b.expr)
        typ = "bool" if opcode in _COMPARISONS else None
        if symbol is None:  # true division: always the general path, as in the interpreter
            self.set_temp(generic, typ)
            return
        fast = f"{a.expr} {symbol} {b.expr}"
        if opcode in _STR_TOO:
            if a.typ in ("int", "str") and b.typ == a.typ:
                test = ""
            elif a.typ in ("int", "str"):
                test = f"{b.expr}.__class__ is {a.typ}"
            elif b.typ in ("int", "str"):
                test = f"{a.expr}.__class__ is {b.typ}"
            else:
                cls = f"{a.expr}.__class__"
                test = f"{cls} is {b.expr}.__class__ and ({cls} is int or {cls} is str)"
        else:
            tests = list(dict.fromkeys(f"{e.expr}.__class__ is int" for e in (a, b) if e.typ != "int"))
            if opcode in (op.FLOOR_DIV, op.MOD) and not nonzero_int(b):
                tests.append(b.expr)
            test = " and ".join(tests)
        self.set_temp(f"{fast} if {test} else {generic}" if test else fast, typ)

    def incref(self, entry: Entry) -> None:
        """Count the reference a store makes (nothing for values that are not heap objects)."""
        if entry.kind == "const" or entry.typ in NON_HEAP_TYPES:
            return
        self.line(f"if {entry.expr}.__class__ in HEAP: {entry.expr}.rc += 1")

    def decref_old(self) -> None:
        """Uncount the reference the store replaced (held in host local ``o``)."""
        self.line("if o.__class__ in HEAP: o.rc -= 1")


# Every opcode the tier writes code for (a test checks it covers every plain opcode).
HANDLED = frozenset(HANDLERS) | frozenset(_GENERIC) | TERMINATORS
