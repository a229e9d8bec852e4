"""Stack-depth verification of a code object, driven by the opcode table's stack effects.

Every path through the code must agree on the stack depth at each instruction, never go
below zero, and reach ``RETURN`` with at least one value. A violation is a compiler bug, so
it raises ``InternalError``.
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.errors import InternalError

_ENDS_FLOW = frozenset({op.JUMP, op.RETURN})


def stack_depths(code: CodeObject) -> list[int | None]:
    """The stack depth before each instruction (None where unreachable)."""
    instructions = code.instructions
    depths: list[int | None] = [None] * len(instructions)
    work = [(0, 0)]
    while work:
        pc, depth = work.pop()
        while pc < len(instructions):
            seen = depths[pc]
            if seen is not None:
                if seen != depth:
                    raise InternalError(
                        f"{code.display_name}: stack depth {depth} meets {seen} at offset {pc}"
                    )
                break
            depths[pc] = depth
            opcode, arg = instructions[pc]
            info = op.OPCODES[opcode]
            # A `return` inside a `for` leaves the loop's iterable and iterator below the
            # value; the frame is discarded with them, so only "at least one" is required.
            if opcode == op.RETURN and depth < 1:
                raise InternalError(f"{code.display_name}: RETURN at depth {depth} (offset {pc})")
            if info.jump_effect is not None:
                work.append((arg, depth + info.jump_effect))
            depth += info.stack_effect(arg)
            if depth < 0:
                raise InternalError(f"{code.display_name}: stack underflow at offset {pc}")
            if opcode in _ENDS_FLOW:
                break
            pc += 1
    return depths


def max_stack_depth(code: CodeObject) -> int:
    """The deepest the stack gets in ``code``; verifies the code on the way."""
    depths = [d for d in stack_depths(code) if d is not None]
    return max(depths, default=0) + 1
