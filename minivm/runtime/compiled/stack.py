"""The simulated operand stack: each guest stack slot as a host expression (``Entry``).

See ``emitter`` for how the stack is simulated; this module only says what an entry is:
a host local ``s<depth>`` holding the value, a guest local ``l<slot>``, a constant, or a
pure expression, with the guest type when it is known.
"""

from __future__ import annotations

# Guest types whose values are never heap objects (no reference count to keep).
NON_HEAP_TYPES = frozenset({"int", "bool", "str", "float", "nil"})
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
        # Always in parentheses: `(0).__class__` is an attribute of 0, `0.__class__` a syntax error.
        return Entry(f"({value!r})", "const", "int")
    if cls is str and len(value) < 200:
        return Entry(repr(value), "const", "str")
    typ = {int: "int", float: "float", str: "str"}.get(cls)
    return Entry(gen.constant_name(index), "const", typ)


def nonzero_int(entry: Entry) -> bool:
    """A constant int other than zero (dividing by it cannot fail)."""
    return entry.kind == "const" and entry.typ == "int" and entry.expr not in ("0", "(0)")
