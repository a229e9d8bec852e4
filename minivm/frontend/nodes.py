"""The syntax tree: frozen attrs classes, each carrying the line and column it came from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import attrs


@attrs.frozen
class Node:
    """Base of every syntax-tree node: a 1-based source position."""

    line: int = attrs.field(kw_only=True)
    column: int = attrs.field(kw_only=True)


# ---------------------------------------------------------------- expressions


@attrs.frozen
class Literal(Node):
    """``nil``, ``true``, an int, a float or a string."""

    value: object


@attrs.frozen
class Name(Node):
    """A variable reference."""

    name: str


@attrs.frozen
class ListLit(Node):
    """``[a, b, ...]``."""

    items: tuple[Node, ...]


@attrs.frozen
class MapLit(Node):
    """``{k: v, ...}`` as key/value pairs in source order."""

    pairs: tuple[tuple[Node, Node], ...]


@attrs.frozen
class Binary(Node):
    """An arithmetic or comparison operator; ``op`` is its source spelling (``+``, ``<=``...)."""

    op: str
    left: Node
    right: Node


@attrs.frozen
class Logical(Node):
    """Short-circuit ``and`` / ``or``."""

    op: str
    left: Node
    right: Node


@attrs.frozen
class Unary(Node):
    """``-x`` or ``not x``."""

    op: str
    operand: Node


@attrs.frozen
class Call(Node):
    """``callee(args...)``."""

    callee: Node
    args: tuple[Node, ...]


@attrs.frozen
class Index(Node):
    """``target[index]``."""

    target: Node
    index: Node


@attrs.frozen
class FnExpr(Node):
    """A function literal; ``name`` is empty for an anonymous ``fn``."""

    name: str
    params: tuple[str, ...]
    body: Block


@attrs.frozen
class Spawn(Node):
    """``spawn f(args)``: the call runs on a new thread."""

    call: Call


# ---------------------------------------------------------------- statements


@attrs.frozen
class Block(Node):
    """``{ statements }``: a scope."""

    body: tuple[Node, ...]


@attrs.frozen
class Let(Node):
    """``let name = value;``."""

    name: str
    value: Node


@attrs.frozen
class FnDecl(Node):
    """``fn name(params) { body }``: declares ``name`` like ``let``."""

    function: FnExpr


@attrs.frozen
class Assign(Node):
    """``target = value;`` or, with ``op`` set, ``target op= value;``."""

    target: Node
    value: Node
    op: str | None = None


@attrs.frozen
class If(Node):
    """``if cond { } else ...``; ``orelse`` is a Block, an If, or None."""

    cond: Node
    then: Block
    orelse: Node | None


@attrs.frozen
class While(Node):
    """``while cond { body }``."""

    cond: Node
    body: Block


@attrs.frozen
class For(Node):
    """``for var in iterable { body }``."""

    var: str
    iterable: Node
    body: Block


@attrs.frozen
class Break(Node):
    """``break;``."""


@attrs.frozen
class Continue(Node):
    """``continue;``."""


@attrs.frozen
class Return(Node):
    """``return value;`` (value is None for a bare ``return;``)."""

    value: Node | None


@attrs.frozen
class ExprStmt(Node):
    """An expression evaluated for its effect."""

    expr: Node


@attrs.frozen
class Program(Node):
    """A whole file."""

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
# The classes are read from this module's names, not ``Node.__subclasses__()``: attrs
# replaces each class by a slotted copy, and the originals linger there until collected.
_NODE_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in attrs.fields(cls) if f.name not in ("line", "column"))
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, Node) and cls is not Node
}
