"""One code template per plain opcode (binary operators are ``CopyEmitter.binary``).

Each handler takes the ``CopyEmitter`` of the copy being written and the instruction's
argument, pops and pushes simulated stack entries, and writes the host lines of the
instruction. The general case of an operation is the interpreter's own helper
(``operations``, ``store_cell``, the heap's constructors), so both engines fail alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minivm.bytecode import opcodes as op
from minivm.runtime.compiled.stack import Entry, constant_entry, temp

if TYPE_CHECKING:
    from minivm.runtime.compiled.emitter import CopyEmitter


def _load_const(e: CopyEmitter, arg: int) -> None:
    e.push(constant_entry(e.gen, arg))


def _load_local(e: CopyEmitter, arg: int) -> None:
    e.push(e.local_entry(arg))


def _load_local_checked(e: CopyEmitter, arg: int) -> None:
    e.line(f"if l{arg} is UNSET: raise unset_error({e.code.local_names[arg]!r})")
    e.push(e.local_entry(arg))


def _store_local(e: CopyEmitter, arg: int) -> None:
    value = e.pop()
    name = f"l{arg}"
    if value.kind == "local" and value.expr == name:
        return
    e.before_write(name)
    e.line(f"{name} = {value.expr}")
    e.stored[arg] = value


def _clear_local(e: CopyEmitter, arg: int) -> None:
    e.before_write(f"l{arg}")
    e.line(f"l{arg} = UNSET")
    e.stored[arg] = Entry("UNSET", "const")


def _load_global(e: CopyEmitter, arg: int) -> None:
    name = e.code.names[arg]
    e.set_temp(f"G[{name!r}]", kind="global", name=name)
    e.stack[-1].origin = name


def _store_global(e: CopyEmitter, arg: int) -> None:
    name = e.code.names[arg]
    value = e.operand()
    e.line(f"o = G[{name!r}]", kind="global", name=name)
    e.line(f"G[{name!r}] = {value.expr}")
    e.incref(value)
    e.decref_old()


def _define_global(e: CopyEmitter, arg: int) -> None:
    name = e.code.names[arg]
    value = e.operand()
    e.line(f"o = G.get({name!r})")
    e.line(f"G[{name!r}] = {value.expr}")
    e.incref(value)
    e.decref_old()


def _make_cell(e: CopyEmitter, arg: int) -> None:
    e.before_write(f"l{arg}")
    e.line(f"l{arg} = heap.new_cell()")
    e.stored[arg] = Entry("cell", "temp")


def _load_cell(e: CopyEmitter, arg: int) -> None:
    e.set_temp(f"l{arg}.value")
    e.line(f"if {e.stack[-1].expr} is UNSET: raise unset_error({e.code.local_names[arg]!r})")


def _store_cell(e: CopyEmitter, arg: int) -> None:
    e.line(f"store_cell(l{arg}, {e.pop().expr})")


def _load_free(e: CopyEmitter, arg: int) -> None:
    e.set_temp(f"c{arg}.value")
    e.line(f"if {e.stack[-1].expr} is UNSET: raise unset_error({e.code.free_names[arg]!r})")


def _store_free(e: CopyEmitter, arg: int) -> None:
    e.line(f"store_cell(c{arg}, {e.pop().expr})")


def _pop(e: CopyEmitter, arg: int) -> None:
    e.pop()


def _dup2(e: CopyEmitter, arg: int) -> None:
    for position in (len(e.stack) - 2, len(e.stack) - 1):
        if not e.stack[position].simple:
            e.materialize(position)
    a, b = e.stack[-2], e.stack[-1]
    e.push(Entry(a.expr, a.kind, a.typ, a.refs, a.guards))
    e.push(Entry(b.expr, b.kind, b.typ, b.refs, b.guards))


def _neg(e: CopyEmitter, arg: int) -> None:
    a = e.stack[-1]
    if a.typ == "int":
        e.pop()
        e.used_guards |= a.guards
        e.push(Entry(f"(-{a.expr})", "pure", "int", a.refs, a.guards))
        return
    a = e.operand()
    e.set_temp(f"-{a.expr} if {a.expr}.__class__ is int else op_neg({a.expr})")


def _not(e: CopyEmitter, arg: int) -> None:
    a = e.pop()
    e.push(Entry(f"(not {a.expr})", "pure", "bool", a.refs, a.guards))


def _index(e: CopyEmitter, arg: int) -> None:
    key = e.operand()
    target = e.operand()
    t, k = target.expr, key.expr
    position = len(e.stack)
    e.before_write(f"s{position}")
    if key.typ == "int":  # the usual index: no test of the key's type
        fits = f"{t}.__class__ is MvList or {t}.__class__ is MvMap"
    else:
        fits = (
            f"({t}.__class__ is MvList and {k}.__class__ is int) or "
            f"({t}.__class__ is MvMap and ({k}.__class__ is str or {k}.__class__ is int))"
        )
    e.line("try:")
    e.gen.writer.indent += 1
    e.line(f"s{position} = {t}[{k}] if {fits} else op_index({t}, {k})")
    e.gen.writer.indent -= 1
    e.line("except LookupError:")
    e.gen.writer.indent += 1
    e.line(f"s{position} = op_index({t}, {k})")
    e.gen.writer.indent -= 1
    e.push(temp(position))


def _store_index(e: CopyEmitter, arg: int) -> None:
    value = e.operand()
    key = e.operand()
    target = e.operand()
    t, k, v = target.expr, key.expr, value.expr
    w = e.gen.writer
    key_test = "" if key.typ == "int" else f" and {k}.__class__ is int"
    e.line(f"if {t}.__class__ is MvList{key_test}:")
    w.indent += 1
    e.line("try:")
    w.indent += 1
    e.line(f"o = {t}[{k}]")
    e.line(f"{t}[{k}] = {v}")
    w.indent -= 1
    e.line("except IndexError:")
    e.line(f"    op_store_index(heap, {t}, {k}, {v})")
    e.line("else:")
    w.indent += 1
    e.incref(value)
    e.decref_old()
    w.indent -= 2
    e.line(f"elif {t}.__class__ is MvMap and ({k}.__class__ is str or {k}.__class__ is int):")
    w.indent += 1
    e.line(f"o = {t}.get({k})")
    e.line(f"{t}[{k}] = {v}")
    e.incref(value)
    e.decref_old()
    w.indent -= 1
    e.line("else:")
    e.line(f"    op_store_index(heap, {t}, {k}, {v})")


def _build_list(e: CopyEmitter, arg: int) -> None:
    items = [e.operand() for _ in range(arg)][::-1]
    inner = ", ".join(i.expr for i in items) + ("," if len(items) == 1 else "")
    e.set_temp(f"heap.new_list(({inner}))" if items else "heap.new_list()", "list")


def _build_map(e: CopyEmitter, arg: int) -> None:
    items = [e.operand() for _ in range(2 * arg)][::-1]
    inner = ", ".join(i.expr for i in items) + ("," if len(items) == 1 else "")
    e.set_temp(f"build_map(heap, ({inner}))", "map")


def _make_function(e: CopyEmitter, arg: int) -> None:
    fcode = e.code.constants[arg]
    cells = [f"l{s.index}" if s.from_local else f"c{s.index}" for s in fcode.free_sources]
    inner = ", ".join(cells) + ("," if len(cells) == 1 else "")
    e.set_temp(f"heap.new_function({e.gen.constant_name(arg)}, ({inner}))", "function")


def _get_iter(e: CopyEmitter, arg: int) -> None:
    iterable = e.stack[-1]
    if not iterable.simple:
        iterable = e.materialize(len(e.stack) - 1)
    e.set_temp(f"op_iterate({iterable.expr})", "iterator")


def _spawn(e: CopyEmitter, arg: int) -> None:
    args = [e.operand() for _ in range(arg)][::-1]
    function = e.operand()
    inner = ", ".join(a.expr for a in args)
    e.set_temp(f"spawn(clock.thread, {function.expr}, [{inner}])", "thread")


HANDLERS = {
    op.LOAD_CONST: _load_const, op.LOAD_LOCAL: _load_local, op.LOAD_LOCAL_CHECKED: _load_local_checked,
    op.STORE_LOCAL: _store_local, op.CLEAR_LOCAL: _clear_local, op.LOAD_GLOBAL: _load_global,
    op.STORE_GLOBAL: _store_global, op.DEFINE_GLOBAL: _define_global, op.MAKE_CELL: _make_cell,
    op.LOAD_CELL: _load_cell, op.STORE_CELL: _store_cell, op.LOAD_FREE: _load_free,
    op.STORE_FREE: _store_free, op.POP: _pop, op.DUP2: _dup2, op.NEG: _neg, op.NOT: _not,
    op.INDEX: _index, op.STORE_INDEX: _store_index, op.BUILD_LIST: _build_list,
    op.BUILD_MAP: _build_map, op.MAKE_FUNCTION: _make_function, op.GET_ITER: _get_iter,
    op.SPAWN: _spawn,
}  # fmt: skip
