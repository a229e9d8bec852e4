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

The pass keeps its working state private and mutable (a variable learns it is captured only
when a later closure uses it) and returns one frozen ``Resolution``; the code generator only
reads it. The answers are keyed by node identity: nodes are frozen values, so two equal
nodes (``x`` twice at one place is impossible, but equal subtrees are not) must not share an
answer, and hashing a subtree by value would cost its whole size per look-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from minivm.errors import SourceError
from minivm.frontend import nodes as n
from minivm.source import SourceFile


@dataclasses.dataclass(frozen=True, eq=False)
class Variable:
    """A declared local variable (parameter, ``let``, ``fn`` or ``for`` variable) of the
    function numbered ``function``, in local slot ``slot``. ``captured``: a nested function
    uses it, so it lives in a cell; ``needs_clear``: some reference may run before its
    declaration, so its slot is cleared on entry to its block."""

    name: str
    slot: int
    function: int
    captured: bool
    needs_clear: bool


@dataclasses.dataclass(frozen=True, eq=False)
class FunctionScope:
    """The resolved names of one function (or of the file's top level, ``is_main``):
    ``number`` (the file's top level is 0, then functions in source order), its enclosing
    function, the names of its local slots and the variables its closure captures, in
    closure-cell order."""

    number: int
    parent: FunctionScope | None
    is_main: bool
    local_names: tuple[str, ...]
    free: tuple[Variable, ...]

    def owns(self, var: Variable) -> bool:
        """Whether ``var`` is one of this function's own locals (not a captured one)."""
        return var.function == self.number

    def free_index(self, var: Variable) -> int:
        """The closure-cell index of ``var`` in this function. Raises ``ValueError`` if the
        function does not capture it (a bug of the resolver, never of the program)."""
        for i, existing in enumerate(self.free):
            if existing is var:
                return i
        raise ValueError(f"{var.name!r} is not captured by function {self.number}")


@dataclasses.dataclass(frozen=True)
class Reference:
    """What one name reference resolved to: ``var`` is None for a global; ``checked``: the
    read must check the variable has been given a value (it may run before its declaration,
    or it is a captured variable of an enclosing function)."""

    var: Variable | None
    checked: bool


@dataclasses.dataclass(frozen=True, eq=False)
class Resolution:
    """Everything name resolution decided for one file, read-only. Every look-up takes the
    node it is about and raises ``KeyError`` for a node the resolver never saw."""

    main: FunctionScope
    _references: Mapping[int, Reference]
    _declarations: Mapping[int, Variable | None]
    _block_variables: Mapping[int, tuple[Variable, ...]]
    _functions: Mapping[int, FunctionScope]
    _parameters: Mapping[int, tuple[Variable, ...]]

    def reference(self, node: n.Name) -> Reference:
        """What the name ``node`` refers to."""
        return self._references[id(node)]

    def declaration(self, node: n.Let | n.FnDecl | n.For) -> Variable | None:
        """The variable ``node`` declares; None for a global."""
        return self._declarations[id(node)]

    def block_variables(self, block: n.Block) -> tuple[Variable, ...]:
        """The variables declared by ``block``'s own statements (``let`` and ``fn``)."""
        return self._block_variables.get(id(block), ())

    def function(self, node: n.FnExpr) -> FunctionScope:
        """The resolved scope of the function literal ``node``."""
        return self._functions[id(node)]

    def parameters(self, node: n.FnExpr) -> tuple[Variable, ...]:
        """The parameters of ``node`` as variables, in order."""
        return self._parameters[id(node)]


def resolve(program: n.Program, source: SourceFile) -> Resolution:
    """Resolve every name of ``program`` (compiled from ``source``). Raises ``SourceError``
    (compile error) for a name declared twice in one block."""
    return _Resolver(source).run(program)


# ---------------------------------------------------------------- the pass's working state


@dataclasses.dataclass(eq=False)
class _Var:
    name: str
    slot: int
    function: _Function
    declared: bool = False  # set once its declaration has been passed
    captured: bool = False
    needs_clear: bool = False


@dataclasses.dataclass(eq=False)
class _Function:
    number: int
    parent: _Function | None
    local_names: list[str] = dataclasses.field(default_factory=list)
    free: list[_Var] = dataclasses.field(default_factory=list)

    def new_slot(self, name: str) -> int:
        # Slots are never reused: simple and safe.
        self.local_names.append(name)
        return len(self.local_names) - 1

    def capture(self, var: _Var) -> None:
        if not any(existing is var for existing in self.free):
            self.free.append(var)


class _Resolver(n.Visitor):
    """Walks a program once, recording a reference per name use and a variable per
    declaration, then freezes what it found into a ``Resolution``."""

    def __init__(self, source: SourceFile):
        self.source = source
        self.references: dict[int, tuple[_Var | None, bool]] = {}
        self.declarations: dict[int, _Var | None] = {}
        self.block_vars: dict[int, list[_Var]] = {}
        self.functions: dict[int, _Function] = {}
        self.param_vars: dict[int, list[_Var]] = {}
        self.all_functions: list[_Function] = []
        self._scopes: list[dict[str, _Var | None]] = []
        self._function = self._new_function(None)

    def run(self, program: n.Program) -> Resolution:
        main = self._function
        globals_scope: dict[str, _Var | None] = {}
        for stmt in program.body:
            name = _declared_name(stmt)
            if name is not None:
                if name in globals_scope:
                    raise self._duplicate(name, stmt)
                globals_scope[name] = None  # None marks a global
        self._scopes = [globals_scope]
        for stmt in program.body:
            self.visit(stmt)
        return self._freeze(main)

    def _new_function(self, parent: _Function | None) -> _Function:
        function = _Function(len(self.all_functions), parent)
        self.all_functions.append(function)
        return function

    def _error(self, message: str, node: n.Node) -> SourceError:
        return SourceError.at("compile error", message, self.source, node.line, node.column)

    def _duplicate(self, name: str, node: n.Node) -> SourceError:
        return self._error(f"'{name}' is already declared in this block", node)

    # -- scopes
    def _push_block(self, block: n.Block, params: tuple[str, ...] = (), owner: n.FnExpr | None = None) -> None:
        fn = self._function
        scope: dict[str, _Var | None] = {}
        made: list[_Var] = []
        for p in params:
            var = _Var(p, fn.new_slot(p), fn, declared=True)
            scope[p] = var
            made.append(var)
        if owner is not None:
            self.param_vars[id(owner)] = made
        block_made: list[_Var] = []
        for stmt in block.body:
            name = _declared_name(stmt)
            if name is None:
                continue
            if name in scope:
                raise self._duplicate(name, stmt)
            var = _Var(name, fn.new_slot(name), fn)
            scope[name] = var
            block_made.append(var)
        self.block_vars[id(block)] = block_made
        self._scopes.append(scope)

    def _lookup(self, name: str) -> _Var | None:
        for scope in reversed(self._scopes):
            if name in scope:
                return scope[name]
        return None

    def _reference(self, node: n.Name) -> None:
        fn = self._function
        var = self._lookup(node.name)
        if var is None:
            self.references[id(node)] = (None, False)
            return
        if var.function is fn:
            checked = not var.declared
            if checked:
                var.needs_clear = True
            self.references[id(node)] = (var, checked)
            return
        # A variable of an enclosing function: it becomes a cell, passed down the chain.
        var.captured = True
        f: _Function | None = fn
        while f is not None and f is not var.function:
            f.capture(var)
            f = f.parent
        self.references[id(node)] = (var, True)

    def _declare_early(self, node: n.Node, name: str) -> None:
        self.declarations[id(node)] = self._scopes[-1].get(name)

    def _mark_declared(self, name: str) -> None:
        var = self._scopes[-1].get(name)
        if var is not None:
            var.declared = True

    # -- statements (the rest: their children in source order, the generic walk)
    def visit_Let(self, node: n.Let) -> None:
        self.visit(node.value)
        self._declare_early(node, node.name)
        self._mark_declared(node.name)

    def visit_FnDecl(self, node: n.FnDecl) -> None:
        # Declared before its body is resolved, so the function can call itself.
        self._declare_early(node, node.function.name)
        self.visit(node.function)
        self._mark_declared(node.function.name)

    def visit_Assign(self, node: n.Assign) -> None:
        if isinstance(node.target, n.Name):
            self.visit(node.value)  # the value is computed before the name is stored to
            self._reference(node.target)
        else:
            self.generic_visit(node)

    def visit_For(self, node: n.For) -> None:
        self.visit(node.iterable)
        fn = self._function
        var = _Var(node.var, fn.new_slot(node.var), fn, declared=True)
        self.declarations[id(node)] = var
        self._scopes.append({node.var: var})
        self.visit(node.body)
        self._scopes.pop()

    def visit_Block(self, block: n.Block) -> None:
        self._push_block(block)
        for stmt in block.body:
            self.visit(stmt)
        self._scopes.pop()

    # -- expressions
    def visit_Name(self, node: n.Name) -> None:
        self._reference(node)

    def visit_FnExpr(self, node: n.FnExpr) -> None:
        outer_function = self._function
        self._function = self._new_function(outer_function)
        self.functions[id(node)] = self._function
        # The function sees the enclosing scopes; its own body block holds the parameters.
        # Pushed on the one stack (not a copy of it per function, which costs memory by the
        # square of the nesting: 6,000 nested function literals took 190 MB to compile).
        self._push_block(node.body, node.params, owner=node)
        for stmt in node.body.body:
            self.visit(stmt)
        self._scopes.pop()
        self._function = outer_function

    # -- the result
    def _freeze(self, main: _Function) -> Resolution:
        frozen_vars: dict[int, Variable] = {}

        def frozen(var: _Var) -> Variable:
            if id(var) not in frozen_vars:
                frozen_vars[id(var)] = Variable(var.name, var.slot, var.function.number, var.captured, var.needs_clear)
            return frozen_vars[id(var)]

        scopes: dict[int, FunctionScope] = {}
        for f in self.all_functions:  # parents come first: numbered in the order they were met
            parent = scopes[f.parent.number] if f.parent is not None else None
            scopes[f.number] = FunctionScope(
                f.number, parent, f is main, tuple(f.local_names), tuple(frozen(v) for v in f.free)
            )

        def maybe(var: _Var | None) -> Variable | None:
            return None if var is None else frozen(var)

        return Resolution(
            main=scopes[main.number],
            _references=MappingProxyType({k: Reference(maybe(v), c) for k, (v, c) in self.references.items()}),
            _declarations=MappingProxyType({k: maybe(v) for k, v in self.declarations.items()}),
            _block_variables=MappingProxyType({k: tuple(map(frozen, v)) for k, v in self.block_vars.items()}),
            _functions=MappingProxyType({k: scopes[f.number] for k, f in self.functions.items()}),
            _parameters=MappingProxyType({k: tuple(map(frozen, v)) for k, v in self.param_vars.items()}),
        )


def _declared_name(stmt: n.Node) -> str | None:
    if isinstance(stmt, n.Let):
        return stmt.name
    if isinstance(stmt, n.FnDecl):
        return stmt.function.name
    return None
