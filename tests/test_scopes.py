"""Name resolution (``frontend/scopes.py``) returns one frozen result, and every walk of the
tree goes through ``frontend/nodes.py``'s one dispatch mechanism."""

from __future__ import annotations

import dataclasses

import pytest

from minivm.errors import SourceError
from minivm.frontend import nodes as n
from minivm.frontend.compiler import Compiler
from minivm.frontend.parser import parse
from minivm.frontend.scopes import Resolution, resolve
from minivm.source import SourceFile

PROGRAM = """\
let g = 1;
fn outer(a) {
    let unused = 0;
    fn inner() { return a + later; }
    let later = 2;
    return inner;
}
for i in range(3) { print(i + g); }
"""


def _resolved(text: str = PROGRAM) -> tuple[n.Program, Resolution]:
    source = SourceFile("t.mv", text)
    program = parse(source)
    return program, resolve(program, source)


def test_the_result_and_everything_in_it_is_frozen():
    program, resolution = _resolved()
    outer = program.body[1].function
    scope = resolution.function(outer)
    var = resolution.parameters(outer)[0]
    for thing, field in [(resolution, "main"), (scope, "free"), (var, "captured")]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(thing, field, None)
    assert isinstance(scope.local_names, tuple) and isinstance(scope.free, tuple)


def test_captured_variables_live_in_cells_and_are_captured_in_reference_order():
    program, resolution = _resolved()
    outer = program.body[1].function
    inner = outer.body.body[1].function
    a, unused, _inner, later = (*resolution.parameters(outer), *resolution.block_variables(outer.body))
    assert [v.name for v in (a, unused, later)] == ["a", "unused", "later"]
    assert (a.captured, unused.captured, later.captured) == (True, False, True)
    inner_scope = resolution.function(inner)
    assert [v.name for v in inner_scope.free] == ["a", "later"]
    assert inner_scope.parent is resolution.function(outer)
    assert inner_scope.free_index(later) == 1
    with pytest.raises(ValueError):
        inner_scope.free_index(unused)
    assert resolution.function(outer).owns(a) and not inner_scope.owns(a)


def test_references_say_global_local_or_checked():
    program, resolution = _resolved("let g = 1;\nfn f() { print(x); let x = g; return x; }\n")
    body = program.body[1].function.body.body
    x_early = body[0].expr.args[0]
    g_ref = body[1].value
    x_late = body[2].value
    assert resolution.reference(g_ref).var is None  # a global: by name at run time
    assert resolution.reference(x_early).checked and resolution.reference(x_early).var.needs_clear
    assert not resolution.reference(x_late).checked
    assert resolution.declaration(program.body[0]) is None


def test_compiling_leaves_the_resolution_as_it_was():
    source = SourceFile("t.mv", PROGRAM)
    program = parse(source)
    compiler = Compiler(source)
    compiler.compile_program(program)
    resolution = compiler.resolution
    before = dataclasses.asdict(resolution.main)
    compiler_again = Compiler(source)
    compiler_again.compile_program(program)
    assert dataclasses.asdict(compiler_again.resolution.main) == before


def test_a_name_declared_twice_in_a_block_is_a_compile_error():
    with pytest.raises(SourceError) as info:
        _resolved("fn f() {\n    let a = 1;\n    let a = 2;\n}\n")
    assert (info.value.kind, info.value.location.line, info.value.source_line) == (
        "compile error", 3, "    let a = 2;"
    )


def test_children_come_in_source_order():
    program = parse('f(a, [b, {c: d}])[e] = g - h;', "t.mv")
    names = []
    pending = [program]
    while pending:  # the parser's depth check walks the tree this way, without recursion
        node = pending.pop()
        if isinstance(node, n.Name):
            names.append(node.name)
        pending.extend(reversed(list(n.children(node))))
    assert names == ["f", "a", "b", "c", "d", "e", "g", "h"]


def test_every_node_class_dispatches_to_its_own_method_or_the_generic_walk():
    class Counter(n.Visitor):
        def __init__(self) -> None:
            self.names = 0

        def visit_Name(self, node: n.Name) -> None:
            self.names += 1

    counter = Counter()
    counter.visit(parse(PROGRAM, "t.mv"))
    assert counter.names == 7
    assert len(Counter._dispatch) == 23  # every node class of nodes.py, once
    assert Counter._dispatch[n.Name] is Counter.visit_Name
    assert Counter._dispatch[n.Let] is n.Visitor.generic_visit


def test_the_compiler_has_a_rule_for_every_node_class():
    from minivm.frontend.compiler import _FunctionCompiler

    missing = [c.__name__ for c, f in _FunctionCompiler._dispatch.items()
               if f is _FunctionCompiler.generic_visit and c is not n.Program]  # fmt: skip
    assert missing == []


def test_nested_function_literals_resolve_in_memory_linear_in_their_depth():
    # Each function copied the whole stack of enclosing scopes: 3,000 nested literals took
    # 41 MB to resolve (6,000 took 190 MB to compile), and under ulimit -v the compiler ran
    # out of memory. The scopes now share one stack: about 3 MB.
    import tracemalloc

    from minivm.frontend.room import with_big_stack

    depth = 3_000
    source = SourceFile("deep.mv", "let f = " + "fn () { return " * depth + "1" + "; }" * depth + ";")
    program = with_big_stack(lambda: parse(source))

    def peak_bytes() -> int:
        tracemalloc.start()
        try:
            resolve(program, source)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert with_big_stack(peak_bytes) < 15_000_000
