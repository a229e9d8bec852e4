"""The guest's values and how they print, compare and name their type.

``nil``, booleans, ints, floats and strings are the host's own ``None``, ``bool``, ``int``,
``float`` and ``str``; a range is the host's lazy ``range``. Lists, maps, functions and cells
are heap objects (``heap.py`` counts their references), so they are classes of their own.
"""

from __future__ import annotations

from minivm.bytecode.code import quote
from minivm.errors import GuestError


class _Unset:
    """The value of a variable whose declaration has not run yet."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


UNSET = _Unset()


class MvList(list):
    """A guest list: a host list that the heap can count references to."""

    __slots__ = ("oid", "rc")

    def __init__(self, items=()):
        super().__init__(items)
        self.rc = 0
        self.oid = 0

    __hash__ = None  # type: ignore[assignment]


class BoolKey:
    """A boolean used as a map key. The host treats ``True`` and ``1`` as the same key;
    the guest does not (``true == 1`` is false), so booleans are wrapped in maps."""

    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = value

    def __repr__(self) -> str:
        return f"BoolKey({self.value})"


TRUE_KEY = BoolKey(True)
FALSE_KEY = BoolKey(False)


class MvMap(dict):
    """A guest map: insertion-ordered, keys are nil, bools, ints and strings."""

    __slots__ = ("oid", "rc")

    def __init__(self):
        super().__init__()
        self.rc = 0
        self.oid = 0

    __hash__ = None  # type: ignore[assignment]

    def guest_keys(self) -> list:
        """The keys as guest values, in insertion order (a snapshot: see ``snapshot``)."""
        return [k.value if k.__class__ is BoolKey else k for k in tuple(self)]


# Snapshots. Under the ``none`` policy another thread may change a list or map while host
# code walks it, and a dict that changes size under a host iterator raises. ``tuple(x)`` and
# ``tuple(d.items())`` copy in one C call, during which the host switches no threads, so
# host code iterates over such a copy of a guest container, never over the container.


def snapshot(value: MvList) -> tuple:
    """The items of a guest list, copied at once."""
    return tuple(value)


def snapshot_items(value: MvMap) -> tuple:
    """The (host key, value) pairs of a guest map, copied at once."""
    return tuple(value.items())


def length(value: object) -> int:
    """``len`` of a string, list, map or range; a range may be longer than the host's
    ``len`` allows (``range(10 ** 400)``), so its length is computed from its bounds."""
    if value.__class__ is range:
        try:
            return len(value)  # type: ignore[arg-type]
        except OverflowError:
            r: range = value  # type: ignore[assignment]
            return max(0, (r.stop - r.start + r.step - (1 if r.step > 0 else -1)) // r.step)
    return len(value)  # type: ignore[arg-type]


def map_key(key: object) -> object:
    """The host dict key for a guest key; raises for keys the language does not allow."""
    cls = key.__class__
    if cls is str or cls is int or key is None:
        return key
    if cls is bool:
        return TRUE_KEY if key else FALSE_KEY
    raise GuestError(f"invalid map key: {type_name(key)} (keys are nil, bools, ints and strings)")


class Cell:
    """A captured variable shared by reference between a function and its closures."""

    __slots__ = ("oid", "rc", "value")

    def __init__(self, value: object = UNSET):
        self.value = value
        self.rc = 0
        self.oid = 0


class Function:
    """A guest function: a code object plus the cells it captured."""

    __slots__ = ("cells", "code", "name", "oid", "rc")

    def __init__(self, code, cells: tuple[Cell, ...]):
        self.code = code
        self.cells = cells
        self.name = code.name
        self.rc = 0
        self.oid = 0

    def __repr__(self) -> str:
        return f"<fn {self.name}>" if self.name else "<fn>"


class Builtin:
    """A function of the VM itself (``print``, ``len``...). ``impl`` gets the running thread
    and the argument list. ``max_args`` is ``VARIADIC`` for any number."""

    __slots__ = ("blocking", "impl", "max_args", "min_args", "name")

    def __init__(self, name: str, impl, min_args: int, max_args: int, blocking: bool = False):
        self.name = name
        self.impl = impl
        self.min_args = min_args
        self.max_args = max_args
        # A blocking builtin may give the GIL away while it waits (sleep, join, acquire).
        self.blocking = blocking

    def __repr__(self) -> str:
        return f"<fn {self.name}>"


VARIADIC = 1 << 30

HEAP_TYPES = frozenset({MvList, MvMap, Function, Cell})

_TYPE_NAMES = {
    type(None): "nil", bool: "bool", int: "int", float: "float", str: "str",
    MvList: "list", MvMap: "map", range: "range", Function: "function", Builtin: "function",
}  # fmt: skip


def type_name(value: object) -> str:
    """The guest's name for the kind of ``value`` (what ``type()`` returns)."""
    name = _TYPE_NAMES.get(value.__class__)
    if name is not None:
        return name
    return getattr(value, "guest_type", "object")


def to_str(value: object) -> str:
    """How ``print`` and ``str`` show a value (a string as itself)."""
    cls = value.__class__
    if cls is str:
        return value  # type: ignore[return-value]
    return to_repr(value)


def to_repr(value: object, _seen: set[int] | None = None) -> str:
    """How a value shows inside a container: strings quoted, self-references as ``[...]``."""
    cls = value.__class__
    if cls is str:
        return quote(value)  # type: ignore[arg-type]
    if value is None:
        return "nil"
    if cls is bool:
        return "true" if value else "false"
    if cls is int or cls is float:
        return repr(value)
    if cls is MvList:
        seen = _seen if _seen is not None else set()
        if id(value) in seen:
            return "[...]"
        seen.add(id(value))
        text = "[" + ", ".join(to_repr(v, seen) for v in snapshot(value)) + "]"  # type: ignore[arg-type]
        seen.discard(id(value))
        return text
    if cls is MvMap:
        seen = _seen if _seen is not None else set()
        if id(value) in seen:
            return "{...}"
        seen.add(id(value))
        parts = [
            f"{to_repr(k.value if k.__class__ is BoolKey else k, seen)}: {to_repr(v, seen)}"
            for k, v in snapshot_items(value)  # type: ignore[arg-type]
        ]
        seen.discard(id(value))
        return "{" + ", ".join(parts) + "}"
    if cls is range:
        return repr(value)
    return repr(value)


def values_equal(a: object, b: object) -> bool:
    """``==``: by value for lists, maps and strings; ints and floats compare as numbers;
    values of different kinds (booleans and numbers included) are unequal."""
    ca, cb = a.__class__, b.__class__
    if ca is not cb:
        if (ca is int or ca is float) and (cb is int or cb is float):
            return a == b
        return False
    if ca is MvList:
        if a is b:
            return True
        xs, ys = snapshot(a), snapshot(b)  # type: ignore[arg-type]
        if len(xs) != len(ys):
            return False
        return all(values_equal(x, y) for x, y in zip(xs, ys, strict=True))
    if ca is MvMap:
        if a is b:
            return True
        pairs, other = snapshot_items(a), dict(snapshot_items(b))  # type: ignore[arg-type]
        if len(pairs) != len(other):
            return False
        return all(
            key in other and values_equal(value, other[key]) for key, value in pairs
        )
    if ca is Function or ca is Builtin:
        return a is b
    return a == b
