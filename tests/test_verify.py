"""The verifier's check of fused instructions field by field (``verify.check_fused``): every
field of an operand record must be what the plain code it stands for says, as the record's
``SOURCES`` declare. Each test spoils one field of a record the fuser made and expects the
verifier to name the field, the plain instruction and the value it should hold."""

from __future__ import annotations

import operator
import re

import pytest
from test_bytecode import FUSED_PROGRAM, all_code_objects

from minivm.bytecode import opcodes as op
from minivm.bytecode.verify import check_fused
from minivm.errors import InternalError
from minivm.frontend.compiler import compile_source

FUSED = {info.code for info in op.FUSED_OPCODES}


def fused_instructions() -> list[tuple]:
    """(code object, offset, opcode, record) of every fused instruction of ``FUSED_PROGRAM``,
    which uses every fused opcode."""
    code = compile_source(FUSED_PROGRAM, "t.mv")
    return [
        (each, offset, opcode, record)
        for each in all_code_objects(code)
        for offset, (opcode, record) in enumerate(each.fast)
        if opcode in FUSED
    ]


def spoiled(value: object) -> object:
    """A value of the same type as ``value`` that differs from it."""
    if callable(value):
        return operator.truediv  # the host operator of no fused operation
    if isinstance(value, str):
        return value + "_"
    return value + 1


def with_field(record: object, field: str, value: object) -> object:
    """``record`` with one field replaced (records are frozen: a new one)."""
    fields = {name: getattr(record, name) for name in record.__slots__}
    return type(record)(**{**fields, field: value})


def test_every_record_declares_where_each_field_comes_from():
    for info in op.FUSED_OPCODES:
        declared = info.fused
        record = declared.record
        assert set(record.SOURCES) == set(record.__slots__), record.__name__
        # Positions count in the sequence after a loop form's back jump.
        length = declared.width - (1 if declared.loop else 0)
        for kind, position in record.SOURCES.values():
            assert kind in op.SOURCE_KINDS
            assert 0 <= position <= length if kind == op.OFFSET else 0 <= position < length
    assert {op.BY_NAME[name].code for name in op.INT_OPERATORS} <= {
        op.BY_NAME[name].code for name in op.INT_BINARY
    }


def test_every_fused_opcode_is_checked_field_by_field():
    found = fused_instructions()
    assert {opcode for _, _, opcode, _ in found} == FUSED
    checked = 0
    for code, offset, opcode, record in found:
        check_fused(code, code.fast)  # as the fuser made it, it holds
        for field in record.__slots__:
            fast = list(code.fast)
            fast[offset] = (opcode, with_field(record, field, spoiled(getattr(record, field))))
            name = op.OPCODES[opcode].name
            with pytest.raises(InternalError, match=rf"{name} at offset {offset}: field {field} is ") as raised:
                check_fused(code, tuple(fast))
            assert code.display_name in str(raised.value)
            checked += 1
    assert checked >= sum(len(info.fused.record.__slots__) for info in op.FUSED_OPCODES)


def test_the_message_names_the_plain_instruction_and_the_value_it_gives():
    code = compile_source("fn f(n) { n = n - 7; return n; }", "t.mv").nested()[0]
    offset, (opcode, record) = next((i, pair) for i, pair in enumerate(code.fast) if pair[0] in FUSED)
    assert opcode == op.ARITH_LOCAL_CONST_STORE and record.const == 7
    fast = list(code.fast)
    fast[offset] = (opcode, with_field(record, "const", 8))
    message = f"ARITH_LOCAL_CONST_STORE at offset {offset}: field const is 8, but offset {offset + 1} (LOAD_CONST"
    with pytest.raises(InternalError, match=re.escape(message) + r" \d+\) gives 7"):
        check_fused(code, tuple(fast))
    # The operation and its host operator must agree with the plain opcode, each on its own.
    fast[offset] = (opcode, with_field(record, "fn", operator.add))
    with pytest.raises(InternalError, match=r"field fn is <built-in function add>, but .*\(SUB\) gives"):
        check_fused(code, tuple(fast))
    fast[offset] = (opcode, with_field(record, "operation", op.ADD))
    with pytest.raises(InternalError, match=rf"field operation is {op.ADD}, but .*\(SUB\) gives {op.SUB}"):
        check_fused(code, tuple(fast))


def test_a_constant_of_another_type_is_not_the_same_constant():
    # 1 == True == 1.0 in the host, but minivm prints them differently: the type must match.
    code = compile_source("fn f(n) { while n > 1 { n = n - 1; } return n; }", "t.mv").nested()[0]
    offset, (opcode, record) = next((i, p) for i, p in enumerate(code.fast) if p[0] == op.ARITH_LOCAL_CONST_STORE)
    for other in (True, 1.0):
        fast = list(code.fast)
        fast[offset] = (opcode, with_field(record, "const", other))
        with pytest.raises(InternalError, match=rf"field const is {other!r}, but .* gives 1$"):
            check_fused(code, tuple(fast))


def test_a_jump_offset_field_must_be_the_offset_past_the_sequence():
    code = compile_source("fn f(xs) { let t = 0; for x in xs { t = x; } return t; }", "t.mv").nested()[0]
    offset, (opcode, record) = next((i, p) for i, p in enumerate(code.fast) if p[0] == op.FOR_ITER_STORE_LOCAL)
    assert record.after == offset + 2
    fast = list(code.fast)
    fast[offset] = (opcode, with_field(record, "after", offset + 3))
    with pytest.raises(InternalError, match=rf"field after is {offset + 3}, not offset {offset + 2}$"):
        check_fused(code, tuple(fast))
