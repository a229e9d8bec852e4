"""The one opcode table. The opcode numbers, the disassembler and the interpreter's dispatch
are all derived from it, and a test checks that each covers every opcode.

Each entry gives the operand kind (how the disassembler shows the argument), the stack
effect (a number, or a function of the argument for counted operands) and one line of doc.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable


class Operand(enum.Enum):
    """What an instruction's argument means."""

    NONE = "none"  # no argument
    CONST = "const"  # index into the code object's constants
    LOCAL = "local"  # local slot number
    NAME = "name"  # index into the code object's global names
    FREE = "free"  # index into the closure's captured cells
    JUMP = "jump"  # absolute instruction offset
    COUNT = "count"  # how many stack values the instruction takes
    FUSED = "fused"  # a tuple of plain arguments for a fused instruction


StackEffect = int | Callable[[int], int]


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One opcode: number, name, operand kind, stack effect, and a line of documentation."""

    code: int
    name: str
    operand: Operand
    effect: StackEffect
    doc: str
    # For jumps: the stack effect when the jump is taken (None for non-jumps).
    jump_effect: int | None = None
    # For fused instructions: how many plain instructions this one stands for.
    width: int = 1

    def stack_effect(self, arg: int) -> int:
        """The change in stack depth when the instruction falls through."""
        return self.effect(arg) if callable(self.effect) else self.effect


_TABLE: list[tuple] = [
    # name, operand, effect, doc, [jump_effect]
    ("LOAD_CONST", Operand.CONST, 1, "push a constant"),
    ("LOAD_LOCAL", Operand.LOCAL, 1, "push a local the compiler proved assigned"),
    ("LOAD_LOCAL_CHECKED", Operand.LOCAL, 1, "push a local; error if its let has not run yet"),
    ("STORE_LOCAL", Operand.LOCAL, -1, "pop into a local slot"),
    ("CLEAR_LOCAL", Operand.LOCAL, 0, "mark a local as not yet declared (block entry)"),
    ("LOAD_GLOBAL", Operand.NAME, 1, "push a global (or builtin) by name, resolved now"),
    ("STORE_GLOBAL", Operand.NAME, -1, "pop into an existing global"),
    ("DEFINE_GLOBAL", Operand.NAME, -1, "pop into a global, declaring it"),
    ("MAKE_CELL", Operand.LOCAL, 0, "put a fresh, unassigned cell in a local slot"),
    ("LOAD_CELL", Operand.LOCAL, 1, "push the value of the cell in a local slot"),
    ("STORE_CELL", Operand.LOCAL, -1, "pop into the cell in a local slot"),
    ("LOAD_FREE", Operand.FREE, 1, "push the value of a captured cell"),
    ("STORE_FREE", Operand.FREE, -1, "pop into a captured cell"),
    ("POP", Operand.NONE, -1, "discard the top of the stack"),
    ("DUP2", Operand.NONE, 2, "duplicate the top two values (for a[i] op= e)"),
    ("ADD", Operand.NONE, -1, "a + b: numbers, strings, lists"),
    ("SUB", Operand.NONE, -1, "a - b"),
    ("MUL", Operand.NONE, -1, "a * b (numbers only)"),
    ("DIV", Operand.NONE, -1, "a / b, true division"),
    ("FLOOR_DIV", Operand.NONE, -1, "a // b, floor division"),
    ("MOD", Operand.NONE, -1, "a % b, floored modulo"),
    ("EQ", Operand.NONE, -1, "a == b by value"),
    ("NE", Operand.NONE, -1, "a != b by value"),
    ("LT", Operand.NONE, -1, "a < b"),
    ("LE", Operand.NONE, -1, "a <= b"),
    ("GT", Operand.NONE, -1, "a > b"),
    ("GE", Operand.NONE, -1, "a >= b"),
    ("NEG", Operand.NONE, 0, "-a"),
    ("NOT", Operand.NONE, 0, "not a"),
    ("JUMP", Operand.JUMP, 0, "jump", 0),
    ("POP_JUMP_IF_FALSE", Operand.JUMP, -1, "pop; jump if false", -1),
    ("JUMP_IF_FALSE_OR_POP", Operand.JUMP, -1, "and: jump keeping a false top, else pop", 0),
    ("JUMP_IF_TRUE_OR_POP", Operand.JUMP, -1, "or: jump keeping a true top, else pop", 0),
    ("BUILD_LIST", Operand.COUNT, lambda n: 1 - n, "pop n values into a new list"),
    ("BUILD_MAP", Operand.COUNT, lambda n: 1 - 2 * n, "pop n key/value pairs into a new map"),
    ("INDEX", Operand.NONE, -1, "a[i]"),
    ("STORE_INDEX", Operand.NONE, -3, "a[i] = v (pops a, i, v)"),
    ("CALL", Operand.COUNT, lambda n: -n, "call the callee below n arguments"),
    ("SPAWN", Operand.COUNT, lambda n: -n, "start the callee below n arguments on a new thread"),
    ("RETURN", Operand.NONE, -1, "return the top of the stack to the caller"),
    ("MAKE_FUNCTION", Operand.CONST, 1, "make a closure from a code constant"),
    # The iterable stays on the stack under its iterator, so the heap sees it held.
    ("GET_ITER", Operand.NONE, 1, "push an iterator over the top (maps: a key snapshot)"),
    ("FOR_ITER", Operand.JUMP, 1, "push the next item, or pop iterator and iterable and jump", -2),
]

# Fused instructions (superinstructions) appear only in a code object's ``fast`` form; each
# stands for ``width`` plain instructions on locals and constants and charges that many ticks.
# They never write globals or cells (one test reads a global), so ``x += 1`` on shared state
# stays a separate read and write. Argument: a tuple described in ``bytecode/fusion.py``.
_FUSED: list[tuple] = [
    # name, width, stack effect, doc
    ("COMPARE_LOCAL_CONST_JUMP", 4, 0, "LOAD_LOCAL a; LOAD_CONST k; <compare>; POP_JUMP_IF_FALSE t"),
    ("COMPARE_LOCALS_JUMP", 4, 0, "LOAD_LOCAL a; LOAD_LOCAL b; <compare>; POP_JUMP_IF_FALSE t"),
    ("ARITH_LOCAL_CONST_STORE", 4, 0, "LOAD_LOCAL a; LOAD_CONST k; <arith>; STORE_LOCAL d"),
    ("ARITH_LOCALS_STORE", 4, 0, "LOAD_LOCAL a; LOAD_LOCAL b; <arith>; STORE_LOCAL d"),
    ("BINARY_LOCAL_CONST", 3, 1, "LOAD_LOCAL a; LOAD_CONST k; <binary op>"),
    ("BINARY_LOCALS", 3, 1, "LOAD_LOCAL a; LOAD_LOCAL b; <binary op>"),
    ("COMPARE_LOCAL_GLOBAL_JUMP", 4, 0, "LOAD_LOCAL a; LOAD_GLOBAL g; <compare>; POP_JUMP_IF_FALSE t"),
    ("FOR_ITER_STORE_LOCAL", 2, 0, "FOR_ITER e; STORE_LOCAL x: the next item straight into a local"),
    ("LOOP_FOR_ITER_STORE_LOCAL", 3, 0, "JUMP t; then at t: FOR_ITER e; STORE_LOCAL x (a for loop's back edge)"),
    # A loop's back jump fused with the fused test at its target: one dispatch per iteration
    # fewer. Width 5: the JUMP itself and the four instructions of the test it jumps to.
    ("LOOP_COMPARE_LOCAL_CONST", 5, 0, "JUMP t; then at t: LOAD_LOCAL a; LOAD_CONST k; <compare>; POP_JUMP_IF_FALSE e"),
    ("LOOP_COMPARE_LOCALS", 5, 0, "JUMP t; then at t: LOAD_LOCAL a; LOAD_LOCAL b; <compare>; POP_JUMP_IF_FALSE e"),
    ("LOOP_COMPARE_LOCAL_GLOBAL", 5, 0,
     "JUMP t; then at t: LOAD_LOCAL a; LOAD_GLOBAL g; <compare>; POP_JUMP_IF_FALSE e"),
]

OPCODES: tuple[OpInfo, ...] = tuple(
    OpInfo(code, row[0], row[1], row[2], row[3], row[4] if len(row) > 4 else None)
    for code, row in enumerate(_TABLE)
) + tuple(
    OpInfo(len(_TABLE) + i, name, Operand.FUSED, effect, doc, None, width)
    for i, (name, width, effect, doc) in enumerate(_FUSED)
)
BY_NAME: dict[str, OpInfo] = {info.name: info for info in OPCODES}

# Opcode numbers as module constants (LOAD_CONST, ...), generated from the table so the
# table stays the only place an opcode is declared.
globals().update({info.name: info.code for info in OPCODES})

JUMP_OPCODES = frozenset(info.code for info in OPCODES if info.operand is Operand.JUMP)
PLAIN_OPCODES = tuple(info for info in OPCODES if info.width == 1)
FUSED_OPCODES = tuple(info for info in OPCODES if info.width > 1)
# Fused opcodes are numbered after every plain one: the loop tells them apart with one compare.
FIRST_FUSED = min(info.code for info in FUSED_OPCODES)
# The fused back jumps: they cover their own offset and those of what they jump to.
LOOP_OPCODES = frozenset(
    info.code for info in FUSED_OPCODES if info.name.startswith("LOOP_")
)
assert all(info.code < FIRST_FUSED for info in PLAIN_OPCODES)
