"""The heap the GIL guards: object ids, a table of live objects, and reference counts.

Lists, maps, functions and cells are allocated here. Counting is *deferred* (Deutsch and
Bobrow): references from containers, globals and cells are counted on every store, while the
references that running frames hold on their value stacks and in local slots are not —
exactly the references that change on almost every instruction. An object whose count is
zero may still be held by a frame, so it is freed only when ``reclaim`` has looked at every
thread's frames and found it held by none. Freeing an object releases its references
in turn.

None of this is thread-safe, on purpose: ``rc += 1`` is a read, an add and a write, and two
threads doing it at once lose updates. The GIL is what makes the heap safe, as in CPython;
under the ``none`` policy the audit shows the damage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from minivm.runtime.values import HEAP_TYPES, Cell, Function, MvList, MvMap, type_name


@dataclasses.dataclass
class AuditReport:
    """What ``Heap.audit`` found: objects whose stored count differs from the references
    actually found, and references to objects that were already freed."""

    live: int
    wrong_counts: list[str] = dataclasses.field(default_factory=list)
    dangling: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every count matches and nothing points at a freed object."""
        return not self.wrong_counts and not self.dangling

    def describe(self) -> str:
        """One line for the user, with an example of what went wrong."""
        if self.ok:
            return f"heap audit: ok ({self.live} live objects, all reference counts match)"
        parts = []
        if self.wrong_counts:
            parts.append(
                f"{len(self.wrong_counts)} objects with wrong reference counts, "
                f"e.g. {self.wrong_counts[0]}"
            )
        if self.dangling:
            parts.append(f"{len(self.dangling)} references to freed objects, e.g. {self.dangling[0]}")
        return "heap audit: " + "; ".join(parts)


def children(obj: object) -> Iterator[object]:
    """The values a heap object refers to (the references its count-keeping covers)."""
    cls = obj.__class__
    if cls is MvList:
        yield from tuple(obj)  # type: ignore[call-overload]  (a snapshot: see values.snapshot)
    elif cls is MvMap:
        yield from tuple(obj.values())  # type: ignore[attr-defined]
    elif cls is Function:
        yield from obj.cells  # type: ignore[attr-defined]
    elif cls is Cell:
        yield obj.value  # type: ignore[attr-defined]


class Heap:
    """Allocation, reference counting and reclamation for the guest's heap objects."""

    # Reclaim once this many objects were allocated since the last time (or the live count,
    # if larger): the cost of a reclaim stays proportional to the work that made garbage.
    RECLAIM_EVERY = 20_000

    def __init__(self) -> None:
        self.live: dict[int, object] = {}
        self.next_id = 1
        self.allocated = 0
        self.freed = 0
        self.peak_live = 0
        # Allocations left before a reclaim may be due: a countdown, so that the check's
        # cheap first test is one load and a compare with zero (``reclaim_due`` decides).
        self.until_reclaim = self.RECLAIM_EVERY

    def alloc(self, obj):
        """Give ``obj`` an id and enter it in the table of live objects."""
        oid = self.next_id
        self.next_id = oid + 1
        obj.oid = oid
        self.live[oid] = obj
        self.allocated += 1
        self.until_reclaim -= 1
        return obj

    def new_list(self, items: Iterable[object] = ()) -> MvList:
        """A new list holding ``items``, their references counted."""
        lst = MvList(items)
        for item in lst:
            if item.__class__ in HEAP_TYPES:
                item.rc += 1  # type: ignore[attr-defined]
        return self.alloc(lst)

    def new_map(self) -> MvMap:
        """A new empty map."""
        return self.alloc(MvMap())

    def new_cell(self) -> Cell:
        """A new unassigned cell."""
        return self.alloc(Cell())

    def new_function(self, code, cells: tuple[Cell, ...]) -> Function:
        """A new closure over ``cells``."""
        for cell in cells:
            cell.rc += 1
        return self.alloc(Function(code, cells))

    @staticmethod
    def incref(value: object) -> None:
        """Count one more stored reference to ``value`` (no-op for non-heap values)."""
        if value.__class__ in HEAP_TYPES:
            value.rc += 1  # type: ignore[attr-defined]

    @staticmethod
    def decref(value: object) -> None:
        """Count one stored reference fewer. At zero the object waits for ``reclaim``."""
        if value.__class__ in HEAP_TYPES:
            value.rc -= 1  # type: ignore[attr-defined]

    def reclaim_due(self) -> bool:
        """Whether enough was allocated since the last reclaim to make one worthwhile."""
        return self.until_reclaim <= 0 and self.RECLAIM_EVERY - self.until_reclaim >= len(self.live)

    def reclaim(self, roots: Iterable[object]) -> int:
        """Free every object whose count is zero and that no root holds; returns how many.

        ``roots`` are the uncounted references: the values on running frames' stacks and in
        their local slots (and anything else the caller knows is held).
        """
        self.until_reclaim = self.RECLAIM_EVERY
        held = {id(v) for v in roots if v.__class__ in HEAP_TYPES}
        pending = [o for o in tuple(self.live.values()) if o.rc <= 0 and id(o) not in held]  # type: ignore[attr-defined]
        count = 0
        while pending:
            obj = pending.pop()
            if self.live.get(obj.oid) is not obj:  # type: ignore[attr-defined]
                continue
            del self.live[obj.oid]  # type: ignore[attr-defined]
            self.freed += 1
            count += 1
            for child in children(obj):
                if child.__class__ in HEAP_TYPES:
                    child.rc -= 1  # type: ignore[attr-defined]
                    if child.rc <= 0 and id(child) not in held:  # type: ignore[attr-defined]
                        pending.append(child)
        return count

    def audit(self, roots: Iterable[object]) -> AuditReport:
        """Compare every stored count with the references found by walking the roots and
        every live object (so unreachable cycles, which counting cannot free, still match)."""
        found: dict[int, int] = dict.fromkeys(self.live, 0)
        report = AuditReport(live=len(self.live))

        def visit(value: object, holder: str) -> None:
            if value.__class__ not in HEAP_TYPES:
                return
            oid = value.oid  # type: ignore[attr-defined]
            if self.live.get(oid) is not value:
                report.dangling.append(f"{holder} refers to freed {describe(value)}")
                return
            found[oid] += 1

        for value in roots:
            visit(value, "a global or cell")
        for obj in tuple(self.live.values()):
            for child in children(obj):
                visit(child, describe(obj))
        for oid, obj in tuple(self.live.items()):
            if obj.rc != found[oid]:  # type: ignore[attr-defined]
                report.wrong_counts.append(
                    f"{describe(obj)} has count {obj.rc} but {found[oid]} references"  # type: ignore[attr-defined]
                )
        return report


def describe(obj: object) -> str:
    """``list #12`` — an object's kind and heap id, for audit messages."""
    kind = "cell" if obj.__class__ is Cell else type_name(obj)
    return f"{kind} #{getattr(obj, 'oid', '?')}"
