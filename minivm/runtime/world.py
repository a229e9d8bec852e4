"""The shared world a program runs in: the heap, the globals, and the roots the heap needs.

Every guest thread of a run reads and writes the same ``World``, as every thread of a CPython
process shares one interpreter state's heap and module dicts (``PyInterpreterState``). The
heap counts references (``runtime/heap.py``); what it cannot see — values held only by
running frames, thread results, and the globals dict — is handed to it here as roots, for
reclamation (``Heap.reclaim``) and for the exit audit (``--heap-check``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from minivm.runtime.builtins import BUILTINS
from minivm.runtime.heap import AuditReport, Heap
from minivm.runtime.interpreter import FRAME_FUNCTION, FRAME_LOCALS, FRAME_STACK
from minivm.runtime.threads import DONE, GuestThread


class World:
    """The heap and the globals of one run (``heap``: a ``Heap``; ``globals``: name ->
    guest value, starting with the builtins)."""

    def __init__(self) -> None:
        self.heap = Heap()
        self.globals: dict[str, object] = dict(BUILTINS)

    def held_values(self, threads: Iterable[GuestThread], all_threads: bool) -> Iterator[object]:
        """Uncounted references: running frames' stacks, locals and functions, and thread
        results. ``all_threads``: include the frames of threads that have ended (during a run,
        where a finished thread's frames may still be read by a joiner)."""
        for thread in threads:
            yield thread.result
            if thread.state == DONE and not all_threads:
                continue
            for frame in thread.frames:
                yield frame[FRAME_FUNCTION]
                yield from frame[FRAME_STACK]
                yield from frame[FRAME_LOCALS]

    def counted_roots(self) -> list[object]:
        """Counted references held outside the heap: the values of the globals."""
        return list(self.globals.values())

    def reclaim_after_run(self, threads: Iterable[GuestThread]) -> None:
        """Free what nothing reaches once the threads have stopped (see ``Heap.reclaim``)."""
        self.heap.reclaim(self.held_values(threads, all_threads=False))

    def audit(self) -> AuditReport:
        """The exit audit of ``--heap-check``: every stored count against the references found."""
        return self.heap.audit(self.counted_roots())
