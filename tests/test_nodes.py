"""The syntax-tree records: frozen, compared and printed by fields and position."""

from __future__ import annotations

import pytest

from minivm.frontend import nodes as n
from minivm.frontend.parser import parse


def test_nodes_compare_and_hash_by_class_fields_and_position():
    one = n.Binary("+", n.Name("a", line=1, column=1), n.Literal(2, line=1, column=5), line=1, column=3)
    same = n.Binary("+", n.Name("a", line=1, column=1), n.Literal(2, line=1, column=5), line=1, column=3)
    assert one == same and hash(one) == hash(same)
    assert one != n.Binary("-", one.left, one.right, line=1, column=3)
    assert one != n.Binary("+", one.left, one.right, line=2, column=3)
    assert n.Break(line=1, column=1) != n.Continue(line=1, column=1)
    assert one.fields() == ("+", one.left, one.right)


def test_nodes_are_frozen_and_check_their_field_count():
    node = n.Name("a", line=1, column=1)
    with pytest.raises(AttributeError):
        node.name = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        n.Let("x", line=1, column=1)
    with pytest.raises(TypeError):
        n.Name("a")  # the position is required


def test_parse_builds_nodes_with_positions_and_a_readable_repr():
    program = parse("let x = 1 + y;\n", "f.mv")
    (let,) = program.body
    assert isinstance(let, n.Let) and (let.line, let.column, let.name) == (1, 1, "x")
    assert repr(let.value) == (
        "Binary(line=1, column=11, op='+', left=Literal(line=1, column=9, value=1), "
        "right=Name(line=1, column=13, name='y'))"
    )
