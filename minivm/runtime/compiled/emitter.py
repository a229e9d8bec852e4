"""Code generation for one copy of one block: instructions become host statements.

The operand stack is simulated at translation time: each entry is a host *expression*, not
a push. A local or a constant is used where it is consumed (``l0 - 1``, not
``s0 = l0; s1 = 1; s0 = s0 - s1``); everything that reads shared state (a global, a cell)
or may fail is computed on its own line at its own instruction, into ``s<depth>``, the
host local that stands for that stack slot. So globals and cells are read when their
instruction runs (``x += 1`` on a global stays a read, an add and a write that a switch can
split), and a failing instruction fails on a line that maps back to its own ``pc``.

Three *modes* make the copies of a block (see ``codegen``): ``INT`` knows that the locals
of its guard are ints and computes int arithmetic and comparisons directly, as pure
expressions carried to their consumer; ``FAST`` and ``SLOW`` test types inline the way the
interpreter's loop does and call ``operations`` for everything else. ``SLOW`` also reaches
the check before each instruction (``codegen`` writes those lines).
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject

INT, FAST, SLOW = "int", "fast", "slow"

# Host helpers a generated function calls for the general case (names in its namespace).
_GENERIC = {
    op.ADD: "op_add(heap, {a}, {b})", op.SUB: "op_sub({a}, {b})", op.MUL: "op_mul({a}, {b})",
    op.DIV: "op_div({a}, {b})", op.FLOOR_DIV: "op_floor_div({a}, {b})", op.MOD: "op_mod({a}, {b})",
    op.LT: "op_lt({a}, {b})", op.LE: "op_le({a}, {b})", op.GT: "op_gt({a}, {b})",
    op.GE: "op_ge({a}, {b})", op.EQ: "op_eq({a}, {b})", op.NE: "op_ne({a}, {b})",
}  # fmt: skip
_SYMBOL = {
    op.ADD: "+", op.SUB: "-", op.MUL: "*", op.FLOOR_DIV: "//", op.MOD: "%",
    op.LT: "<", op.LE: "<=", op.GT: ">", op.GE: ">=", op.EQ: "==", op.NE: "!=",
}  # fmt: skip
_COMPARISONS = frozenset({op.LT, op.LE, op.GT, op.GE, op.EQ, op.NE})
# Ops whose inline fast path also takes two strings (as the interpreter's does).
_STR_TOO = frozenset({op.ADD, op.EQ, op.NE})
_NON_HEAP_TYPES = frozenset({"int", "bool", "str", "float", "nil"})
TERMINATORS = frozenset(
    {op.POP_JUMP_IF_FALSE, op.JUMP_IF_FALSE_OR_POP, op.JUMP_IF_TRUE_OR_POP, op.JUMP, op.FOR_ITER,
     op.CALL, op.RETURN}
)  # fmt: skip
_MAX_LITERAL_INT = 10**15


class Entry:
    """One simulated stack slot: the host expression for its value.

    ``kind``: ``temp`` (the value is in the host local ``expr``), ``local`` (it is the guest
    local ``expr``, unchanged since it was pushed), ``const`` (a literal or a constant's name)
    or ``pure`` (an expression that cannot fail and reads only ``refs``). ``typ`` is the
    guest type when known (``int``, ``bool``...); ``guards`` the int-guarded locals it relies on.
    """

    __slots__ = ("expr", "guards", "kind", "origin", "refs", "typ")

    def __init__(self, expr: str, kind: str, typ: str | None = None, refs=frozenset(), guards=frozenset()):
        self.expr = expr
        self.kind = kind
        self.typ = typ
        self.refs = refs
        self.guards = guards
        self.origin = ""  # the global a callee was read from (a hint for call sites)

    def untyped(self) -> Entry:
        """The entry as the next block sees it: which copy ran is not known there, so only a
        constant keeps its type."""
        if self.kind == "const":
            return self
        entry = Entry(self.expr, self.kind, None, self.refs)
        entry.origin = self.origin
        return entry

    @property
    def simple(self) -> bool:
        """A name or a literal: safe to write twice in one expression."""
        return self.kind != "pure"

    def same(self, other: Entry) -> bool:
        """The same host expression (copies of a block must agree on where values are)."""
        return self.expr == other.expr and self.kind == other.kind

    def __repr__(self) -> str:
        return f"Entry({self.expr!r}, {self.kind})"


def temp(position: int, typ: str | None = None) -> Entry:
    """The entry for a value held in the stack slot's own host local ``s<position>``."""
    name = f"s{position}"
    return Entry(name, "temp", typ, frozenset({name}))


def constant_entry(gen, index: int) -> Entry:
    """A ``LOAD_CONST``: small literals inline, anything else by name (``K3``)."""
    value = gen.code.constants[index]
    cls = value.__class__
    if value is None:
        return Entry("None", "const", "nil")
    if cls is bool:
        return Entry(repr(value), "const", "bool")
    if cls is int and -_MAX_LITERAL_INT < value < _MAX_LITERAL_INT:
        return Entry(repr(value) if value >= 0 else f"({value!r})", "const", "int")
    if cls is str and len(value) < 200:
        return Entry(repr(value), "const", "str")
    typ = {int: "int", float: "float", str: "str"}.get(cls)
    return Entry(gen.constant_name(index), "const", typ)


class CopyEmitter:
    """Writes one copy (``mode``) of one block's instructions onto ``gen``'s writer."""

    def __init__(
        self, gen, mode: str, stack: list[Entry], pcs: list[int], guard: frozenset[int],
        stored: dict[int, Entry] | None = None, ahead: int = 0,
    ):  # fmt: skip
        self.gen = gen
        self.code: CodeObject = gen.code
        self.mode = mode
        self.stack = list(stack)
        self.pcs = pcs
        self.guard = guard
        self.used_guards: set[int] = set()
        # Locals stored since the copy (or region) began: the entry stored, for its type.
        self.stored: dict[int, Entry] = {} if stored is None else stored
        # Ticks charged beyond this block's own (a region charges its longest path at once).
        self.ahead = ahead
        self.index = 0  # position of the current instruction in the block

    # -- writing lines
    def line(self, text: str, kind: str = "code", name: str = "") -> None:
        """One host line for the current instruction (errors on it map to its pc)."""
        n = len(self.pcs)
        i = self.index
        adjust = -(i + 1) if self.mode == SLOW else self.ahead + n - 1 - i
        self.gen.writer.line(text, self.gen.info(self.pcs[i], adjust, kind, name))

    def live_temps(self) -> tuple[str, ...]:
        """Host locals holding values on the simulated stack (roots for the heap)."""
        return tuple(dict.fromkeys(e.expr for e in self.stack if e.kind == "temp"))

    # -- the stack
    def push(self, entry: Entry) -> None:
        self.stack.append(entry)

    def pop(self) -> Entry:
        return self.stack.pop()

    def before_write(self, name: str) -> None:
        """``name`` is about to be assigned: first compute every pending entry that reads it."""
        for position, entry in enumerate(self.stack):
            in_place = entry.kind == "temp" and entry.expr == f"s{position}" == name
            if name in entry.refs and not in_place:
                self.materialize(position)

    def materialize(self, position: int) -> Entry:
        """Put the value at ``position`` into its host local ``s<position>``."""
        entry = self.stack[position]
        target = f"s{position}"
        if entry.kind == "temp" and entry.expr == target:
            return entry
        self.stack[position] = placeholder = temp(position, entry.typ)
        placeholder.guards = entry.guards
        self.before_write(target)
        self.line(f"{target} = {entry.expr}")
        return placeholder

    def set_temp(self, text: str, typ: str | None = None, kind: str = "code", name: str = "") -> None:
        """Push the value of ``text`` computed now, into ``s<depth>``."""
        position = len(self.stack)
        target = f"s{position}"
        self.before_write(target)
        self.line(f"{target} = {text}", kind, name)
        self.push(temp(position, typ))

    def operand(self) -> Entry:
        """Pop an entry usable twice in one expression (a pure one is computed first)."""
        if not self.stack[-1].simple:
            self.materialize(len(self.stack) - 1)
        return self.pop()

    def canonical(self, below: int | None = None, locals_too: bool = False) -> list[Entry]:
        """End of the copy: every slot (under ``below``) in ``s<position>``, a local or a
        constant, so that every copy of the block leaves its values in the same places; with
        ``locals_too`` locals are copied to their slots as well (before flow that branches)."""
        for position, entry in enumerate(self.stack[:below]):
            misplaced = entry.kind == "temp" and entry.expr != f"s{position}"
            if entry.kind == "pure" or misplaced or (locals_too and entry.kind == "local"):
                self.materialize(position)
        return self.stack


    # -- instructions
    def instruction(self, pc: int) -> None:
        """Write the code of the instruction at ``pc`` (control instructions write none)."""
        opcode, arg = self.code.instructions[pc]
        if opcode in TERMINATORS:
            return
        if opcode in _GENERIC:
            self.binary(opcode)
        else:
            _HANDLERS[opcode](self, arg)

    def local_entry(self, slot: int) -> Entry:
        stored = self.stored.get(slot)
        if slot in self.gen.known:  # an int everywhere here (a type-versioned loop)
            typ, guards = "int", frozenset()
        elif stored is not None:
            typ, guards = stored.typ, stored.guards
        elif self.mode == INT and slot in self.guard:
            typ, guards = "int", frozenset({slot})
        else:
            typ, guards = None, frozenset()
        name = f"l{slot}"
        return Entry(name, "local", typ, frozenset({name}), guards)

    def binary(self, opcode: int) -> None:
        b, a = self.stack[-1], self.stack[-2]
        symbol = _SYMBOL.get(opcode)
        if a.typ == "int" and b.typ == "int" and symbol is not None:  # cannot fail: a pure value
            if opcode not in (op.FLOOR_DIV, op.MOD) or _nonzero_int(b):
                self.pop()
                self.pop()
                self.used_guards |= a.guards | b.guards
                typ = "bool" if opcode in _COMPARISONS else "int"
                self.push(Entry(f"({a.expr} {symbol} {b.expr})", "pure", typ, a.refs | b.refs, a.guards | b.guards))
                return
        b = self.operand()
        a = self.operand()
        generic = _GENERIC[opcode].format(a=a.expr, b=b.expr)
        typ = "bool" if opcode in _COMPARISONS else None
        if symbol is None:  # true division: always the general path, as in the interpreter
            self.set_temp(generic, typ)
            return
        fast = f"{a.expr} {symbol} {b.expr}"
        if opcode in _STR_TOO:
            if a.typ in ("int", "str") and b.typ == a.typ:
                test = ""
            elif a.typ in ("int", "str"):
                test = f"{b.expr}.__class__ is {a.typ}"
            elif b.typ in ("int", "str"):
                test = f"{a.expr}.__class__ is {b.typ}"
            else:
                cls = f"{a.expr}.__class__"
                test = f"{cls} is {b.expr}.__class__ and ({cls} is int or {cls} is str)"
        else:
            tests = [f"{e.expr}.__class__ is int" for e in (a, b) if e.typ != "int"]
            if opcode in (op.FLOOR_DIV, op.MOD) and not _nonzero_int(b):
                tests.append(b.expr)
            test = " and ".join(tests)
        self.set_temp(f"{fast} if {test} else {generic}" if test else fast, typ)

    def incref(self, entry: Entry) -> None:
        if entry.kind == "const" or entry.typ in _NON_HEAP_TYPES:
            return
        self.line(f"if {entry.expr}.__class__ in HEAP: {entry.expr}.rc += 1")

    def decref_old(self) -> None:
        self.line("if o.__class__ in HEAP: o.rc -= 1")


def _nonzero_int(entry: Entry) -> bool:
    """A constant int other than zero (dividing by it cannot fail)."""
    return entry.kind == "const" and entry.typ == "int" and entry.expr not in ("0", "(0)")


# -- handlers, one per plain opcode (binary operators go through CopyEmitter.binary)


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
    e.line(f"if {t}.__class__ is MvList and {k}.__class__ is int:")
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
    e.set_temp(f"spawn(thread, {function.expr}, [{inner}])", "thread")


_HANDLERS = {
    op.LOAD_CONST: _load_const, op.LOAD_LOCAL: _load_local, op.LOAD_LOCAL_CHECKED: _load_local_checked,
    op.STORE_LOCAL: _store_local, op.CLEAR_LOCAL: _clear_local, op.LOAD_GLOBAL: _load_global,
    op.STORE_GLOBAL: _store_global, op.DEFINE_GLOBAL: _define_global, op.MAKE_CELL: _make_cell,
    op.LOAD_CELL: _load_cell, op.STORE_CELL: _store_cell, op.LOAD_FREE: _load_free,
    op.STORE_FREE: _store_free, op.POP: _pop, op.DUP2: _dup2, op.NEG: _neg, op.NOT: _not,
    op.INDEX: _index, op.STORE_INDEX: _store_index, op.BUILD_LIST: _build_list,
    op.BUILD_MAP: _build_map, op.MAKE_FUNCTION: _make_function, op.GET_ITER: _get_iter,
    op.SPAWN: _spawn,
}  # fmt: skip

HANDLED = frozenset(_HANDLERS) | frozenset(_GENERIC) | TERMINATORS
