"""The syntax tree: frozen attrs classes, each carrying the line and column it came from."""

from __future__ import annotations

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
