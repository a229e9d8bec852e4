"""The disassembler: code objects as text, one helper per operand kind.

    <main> (prog.mv:1), 2 locals, max stack 3
       offset  line  opcode               arg  meaning
    >>      0     1  LOAD_CONST             0  (10)
"""

from __future__ import annotations

from collections.abc import Callable

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject, format_literal
from minivm.source import displayable_line


def _none(code: CodeObject, arg: object) -> str:
    return ""


def _const(code: CodeObject, arg: object) -> str:
    value = code.constants[arg]  # type: ignore[index]
    if isinstance(value, CodeObject):
        return f"(<code {value.display_name}, line {value.first_line}>)"
    # A string's control characters as pictures (␛), like an echoed source line: the
    # listing must not act on the terminal it is read on.
    return f"({displayable_line(format_literal(value))})"


def _local(code: CodeObject, arg: object) -> str:
    return f"({code.local_names[arg]})"  # type: ignore[index]


def _name(code: CodeObject, arg: object) -> str:
    return f"({code.names[arg]})"  # type: ignore[index]


def _free(code: CodeObject, arg: object) -> str:
    return f"({code.free_names[arg]})"  # type: ignore[index]


def _jump(code: CodeObject, arg: object) -> str:
    return f"(to {arg})"


def _count(code: CodeObject, arg: object) -> str:
    return f"({arg} {'item' if arg == 1 else 'items'})"


def _fused(code: CodeObject, arg: object) -> str:
    return "(fused)"


MEANING: dict[op.Operand, Callable[[CodeObject, object], str]] = {
    op.Operand.NONE: _none,
    op.Operand.CONST: _const,
    op.Operand.LOCAL: _local,
    op.Operand.NAME: _name,
    op.Operand.FREE: _free,
    op.Operand.JUMP: _jump,
    op.Operand.COUNT: _count,
    op.Operand.FUSED: _fused,
}


def jump_targets(code: CodeObject) -> set[int]:
    """Offsets some jump lands on (marked ``>>``)."""
    return {arg for opcode, arg in code.instructions if opcode in op.JUMP_OPCODES}


def disassemble_one(code: CodeObject) -> list[str]:
    """The lines for one code object (not its nested functions)."""
    where = f"{code.file}:{code.first_line}"
    header = (
        f"{code.display_name} ({where}), {len(code.params)} params, "
        f"{len(code.local_names)} locals, max stack {code.max_stack}"
    )
    lines = [header]
    if code.free_names:
        lines.append(f"  captures: {', '.join(code.free_names)}")
    lines.append("     offset  line  opcode                 arg  meaning")
    targets = jump_targets(code)
    for offset, (opcode, arg) in enumerate(code.instructions):
        info = op.OPCODES[opcode]
        mark = ">>" if offset in targets else "  "
        shown_arg = "" if info.operand is op.Operand.NONE else str(arg)
        meaning = MEANING[info.operand](code, arg)
        row = f"  {mark} {offset:6d}  {code.lines[offset]:4d}  {info.name:<20} {shown_arg:>5}  {meaning}"
        lines.append(row.rstrip())
    fused = _fused_lines(code)
    if fused:
        lines.append("  fused for speed (the loop runs these; each charges one tick per instruction):")
        lines.extend(fused)
    return lines


def _fused_lines(code: CodeObject) -> list[str]:
    """One line per fused instruction in ``code.fast``: the plain offsets it stands for, as
    its declaration in the opcode table gives them (a loop form: its jump, then the jump's
    target on)."""
    out = []
    for offset, (opcode, arg) in enumerate(code.fast):
        if (opcode, arg) != code.instructions[offset]:
            info = op.OPCODES[opcode]
            covered = info.fused.covered(offset, code.instructions[offset][1])  # type: ignore[union-attr]
            if info.fused.loop:  # type: ignore[union-attr]
                shown = f"{covered[0]} and {covered[1]}-{covered[-1]}"
            else:
                shown = f"{covered[0]}-{covered[-1]}"
            out.append(f"     {offset:6d}  {info.name} covers offsets {shown}")
    return out


def disassemble(code: CodeObject) -> str:
    """Every code object reachable from ``code``, outermost first, as text."""
    blocks: list[str] = []
    pending = [code]
    while pending:
        current = pending.pop(0)
        blocks.append("\n".join(disassemble_one(current)))
        pending.extend(current.nested())
    return "\n\n".join(blocks) + "\n"
