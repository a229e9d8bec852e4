"""Syntax tree → code objects.

Name resolution is done first (``scopes.resolve``, one frozen ``Resolution``); this module
only generates code, reading that result and never changing it. Every instruction is emitted
with the line of the node it comes from, so every runtime error can name its line. The stack
depth of every code object is verified (``bytecode.verify``).
"""

from __future__ import annotations

import dataclasses

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject, FreeVarSource
from minivm.bytecode.fusion import fuse
from minivm.bytecode.verify import max_stack_depth
from minivm.errors import SourceError
from minivm.frontend import nodes as n
from minivm.frontend.parser import MAX_NESTING, parse
from minivm.frontend.scopes import FunctionScope, Reference, Resolution, Variable, resolve
from minivm.source import SourceFile

_BINARY_OPS = {
    "+": op.ADD, "-": op.SUB, "*": op.MUL, "/": op.DIV, "//": op.FLOOR_DIV, "%": op.MOD,
    "==": op.EQ, "!=": op.NE, "<": op.LT, "<=": op.LE, ">": op.GT, ">=": op.GE,
}  # fmt: skip


class _Loop:
    """Where ``continue`` and ``break`` go in the loop being compiled."""

    def __init__(self, continue_target: int, pops_iterator: bool):
        self.continue_target = continue_target
        self.pops_iterator = pops_iterator
        self.break_jumps: list[int] = []


class _FunctionCompiler(n.Visitor):
    """Generates the code of one function (or of the file's top level): a visitor with one
    method per node class, reading (never changing) what name resolution decided."""

    def __init__(self, owner: Compiler, scope: FunctionScope, name: str, first_line: int):
        self.owner = owner
        self.resolution = owner.resolution
        self.scope = scope
        self.name = name
        self.first_line = first_line
        self.code: list[tuple[int, int]] = []
        self.lines: list[int] = []
        self.constants: list[object] = []
        self._constant_index: dict[tuple[type, object], int] = {}
        self.names: list[str] = []
        self._name_index: dict[str, int] = {}
        self.loops: list[_Loop] = []
        self.line = first_line

    # -- emitting
    def emit(self, opcode: int, arg: int = 0, node: n.Node | None = None) -> int:
        if node is not None and node.line:
            self.line = node.line
        self.code.append((opcode, arg))
        self.lines.append(self.line)
        return len(self.code) - 1

    def patch(self, at: int, target: int | None = None) -> None:
        opcode, _ = self.code[at]
        self.code[at] = (opcode, len(self.code) if target is None else target)

    def constant(self, value: object) -> int:
        # Keyed by type as well, so 1, 1.0 and true stay three constants.
        # Floats by repr, so 0.0 and -0.0 (equal, but printed differently) stay apart.
        if isinstance(value, CodeObject):
            key: tuple[type, object] = (CodeObject, id(value))
        elif isinstance(value, float):
            key = (float, repr(value))
        else:
            key = (type(value), value)
        if key not in self._constant_index:
            self._constant_index[key] = len(self.constants)
            self.constants.append(value)
        return self._constant_index[key]

    def name_index(self, name: str) -> int:
        if name not in self._name_index:
            self._name_index[name] = len(self.names)
            self.names.append(name)
        return self._name_index[name]

    def error(self, message: str, node: n.Node) -> SourceError:
        return self.owner.error(message, node)

    # -- variables
    def _reference(self, node: n.Node) -> Reference:
        return self.resolution.reference(node)

    def load(self, node: n.Name) -> None:
        ref = self._reference(node)
        var = ref.var
        if var is None:
            self.emit(op.LOAD_GLOBAL, self.name_index(node.name), node)
        elif not self.scope.owns(var):
            self.emit(op.LOAD_FREE, self.scope.free_index(var), node)
        elif var.captured:
            self.emit(op.LOAD_CELL, var.slot, node)
        else:
            opcode = op.LOAD_LOCAL_CHECKED if ref.checked else op.LOAD_LOCAL
            self.emit(opcode, var.slot, node)

    def store(self, node: n.Name, *, checked_before: bool) -> None:
        """Assign to an existing variable; ``checked_before`` when the value was not just
        read (a plain ``x = e``): a variable whose declaration has not run is an error."""
        ref = self._reference(node)
        var = ref.var
        if var is None:
            self.emit(op.STORE_GLOBAL, self.name_index(node.name), node)
            return
        if checked_before and ref.checked:
            self.load(node)
            self.emit(op.POP, 0, node)
        if not self.scope.owns(var):
            self.emit(op.STORE_FREE, self.scope.free_index(var), node)
        elif var.captured:
            self.emit(op.STORE_CELL, var.slot, node)
        else:
            self.emit(op.STORE_LOCAL, var.slot, node)

    def declare(self, var: Variable | None, name: str, node: n.Node) -> None:
        """Store the value on the stack into a variable being declared."""
        if var is None:
            self.emit(op.DEFINE_GLOBAL, self.name_index(name), node)
        elif var.captured:
            self.emit(op.STORE_CELL, var.slot, node)
        else:
            self.emit(op.STORE_LOCAL, var.slot, node)

    # -- statements
    def generic_visit(self, node: n.Node) -> None:
        raise TypeError(f"the compiler has no rule for {type(node).__name__}")  # pragma: no cover

    def visit_Block(self, block: n.Block) -> None:
        for var in self.resolution.block_variables(block):
            if var.captured:
                self.emit(op.MAKE_CELL, var.slot, block)
            elif var.needs_clear:
                self.emit(op.CLEAR_LOCAL, var.slot, block)
        for stmt in block.body:
            self.visit(stmt)

    def visit_Let(self, node: n.Let) -> None:
        self.visit(node.value)
        self.declare(self.resolution.declaration(node), node.name, node)

    def visit_FnDecl(self, node: n.FnDecl) -> None:
        self.visit(node.function)
        self.declare(self.resolution.declaration(node), node.function.name, node)

    def visit_Assign(self, node: n.Assign) -> None:
        target = node.target
        if isinstance(target, n.Name):
            if node.op is None:
                self.visit(node.value)
                self.store(target, checked_before=True)
            else:
                self.load(target)
                self.visit(node.value)
                self.emit(_BINARY_OPS[node.op], 0, node)
                self.store(target, checked_before=False)
            return
        assert isinstance(target, n.Index)
        self.visit(target.target)
        self.visit(target.index)
        if node.op is not None:
            self.emit(op.DUP2, 0, node)
            self.emit(op.INDEX, 0, target)
            self.visit(node.value)
            self.emit(_BINARY_OPS[node.op], 0, node)
        else:
            self.visit(node.value)
        self.emit(op.STORE_INDEX, 0, node)

    def visit_If(self, node: n.If) -> None:
        self.visit(node.cond)
        to_else = self.emit(op.POP_JUMP_IF_FALSE, 0, node)
        self.visit(node.then)
        if node.orelse is None:
            self.patch(to_else)
            return
        to_end = self.emit(op.JUMP, 0)
        self.patch(to_else)
        self.visit(node.orelse)  # a Block, or the If of an `else if`
        self.patch(to_end)

    def visit_While(self, node: n.While) -> None:
        top = len(self.code)
        self.visit(node.cond)
        exit_jump = self.emit(op.POP_JUMP_IF_FALSE, 0, node)
        loop = _Loop(top, pops_iterator=False)
        self.loops.append(loop)
        self.visit(node.body)
        self.loops.pop()
        self.emit(op.JUMP, top, node)
        self.patch(exit_jump)
        for jump in loop.break_jumps:
            self.patch(jump)

    def visit_For(self, node: n.For) -> None:
        self.visit(node.iterable)
        self.emit(op.GET_ITER, 0, node)
        top = self.emit(op.FOR_ITER, 0, node)
        var = self.resolution.declaration(node)
        assert var is not None
        if var.captured:
            # A fresh cell per iteration: closures made in the loop each keep their own.
            self.emit(op.MAKE_CELL, var.slot, node)
            self.emit(op.STORE_CELL, var.slot, node)
        else:
            self.emit(op.STORE_LOCAL, var.slot, node)
        loop = _Loop(top, pops_iterator=True)
        self.loops.append(loop)
        self.visit(node.body)
        self.loops.pop()
        self.emit(op.JUMP, top, node)
        if loop.break_jumps:
            # `break` leaves the iterable and its iterator on the stack; they are popped here,
            # after the loop's back jump; FOR_ITER's exit lands past them, both already popped.
            for jump in loop.break_jumps:
                self.patch(jump)
            self.emit(op.POP, 0, node)
            self.emit(op.POP, 0, node)
            self.patch(top, len(self.code))
        else:
            self.patch(top)

    def visit_Break(self, node: n.Break) -> None:
        if not self.loops:
            raise self.error("'break' outside a loop", node)
        self.loops[-1].break_jumps.append(self.emit(op.JUMP, 0, node))

    def visit_Continue(self, node: n.Continue) -> None:
        if not self.loops:
            raise self.error("'continue' outside a loop", node)
        self.emit(op.JUMP, self.loops[-1].continue_target, node)

    def visit_Return(self, node: n.Return) -> None:
        if self.scope.is_main:
            raise self.error("'return' outside a function", node)
        if node.value is None:
            self.emit(op.LOAD_CONST, self.constant(None), node)
        else:
            self.visit(node.value)
        self.emit(op.RETURN, 0, node)

    def visit_ExprStmt(self, node: n.ExprStmt) -> None:
        self.visit(node.expr)
        self.emit(op.POP, 0, node)

    # -- expressions
    def visit_Literal(self, node: n.Literal) -> None:
        self.emit(op.LOAD_CONST, self.constant(node.value), node)

    def visit_Name(self, node: n.Name) -> None:
        self.load(node)

    def visit_ListLit(self, node: n.ListLit) -> None:
        for item in node.items:
            self.visit(item)
        self.emit(op.BUILD_LIST, len(node.items), node)

    def visit_MapLit(self, node: n.MapLit) -> None:
        for key, value in node.pairs:
            self.visit(key)
            self.visit(value)
        self.emit(op.BUILD_MAP, len(node.pairs), node)

    def visit_Binary(self, node: n.Binary) -> None:
        self.visit(node.left)
        self.visit(node.right)
        self.emit(_BINARY_OPS[node.op], 0, node)

    def visit_Logical(self, node: n.Logical) -> None:
        self.visit(node.left)
        opcode = op.JUMP_IF_FALSE_OR_POP if node.op == "and" else op.JUMP_IF_TRUE_OR_POP
        jump = self.emit(opcode, 0, node)
        self.visit(node.right)
        self.patch(jump)

    def visit_Unary(self, node: n.Unary) -> None:
        self.visit(node.operand)
        self.emit(op.NEG if node.op == "-" else op.NOT, 0, node)

    def visit_Call(self, node: n.Call) -> None:
        self.visit(node.callee)
        for arg in node.args:
            self.visit(arg)
        self.emit(op.CALL, len(node.args), node)

    def visit_Spawn(self, node: n.Spawn) -> None:
        call = node.call
        self.visit(call.callee)
        for arg in call.args:
            self.visit(arg)
        self.emit(op.SPAWN, len(call.args), node)

    def visit_Index(self, node: n.Index) -> None:
        self.visit(node.target)
        self.visit(node.index)
        self.emit(op.INDEX, 0, node)

    def visit_FnExpr(self, node: n.FnExpr) -> None:
        code = self.owner.compile_function(node)
        self.emit(op.MAKE_FUNCTION, self.constant(code), node)

    # -- finishing
    def finish(self, params: tuple[str, ...]) -> CodeObject:
        self.emit(op.LOAD_CONST, self.constant(None))
        self.emit(op.RETURN)
        free_sources = tuple(self._free_source(var) for var in self.scope.free)
        code = CodeObject(
            name=self.name,
            file=self.owner.source.name,
            first_line=self.first_line,
            params=params,
            local_names=tuple(self.scope.local_names),
            instructions=tuple(self.code),
            lines=tuple(self.lines),
            constants=tuple(self.constants),
            names=tuple(self.names),
            free_names=tuple(v.name for v in self.scope.free),
            free_sources=free_sources,
            max_stack=0,
            source=self.owner.source,
        )
        return dataclasses.replace(code, max_stack=max_stack_depth(code), fast=fuse(code))

    def _free_source(self, var: Variable) -> FreeVarSource:
        # How the *parent* finds this variable when it makes the closure.
        parent = self.scope.parent
        assert parent is not None
        if parent.owns(var):
            return FreeVarSource(True, var.slot)
        return FreeVarSource(False, parent.free_index(var))


class Compiler:
    """Compiles one program: resolves names, then generates every code object."""

    def __init__(self, source: SourceFile):
        self.source = source
        self.resolution: Resolution | None = None

    def error(self, message: str, node: n.Node) -> SourceError:
        return SourceError.at("compile error", message, self.source, node.line, node.column)

    def compile_program(self, program: n.Program, interactive: bool = False) -> CodeObject:
        """The file's code. ``interactive`` (the REPL): a final expression statement's value
        is the code's result, as Python's ``single`` mode keeps it for printing."""
        self.resolution = resolve(program, self.source)
        fc = _FunctionCompiler(self, self.resolution.main, "<main>", 1)
        for i, stmt in enumerate(program.body):
            if interactive and i == len(program.body) - 1 and isinstance(stmt, n.ExprStmt):
                fc.visit(stmt.expr)
                fc.emit(op.RETURN, 0, stmt)
            else:
                fc.visit(stmt)
        return fc.finish(())

    def compile_function(self, node: n.FnExpr) -> CodeObject:
        scope = self.resolution.function(node)
        fc = _FunctionCompiler(self, scope, node.name, node.line)
        fc.line = node.line
        for var in self.resolution.parameters(node):
            if var.captured:
                fc.emit(op.LOAD_LOCAL, var.slot, node)
                fc.emit(op.MAKE_CELL, var.slot, node)
                fc.emit(op.STORE_CELL, var.slot, node)
        fc.visit(node.body)
        return fc.finish(node.params)


def compile_source(
    source: str, file: str = "<input>", interactive: bool = False, max_nesting: int = MAX_NESTING
) -> CodeObject:
    """Parse and compile ``source``; raises ``SourceError`` for bad input. ``interactive``:
    see ``Compiler.compile_program``; ``max_nesting``: see ``parser.parse``."""
    source_file = SourceFile(file, source)
    return Compiler(source_file).compile_program(parse(source_file, max_nesting=max_nesting), interactive)
