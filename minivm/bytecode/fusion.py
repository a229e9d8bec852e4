"""Superinstructions: the commonest sequences on locals and constants fused into one.

The fast form of a code object has the same length and offsets as the plain one: a fused
instruction stands at the first offset of the sequence it replaces, and the plain
instructions after it stay where they were (nothing jumps into the middle of a fused
sequence: sequences that contain a jump target are not fused). A fused instruction does
the work of ``width`` plain ones and charges ``width`` ticks; when the check would fall
inside it, the interpreter runs the plain code up to the check instead, so the check lands
exactly where counting instruction by instruction would put it.

Which sequences exist, and the operand record each carries, is declared in the opcode table
(``opcodes._FUSED``); this module only recognises the sequences and fills in the records by
field name. ``verify.check_fused`` then checks the result against the same declarations.
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.bytecode.verify import check_fused

# The host operator of each operation whose int fast path is exact (no true division; ``//``
# and ``%`` only by a constant non-zero int, see ``_match``), by opcode: the table's.
INT_FAST = {op.BY_NAME[name].code: fn for name, fn in op.INT_OPERATORS.items()}
DIVISIONS = frozenset({op.FLOOR_DIV, op.MOD})
COMPARISONS = frozenset(op.BY_NAME[name].code for name in op.COMPARISONS)
ARITHMETIC = frozenset(op.BY_NAME[name].code for name in op.ARITHMETIC)

_CODE = {info.name: info.code for info in op.FUSED_OPCODES}
# A back jump to a fused test (or for step) runs it too: the loop form of each head is the
# fused opcode declared as a JUMP followed by the head's own sequence.
_LOOP_FORM = {
    head.code: loop.code
    for loop in op.FUSED_OPCODES
    if loop.fused.loop  # type: ignore[union-attr]
    for head in op.FUSED_OPCODES
    if head.fused.replaces == loop.fused.replaces[1:]  # type: ignore[union-attr]
}


def fuse(code: CodeObject) -> tuple[tuple[int, object], ...]:
    """The fast form of ``code``: ``(opcode, argument)`` pairs, the same length and offsets as
    ``code.instructions``; a fused instruction's argument is its declared operand record."""
    plain = code.instructions
    fast: list[tuple[int, object]] = list(plain)
    targets = {arg for opcode, arg in plain if opcode in op.JUMP_OPCODES}
    n = len(plain)
    i = 0
    while i < n:
        fused = _match(plain, i, n, code)
        width = op.OPCODES[fused[0]].width if fused is not None else 1
        if fused is not None and not any(t in targets for t in range(i + 1, i + width)):
            fast[i] = fused
            i += width
        else:
            i += 1
    _fuse_back_jumps(plain, fast)
    check_fused(code, tuple(fast))
    return tuple(fast)


def _fuse_back_jumps(plain, fast: list) -> None:
    """A ``JUMP`` to a fused test or a fused ``FOR_ITER`` (a loop's back edge) runs it too:
    it carries the same record, so one handler serves both."""
    for i, (opcode, target) in enumerate(plain):
        if opcode == op.JUMP and fast[i] == plain[i] and fast[target][0] in _LOOP_FORM:
            head, record = fast[target]
            fast[i] = _LOOP_FORM[head], record


def _match(plain, i: int, n: int, code: CodeObject) -> tuple[int, object] | None:
    """The fused instruction for the plain sequence starting at ``i``, or None."""
    if plain[i][0] == op.FOR_ITER and i + 1 < n and plain[i + 1][0] == op.STORE_LOCAL:
        return _CODE["FOR_ITER_STORE_LOCAL"], op.ForStep(exit=plain[i][1], dest=plain[i + 1][1], after=i + 2)
    if i + 2 >= n or plain[i][0] != op.LOAD_LOCAL:
        return None
    slot = plain[i][1]
    (second, value), (operation, _) = plain[i + 1], plain[i + 2]
    after = plain[i + 3] if i + 3 < n else (None, None)
    test = operation in COMPARISONS and after[0] == op.POP_JUMP_IF_FALSE
    if second == op.LOAD_GLOBAL:
        if not test:
            return None
        # `while i < n` on a global n: the global is only read, and a check never falls
        # inside a fused instruction, so threads switch at the same places as on plain code.
        record = op.GlobalTest(
            slot=slot, name=code.names[value], fn=INT_FAST[operation], target=after[1], operation=operation,
            after=i + 4,
        )
        return _CODE["COMPARE_LOCAL_GLOBAL_JUMP"], record
    if operation not in INT_FAST:
        return None
    fn = INT_FAST[operation]
    if second == op.LOAD_LOCAL:
        # Only the store pays among the sequences on two locals (the measurement in
        # docs/performance.md): `j += i`.
        if operation in ARITHMETIC and after[0] == op.STORE_LOCAL:
            record = op.LocalsArithStore(slot=slot, other=value, fn=fn, dest=after[1], operation=operation)
            return _CODE["ARITH_LOCALS_STORE"], record
        return None
    if second != op.LOAD_CONST or isinstance(code.constants[value], CodeObject):
        return None
    const = code.constants[value]
    if operation in DIVISIONS and (const.__class__ is not int or const == 0):
        return None  # the int fast path must not divide by zero
    if test:
        record = op.ConstTest(slot=slot, const=const, fn=fn, target=after[1], operation=operation, after=i + 4)
        return _CODE["COMPARE_LOCAL_CONST_JUMP"], record
    if operation in ARITHMETIC and after[0] == op.STORE_LOCAL:
        record = op.ConstArithStore(slot=slot, const=const, fn=fn, dest=after[1], operation=operation)
        return _CODE["ARITH_LOCAL_CONST_STORE"], record
    return _CODE["BINARY_LOCAL_CONST"], op.ConstBinary(slot=slot, const=const, fn=fn, operation=operation)
