"""Name resolution: which variable every name in the program refers to.

A pass over the tree before code generation (like CPython's symtable), because whether a
variable lives in a plain slot or in a cell depends on closures that may come later in its
block. It decides, for each declaration and each reference:

* a *global* (declared by the file's outermost statements, or never declared: resolved by
  name at run time);
* a *local* of the running function, in a numbered slot; a reference the compiler cannot
  prove comes after the declaration ran is marked *checked*;
* a *captured* local (some nested function uses it): it lives in a cell;
* a *free* variable of a nested function: one of the closure's cells.
"""

from __future__ import annotations

import dataclasses

from minivm.errors import Location, SourceError
from minivm.frontend import nodes as n


@dataclasses.dataclass(eq=False)
class Variable:
    """A declared local variable (parameter, ``let``, ``fn`` or ``for`` variable)."""

    name: str
    slot: int
    function: FunctionScope
    declared: bool = False  # set while resolving, once its declaration has been passed
    captured: bool = False  # a nested function uses it: it lives in a cell
    needs_clear: bool = False  # some reference may run before the declaration


@dataclasses.dataclass(eq=False)
class FunctionScope:
    """Resolution state of one function (or the file's top level)."""

    parent: FunctionScope | None
    is_main: bool
    local_names: list[str] = dataclasses.field(default_factory=list)
    free: list[Variable] = dataclasses.field(default_factory=list)

    def new_slot(self, name: str) -> int:
        """Give ``name`` a fresh local slot (slots are never reused: simple and safe)."""
        self.local_names.append(name)
        return len(self.local_names) - 1

    def free_index(self, var: Variable) -> int:
        """The closure-cell index of ``var`` in this function, adding it if new."""
        for i, existing in enumerate(self.free):
            if existing is var:
                return i
        self.free.append(var)
        return len(self.free) - 1


@dataclasses.dataclass(frozen=True)
class Reference:
    """What one name reference resolved to: ``var`` is None for a global."""

    var: Variable | None
    function: FunctionScope
    checked: bool


class Resolver:
    """Walks a program once, recording a ``Reference`` per name use and a ``Variable`` per
    declaration, keyed by the node's identity."""

    def __init__(self, file: str, lines: list[str]):
        self.file = file
        self.lines = lines
        self.references: dict[int, Reference] = {}
        self.declarations: dict[int, Variable | None] = {}
        self.block_vars: dict[int, list[Variable]] = {}
        self.functions: dict[int, FunctionScope] = {}
        self.param_vars: dict[int, list[Variable]] = {}
        self._scopes: list[dict[str, Variable | None]] = []
        self._function: FunctionScope | None = None

    # -- entry points
    def resolve_program(self, program: n.Program) -> FunctionScope:
        """Resolve the whole file; returns the scope of its top-level code."""
        main = FunctionScope(None, is_main=True)
        self.functions[id(program)] = main
        self._function = main
        globals_scope: dict[str, Variable | None] = {}
        for stmt in program.body:
            name = _declared_name(stmt)
            if name is not None:
                if name in globals_scope:
                    raise self._duplicate(name, stmt)
                globals_scope[name] = None  # None marks a global
        self._scopes = [globals_scope]
        for stmt in program.body:
            self._stmt(stmt)
        return main

    def _error(self, message: str, node: n.Node) -> SourceError:
        text = self.lines[node.line - 1] if 0 < node.line <= len(self.lines) else ""
        return SourceError("compile error", message, Location(self.file, node.line, node.column), text)

    def _duplicate(self, name: str, node: n.Node) -> SourceError:
        return self._error(f"'{name}' is already declared in this block", node)

    # -- scopes
    def _push_block(self, block: n.Block, params: tuple[str, ...] = (), owner=None) -> None:
        fn = self._function
        assert fn is not None
        scope: dict[str, Variable | None] = {}
        made: list[Variable] = []
        for p in params:
            var = Variable(p, fn.new_slot(p), fn, declared=True)
            scope[p] = var
            made.append(var)
        if owner is not None:
            self.param_vars[id(owner)] = list(made)
        block_made: list[Variable] = []
        for stmt in block.body:
            name = _declared_name(stmt)
            if name is None:
                continue
            if name in scope:
                raise self._duplicate(name, stmt)
            var = Variable(name, fn.new_slot(name), fn)
            scope[name] = var
            block_made.append(var)
        self.block_vars[id(block)] = block_made
        self._scopes.append(scope)

    def _lookup(self, name: str) -> Variable | None:
        for scope in reversed(self._scopes):
            if name in scope:
                return scope[name]
        return None

    def _reference(self, node: n.Node, name: str) -> None:
        fn = self._function
        assert fn is not None
        var = self._lookup(name)
        if var is None:
            self.references[id(node)] = Reference(None, fn, False)
            return
        if var.function is fn:
            checked = not var.declared
            if checked:
                var.needs_clear = True
            self.references[id(node)] = Reference(var, fn, checked)
            return
        # A variable of an enclosing function: it becomes a cell, passed down the chain.
        var.captured = True
        f: FunctionScope | None = fn
        while f is not None and f is not var.function:
            f.free_index(var)
            f = f.parent
        self.references[id(node)] = Reference(var, fn, True)

    # -- statements
    def _stmt(self, node: n.Node) -> None:
        if isinstance(node, n.Let):
            self._expr(node.value)
            self._declare(node, node.name)
        elif isinstance(node, n.FnDecl):
            self._declare_early(node, node.function.name)
            self._function_body(node.function)
            self._mark_declared(node.function.name)
        elif isinstance(node, n.Assign):
            if isinstance(node.target, n.Name):
                self._expr(node.value)
                self._reference(node.target, node.target.name)
            else:
                self._expr(node.target.target)
                self._expr(node.target.index)
                self._expr(node.value)
        elif isinstance(node, n.If):
            self._expr(node.cond)
            self._block(node.then)
            if isinstance(node.orelse, n.Block):
                self._block(node.orelse)
            elif node.orelse is not None:
                self._stmt(node.orelse)
        elif isinstance(node, n.While):
            self._expr(node.cond)
            self._block(node.body)
        elif isinstance(node, n.For):
            self._expr(node.iterable)
            fn = self._function
            assert fn is not None
            var = Variable(node.var, fn.new_slot(node.var), fn, declared=True)
            self.declarations[id(node)] = var
            self._scopes.append({node.var: var})
            self._block(node.body)
            self._scopes.pop()
        elif isinstance(node, n.Return):
            if node.value is not None:
                self._expr(node.value)
        elif isinstance(node, n.ExprStmt):
            self._expr(node.expr)
        elif isinstance(node, n.Break | n.Continue):
            pass
        else:  # pragma: no cover - the parser makes no other statements
            raise TypeError(f"unknown statement {node!r}")

    def _declare_early(self, node: n.Node, name: str) -> None:
        self.declarations[id(node)] = self._scopes[-1].get(name)

    def _declare(self, node: n.Node, name: str) -> None:
        self._declare_early(node, name)
        self._mark_declared(name)

    def _mark_declared(self, name: str) -> None:
        var = self._scopes[-1].get(name)
        if var is not None:
            var.declared = True

    def _block(self, block: n.Block) -> None:
        self._push_block(block)
        for stmt in block.body:
            self._stmt(stmt)
        self._scopes.pop()

    def _function_body(self, fn_node: n.FnExpr) -> None:
        outer_function, outer_scopes = self._function, self._scopes
        scope = FunctionScope(outer_function, is_main=False)
        self.functions[id(fn_node)] = scope
        self._function = scope
        # The function sees the enclosing scopes; its own body block holds the parameters.
        self._scopes = list(outer_scopes)
        self._push_block(fn_node.body, fn_node.params, owner=fn_node)
        for stmt in fn_node.body.body:
            self._stmt(stmt)
        self._function, self._scopes = outer_function, outer_scopes

    # -- expressions
    def _expr(self, node: n.Node) -> None:
        if isinstance(node, n.Name):
            self._reference(node, node.name)
        elif isinstance(node, n.Literal):
            pass
        elif isinstance(node, n.Binary | n.Logical):
            self._expr(node.left)
            self._expr(node.right)
        elif isinstance(node, n.Unary):
            self._expr(node.operand)
        elif isinstance(node, n.Call):
            self._expr(node.callee)
            for arg in node.args:
                self._expr(arg)
        elif isinstance(node, n.Spawn):
            self._expr(node.call)
        elif isinstance(node, n.Index):
            self._expr(node.target)
            self._expr(node.index)
        elif isinstance(node, n.ListLit):
            for item in node.items:
                self._expr(item)
        elif isinstance(node, n.MapLit):
            for key, value in node.pairs:
                self._expr(key)
                self._expr(value)
        elif isinstance(node, n.FnExpr):
            self._function_body(node)
        else:  # pragma: no cover
            raise TypeError(f"unknown expression {node!r}")


def _declared_name(stmt: n.Node) -> str | None:
    if isinstance(stmt, n.Let):
        return stmt.name
    if isinstance(stmt, n.FnDecl):
        return stmt.function.name
    return None
