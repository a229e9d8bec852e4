"""The controlled policy: a hand-off policy in which a *director* decides who runs, and for
how long — the engine of replay, of ``minivm explore``, and of anything else that wants to
steer a run instruction by instruction (a stepping debugger).

Design note
-----------
* **One thread at a time, by construction.** Like ``fifo`` and ``priority``
  (``gil/policies.py``'s ``HandoffPolicy``), the GIL is handed from thread to thread through
  each thread's own wake lock: the releaser names the next holder and wakes exactly that
  thread. Nothing is left to the host OS: which OS thread happens to run first never matters.
  This is the "controlled scheduler" of Shuttle, Loom and CHESS — real threads, but only the
  one the scheduler chose may proceed — built on the VM's own GIL instead of a shim.
* **Decision points.** The director is consulted (a) at every *boundary*: the machine asks
  ``budget(thread)`` how many instructions the holder may run before the next one and calls
  ``boundary`` when they are spent (``TickCheck.at_check``, ``runtime/check.py``); (b) whenever the holder blocks or
  ends (``release``). Checks of the ordinary policies do nothing here: only the director
  switches threads.
* **Candidates.** The threads that could run next: the holder (at a boundary), the threads
  queued for the GIL, and the threads that will queue by themselves — sleepers and a woken
  sleeper on its way to ``acquire``. A chosen sleeper gets the GIL *reserved*: everyone waits
  until it arrives (replay and explore follow the schedule, not the clock).
* **Divergence.** A director raises ``Divergence`` when the run cannot follow it (replay of a
  schedule that no longer fits the program). The policy records it, aborts the VM and unwinds
  the thread; the command line reports it (exit 2). Never a hang: a chosen thread that cannot
  run (blocked, ended, never spawned) is a divergence at once.
* **Layering.** The policy reaches the run only through what the machine gives it in
  ``attach`` (the thread list, read-only, and the abort), never through a thread's machine.
* **State changes** go through the GIL's primitives only (``grant``, ``vacate``,
  ``start_waiting``, ``hand_to``, ``park``): the GIL's invariants hold as under any policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from minivm.errors import ThreadAbort
from minivm.gil.policies import HandoffPolicy
from minivm.runtime.threads import DONE, RUNNING, SLEEPING

if TYPE_CHECKING:
    from minivm.gil.lock import GIL
    from minivm.runtime.threads import GuestThread


class Divergence(Exception):
    """The run cannot follow the director (a schedule that does not fit the program). The
    message names the first point of divergence."""


class Director:
    """What a controlled policy asks. Every method but ``budget`` and ``due`` is called with
    the scheduler's mutex held; none may block. ``threads``: every thread of the run, by id
    (given by the policy's ``attach``; read-only)."""

    threads: Sequence[GuestThread] = ()

    def budget(self, thread: GuestThread) -> int:
        """How many instructions ``thread`` may run before the next boundary (>= 1)."""
        return 1 << 62

    def due(self, thread: GuestThread) -> bool:
        """At a boundary (no mutex held): is this a decision point at all? A cheap test, so
        that stepping one instruction at a time costs little where nothing can happen."""
        return True

    def started(self, thread: GuestThread) -> None:
        """``thread`` starts a turn (it was just granted the GIL, or chosen to go on)."""

    def at_boundary(self, thread: GuestThread, candidates: list[GuestThread]) -> GuestThread:
        """The holder reached a boundary: who runs next (``thread`` itself to go on).
        ``candidates`` holds ``thread`` first, then the others by id."""
        return thread

    def after_release(self, thread: GuestThread, reason: str, candidates: list[GuestThread]) -> GuestThread | None:
        """``thread`` blocked or ended (``reason``: blocking, exit): who runs next, from
        ``candidates`` (by id; maybe empty); None leaves the GIL free (nobody can run)."""
        return candidates[0] if candidates else None


class ControlledPolicy(HandoffPolicy):
    """A hand-off policy that asks a ``Director`` at every decision point (see the note).

    ``divergence`` holds the first ``Divergence`` raised, if any; ``decisions`` counts the
    decision points at which more than one thread could run.
    """

    name = "controlled"
    controls_turns = True

    def __init__(self, director: Director):
        self.director = director
        self.reserved: GuestThread | None = None
        self.divergence: Divergence | None = None
        self.decisions = 0
        # The run's threads and how to stop it, from ``attach``.
        self.threads: Sequence[GuestThread] = ()
        self._abort: Callable[[BaseException | None], None] = lambda error: None

    def attach(self, threads: Sequence[GuestThread], abort_locked: Callable[[BaseException | None], None]) -> None:
        """Called once by the machine that runs under this policy: ``threads`` is its list of
        every thread by id (read, never changed), ``abort_locked(None)`` stops the run (mutex
        held). The policy reaches the run only through these, never through a thread."""
        self.threads = threads
        self.director.threads = threads
        self._abort = abort_locked

    # -- the machine's side
    def budget(self, thread: GuestThread) -> int:
        """Instructions ``thread`` may run before its next boundary."""
        return self.director.budget(thread)

    def boundary(self, gil: GIL, thread: GuestThread) -> bool:
        """The holder's budget is spent: maybe hand the GIL to another thread and wait for
        it to come back. Called without the mutex; returns whether the GIL changed hands
        (the thread then holds it again); raises ``ThreadAbort`` on divergence."""
        if not self.director.due(thread):
            return False
        with gil.mutex:
            candidates = [thread, *self._candidates(thread)]
            if len(candidates) > 1:
                self.decisions += 1
            chosen = self._decide(lambda: self.director.at_boundary(thread, candidates))
            if chosen is None:
                raise ThreadAbort
            if chosen is thread:
                return False
            self._switch(gil, thread, chosen)
            return True

    # -- the policy interface
    def acquire(self, gil: GIL, thread: GuestThread) -> None:
        if gil.holder is None and self.reserved in (None, thread):
            self.reserved = None
            self.director.started(thread)
            gil.grant(thread)
            return
        gil.start_waiting(thread)
        self._wait_for_grant(gil, thread)

    def release(self, gil: GIL, thread: GuestThread, reason: str) -> None:
        gil.vacate(thread, reason)
        candidates = self._candidates(None)
        if len(candidates) > 1:
            self.decisions += 1
        chosen = self._decide(lambda: self.director.after_release(thread, reason, candidates))
        if chosen is not None:
            self._give(gil, chosen)

    def check(self, gil: GIL, thread: GuestThread) -> None:
        return  # only the director switches threads

    def make_runnable(self, gil: GIL, thread: GuestThread) -> None:
        gil.start_waiting(thread)

    # -- helpers (mutex held)
    def _candidates(self, holder: GuestThread | None) -> list[GuestThread]:
        """Threads that could run next, by id, other than ``holder``."""
        return [t for t in self.threads if t is not holder and t.state in (RUNNING, SLEEPING)]

    def _give(self, gil: GIL, chosen: GuestThread) -> None:
        """Hand the GIL to ``chosen`` now if it is queued, else reserve it for its arrival."""
        if chosen in gil.waiters:
            self.director.started(chosen)
            gil.hand_to(chosen)
        elif chosen.state == DONE:
            self._fail(Divergence(f"thread {chosen.tid} was chosen to run, but it has ended"))
        else:
            self.reserved = chosen

    def _decide(self, ask):
        try:
            return ask()
        except Divergence as exc:
            self._fail(exc)
            return None

    def _fail(self, exc: Divergence) -> None:
        if self.divergence is None:
            self.divergence = exc
        self._abort(None)
