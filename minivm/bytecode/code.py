"""The immutable code object: what the compiler produces for one function (or the file)."""

from __future__ import annotations

import dataclasses

from minivm.bytecode.opcodes import JUMP as _JUMP
from minivm.errors import CallSite
from minivm.source import SourceFile

_ESCAPE_OUT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}
_ESCAPE_TABLE = str.maketrans(_ESCAPE_OUT)


def quote(text: str) -> str:
    """A string as the language writes it: double quotes and its own escapes."""
    # Most strings need no escape: four scans in C are cheaper than translating.
    if "\\" in text or '"' in text or "\n" in text or "\t" in text:
        return '"' + text.translate(_ESCAPE_TABLE) + '"'
    return '"' + text + '"'


def format_literal(value: object) -> str:
    """A constant as source would spell it: ``nil``, ``true``, ``2.5``, ``"a\\n"``."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote(value)
    return repr(value)


@dataclasses.dataclass(frozen=True, eq=False)
class FreeVarSource:
    """Where a closure finds a captured variable when it is made in its parent:
    a cell in one of the parent's local slots, or one of the parent's own captured cells."""

    from_local: bool
    index: int


@dataclasses.dataclass(frozen=True, eq=False)
class CodeObject:
    """Instructions, constants, names and a line table for one function.

    ``instructions`` holds ``(opcode, argument)`` pairs; ``lines[i]`` is the source line of
    instruction ``i`` (the table runs parallel to the code, as in clox). ``fast`` is the same
    code with common sequences fused into single instructions; it has the same length and the
    same offsets (a fused instruction stands at the first offset of the sequence it replaces).
    ``source`` is the file the code was compiled from (``None`` for code built by hand): a
    runtime error reads its lines from there.
    """

    name: str
    file: str
    first_line: int
    params: tuple[str, ...]
    local_names: tuple[str, ...]
    instructions: tuple[tuple[int, int], ...]
    lines: tuple[int, ...]
    constants: tuple[object, ...]
    names: tuple[str, ...]
    free_names: tuple[str, ...]
    free_sources: tuple[FreeVarSource, ...]
    max_stack: int
    fast: tuple[tuple[int, object], ...] = ()
    source: SourceFile | None = dataclasses.field(default=None, repr=False)
    # A cache slot, not part of the code's value: the compiled tier's translation of this
    # code (``minivm.runtime.compiled``), made on its first call and shared by every run.
    tier: object = dataclasses.field(default=None, init=False, repr=False)
    # Derived, stored as plain fields because the call path reads them on every call.
    nparams: int = dataclasses.field(init=False)
    nlocals: int = dataclasses.field(init=False)
    # Where ``--check-at backedge`` lets the check fall: the function's entry (offset 0) and
    # every backward jump (CPython 3.10+ polls its eval breaker only there, so a statement
    # with no loop or call inside is never split).
    backedge_points: frozenset[int] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nparams", len(self.params))
        object.__setattr__(self, "nlocals", len(self.local_names))
        backward = {pc for pc, (opcode, arg) in enumerate(self.instructions) if opcode == _JUMP and arg <= pc}
        object.__setattr__(self, "backedge_points", frozenset({0, *backward}))

    @property
    def arity(self) -> int:
        """How many arguments a call must pass."""
        return self.nparams

    @property
    def display_name(self) -> str:
        """The name shown in call chains: ``<main>``, ``<fn>`` for anonymous, else the name."""
        return self.name or "<fn>"

    def line_of(self, offset: int) -> int:
        """The source line of the instruction at ``offset``."""
        if 0 <= offset < len(self.lines):
            return self.lines[offset]
        return self.first_line

    def call_site(self, offset: int) -> CallSite:
        """The call-chain entry for this code stopped at ``offset``: its name, file, the line
        of that instruction, and its source file (for showing the line)."""
        return CallSite(self.display_name, self.file, self.line_of(offset), self.source)

    def nested(self) -> list[CodeObject]:
        """The code objects of the functions defined directly in this one."""
        return [c for c in self.constants if isinstance(c, CodeObject)]
