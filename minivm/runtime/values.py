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

# How deeply containers may nest for the walks over guest values (printing, ``str``, ``==``
# and ``!=``). Every such walk keeps its own stack of open containers instead of recursing
# on the host, so it needs no host stack at all and behaves the same in every guest thread,
# on every host; the limit only bounds the work (two lists that contain themselves compare
# deeper and deeper) and gives one clean guest error past it.
MAX_DATA_DEPTH = 100_000


def too_deeply_nested() -> GuestError:
    """The guest error of a walk that would go more than ``MAX_DATA_DEPTH`` containers deep."""
    return GuestError("maximum recursion depth exceeded (structure too deeply nested)")


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
    """How ``print`` and ``str`` show a value (a string as itself).

    Raises ``GuestError`` (``too_deeply_nested``) for a structure more than
    ``MAX_DATA_DEPTH`` containers deep."""
    cls = value.__class__
    if cls is str:
        return value  # type: ignore[return-value]
    return to_repr(value)


def to_repr(value: object) -> str:
    """How a value shows inside a container: strings quoted, self-references as ``[...]``.

    Raises ``GuestError`` (``too_deeply_nested``) for a structure more than
    ``MAX_DATA_DEPTH`` containers deep."""
    cls = value.__class__
    if cls is str:
        return quote(value)  # type: ignore[arg-type]
    if value is None:
        return "nil"
    if cls is bool:
        return "true" if value else "false"
    if cls is int or cls is float:
        return repr(value)
    if cls is MvList or cls is MvMap:
        return _nested_repr(value)
    return repr(value)


def _nested_repr(root: object) -> str:
    # Iterative: an explicit stack of the containers being printed, so the host stack stays
    # flat whatever the depth (see MAX_DATA_DEPTH). Each entry is [items, next index, id,
    # closing bracket, is a map]. ``path`` holds the ids of those containers: meeting one
    # again means the structure contains itself, printed as ``[...]`` / ``{...}``.
    out: list[str] = []
    append = out.append
    open_: list[list] = []
    path: set[int] = set()
    value = root
    while True:
        # ``value`` is a list or a map: open it (or show that it contains itself).
        ident = id(value)
        if ident in path:
            append("[...]" if value.__class__ is MvList else "{...}")
        else:
            if len(open_) >= MAX_DATA_DEPTH:
                raise too_deeply_nested()
            path.add(ident)
            if value.__class__ is MvList:
                append("[")
                open_.append([snapshot(value), 0, ident, "]", False])  # type: ignore[arg-type]
            else:
                append("{")
                open_.append([snapshot_items(value), 0, ident, "}", True])  # type: ignore[arg-type]
        # Show the items of the innermost open container up to the next container among
        # them (then open that one), closing every container that has nothing left.
        while open_:
            top = open_[-1]
            items, start, ident, closer, is_map = top
            for i in range(start, len(items)):
                if i:
                    append(", ")
                if is_map:
                    key, value = items[i]
                    if key.__class__ is str:
                        append(quote(key))  # type: ignore[arg-type]
                    else:
                        append(to_repr(key.value if key.__class__ is BoolKey else key))
                    append(": ")
                else:
                    value = items[i]
                cls = value.__class__
                if cls is int:
                    append(repr(value))
                elif cls is str:
                    append(quote(value))  # type: ignore[arg-type]
                elif cls is MvList or cls is MvMap:
                    top[1] = i + 1
                    break
                else:
                    append(to_repr(value))  # not a container: no recursion
            else:
                append(closer)
                path.discard(ident)
                open_.pop()
                continue
            break
        else:
            return "".join(out)


def values_equal(a: object, b: object) -> bool:
    """``==``: by value for lists, maps and strings; ints and floats compare as numbers;
    values of different kinds (booleans and numbers included) are unequal.

    Raises ``GuestError`` (``too_deeply_nested``) when the comparison has to go more than
    ``MAX_DATA_DEPTH`` containers deep (also two lists that contain themselves)."""
    ca, cb = a.__class__, b.__class__
    if ca is not cb:
        if (ca is int or ca is float) and (cb is int or cb is float):
            return a == b
        return False
    if ca is MvList or ca is MvMap:
        return a is b or _nested_equal(a, b)
    if ca is Function or ca is Builtin:
        return a is b
    return a == b


def _nested_equal(a: object, b: object) -> bool:
    # Iterative, depth first and left to right as a recursive walk would go (so it stops at
    # the same first difference): an explicit stack of the container pairs being compared,
    # each [left items, right items (a tuple, or a dict for maps), next index, is a map].
    open_: list[list] = []
    while True:
        # ``a`` and ``b`` are two distinct lists or two distinct maps: open the pair.
        if len(open_) >= MAX_DATA_DEPTH:
            raise too_deeply_nested()
        if a.__class__ is MvList:
            xs, ys = snapshot(a), snapshot(b)  # type: ignore[arg-type]
            if len(xs) != len(ys):
                return False
            open_.append([xs, ys, 0, False])
        else:
            pairs, other = snapshot_items(a), dict(snapshot_items(b))  # type: ignore[arg-type]
            if len(pairs) != len(other):
                return False
            open_.append([pairs, other, 0, True])
        # Compare the items of the innermost open pair up to the next pair of distinct
        # containers among them (then open that one), dropping every pair that is done.
        while open_:
            top = open_[-1]
            xs, ys, start, is_map = top
            for i in range(start, len(xs)):
                if is_map:
                    key, a = xs[i]
                    if key not in ys:
                        return False
                    b = ys[key]
                else:
                    a, b = xs[i], ys[i]
                cls = a.__class__
                if cls is b.__class__:
                    if cls is int or cls is str:
                        if a != b:
                            return False
                        continue
                    if (cls is MvList or cls is MvMap) and a is not b:
                        top[2] = i + 1
                        break
                if not values_equal(a, b):  # not two distinct containers: no recursion
                    return False
            else:
                open_.pop()
                continue
            break
        else:
            return True
