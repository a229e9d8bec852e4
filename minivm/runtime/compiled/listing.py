"""``minivm dis --compiled``: the host source generated for every function of a program."""

from __future__ import annotations

from minivm.bytecode.code import CodeObject
from minivm.runtime.compiled.translation import Fallback, translate


def compiled_listing(code: CodeObject) -> str:
    """Every code object reachable from ``code``, outermost first: a header line, then the
    generated host source with each line's guest offset in the margin (``@pc``), or the
    reason it stays on the interpreter."""
    blocks: list[str] = []
    pending = [code]
    while pending:
        current = pending.pop(0)
        pending.extend(current.nested())
        header = f"{current.display_name} ({current.file}:{current.first_line})"
        translation = translate(current)
        if isinstance(translation, Fallback):
            blocks.append(f"{header}: runs on the interpreter ({translation.reason})")
            continue
        lines = [f"{header}, {len(translation.sites)} call sites"]
        for number, text in enumerate(translation.source.splitlines(), start=1):
            info = translation.line(number)
            lines.append(f"  @{info.pc:<4} {text}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
