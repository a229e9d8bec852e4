"""The syntax tree: frozen records, each carrying the line and column it came from.

Nodes are plain classes with ``__slots__`` rather than attrs classes: attrs generates and
compiles five methods per class when the module is imported, about 0.5 ms of CPU a class,
which the 24 node classes paid on every ``minivm run`` (docs/performance.md, Start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar


class Node:
    """Base of every syntax-tree node: its fields, then a 1-based source position.

    A subclass names its fields once, in constructor order, as ``__slots__ = _fields = (...)``:
    ``Binary("+", left, right, line=1, column=3)``; ``line`` and ``column`` are keyword-only.
    Nodes are frozen (assigning a field raises ``AttributeError``) and compare, hash and
    print by class, fields and position, as the attrs classes they replace did. Raises
    ``TypeError`` when the number of fields given is wrong.
    """

    __slots__ = ("column", "line")
    _fields: tuple[str, ...] = ()

    def __init__(self, *values: object, line: int, column: int) -> None:
        names = self._fields
        if len(values) != len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields {names}, got {len(values)}")
        init = object.__setattr__  # __setattr__ below refuses: the node is frozen
        for name, value in zip(names, values, strict=True):
            init(self, name, value)
        init(self, "line", line)
        init(self, "column", column)

    def fields(self) -> tuple[object, ...]:
        """The node's own fields (not its position), in ``_fields`` order."""
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.line, self.column, *self.fields()) == (other.line, other.column, *other.fields())  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.__class__, self.line, self.column, *self.fields()))

    def __repr__(self) -> str:
        shown = [f"{name}={getattr(self, name)!r}" for name in ("line", "column", *self._fields)]
        return f"{type(self).__name__}({', '.join(shown)})"


# ---------------------------------------------------------------- expressions


class Literal(Node):
    """``nil``, ``true``, an int, a float or a string."""

    __slots__ = _fields = ("value",)
    value: object


class Name(Node):
    """A variable reference."""

    __slots__ = _fields = ("name",)
    name: str


class ListLit(Node):
    """``[a, b, ...]``."""

    __slots__ = _fields = ("items",)
    items: tuple[Node, ...]


class MapLit(Node):
    """``{k: v, ...}`` as key/value pairs in source order."""

    __slots__ = _fields = ("pairs",)
    pairs: tuple[tuple[Node, Node], ...]


class Binary(Node):
    """An arithmetic or comparison operator; ``op`` is its source spelling (``+``, ``<=``...)."""

    __slots__ = _fields = ("op", "left", "right")
    op: str
    left: Node
    right: Node


class Logical(Node):
    """Short-circuit ``and`` / ``or``."""

    __slots__ = _fields = ("op", "left", "right")
    op: str
    left: Node
    right: Node


class Unary(Node):
    """``-x`` or ``not x``."""

    __slots__ = _fields = ("op", "operand")
    op: str
    operand: Node


class Call(Node):
    """``callee(args...)``."""

    __slots__ = _fields = ("callee", "args")
    callee: Node
    args: tuple[Node, ...]


class Index(Node):
    """``target[index]``."""

    __slots__ = _fields = ("target", "index")
    target: Node
    index: Node


class FnExpr(Node):
    """A function literal; ``name`` is empty for an anonymous ``fn``."""

    __slots__ = _fields = ("name", "params", "body")
    name: str
    params: tuple[str, ...]
    body: Block


class Spawn(Node):
    """``spawn f(args)``: the call runs on a new thread."""

    __slots__ = _fields = ("call",)
    call: Call


# ---------------------------------------------------------------- statements


class Block(Node):
    """``{ statements }``: a scope."""

    __slots__ = _fields = ("body",)
    body: tuple[Node, ...]


class Let(Node):
    """``let name = value;``."""

    __slots__ = _fields = ("name", "value")
    name: str
    value: Node


class FnDecl(Node):
    """``fn name(params) { body }``: declares ``name`` like ``let``."""

    __slots__ = _fields = ("function",)
    function: FnExpr


class Assign(Node):
    """``target = value;`` (``op`` None) or ``target op= value;`` (``op`` the operator, ``+``...)."""

    __slots__ = _fields = ("target", "value", "op")
    target: Node
    value: Node
    op: str | None


class If(Node):
    """``if cond { } else ...``; ``orelse`` is a Block, an If, or None."""

    __slots__ = _fields = ("cond", "then", "orelse")
    cond: Node
    then: Block
    orelse: Node | None


class While(Node):
    """``while cond { body }``."""

    __slots__ = _fields = ("cond", "body")
    cond: Node
    body: Block


class For(Node):
    """``for var in iterable { body }``."""

    __slots__ = _fields = ("var", "iterable", "body")
    var: str
    iterable: Node
    body: Block


class Break(Node):
    """``break;``."""

    __slots__ = _fields = ()


class Continue(Node):
    """``continue;``."""

    __slots__ = _fields = ()


class Return(Node):
    """``return value;`` (value is None for a bare ``return;``)."""

    __slots__ = _fields = ("value",)
    value: Node | None


class ExprStmt(Node):
    """An expression evaluated for its effect."""

    __slots__ = _fields = ("expr",)
    expr: Node


class Program(Node):
    """A whole file."""

    __slots__ = _fields = ("body", "file")
    body: tuple[Node, ...]
    file: str


# ---------------------------------------------------------------- walking the tree


def children(node: Node) -> Iterator[Node]:
    """The nodes directly inside ``node``, in source order (its fields' order; a map
    literal's pairs give key, then value). The one definition of the tree's shape that
    every walk uses."""
    for field in _NODE_FIELDS[type(node)]:
        value = getattr(node, field)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    yield item
                elif isinstance(item, tuple):  # a map literal's (key, value) pairs
                    yield from (part for part in item if isinstance(part, Node))


class Visitor:
    """Calls ``visit_<NodeClass>`` for a node, as Python's ``ast.NodeVisitor`` does, but
    through a table built once per visitor class (node class → function), not a name lookup
    per node. A class with no method of its own for a node gets ``generic_visit``: its
    children, in source order. Name resolution and code generation are both visitors;
    the parser's depth check walks ``children`` without recursion."""

    _dispatch: ClassVar[dict[type, Callable[[Visitor, Node], object]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = {
            node_class: getattr(cls, "visit_" + node_class.__name__, cls.generic_visit)
            for node_class in _NODE_FIELDS
        }

    def visit(self, node: Node) -> object:
        """Dispatch ``node`` to its method; returns what the method returns."""
        return self._dispatch[type(node)](self, node)

    def generic_visit(self, node: Node) -> object:
        """Visit every child of ``node`` in source order."""
        for child in children(node):
            self.visit(child)
        return None


# The fields that may hold nodes, per node class (position fields left out): computed once.
_NODE_FIELDS: dict[type, tuple[str, ...]] = {
    cls: cls._fields
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, Node) and cls is not Node
}
