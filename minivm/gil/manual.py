"""``manual`` — the person at the debugger is the lock policy.

Design note
-----------
* **Where the idea comes from.** The Deadlock Empire game makes the player the scheduler of a
  threaded program; gdb's ``set scheduler-locking`` lets the person decide which threads may
  run while stepping. Here the person decides, at each check, who holds the GIL next.
* **Mechanics.** A hand-off policy (``HandoffPolicy``): the GIL is never free while someone
  waits; the releaser names the next holder and wakes exactly that thread. Every change of
  GIL state goes through the primitives of ``gil/lock.py`` (``vacate``, ``start_waiting``,
  ``hand_to``, ``park``/``resumed``), so the lock's invariants hold as under ``fifo``.
* **Three ways to choose.** With nothing asked, it is ``fifo`` (the longest waiter goes first),
  so a debugged program runs as it would under ``fifo``: deterministically. ``run_next(T)``
  (the debugger's ``run T``) hands the GIL to thread ``T`` at the next check, or at the next
  release, where ``T`` waits for it; until ``T`` waits, the request stays pending. With
  ``asking`` set (``schedule manual``) every check at which someone waits, and every release
  with two or more waiters, calls ``ask(holder, candidates)``, which returns the chosen thread.
* **Threads and locks.** ``ask`` is called at a check *without* the mutex (the person may take
  minutes; threads waking from ``sleep`` must still queue), and at a release *with* it (the
  releaser is inside the scheduler's atomic step). Whoever implements ``ask`` must therefore
  never take the scheduler's mutex; the debugger only reads state while it waits.
* **The schedule** that results is recorded by the debugger (who held the GIL for how many
  instructions), not here: the policy only decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from minivm.gil.policies import HandoffPolicy

if TYPE_CHECKING:
    from minivm.gil.lock import GIL
    from minivm.runtime.threads import GuestThread

# ask(holder or None at a release, candidates in order, holder first if any) -> the choice
Ask = Callable[["GuestThread | None", "list[GuestThread]"], "GuestThread"]


class ManualPolicy(HandoffPolicy):
    """The scheduler is a person: ``fifo`` until told otherwise (see the module's note)."""

    name = "manual"

    def __init__(self, ask: Ask | None = None):
        self.ask = ask
        self.asking = False
        self.pending: int | None = None

    def run_next(self, tid: int | None) -> None:
        """Hand the GIL to thread ``tid`` at the next check or release where it waits
        (``None`` cancels the request)."""
        self.pending = tid

    def _pending_among(self, candidates: list[GuestThread]) -> GuestThread | None:
        for candidate in candidates:
            if candidate.tid == self.pending:
                self.pending = None
                return candidate
        return None

    def choose(self, gil: GIL) -> GuestThread:
        """At a release (mutex held): the pending thread, the person's choice, or fifo's."""
        waiters = list(gil.waiters)
        chosen = self._pending_among(waiters)
        if chosen is not None:
            return chosen
        if self.asking and self.ask is not None and len(waiters) > 1:
            choice = self.ask(None, waiters)
            if choice in waiters:
                return choice
        return waiters[0]

    def check(self, gil: GIL, thread: GuestThread) -> None:
        """At the holder's check: keep it running or hand the GIL to the chosen waiter."""
        if not gil.waiters:
            return  # nobody else can run: no choice to make
        candidates = [thread, *gil.waiters]
        chosen = self._pending_among(candidates)
        if chosen is None and self.asking and self.ask is not None:
            chosen = self.ask(thread, candidates)
        elif chosen is None:
            chosen = candidates[1]  # fifo: the longest waiter
        with gil.mutex:
            if chosen is thread or chosen not in gil.waiters:
                gil.runs_on()
                return
            self._switch(gil, thread, chosen)
