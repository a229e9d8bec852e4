"""Block discovery: the structured shape (sequences, ifs, loops, and/or) of a code object.

The compiler lays code out in a few fixed patterns (``frontend/compiler.py``), so the
structure of the source can be read back from the bytecode alone, the way a decompiler
reads CPython's:

* ``if``: ``<cond> POP_JUMP_IF_FALSE else; <then> [JUMP end]; else: <else>; end:``
* ``while``: ``top: <cond> POP_JUMP_IF_FALSE exit; <body> JUMP top; exit:``
* ``for``: ``<iterable> GET_ITER; top: FOR_ITER exit; <body> JUMP top; [POP POP]; exit:``
  (the two ``POP`` are there only when a ``break`` jumps to them)
* ``break``/``continue``: ``JUMP`` to the innermost loop's exit or top;
  ``and``/``or``: ``JUMP_IF_FALSE_OR_POP``/``JUMP_IF_TRUE_OR_POP`` over the right operand.

A loop is found from its back edge (the last backward ``JUMP`` to its top). Every jump must
be explained by one of the patterns; anything else raises ``Unsupported`` and the function
runs on the interpreter instead. Unreachable instructions (a ``JUMP end`` after a ``return``)
get no node. The result is a tree of nodes over instruction offsets (``pc``); each node that
stands for a control instruction names it, because that instruction still costs a tick.
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.bytecode.verify import stack_depths

# Deeper than this and the generated host code would meet CPython's own limits (20
# statically nested blocks, 100 levels of indentation): such a function stays interpreted.
MAX_LOOP_NESTING = 17
MAX_NESTING = 40
# The host compiles about ten lines per instruction; past this many instructions (a very
# long file, mostly run once) that costs more than the interpreter takes to run it.
MAX_INSTRUCTIONS = 5000


class Unsupported(Exception):
    """The bytecode has a shape the translator does not handle (the reason is the message)."""


class Op:
    """One instruction that does not change the flow (``CALL`` included)."""

    __slots__ = ("pc",)

    def __init__(self, pc: int):
        self.pc = pc

    def __repr__(self) -> str:
        return f"Op({self.pc!r})"


class Return:
    """``RETURN``."""

    __slots__ = ("pc",)

    def __init__(self, pc: int):
        self.pc = pc

    def __repr__(self) -> str:
        return f"Return({self.pc!r})"


class Goto:
    """A ``JUMP`` that only skips to where the flow goes anyway (an if/else's ``JUMP end``,
    or a loop's back edge): it costs its tick and nothing else. ``also`` are instructions
    that run right after it in the same block (a ``for`` loop's ``FOR_ITER``)."""

    __slots__ = ("also", "pc")

    def __init__(self, pc: int, also: tuple[int, ...] = ()):
        self.pc = pc
        self.also = also

    def __repr__(self) -> str:
        return f"Goto({self.pc!r}, {self.also!r})"


class Break:
    """``break``: a ``JUMP`` to the loop's exit; ``pops`` are the two ``POP`` of a ``for``
    loop's iterable and iterator, run (and charged) on the way out."""

    __slots__ = ("pc", "pops")

    def __init__(self, pc: int, pops: tuple[int, ...]):
        self.pc = pc
        self.pops = pops

    def __repr__(self) -> str:
        return f"Break({self.pc!r}, {self.pops!r})"


class Continue:
    """``continue``: a ``JUMP`` back to the loop's top (``also``: as for ``Goto``)."""

    __slots__ = ("also", "pc")

    def __init__(self, pc: int, also: tuple[int, ...] = ()):
        self.pc = pc
        self.also = also

    def __repr__(self) -> str:
        return f"Continue({self.pc!r}, {self.also!r})"


class If:
    """``POP_JUMP_IF_FALSE`` at ``pc``: ``then`` runs if the popped value is true."""

    __slots__ = ("orelse", "pc", "then")

    def __init__(self, pc: int, then: tuple, orelse: tuple):
        self.pc = pc
        self.then = then
        self.orelse = orelse

    def __repr__(self) -> str:
        return f"If({self.pc!r}, {self.then!r}, {self.orelse!r})"


class ExitIf:
    """``POP_JUMP_IF_FALSE`` straight to the loop's exit (a ``while`` test): the loop ends
    if the popped value is false."""

    __slots__ = ("pc", "pops")

    def __init__(self, pc: int, pops: tuple[int, ...]):
        self.pc = pc
        self.pops = pops

    def __repr__(self) -> str:
        return f"ExitIf({self.pc!r}, {self.pops!r})"


class AndOr:
    """``JUMP_IF_FALSE_OR_POP`` (``and``) or ``JUMP_IF_TRUE_OR_POP`` (``or``) at ``pc``:
    ``right`` runs, replacing the top of the stack, unless the top decides the result."""

    __slots__ = ("is_and", "pc", "right")

    def __init__(self, pc: int, is_and: bool, right: tuple):
        self.pc = pc
        self.is_and = is_and
        self.right = right

    def __repr__(self) -> str:
        return f"AndOr({self.pc!r}, {self.is_and!r}, {self.right!r})"


class Loop:
    """A ``while`` or ``for`` loop; ``body`` ends with the back edge (a ``Goto``). A
    ``while`` body starts at the loop's top, its test. A ``for`` loop's top is its
    ``FOR_ITER`` (``for_iter``): the body starts after it, and the ``FOR_ITER`` is charged
    with whatever jumps back to it (``also`` of a back edge or ``continue``), right before
    the host's own ``for`` takes the next item."""

    __slots__ = ("body", "for_iter", "stores_locals", "top")

    def __init__(self, top: int, body: tuple, stores_locals: bool, for_iter: bool = False):
        self.top = top
        self.body = body
        self.stores_locals = stores_locals
        self.for_iter = for_iter

    def __repr__(self) -> str:
        return f"Loop({self.top!r}, {self.body!r}, {self.stores_locals!r}, {self.for_iter!r})"


class Shape:
    """A function's structure: its body, its stack depths, and how deep it nests."""

    __slots__ = ("body", "depths", "loop_nesting")

    def __init__(self, body: tuple, depths: tuple, loop_nesting: int):
        self.body = body
        self.depths = depths
        self.loop_nesting = loop_nesting

    def __repr__(self) -> str:
        return f"Shape({self.body!r}, {self.depths!r}, {self.loop_nesting!r})"


class _LoopContext:
    __slots__ = ("also", "exit", "pops", "top")

    def __init__(self, top: int, exit: int, pops: tuple[int, ...], also: tuple[int, ...]):
        self.top = top
        self.exit = exit  # where `break` jumps
        self.pops = pops
        self.also = also  # what a jump to the top runs in the same block (a FOR_ITER)

    def __repr__(self) -> str:
        return f"_LoopContext({self.top!r}, {self.exit!r}, {self.pops!r}, {self.also!r})"


class _Reader:
    def __init__(self, code: CodeObject):
        self.code = code
        self.instrs = code.instructions
        self.depths = tuple(stack_depths(code))
        # A loop's top -> its last back edge.
        self.loops: dict[int, int] = {}
        for pc, (opcode, target) in enumerate(self.instrs):
            if opcode == op.JUMP and target <= pc:
                self.loops[target] = max(pc, self.loops.get(target, pc))
        spans = sorted(self.loops.items())
        for i, (top, end) in enumerate(spans):
            for other_top, other_end in spans[i + 1 :]:
                if other_top <= end < other_end:
                    raise Unsupported(f"loops at {top} and {other_top} overlap")
        self.max_loops = 0

    def reachable(self, pc: int) -> bool:
        """Whether any path from the start reaches ``pc`` (the verifier knows)."""
        return self.depths[pc] is not None

    def region(self, start: int, end: int, loop: _LoopContext | None, nesting: int, loops: int) -> tuple:
        """The nodes of the instructions in ``[start, end)``, which fall through to ``end``."""
        if nesting > MAX_NESTING:
            raise Unsupported("nested too deeply")
        nodes: list = []
        pc = start
        while pc < end:
            if pc in self.loops and not (loop is not None and loop.top == pc and not nodes and pc == start):
                pc = self._loop(pc, end, nodes, nesting, loops)
                continue
            if not self.reachable(pc):
                pc += 1
                continue
            opcode, arg = self.instrs[pc]
            if opcode == op.RETURN:
                nodes.append(Return(pc))
                pc += 1
            elif opcode == op.JUMP:
                nodes.append(self._jump(pc, arg, loop))
                pc += 1
            elif opcode == op.POP_JUMP_IF_FALSE:
                pc = self._branch(pc, arg, end, loop, nodes, nesting, loops)
            elif opcode in (op.JUMP_IF_FALSE_OR_POP, op.JUMP_IF_TRUE_OR_POP):
                if not pc < arg <= end:
                    raise Unsupported(f"and/or at {pc} jumps outside its expression")
                right = self.region(pc + 1, arg, loop, nesting + 1, loops)
                nodes.append(AndOr(pc, opcode == op.JUMP_IF_FALSE_OR_POP, right))
                pc = arg
            elif opcode == op.FOR_ITER:
                if loop is None or loop.top != pc or nodes or pc != start:
                    raise Unsupported(f"FOR_ITER at {pc} is not a loop's top")
                pc += 1  # the host's `for` takes the next item (see Loop)
            elif opcode in op.JUMP_OPCODES:
                raise Unsupported(f"unknown jump at {pc}")
            else:
                nodes.append(Op(pc))
                pc += 1
        return tuple(nodes)

    def _jump(self, pc: int, target: int, loop: _LoopContext | None):
        if loop is not None and target == loop.top:
            return Continue(pc, loop.also)
        if loop is not None and target == loop.exit:
            return Break(pc, loop.pops)
        raise Unsupported(f"JUMP at {pc} to {target} is neither break nor continue")

    def _branch(self, pc: int, target: int, end: int, loop, nodes: list, nesting: int, loops: int) -> int:
        if loop is not None and target == loop.exit:
            nodes.append(ExitIf(pc, loop.pops))
            return pc + 1
        if not pc < target <= end:
            raise Unsupported(f"branch at {pc} to {target} leaves its block")
        skip_op, skip_to = self.instrs[target - 1]
        is_else = (
            skip_op == op.JUMP
            and target <= skip_to <= end
            and target - 1 > pc
            and not (loop is not None and skip_to in (loop.exit, loop.top))
        )
        if is_else:
            then = self.region(pc + 1, target - 1, loop, nesting + 1, loops)
            if self.reachable(target - 1):
                then = (*then, Goto(target - 1))
            orelse = self.region(target, skip_to, loop, nesting + 1, loops)
            nodes.append(If(pc, then, orelse))
            return skip_to
        nodes.append(If(pc, self.region(pc + 1, target, loop, nesting + 1, loops), ()))
        return target

    def _loop(self, top: int, end: int, nodes: list, nesting: int, loops: int) -> int:
        back = self.loops[top]
        if back >= end:
            raise Unsupported(f"loop at {top} ends outside its block")
        if not self.reachable(top):
            # A loop nobody enters (after a return): skip it whole.
            return self._after_loop(top, back)
        if loops + 1 > MAX_LOOP_NESTING:
            raise Unsupported("loops nested too deeply")
        self.max_loops = max(self.max_loops, loops + 1)
        exit_, pops, after = back + 1, (), back + 1
        for_iter = self.instrs[top][0] == op.FOR_ITER
        if for_iter:
            after = self.instrs[top][1]
            if after == back + 3 and all(self.instrs[i][0] == op.POP for i in (back + 1, back + 2)):
                pops = (back + 1, back + 2)
            elif after != back + 1:
                raise Unsupported(f"for loop at {top} exits to {after}")
        if after > end:
            raise Unsupported(f"loop at {top} exits outside its block")
        context = _LoopContext(top, exit_, pops, (top,) if for_iter else ())
        body = self.region(top, back, context, nesting + 1, loops + 1)
        if self.reachable(back):
            body = (*body, Goto(back, context.also))
        stores = any(
            self.instrs[i][0] in (op.STORE_LOCAL, op.CLEAR_LOCAL, op.MAKE_CELL) for i in range(top, back)
        )
        nodes.append(Loop(top, body, stores, for_iter))
        return after

    def _after_loop(self, top: int, back: int) -> int:
        if self.instrs[top][0] == op.FOR_ITER:
            return self.instrs[top][1]
        return back + 1


def read_shape(code: CodeObject) -> Shape:
    """The structure of ``code``; raises ``Unsupported`` if it is not one the compiler makes."""
    if len(code.instructions) > MAX_INSTRUCTIONS:
        raise Unsupported(f"too long ({len(code.instructions)} instructions)")
    reader = _Reader(code)
    body = reader.region(0, len(code.instructions), None, 0, 0)
    return Shape(body, reader.depths, reader.max_loops)
