"""The one opcode table. The opcode numbers, the disassembler and the interpreter's dispatch
are all derived from it, and a test checks that each covers every opcode.

Each entry gives the operand kind (how the disassembler shows the argument), the stack
effect (a number, or a function of the argument for counted operands) and one line of doc.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Callable
from typing import ClassVar


class Operand(enum.Enum):
    """What an instruction's argument means."""

    NONE = "none"  # no argument
    CONST = "const"  # index into the code object's constants
    LOCAL = "local"  # local slot number
    NAME = "name"  # index into the code object's global names
    FREE = "free"  # index into the closure's captured cells
    JUMP = "jump"  # absolute instruction offset
    COUNT = "count"  # how many stack values the instruction takes
    FUSED = "fused"  # an operand record (declared below) for a fused instruction


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
    # For fused instructions: how many plain instructions this one stands for (its ticks),
    # and its declaration (operand record, the plain opcodes it replaces).
    width: int = 1
    fused: FusedInfo | None = None

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

# -- Fused instructions (superinstructions) ------------------------------------------------
# They appear only in a code object's ``fast`` form (``bytecode/fusion.py`` writes it), each
# standing for the plain instructions its row lists and charging one tick per plain
# instruction. They never write globals or cells (one test reads a global), so ``x += 1`` on
# shared state stays a separate read and write. Each declares its operand record below: the
# fuser builds it by field name, the interpreter reads it by field name, the disassembler and
# the verifier read the row. Only those that measurably pay on the interpreter are kept
# (docs/performance.md, "The fused instructions, measured one by one").
#
# A record is a frozen slotted class (``_Record``): CPython 3.11 specialises a slot read
# (``LOAD_ATTR_SLOT``) to about the cost of indexing a tuple, so named fields cost the loop
# nothing measurable, and a plain class costs start-up ~15 us where an attrs or dataclass
# class costs ~0.5 ms. A loop's back jump fused with a test carries the same record type as
# the test itself: one handler serves both, and one type keeps its attribute reads
# monomorphic.

COMPARISONS = ("LT", "LE", "GT", "GE", "EQ", "NE")
ARITHMETIC = ("ADD", "SUB", "MUL")
# Operations with an exact int fast path: no true division, and ``//`` and ``%`` only by a
# constant non-zero int (the fuser's rule), so the fast path cannot divide by zero.
INT_BINARY = (*ARITHMETIC, "FLOOR_DIV", "MOD", *COMPARISONS)
# The host operator a record's ``fn`` holds for each of them: exact when both operands are ints.
INT_OPERATORS: dict[str, Callable] = {
    "ADD": operator.add, "SUB": operator.sub, "MUL": operator.mul,
    "FLOOR_DIV": operator.floordiv, "MOD": operator.mod,
    "LT": operator.lt, "LE": operator.le, "GT": operator.gt, "GE": operator.ge,
    "EQ": operator.eq, "NE": operator.ne,
}  # fmt: skip

# Where each field of a record comes from: ``SOURCES`` maps a field to (kind, position), the
# position counted in the plain sequence the record stands for (for a loop form, the
# sequence after its back JUMP). The fuser fills the fields from these places and
# ``verify.check_fused`` checks every field against them. The kinds:
ARG = "arg"  # the plain instruction's argument (a local slot, a jump target)
CONSTANT = "constant"  # the constant its argument indexes
NAME = "name"  # the name its argument indexes
OPCODE = "opcode"  # the plain opcode itself (the operation done when not both are ints)
INT_OPERATOR = "int_operator"  # the host operator of that opcode (``INT_OPERATORS``)
OFFSET = "offset"  # the offset the position stands at (the sequence's length: just past it)
SOURCE_KINDS = (ARG, CONSTANT, NAME, OPCODE, INT_OPERATOR, OFFSET)
Sources = dict[str, tuple[str, int]]


class _Record:
    """A frozen record whose fields are its ``__slots__``, built by keyword (every field, no
    other: ``TypeError`` otherwise); equal and hashed by value. ``SOURCES``: where each
    field comes from in the plain code (see the kinds above), for the records the fused
    instructions carry."""

    __slots__ = ()
    SOURCES: ClassVar[Sources] = {}

    def __init__(self, **fields: object) -> None:
        if fields.keys() != set(self.__slots__):
            raise TypeError(f"{type(self).__name__} takes the fields {', '.join(self.__slots__)}")
        for name in self.__slots__:
            object.__setattr__(self, name, fields[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def values(self) -> tuple:
        """The fields' values, in declaration order."""
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and self.values() == other.values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.__class__, self.values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class ConstTest(_Record):
    """``LOAD_LOCAL slot; LOAD_CONST const; <compare>; POP_JUMP_IF_FALSE target``.

    ``slot`` (int) a local slot, ``const`` the constant's value, ``fn`` the host operator
    (``operator.lt``...) used when both operands are ints, ``target`` (offset) where a false
    test jumps, ``operation`` the plain opcode for every other case (``operations.binary``),
    ``after`` (offset) the one after the test's four instructions, where a true test goes."""

    __slots__ = ("after", "const", "fn", "operation", "slot", "target")
    SOURCES: ClassVar[Sources] = {
        "slot": (ARG, 0), "const": (CONSTANT, 1), "operation": (OPCODE, 2), "fn": (INT_OPERATOR, 2),
        "target": (ARG, 3), "after": (OFFSET, 4),
    }  # fmt: skip


class GlobalTest(_Record):
    """``LOAD_LOCAL slot; LOAD_GLOBAL name; <compare>; POP_JUMP_IF_FALSE target`` (the global
    is only read: ``while j <= n`` on a global ``n``). Fields as ``ConstTest``; ``name`` is
    the global's name, looked up each time the test runs."""

    __slots__ = ("after", "fn", "name", "operation", "slot", "target")
    SOURCES: ClassVar[Sources] = {
        "slot": (ARG, 0), "name": (NAME, 1), "operation": (OPCODE, 2), "fn": (INT_OPERATOR, 2),
        "target": (ARG, 3), "after": (OFFSET, 4),
    }  # fmt: skip


class ConstArithStore(_Record):
    """``LOAD_LOCAL slot; LOAD_CONST const; <arith> (operation, fn); STORE_LOCAL dest``
    (``n = n - 1``); ``fn`` is the host operator for two ints."""

    __slots__ = ("const", "dest", "fn", "operation", "slot")
    SOURCES: ClassVar[Sources] = {
        "slot": (ARG, 0), "const": (CONSTANT, 1), "operation": (OPCODE, 2), "fn": (INT_OPERATOR, 2),
        "dest": (ARG, 3),
    }  # fmt: skip


class LocalsArithStore(_Record):
    """``LOAD_LOCAL slot; LOAD_LOCAL other; <arith> (operation, fn); STORE_LOCAL dest``
    (``j += i``); ``fn`` is the host operator for two ints."""

    __slots__ = ("dest", "fn", "operation", "other", "slot")
    SOURCES: ClassVar[Sources] = {
        "slot": (ARG, 0), "other": (ARG, 1), "operation": (OPCODE, 2), "fn": (INT_OPERATOR, 2),
        "dest": (ARG, 3),
    }  # fmt: skip


class ConstBinary(_Record):
    """``LOAD_LOCAL slot; LOAD_CONST const; <binary op> (operation, fn)``: pushes the result
    (``n - 1``, ``i % 8``); ``fn`` is the host operator for two ints."""

    __slots__ = ("const", "fn", "operation", "slot")
    SOURCES: ClassVar[Sources] = {
        "slot": (ARG, 0), "const": (CONSTANT, 1), "operation": (OPCODE, 2), "fn": (INT_OPERATOR, 2),
    }  # fmt: skip


class ForStep(_Record):
    """``FOR_ITER exit; STORE_LOCAL dest``: the next item straight into local ``dest``, or,
    when the iterator is done, pop it and its iterable and go to offset ``exit``; ``after``
    is the offset after the ``STORE_LOCAL``."""

    __slots__ = ("after", "dest", "exit")
    SOURCES: ClassVar[Sources] = {"exit": (ARG, 0), "dest": (ARG, 1), "after": (OFFSET, 2)}


class FusedInfo(_Record):
    """How a fused opcode is declared: its ``record`` type and, position by position, the
    plain opcodes it may stand for (``replaces[i]``: the names allowed at its i-th
    instruction). A ``loop`` form begins with the back ``JUMP``; the rest of ``replaces``
    then lies at the jump's target, not after the jump."""

    __slots__ = ("loop", "record", "replaces")

    def __init__(self, record: type, replaces: tuple[tuple[str, ...], ...], loop: bool = False) -> None:
        super().__init__(record=record, replaces=replaces, loop=loop)

    @property
    def width(self) -> int:
        """The plain instructions it stands for, which is also the ticks it charges."""
        return len(self.replaces)

    def covered(self, offset: int, target: int | None = None) -> tuple[int, ...]:
        """The plain offsets a fused instruction at ``offset`` stands for; a loop form needs
        its jump's ``target``."""
        if self.loop:
            assert target is not None
            return (offset, *range(target, target + self.width - 1))
        return tuple(range(offset, offset + self.width))


_LOCAL, _CONST, _GLOBAL = ("LOAD_LOCAL",), ("LOAD_CONST",), ("LOAD_GLOBAL",)
_TEST = (COMPARISONS, ("POP_JUMP_IF_FALSE",))
_FOR = (("FOR_ITER",), ("STORE_LOCAL",))
_FUSED: list[tuple] = [
    # name, declaration, stack effect, doc
    ("COMPARE_LOCAL_CONST_JUMP", FusedInfo(ConstTest, (_LOCAL, _CONST, *_TEST)), 0, "a test on a local and a constant"),
    ("ARITH_LOCAL_CONST_STORE", FusedInfo(ConstArithStore, (_LOCAL, _CONST, ARITHMETIC, ("STORE_LOCAL",))), 0,
     "local = local <arith> constant"),
    ("ARITH_LOCALS_STORE", FusedInfo(LocalsArithStore, (_LOCAL, _LOCAL, ARITHMETIC, ("STORE_LOCAL",))), 0,
     "local = local <arith> local"),
    ("BINARY_LOCAL_CONST", FusedInfo(ConstBinary, (_LOCAL, _CONST, INT_BINARY)), 1, "push local <op> constant"),
    ("COMPARE_LOCAL_GLOBAL_JUMP", FusedInfo(GlobalTest, (_LOCAL, _GLOBAL, *_TEST)), 0,
     "a test on a local and a global, the global only read"),
    ("FOR_ITER_STORE_LOCAL", FusedInfo(ForStep, _FOR), 0, "a for loop's step into a local"),
    ("LOOP_FOR_ITER_STORE_LOCAL", FusedInfo(ForStep, (("JUMP",), *_FOR), loop=True), 0,
     "a for loop's back jump with the step it jumps to"),
    ("LOOP_COMPARE_LOCAL_CONST", FusedInfo(ConstTest, (("JUMP",), _LOCAL, _CONST, *_TEST), loop=True), 0,
     "a while loop's back jump with the test it jumps to"),
    ("LOOP_COMPARE_LOCAL_GLOBAL", FusedInfo(GlobalTest, (("JUMP",), _LOCAL, _GLOBAL, *_TEST), loop=True), 0,
     "a while loop's back jump with the test (on a global) it jumps to"),
]

OPCODES: tuple[OpInfo, ...] = tuple(
    OpInfo(code, row[0], row[1], row[2], row[3], row[4] if len(row) > 4 else None)
    for code, row in enumerate(_TABLE)
) + tuple(
    OpInfo(len(_TABLE) + i, name, Operand.FUSED, effect, doc, None, fused.width, fused)
    for i, (name, fused, effect, doc) in enumerate(_FUSED)
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
LOOP_OPCODES = frozenset(info.code for info in FUSED_OPCODES if info.fused.loop)  # type: ignore[union-attr]
assert all(info.code < FIRST_FUSED for info in PLAIN_OPCODES)
