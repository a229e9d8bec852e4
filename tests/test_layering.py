"""The package's layers (STYLE.md, "A layout that shows the pipeline"), read from the source
with ``ast``: which package may import which, and who may touch the state of the GIL and of
a thread's tick clock.

Data flows one way — source → tree → code → running threads → events — so a module imports
only layers below its own. Imports under ``if TYPE_CHECKING:`` are for type hints only and
are left out; an import inside a function (*lazy*) still counts, and may go up the order only
where a rule below says so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import minivm

PACKAGE = Path(minivm.__file__).resolve().parent

# The order of the layers: a module imports only layers of lower rank, or its own. ``""`` is
# the package itself (``minivm/__init__.py``, which re-exports the API lazily).
RANK = {
    "source": -1,
    "errors": 0,
    # Output files named on the command line (``-`` is standard output): used by observation
    # and schedules alike, importing nothing of the VM.
    "outputs": 0.5,
    "bytecode": 1,
    "frontend": 2,
    "gil": 2,
    "runtime": 3,
    # The command line's argument types sit just under observation, whose ``experiment``
    # command parses its lists with them.
    "arguments": 3.5,
    "observe": 4,
    # The front door: the tools above it (schedules, explore, debug, repl) build and drive
    # their runs through it, as users do.
    "api": 5,
    "schedule": 6,
    "explore": 7,
    "debug": 7,
    "repl": 7,
    "": 8,
    "commands": 9,
    "cli": 10,
    "__main__": 11,
}

# Lazy imports up the order, each with its reason. Observation drives runs through the same
# public entry point users get (``minivm.api``), and the benchmark times ``explore``.
LAZY_UPWARD = {
    ("observe", "api"),
    ("observe", "explore"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _scan(path: Path) -> dict[str, str]:
    """Every minivm module ``path`` imports, mapped to ``"top"`` or ``"lazy"`` (inside a
    function); ``from a import b`` counts as ``a`` and ``a.b``. ``if TYPE_CHECKING:`` blocks
    are left out."""
    module = _module_name(path)
    found: dict[str, str] = {}

    def add(name: str, lazy: bool) -> None:
        if name == "minivm" or name.startswith("minivm."):
            if found.get(name) != "top":
                found[name] = "lazy" if lazy else "top"

    class Visitor(ast.NodeVisitor):
        lazy = False

        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for stmt in node.orelse:
                    self.visit(stmt)
                return
            self.generic_visit(node)

        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            outer, self.lazy = self.lazy, True
            self.generic_visit(node)
            self.lazy = outer

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                add(alias.name, self.lazy)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            # ``from minivm import api`` imports the submodule; the package's own
            # ``__init__`` only re-exports lazily, so it is not a dependency of its own.
            if base != "minivm":
                add(base, self.lazy)
            for alias in node.names:
                add(f"{base}.{alias.name}", self.lazy)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


PATHS = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
SCANS = {name: _scan(path) for name, path in PATHS.items()}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in PATHS.items()}


def _imports(module: str, lazy: bool = True) -> set[str]:
    """The minivm *modules* ``module`` imports (names that are attributes are dropped)."""
    return {
        m for m, kind in SCANS[module].items() if (m in SCANS or m == "minivm") and (lazy or kind == "top")
    }


def _layer(module: str) -> str:
    """``minivm.runtime.heap`` -> ``runtime``; ``minivm.errors`` -> ``errors``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# -- the scan itself
def test_the_import_scan_sees_the_package():
    assert "minivm.runtime.interpreter" in SCANS
    assert "minivm.bytecode.opcodes" in _imports("minivm.runtime.interpreter")
    assert "minivm.errors" in _imports("minivm.gil.lock")
    # TYPE_CHECKING imports are left out: gil/lock.py names runtime.threads only for types.
    assert not any(m.startswith("minivm.runtime") for m in _imports("minivm.gil.lock"))
    # A function's import is seen, and seen as lazy.
    assert SCANS["minivm.runtime.engine"]["minivm.runtime.compiled.engine"] == "lazy"


def test_every_layer_has_a_rank():
    assert {_layer(m) for m in SCANS} <= set(RANK), sorted({_layer(m) for m in SCANS} - set(RANK))


# -- the order of the layers
def test_every_import_goes_down_the_order():
    bad = {}
    for module in SCANS:
        own = _layer(module)
        for target in _imports(module):
            to = _layer(target)
            if to == own or RANK[to] < RANK[own]:
                continue
            if SCANS[module][target] == "lazy" and (own, to) in LAZY_UPWARD:
                continue
            bad.setdefault(module, []).append(target)
    assert bad == {}


def test_the_source_file_imports_no_other_minivm_module():
    assert _imports("minivm.source") == set()


def test_errors_imports_only_the_source_file():
    assert _imports("minivm.errors") == {"minivm.source"}


def test_bytecode_and_frontend_never_import_the_running_vm():
    for module in SCANS:
        if _layer(module) in ("bytecode", "frontend"):
            assert {_layer(m) for m in _imports(module)} <= {"source", "errors", "bytecode", "frontend"}, module
    assert not any(_layer(m) == "runtime" for m in _imports("minivm.bytecode.disasm"))


def test_the_gil_imports_only_errors_and_itself():
    # Not even lazily: the lock never reaches back into the runtime it guards.
    for module in SCANS:
        if _layer(module) == "gil":
            assert {_layer(m) for m in _imports(module)} <= {"errors", "gil"}, module


def test_the_runtime_imports_no_frontend_observer_or_command_line():
    # Not even lazily: the runtime sends events to whatever sink it is given.
    bad = {
        module: sorted(m for m in _imports(module) if _layer(m) in ("frontend", "observe", "cli", "api"))
        for module in SCANS
        if _layer(module) == "runtime"
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_the_front_door_builds_a_machine():
    # Every run — the command line's, experiment's, bench's, explore's, the debugger's, the
    # REPL's — is built by ``minivm.api.prepare``; tools reach the VM through ``Run.machine``.
    importers = sorted(
        module
        for module in SCANS
        if _layer(module) != "runtime" and any(m.startswith("minivm.runtime.machine") for m in _imports(module))
    )
    assert importers == ["minivm.api"]


def test_nothing_imports_cli_except_main():
    importers = sorted(module for module in SCANS if "minivm.cli" in SCANS[module] and module != "minivm.__main__")
    assert importers == []


def test_main_imports_cli():
    assert "minivm.cli" in SCANS["minivm.__main__"]


# -- the compiled tier, in pipeline order: each module imports only those before it
COMPILED_TIER = (
    "minivm.runtime.compiled.structure",
    "minivm.runtime.compiled.lines",
    "minivm.runtime.compiled.stack",
    "minivm.runtime.compiled.handlers",
    "minivm.runtime.compiled.emitter",
    "minivm.runtime.compiled.units",
    "minivm.runtime.compiled.regions",
    "minivm.runtime.compiled.sites",
    "minivm.runtime.compiled.versions",
    "minivm.runtime.compiled.codegen",
    "minivm.runtime.compiled.translation",
    "minivm.runtime.compiled.frames",
    "minivm.runtime.compiled.engine",
    "minivm.runtime.compiled.listing",
)


def test_the_compiled_tier_imports_only_errors_bytecode_and_runtime():
    assert set(COMPILED_TIER) <= set(SCANS)
    for module in COMPILED_TIER:
        assert {_layer(m) for m in _imports(module)} <= {"errors", "bytecode", "runtime"}, module


def test_the_compiled_tier_modules_import_down_the_pipeline():
    for i, module in enumerate(COMPILED_TIER):
        tier = {m for m in _imports(module) if m.startswith("minivm.runtime.compiled.")}
        assert tier <= set(COMPILED_TIER[:i]), (module, sorted(tier - set(COMPILED_TIER[:i])))


def test_only_the_engine_choice_reaches_the_compiled_tier():
    # The interpreter stays the reference engine: nothing of the runtime depends on the tier
    # except the one place that chooses the engine (and imports it only when chosen).
    importers = sorted(
        module
        for module in SCANS
        if not module.startswith("minivm.runtime.compiled")
        and any(m.startswith("minivm.runtime.compiled") for m in _imports(module))
    )
    assert importers == ["minivm.commands.dis", "minivm.runtime.engine"]


# -- one home per piece of state
def _attributes(module: str):
    """Every ``x.attr`` in ``module``: (node, the text of ``x``)."""
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Attribute):
            yield node, ast.unparse(node.value)


# The lock policies: the GIL's own modules and the controlled policy built on them.
POLICY_MODULES = ("minivm.gil.lock", "minivm.gil.policy", "minivm.gil.policies", "minivm.gil.battle",
                  "minivm.gil.manual", "minivm.schedule.control", "minivm.schedule.replay")  # fmt: skip


def test_policies_do_not_reach_the_machine_through_a_thread():
    uses = [
        f"{module}:{node.lineno} {base}.vm"
        for module in POLICY_MODULES
        for node, base in _attributes(module)
        if node.attr == "vm"
    ]
    assert uses == []


def test_the_gil_never_calls_the_tick_clock_or_the_check():
    names = {"clock", "refill", "account", "at_check", "check_interval"}
    uses = [
        f"{module}:{node.lineno} .{node.attr}"
        for module in SCANS
        if _layer(module) == "gil"
        for node, _ in _attributes(module)
        if node.attr in names
    ]
    assert uses == []


def _is_gil(base: str) -> bool:
    return base == "gil" or base.endswith(".gil")


def test_only_the_gil_changes_its_own_state():
    """Outside ``gil/lock.py`` nobody assigns a field of the GIL or edits its waiter queue:
    policies go through the primitives that keep the lock's invariants (reading is fine)."""
    mutators = {"append", "appendleft", "remove", "pop", "popleft", "clear", "extend", "insert", "rotate"}
    bad = []
    for module, tree in TREES.items():
        if module == "minivm.gil.lock":
            continue
        for node in ast.walk(tree):
            # (A quiet VM may be given a new policy between two REPL inputs: ``Machine.reconfigure``.)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                if _is_gil(ast.unparse(node.value)) and node.attr != "policy":
                    bad.append(f"{module}:{node.lineno} {ast.unparse(node)} =")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in mutators:
                target = node.func.value
                on_gil = isinstance(target, ast.Attribute) and _is_gil(ast.unparse(target.value))
                if on_gil and target.attr == "waiters":
                    bad.append(f"{module}:{node.lineno} {ast.unparse(node.func)}()")
    assert bad == []


# The clock's fields, and who may write them: the clock and the check settle the account;
# the engines store their countdown (``ticks``) and drop to plain code (``fast_code``).
CLOCK_FIELDS = {"ticks", "budget", "until_check", "instructions", "checks", "fast_code"}
CLOCK_HOMES = {"minivm.runtime.clock", "minivm.runtime.check"}
ENGINE_FIELDS = {"ticks", "fast_code"}
ENGINES = {"minivm.runtime.interpreter", "minivm.runtime.compiled.engine"}


def _is_clock(base: str) -> bool:
    return base == "clock" or base.endswith(".clock")


def test_the_tick_clock_is_written_only_by_its_home_and_the_engines():
    bad = []
    for module in SCANS:
        for node, base in _attributes(module):
            if not isinstance(node.ctx, ast.Store) or node.attr not in CLOCK_FIELDS:
                continue
            if module in CLOCK_HOMES and (base == "self" or _is_clock(base)):
                continue
            if _is_clock(base) and module in ENGINES and node.attr in ENGINE_FIELDS:
                continue
            if _is_clock(base) or base in ("thread", "holder", "main"):
                bad.append(f"{module}:{node.lineno} {base}.{node.attr} =")
    assert bad == []


def test_threads_carry_no_tick_fields_of_their_own():
    from minivm.runtime.clock import TickClock
    from minivm.runtime.machine import Machine

    machine = Machine()
    thread = machine.scheduler.new_main([])
    assert isinstance(thread.clock, TickClock)
    assert not CLOCK_FIELDS & set(vars(thread)), sorted(CLOCK_FIELDS & set(vars(thread)))
    assert not hasattr(thread, "tick_checks")


def test_thread_abort_has_one_home_below_the_gil():
    from minivm.errors import ThreadAbort

    assert issubclass(ThreadAbort, BaseException) and not issubclass(ThreadAbort, Exception)
    defined = [
        module
        for module, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == "ThreadAbort"
    ]
    assert defined == ["minivm.errors"]
    imported_from = {
        node.module
        for tree in TREES.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and any(a.name == "ThreadAbort" for a in node.names)
    }
    assert imported_from == {"minivm.errors"}
