"""Regenerate ``minivm/frontend/lark_standalone.py`` from ``grammar/minivm.lark``.

The file is lark's standalone output (``python -m lark.tools.standalone``): the grammar's
LALR tables plus lark's runtime, so a run neither imports lark nor analyses the grammar.
Two edits follow, each for start-up (docs/performance.md, "Start-up"):

* lark's logger, which lark itself sets to ``CRITICAL`` so that it never prints, becomes a
  silent stand-in: the module no longer imports ``logging`` (~5 ms of every run);
* the tables (``DATA``, ``MEMO``) are stored as a zlib-compressed ``marshal`` bytes literal
  in place of lark's base64 text of a compressed pickle: no ``import pickle`` (~3 ms), and a
  bytes literal, unlike the 220 kB dict literal of the uncompressed form, compiles fast
  where no ``.pyc`` can be written.

Usage (after editing the grammar; ``tests/test_startup.py`` fails until it is done)::

    PYTHONHASHSEED=0 python grammar/generate_parser.py [-o minivm/frontend/lark_standalone.py]

Raises ``RuntimeError`` when lark's output no longer has the lines the edits expect (a new
lark version): look at its output and adapt the edits.
"""

from __future__ import annotations

import argparse
import importlib.util
import marshal
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = ROOT / "grammar" / "minivm.lark"
TARGET = ROOT / "minivm" / "frontend" / "lark_standalone.py"
OPTIONS = ["--compress", "--lexer", "basic", "--propagate_positions", "--maybe_placeholders"]

LOGGER_LINES = (
    'logger: logging.Logger = logging.getLogger("lark")\n'
    "logger.addHandler(logging.StreamHandler())\n"
)
SILENT_LOGGER = '''class _SilentLogger:
    """lark's logger, which lark sets to CRITICAL: it never prints, so it needs no logging."""

    def _silent(self, *args, **kwargs):
        pass

    debug = info = warning = error = exception = critical = _silent


logger = _SilentLogger()
'''
TABLES_START = "import pickle, zlib, base64\n"
TABLES_END = "Shift = 0\n"


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"lark's standalone output changed: expected one {old.strip()!r}")
    return text.replace(old, new)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def edit(source: str, data: object, memo: object) -> str:
    """lark's standalone ``source`` with the two edits; ``data`` and ``memo`` are its tables."""
    source = _replace_once(source, "import logging\n", "")
    source = _replace_once(source, LOGGER_LINES, SILENT_LOGGER)
    source = _replace_once(source, "logger.setLevel(logging.CRITICAL)\n", "")
    start, end = source.index(TABLES_START), source.index(TABLES_END)
    tables = zlib.compress(marshal.dumps((data, memo), 4), 9)
    stored = (
        "import marshal, zlib\n"
        "# The tables, as zlib-compressed marshal data (grammar/generate_parser.py).\n"
        f"DATA, MEMO = marshal.loads(zlib.decompress({tables!r}))\n"
    )
    return source[:start] + stored + source[end:]


def generate(output: Path) -> None:
    """Write the edited standalone parser of ``grammar/minivm.lark`` to ``output``."""
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "raw.py"
        command = [sys.executable, "-m", "lark.tools.standalone", *OPTIONS, str(GRAMMAR), "-o", str(raw)]
        subprocess.run(command, check=True, cwd=ROOT, timeout=120)
        module = _load(raw, "_lark_standalone_raw")
        output.write_text(edit(raw.read_text(encoding="utf-8"), module.DATA, module.MEMO), encoding="utf-8")


def main() -> None:
    """The command line: ``-o PATH`` (default: the committed module)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=TARGET)
    generate(parser.parse_args().output)


if __name__ == "__main__":
    main()
