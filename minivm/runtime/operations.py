"""The guest's operators, in full generality. The interpreter inlines the int fast paths and
calls these for everything else; every type error is phrased the same way here."""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.errors import GuestError
from minivm.runtime.values import MvList, MvMap, length, map_key, to_repr, type_name, values_equal


def unsupported(symbol: str, a: object, b: object) -> GuestError:
    """``unsupported operand types for +: int and str``."""
    return GuestError(f"unsupported operand types for {symbol}: {type_name(a)} and {type_name(b)}")


def _is_number(value: object) -> bool:
    cls = value.__class__
    return cls is int or cls is float


def _float_safe(symbol: str, compute) -> object:
    # An int too large for a float, mixed with a float, overflows in the host.
    try:
        return compute()
    except OverflowError:
        raise GuestError(f"result of {symbol} too large for a float") from None


def add(heap, a: object, b: object) -> object:
    """``a + b``: numbers add, strings join, lists join into a new list."""
    ca, cb = a.__class__, b.__class__
    if _is_number(a) and _is_number(b):
        return _float_safe("+", lambda: a + b)  # type: ignore[operator]
    if ca is str and cb is str:
        return a + b  # type: ignore[operator]
    if ca is MvList and cb is MvList:
        return heap.new_list(list.__add__(a, b))  # type: ignore[arg-type]
    raise unsupported("+", a, b)


def sub(a: object, b: object) -> object:
    """``a - b`` on numbers."""
    if _is_number(a) and _is_number(b):
        return _float_safe("-", lambda: a - b)  # type: ignore[operator]
    raise unsupported("-", a, b)


def mul(a: object, b: object) -> object:
    """``a * b`` on numbers only (no string or list repetition)."""
    if _is_number(a) and _is_number(b):
        return _float_safe("*", lambda: a * b)  # type: ignore[operator]
    raise unsupported("*", a, b)


def _divide(symbol: str, a: object, b: object, fn) -> object:
    if not (_is_number(a) and _is_number(b)):
        raise unsupported(symbol, a, b)
    if b == 0:
        raise GuestError("division by zero")
    try:
        return fn(a, b)
    except OverflowError:
        raise GuestError(f"result of {symbol} too large for a float") from None


def div(a: object, b: object) -> object:
    """``a / b``: true division, always a float."""
    return _divide("/", a, b, lambda x, y: x / y)


def floor_div(a: object, b: object) -> object:
    """``a // b``: floor division as in Python."""
    return _divide("//", a, b, lambda x, y: x // y)


def mod(a: object, b: object) -> object:
    """``a % b``: modulo with the sign of the divisor, as in Python."""
    return _divide("%", a, b, lambda x, y: x % y)


def neg(a: object) -> object:
    """``-a`` on numbers."""
    if _is_number(a):
        return -a  # type: ignore[operator]
    raise GuestError(f"unsupported operand type for unary -: {type_name(a)}")


def _orderable(symbol: str, a: object, b: object) -> None:
    if (_is_number(a) and _is_number(b)) or (a.__class__ is str and b.__class__ is str):
        return
    raise unsupported(symbol, a, b)


def less(a: object, b: object) -> bool:
    """``a < b`` on numbers or on strings."""
    _orderable("<", a, b)
    return a < b  # type: ignore[operator]


def less_equal(a: object, b: object) -> bool:
    """``a <= b``."""
    _orderable("<=", a, b)
    return a <= b  # type: ignore[operator]


def greater(a: object, b: object) -> bool:
    """``a > b``."""
    _orderable(">", a, b)
    return a > b  # type: ignore[operator]


def greater_equal(a: object, b: object) -> bool:
    """``a >= b``."""
    _orderable(">=", a, b)
    return a >= b  # type: ignore[operator]


def equal(a: object, b: object) -> bool:
    """``a == b`` by value."""
    return values_equal(a, b)


def not_equal(a: object, b: object) -> bool:
    """``a != b``."""
    return not values_equal(a, b)


def index(target: object, key: object) -> object:
    """``target[key]`` for lists, strings and ranges (by int) and maps (by key)."""
    cls = target.__class__
    if cls is MvMap:
        try:
            return target[map_key(key)]  # type: ignore[index]
        except KeyError:
            raise GuestError(f"key not found: {_show_key(key)}") from None
    if cls is MvList or cls is str or cls is range:
        if key.__class__ is not int:
            raise GuestError(f"{type_name(target)} index must be an int, not {type_name(key)}")
        try:
            return target[key]  # type: ignore[index]
        except IndexError:
            raise GuestError(f"index out of range: {key} (length {length(target)})") from None
    raise GuestError(f"cannot index a value of type {type_name(target)}")


def store_index(heap, target: object, key: object, value: object) -> None:
    """``target[key] = value`` for lists (an existing index) and maps (any valid key)."""
    cls = target.__class__
    if cls is MvList:
        if key.__class__ is not int:
            raise GuestError(f"list index must be an int, not {type_name(key)}")
        try:
            old = target[key]  # type: ignore[index]
            target[key] = value  # type: ignore[index]  (under the none policy it may shrink between)
        except IndexError:
            raise GuestError(f"index out of range: {key} (length {len(target)})") from None  # type: ignore[arg-type]
    elif cls is MvMap:
        k = map_key(key)
        old = target.get(k)  # type: ignore[attr-defined]
        target[k] = value  # type: ignore[index]
    else:
        raise GuestError(f"cannot assign to an index of a value of type {type_name(target)}")
    heap.incref(value)
    heap.decref(old)


def _show_key(key: object) -> str:
    return to_repr(key)


def iterate(target: object):
    """An iterator for ``for``: lists live, strings by character, ranges, map key snapshots."""
    cls = target.__class__
    if cls is MvList or cls is str or cls is range:
        return iter(target)  # type: ignore[call-overload]
    if cls is MvMap:
        return iter(target.guest_keys())  # type: ignore[attr-defined]
    raise GuestError(f"cannot iterate over a value of type {type_name(target)}")


def binary(opcode: int, heap, a: object, b: object) -> object:
    """Any binary operator by its plain opcode (the general path of fused instructions)."""
    return _BINARY[opcode](heap, a, b)


_BINARY = {
    op.ADD: add,
    op.SUB: lambda heap, a, b: sub(a, b),
    op.MUL: lambda heap, a, b: mul(a, b),
    op.DIV: lambda heap, a, b: div(a, b),
    op.FLOOR_DIV: lambda heap, a, b: floor_div(a, b),
    op.MOD: lambda heap, a, b: mod(a, b),
    op.LT: lambda heap, a, b: less(a, b),
    op.LE: lambda heap, a, b: less_equal(a, b),
    op.GT: lambda heap, a, b: greater(a, b),
    op.GE: lambda heap, a, b: greater_equal(a, b),
    op.EQ: lambda heap, a, b: equal(a, b),
    op.NE: lambda heap, a, b: not_equal(a, b),
}
