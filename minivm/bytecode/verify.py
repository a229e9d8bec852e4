"""Stack-depth verification of a code object, driven by the opcode table's stack effects.

Every path through the code must agree on the stack depth at each instruction, never go
below zero, and reach ``RETURN`` with at least one value. A fast form's fused instructions
must each stand for plain code their declaration allows, with every field of their operand
record equal to what that plain code says (``check_fused``). A violation is a compiler bug,
so it raises ``InternalError``.
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


def check_fused(code: CodeObject, fast: tuple[tuple[int, object], ...]) -> None:
    """Check a fast form (``fusion.fuse``) against the fused opcodes' declarations.

    ``fast`` must have the plain code's length; every instruction that differs from the plain
    one must be a fused opcode carrying its declared record type, stand on plain
    instructions its declaration allows, position by position, carry in every field of its
    record what the plain code there gives (the record's ``SOURCES``: a slot, a constant, a
    name, the operation and its host operator, a jump target, an offset), and contain no jump target
    past its first instruction (a loop form: none past the test it jumps to), so the check
    can always land where counting plain instructions puts it; a loop form's target must hold
    the fused head it runs, with the same record. Raises ``InternalError``."""
    plain = code.instructions
    if len(fast) != len(plain):
        raise InternalError(f"{code.display_name}: fast form has {len(fast)} instructions, not {len(plain)}")
    targets = {arg for opcode, arg in plain if opcode in op.JUMP_OPCODES}
    for offset, (opcode, record) in enumerate(fast):
        if (opcode, record) == plain[offset]:
            continue
        info = op.OPCODES[opcode]
        where = f"{code.display_name}: {info.name} at offset {offset}"
        declared = info.fused
        if declared is None or record.__class__ is not declared.record:
            raise InternalError(f"{where}: not a fused opcode with its declared record")
        covered = declared.covered(offset, plain[offset][1])
        if covered[-1] >= len(plain):
            raise InternalError(f"{where}: runs past the end of the code")
        for allowed, at in zip(declared.replaces, covered, strict=True):
            if op.OPCODES[plain[at][0]].name not in allowed:
                raise InternalError(f"{where}: offset {at} holds {op.OPCODES[plain[at][0]].name}")
        _check_fields(code, where, record, covered[1:] if declared.loop else covered)
        if declared.loop:
            # The loop form runs the fused head at its target, record and all.
            head, head_record = fast[covered[1]]
            head_info = op.OPCODES[head].fused
            if head_info is None or head_info.replaces != declared.replaces[1:] or head_record != record:
                raise InternalError(f"{where}: its target does not hold the fused instruction it runs")
        # A loop form's jump lands on its test's first instruction; anything else inside
        # would let a jump skip part of what the fused instruction charges for.
        inside = covered[2:] if declared.loop else covered[1:]
        if targets.intersection(inside):
            raise InternalError(f"{where}: a jump lands inside it")


def _check_fields(code: CodeObject, where: str, record: object, sequence: tuple[int, ...]) -> None:
    """Every field of a fused instruction's ``record`` against its source in the plain
    ``sequence`` (offsets) it stands for: the interpreter trusts the record in place of the
    plain arguments, so a field that disagrees would run other code than the plain form
    (and than the compiled tier, which reads the plain form). Raises ``InternalError``."""
    for field, (kind, position) in record.SOURCES.items():  # type: ignore[attr-defined]
        actual = getattr(record, field)
        if kind == op.OFFSET:
            expected = sequence[0] + position
            if actual.__class__ is not int or actual != expected:
                raise InternalError(f"{where}: field {field} is {actual!r}, not offset {expected}")
            continue
        at = sequence[position]
        opcode, arg = code.instructions[at]
        name = op.OPCODES[opcode].name
        if kind == op.ARG:
            expected = arg
        elif kind == op.CONSTANT:
            expected = code.constants[arg]
        elif kind == op.NAME:
            expected = code.names[arg]
        elif kind == op.OPCODE:
            expected = opcode
        else:  # op.INT_OPERATOR
            expected = op.INT_OPERATORS.get(name)
        # Identity first (the fuser copies the very objects); otherwise equal and of one type,
        # so that 1 and True (or 1 and 1.0) are told apart.
        if actual is not expected and (actual.__class__ is not expected.__class__ or actual != expected):
            shown = name if op.OPCODES[opcode].operand is op.Operand.NONE else f"{name} {arg}"
            raise InternalError(f"{where}: field {field} is {actual!r}, but offset {at} ({shown}) gives {expected!r}")
