"""Superinstructions: the commonest sequences on locals and constants fused into one.

The fast form of a code object has the same length and offsets as the plain one: a fused
instruction stands at the first offset of the sequence it replaces, and the plain
instructions after it stay where they were (nothing jumps into the middle of a fused
sequence: sequences that contain a jump target are not fused). A fused instruction does
the work of ``width`` plain ones and charges ``width`` ticks; when the check would fall
inside it, the interpreter runs the plain code up to the check instead, so the check lands
exactly where counting instruction by instruction would put it.

Every fused argument is a tuple ending in the plain opcode of the operation it performs
(or, for the tests, followed by where the test goes on and the extra ticks it charges); the
interpreter uses that opcode for everything but the int fast path (``operations.binary``):

* ``COMPARE_LOCAL_CONST_JUMP`` / ``COMPARE_LOCALS_JUMP`` / ``COMPARE_LOCAL_GLOBAL_JUMP``:
  ``(a, k_or_b_or_name, fn, target, op, next, extra_ticks)``, ``next`` the offset after the
  test
* ``LOOP_COMPARE_LOCAL_CONST`` / ``LOOP_COMPARE_LOCALS``: a loop's back ``JUMP`` to such a
  test, fused with it: the same tuple, ``next`` the offset after the test at the jump's
  target (width 5: the jump, then the test's four instructions)
* ``FOR_ITER_STORE_LOCAL``: ``(exit, slot)``; ``LOOP_FOR_ITER_STORE_LOCAL``, a back jump
  to one: ``(exit, slot, next)``, ``next`` the offset after the ``STORE_LOCAL``
* ``ARITH_LOCAL_CONST_STORE`` / ``ARITH_LOCALS_STORE``: ``(a, k_or_b, fn, dest, op)``
* ``BINARY_LOCAL_CONST`` / ``BINARY_LOCALS``: ``(a, k_or_b, fn, op)``

``fn`` is the host operator (``operator.lt``...) used when both operands are ints. ``%``
and ``//`` are fused only by a constant non-zero int, so their int fast path cannot fail.
"""

from __future__ import annotations

import operator

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject

# The operations whose int fast path is exact (no true division; ``//`` and ``%`` only by a
# constant non-zero int, see ``_match``).
INT_FAST = {
    op.ADD: operator.add, op.SUB: operator.sub, op.MUL: operator.mul,
    op.FLOOR_DIV: operator.floordiv, op.MOD: operator.mod,
    op.LT: operator.lt, op.LE: operator.le, op.GT: operator.gt, op.GE: operator.ge,
    op.EQ: operator.eq, op.NE: operator.ne,
}  # fmt: skip
DIVISIONS = frozenset({op.FLOOR_DIV, op.MOD})
COMPARISONS = frozenset({op.LT, op.LE, op.GT, op.GE, op.EQ, op.NE})
ARITHMETIC = frozenset({op.ADD, op.SUB, op.MUL})


def fuse(code: CodeObject) -> tuple[tuple[int, object], ...]:
    """The fast form of ``code``: same length and offsets as ``code.instructions``."""
    plain = code.instructions
    fast: list[tuple[int, object]] = list(plain)
    targets = {arg for opcode, arg in plain if opcode in op.JUMP_OPCODES}
    n = len(plain)
    i = 0
    while i < n:
        fused = _match(plain, i, n, code)
        if fused is not None and not any(t in targets for t in range(i + 1, i + op.OPCODES[fused[0]].width)):
            fast[i] = fused
            i += op.OPCODES[fused[0]].width
        else:
            i += 1
    _fuse_back_jumps(plain, fast)
    return tuple(fast)


_LOOP_FORM = {
    op.BY_NAME["COMPARE_LOCAL_CONST_JUMP"].code: op.BY_NAME["LOOP_COMPARE_LOCAL_CONST"].code,
    op.BY_NAME["COMPARE_LOCALS_JUMP"].code: op.BY_NAME["LOOP_COMPARE_LOCALS"].code,
    op.BY_NAME["COMPARE_LOCAL_GLOBAL_JUMP"].code: op.BY_NAME["LOOP_COMPARE_LOCAL_GLOBAL"].code,
}


def _fuse_back_jumps(plain, fast: list) -> None:
    """A ``JUMP`` to a fused test or a fused ``FOR_ITER`` (a loop's back edge) runs it too."""
    for i, (opcode, target) in enumerate(plain):
        if opcode != op.JUMP or fast[i] != plain[i]:
            continue
        head, arg = fast[target]
        if head in _LOOP_FORM:
            a, b, fn, exit_target, operation, after, _extra = arg
            fast[i] = _LOOP_FORM[head], (a, b, fn, exit_target, operation, after, 4)
        elif head == op.BY_NAME["FOR_ITER_STORE_LOCAL"].code:
            exit_target, slot = arg
            fast[i] = op.BY_NAME["LOOP_FOR_ITER_STORE_LOCAL"].code, (exit_target, slot, target + 2)


def _operand(instruction: tuple[int, int], code: CodeObject) -> tuple[bool, object] | None:
    """(is_local, slot or constant) for a LOAD_LOCAL or LOAD_CONST, else None."""
    opcode, arg = instruction
    if opcode == op.LOAD_LOCAL:
        return True, arg
    if opcode == op.LOAD_CONST and not isinstance(code.constants[arg], CodeObject):
        return False, code.constants[arg]
    return None


def _match(plain, i: int, n: int, code: CodeObject) -> tuple[int, object] | None:
    if plain[i][0] == op.FOR_ITER and i + 1 < n and plain[i + 1][0] == op.STORE_LOCAL:
        return op.BY_NAME["FOR_ITER_STORE_LOCAL"].code, (plain[i][1], plain[i + 1][1])
    if i + 2 >= n or plain[i][0] != op.LOAD_LOCAL:
        return None
    if (
        plain[i + 1][0] == op.LOAD_GLOBAL
        and plain[i + 2][0] in COMPARISONS
        and i + 3 < n
        and plain[i + 3][0] == op.POP_JUMP_IF_FALSE
    ):
        # `while i < n` on a global n: the global is only read, and a check never falls
        # inside a fused instruction, so threads switch at the same places as on plain code.
        operation = plain[i + 2][0]
        name = code.names[plain[i + 1][1]]
        arg = (plain[i][1], name, INT_FAST[operation], plain[i + 3][1], operation, i + 4, 3)
        return op.BY_NAME["COMPARE_LOCAL_GLOBAL_JUMP"].code, arg
    second = _operand(plain[i + 1], code)
    operation = plain[i + 2][0]
    if second is None or operation not in INT_FAST:
        return None
    is_local, value = second
    if operation in DIVISIONS and (is_local or value.__class__ is not int or value == 0):
        return None  # the int fast path must not divide by zero
    a = plain[i][1]
    fn = INT_FAST[operation]
    after = plain[i + 3] if i + 3 < n else (None, None)
    if operation in COMPARISONS and after[0] == op.POP_JUMP_IF_FALSE:
        name = "COMPARE_LOCALS_JUMP" if is_local else "COMPARE_LOCAL_CONST_JUMP"
        return op.BY_NAME[name].code, (a, value, fn, after[1], operation, i + 4, 3)
    if operation in ARITHMETIC and after[0] == op.STORE_LOCAL:
        name = "ARITH_LOCALS_STORE" if is_local else "ARITH_LOCAL_CONST_STORE"
        return op.BY_NAME[name].code, (a, value, fn, after[1], operation)
    name = "BINARY_LOCALS" if is_local else "BINARY_LOCAL_CONST"
    return op.BY_NAME[name].code, (a, value, fn, operation)
