"""Start-up: the generated parser matches the grammar, and ``run`` imports only what it needs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from golden import ROOT

from minivm import cli

GENERATED = ROOT / "minivm" / "frontend" / "lark_standalone.py"
# The generator of docs/performance.md: lark's standalone tool, then minivm's two edits.
GENERATE = [sys.executable, str(ROOT / "grammar" / "generate_parser.py")]


def _load(path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _canonical(data: dict) -> tuple:
    """A standalone parser's data with the LALR states renumbered in the order a walk from
    the start state meets them: lark numbers states in hash order, which differs per run."""
    table = data["parser"]["parser"]
    names = table["tokens"]
    start = table["start_states"]["start"]
    number, queue, rows = {start: 0}, [start], []
    while queue:
        row = {}
        for token, (kind, target) in sorted(table["states"][queue.pop(0)].items(), key=lambda i: names[i[0]]):
            if kind == 0:  # shift (or goto): name the state by its place in the walk
                if target not in number:
                    number[target] = len(number)
                    queue.append(target)
                row[names[token]] = ("shift", number[target])
            else:
                row[names[token]] = ("reduce", target)
        rows.append(row)
    rest = dict(data, parser=dict(data["parser"], parser=None))
    return repr(rest), rows, number[table["end_states"]["start"]]


def test_generated_parser_matches_the_grammar(tmp_path):
    """Fails when grammar/minivm.lark changed without regenerating lark_standalone.py."""
    fresh = tmp_path / "fresh.py"
    subprocess.run([*GENERATE, "-o", str(fresh)], check=True, cwd=ROOT, timeout=180)
    committed, regenerated = _load(GENERATED, "committed"), _load(fresh, "regenerated")
    assert committed.MEMO == regenerated.MEMO, "terminals or rules changed: regenerate (docs/performance.md)"
    assert _canonical(committed.DATA) == _canonical(regenerated.DATA), "tables changed: regenerate"


def test_the_generated_parser_imports_neither_logging_nor_pickle():
    """The generator's two edits (grammar/generate_parser.py): lark's logger is a silent
    stand-in and the tables are marshal data, so neither module is imported for a run."""
    code = (
        "import sys\nimport minivm.frontend.lark_standalone as standalone\n"
        "print(sorted(m for m in ('logging', 'pickle') if m in sys.modules), len(standalone.DATA))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 2)[0] == "[]"


def test_lazy_sub_parsers_show_the_same_help():
    full = cli.build_parser()
    for command in ("run", "dis", ""):
        assert cli.build_parser(command).format_help() == full.format_help()
    for name, (_module, _function, help_line) in cli.LAZY_COMMANDS.items():
        listed = {a.dest: a.help for a in full._subparsers._group_actions[0]._choices_actions}
        assert listed[name] == help_line


def _modules_imported_by(argv: list[str]) -> list[str]:
    """The minivm, lark and attrs modules a fresh process has imported after ``minivm ARGV``."""
    code = (
        f"import sys\nfrom minivm.cli import main\nstatus = main({argv!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('minivm', 'lark', 'attr', 'attrs')))\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    output, listing = result.stdout.rsplit("\n", 2)[:2]
    assert output == "1", result.stdout
    return eval(listing)


def test_run_imports_neither_lark_nor_attrs_nor_the_observe_package():
    """A plain run parses with the standalone parser (no lark), builds its records without
    attrs (~22 ms of import and ~0.5 ms a class, docs/performance.md) and observes nothing."""
    imported = _modules_imported_by(["run", "-c", "print(1);"])
    assert "minivm.frontend.lark_standalone" in imported and "minivm.runtime.machine" in imported
    unwanted = [m for m in imported if m.split(".")[0] in ("lark", "attr", "attrs") or m.startswith("minivm.observe")]
    assert unwanted == []


def test_a_run_on_the_interpreter_imports_no_compiled_tier():
    imported = _modules_imported_by(["run", "--engine", "interp", "-c", "print(1);"])
    assert "minivm.runtime.interpreter" in imported
    assert [m for m in imported if m.startswith("minivm.runtime.compiled")] == []


def test_run_with_an_observe_option_still_works():
    result = subprocess.run(
        [sys.executable, "-m", "minivm", "run", "--stats", "-c", "print(1);"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "1\n", result.stderr
    assert result.stderr


def test_every_package_ships_in_the_wheel():
    """pyproject.toml lists the packages by hand (the grammar is mapped in from grammar/):
    a package missing there installs nothing and fails only on a fresh machine."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = ROOT
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(root).parts) for init in (root / "minivm").rglob("__init__.py")
    }
    assert found - listed == set()
