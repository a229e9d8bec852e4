"""The compiler's output is pinned: every golden program compiles to the same bytecode.

Each program under ``programs/`` and ``tests/programs/`` (regressions included) is compiled
and disassembled; a program the compiler rejects gives its error text instead. The SHA-256
of that text is compared with ``tests/bytecode_digests.txt``, written when the output was
known good. A refactoring of the frontend (name resolution, tree walks, the source file)
must leave every digest as it was. The fused section of the listing is left out: fusion is
the bytecode layer's choice, not the compiler's.

A deliberate change of the compiler's output rewrites the file:
``python tests/test_compiler.py --write`` (and the diff of ``minivm dis`` says what changed).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIGESTS = ROOT / "tests" / "bytecode_digests.txt"
FUSED_HEADER = "  fused for speed"


def _programs() -> list[Path]:
    return sorted([*ROOT.glob("programs/*.mv"), *ROOT.glob("tests/programs/**/*.mv")])


def compiled_text(path: Path) -> str:
    """The disassembly of ``path`` without fused sections, or its compile error's text."""
    from minivm.bytecode.disasm import disassemble
    from minivm.errors import SourceError, format_source_error
    from minivm.frontend.parser import decode_source
    from minivm.frontend.room import compile_with_room

    name = path.relative_to(ROOT).as_posix()
    try:
        code = compile_with_room(decode_source(path.read_bytes(), name), name)
    except SourceError as error:
        return "rejected\n" + format_source_error(error) + "\n"
    kept, skipping = [], False
    for line in disassemble(code).split("\n"):
        if line.startswith(FUSED_HEADER):
            skipping = True
        elif skipping and not line.startswith("     "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def digest(path: Path) -> str:
    """SHA-256 (hex) of ``compiled_text(path)``."""
    return hashlib.sha256(compiled_text(path).encode("utf-8")).hexdigest()


def _stored() -> dict[str, str]:
    pairs = (line.split() for line in DIGESTS.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name: value for name, value in pairs}


def test_every_program_is_pinned():
    names = {p.relative_to(ROOT).as_posix() for p in _programs()}
    assert len(names) > 200
    assert names == set(_stored())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", _programs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_bytecode_is_unchanged(path):
    name = path.relative_to(ROOT).as_posix()
    assert digest(path) == _stored().get(name), f"{name} compiles differently:\n{compiled_text(path)}"


def test_the_digest_sees_a_change_of_bytecode(tmp_path):
    first, second = tmp_path / "a.mv", tmp_path / "b.mv"
    first.write_text("let x = 1;\nprint(x);\n")
    second.write_text("let x = 1;\nprint(x + 0);\n")
    assert digest_of(first) != digest_of(second)


def digest_of(path: Path) -> str:
    """``digest`` of a file outside the checkout (its name is taken as given)."""
    from minivm.bytecode.disasm import disassemble
    from minivm.frontend.compiler import compile_source

    return hashlib.sha256(disassemble(compile_source(path.read_text(), "x.mv")).encode()).hexdigest()


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_compiler.py --write")
    sys.path.insert(0, str(ROOT))
    lines = [f"{p.relative_to(ROOT).as_posix()} {digest(p)}" for p in _programs()]
    DIGESTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} digests to {DIGESTS}")
