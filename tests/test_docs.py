"""The documentation's examples still do what the documentation shows.

docs/language.md and docs/errors.md show programs with their output, one way: an ``mv``
block holds the program, and the ``console`` block right after it starts with the command
(``$ minivm run example.mv``, optionally followed by ``# exit status N``; 0 when left out)
and then shows the whole output, standard output then standard error (``...`` stands for
lines left out). Each example is saved as ``example.mv`` in a fresh folder and run there.
A ``console`` block without an ``mv`` block before it runs its command on a one-line
program; ``text`` blocks are illustrations and are not run. Every ``mv`` block must be
followed by its ``console`` block, so no program in the docs goes unchecked.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
from golden import ROOT

DOCS = ("language.md", "errors.md")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_COMMAND = re.compile(r"^\$ minivm (.*?)(?:\s+# exit status (\d+))?$")


def _blocks(doc: str) -> list[tuple[str, str, int]]:
    """(kind, body, line of the opening fence) of every fenced block of ``docs/doc``."""
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]


def doc_examples(*docs: str) -> list:
    """One ``pytest.param(program or None, arguments, exit status, expected lines)`` per
    ``console`` block, with the ``mv`` block just before it; the id is ``doc:line``."""
    examples = []
    for doc in docs:
        previous: tuple[str, str, int] | None = None
        for kind, body, line in _blocks(doc):
            if kind == "console":
                lines = body.rstrip("\n").split("\n")
                command = _COMMAND.match(lines[0])
                assert command, f"docs/{doc}:{line}: start a console block with '$ minivm ...': {lines[0]}"
                program = previous[1] if previous and previous[0] == "mv" else None
                status = int(command.group(2) or 0)
                examples.append(pytest.param(program, command.group(1), status, lines[1:], id=f"{doc}:{line}"))
            previous = (kind, body, line)
    return examples


def _is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(line == needle for line in it) for needle in needles)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("program", "arguments", "status", "expected"), doc_examples(*DOCS))
def test_doc_example_gives_the_output_shown(tmp_path, program, arguments, status, expected):
    (tmp_path / "example.mv").write_text(program if program is not None else "print(1);\n", encoding="utf-8")
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "minivm", *shlex.split(arguments)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=50,
    )  # fmt: skip
    actual = (result.stdout + result.stderr).rstrip("\n").split("\n") if result.stdout + result.stderr else []
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert result.returncode == status, (result.returncode, actual)
    if "..." in expected:
        assert _is_subsequence([line for line in expected if line != "..."], actual), actual
    else:
        assert actual == expected


@pytest.mark.parametrize("doc", DOCS)
def test_every_program_in_a_doc_is_run(doc):
    blocks = _blocks(doc)
    unchecked = [line for (kind, _b, line), after in zip(blocks, [*blocks[1:], None], strict=True)
                 if kind == "mv" and (after is None or after[0] != "console")]  # fmt: skip
    assert unchecked == [], f"docs/{doc}: mv blocks without a console block after them, at lines {unchecked}"
    assert {kind for kind, _b, _l in blocks} <= {"mv", "console", "text", "sh"}, f"docs/{doc}: unknown block kinds"
