"""The battle policies, ``ticks`` (CPython up to 3.1) and ``timed`` (CPython 3.2 and later):
at a switch the GIL is free, and whichever thread takes it first holds it — the releaser
included. The interface they implement, and what a policy may touch, is ``gil/policy.py``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from minivm.gil.policy import Policy

if TYPE_CHECKING:
    from minivm.gil.lock import GIL
    from minivm.runtime.threads import GuestThread


class TicksPolicy(Policy):
    """``ticks`` — CPython up to 3.1 (``ceval.c``'s ``_Py_Ticker``, ``sys.setcheckinterval``,
    100 ticks by default). At the check the holder releases the GIL, and all the threads that
    want it, itself included, battle to take it again, in no order.

    The battle is a real one, fought on a real lock: ``battle`` is a host ``threading.Lock``
    (a C-level semaphore, as CPython 2's ``interpreter_lock`` was), held exactly while the GIL
    is held. Waiters block in its ``acquire`` *without* any Python-level bookkeeping in the
    way; the releaser does ``release()`` then at once ``acquire()``, as CPython 2's
    ``ceval.c`` did (``PyThread_release_lock(interpreter_lock); /* Other threads may run
    now */ PyThread_acquire_lock(interpreter_lock, 1);``). Who wins is decided by the lock
    and the OS: usually the releaser, which is already running (98.7% on CPython 2 in David
    Beazley's measurements), sometimes a waiter woken in time. The GIL's fields follow the
    lock under ``mutex``: ``holder`` is set only by the thread that won ``battle``. At a check
    the releaser leaves its fields in place while it is out of the lock (nothing else stands
    between its release and its re-acquire, as in ``ceval.c``); a waiter that wins records
    the releaser's release before its own acquisition. With a trace or timeline on, the
    release is recorded first, as separate events.
    """

    name = "ticks"
    # Waiters wake this often (seconds) to notice an abort (deadlock elsewhere, Ctrl-C).
    ABORT_POLL_S = 0.05

    def __init__(self) -> None:
        self.battle = threading.Lock()
        # The holder that released ``battle`` at a check without first clearing the GIL's
        # fields (the fast battle, see ``check``); written only by the owner of ``battle``.
        self.releasing: GuestThread | None = None

    def acquire(self, gil: GIL, thread: GuestThread) -> None:
        if self.battle.acquire(blocking=False):
            self._take_over(gil, thread)
            return
        gil.start_waiting(thread)
        gil.mutex.release()
        try:
            while not self.battle.acquire(timeout=self.ABORT_POLL_S):
                gil.raise_if_stopping()
        finally:
            gil.mutex.acquire()
        gil.stop_waiting(thread)
        self._take_over(gil, thread)

    def _take_over(self, gil: GIL, thread: GuestThread) -> None:
        """``thread`` won ``battle`` (mutex held): record the releaser's release if the
        releaser could not yet do it itself, then make ``thread`` the holder."""
        releaser = self.releasing
        if releaser is not None and gil.holder is releaser:
            gil.vacate(releaser, "tick")
        self.releasing = None
        gil.grant(thread)

    def release(self, gil: GIL, thread: GuestThread, reason: str) -> None:
        gil.vacate(thread, reason)
        self.battle.release()

    def check(self, gil: GIL, thread: GuestThread) -> None:
        if not gil.waiters:
            return
        if gil.events is not None:
            self._observed_battle(gil, thread)
            return
        # The fast battle: nothing but the lock itself between release and re-acquire, and
        # no bookkeeping under ``mutex`` when the releaser wins (almost always), so the check
        # costs what CPython 2's did: a release and an acquire. The GIL's fields still name
        # the releaser while it is out of the lock; a waiter that wins clears them for it
        # (``_take_over``), and whichever of the two reaches ``mutex`` first does it.
        self.releasing = thread
        battle = self.battle
        # The battle: between these two lines a woken waiter may take the lock. The lock is
        # in a local and the argument positional, so the window is a few bytecodes wide,
        # as close as Python gets to ``ceval.c``'s two adjacent C calls.
        battle.release()
        if battle.acquire(False):
            if gil.holder is not thread:
                # A waiter won in between and has already given the lock up again: this
                # thread's release was recorded by that waiter; take over like any winner.
                with gil.mutex:
                    self._take_over(gil, thread)
                return
            self.releasing = None
            # Won straight back: counted as a tick release and a re-acquisition, as the
            # observed battle records them, without touching the waiters' mutex.
            gil.won_back(thread)
            return
        with gil.mutex:
            if gil.holder is thread:
                gil.vacate(thread, "tick")
                self.releasing = None
            self.acquire(gil, thread)

    def _observed_battle(self, gil: GIL, thread: GuestThread) -> None:
        """The battle with every step recorded (a trace or a timeline is on): the release and
        the re-acquisition are separate GIL events, so the fields change under ``mutex``."""
        with gil.mutex:
            gil.vacate(thread, "tick")
            contenders = len(gil.waiters)
        self.battle.release()
        if self.battle.acquire(blocking=False):
            with gil.mutex:
                if contenders:
                    gil.runs_on()
                gil.grant(thread)
            return
        with gil.mutex:
            self.acquire(gil, thread)


class TimedPolicy(Policy):
    """``timed`` — CPython 3.2 and later (``Python/ceval_gil.c``, ``sys.setswitchinterval``).

    A waiter waits on the GIL's condition for up to ``switch_interval`` seconds; if it times
    out and no switch happened meanwhile, it sets ``drop_request`` (``gil_drop_request``).
    The holder polls the request at its check and drops the GIL ("forced"); then, as with
    ``FORCE_SWITCHING``, it waits until another thread has taken the GIL before it competes
    again, so a forced switch really switches.

    The holder polls at every check (every ``--check-interval`` ticks), where CPython's
    eval breaker is polled at certain instructions; with the default interval of 100 that is
    every few microseconds, far below the 5 ms switch interval.

    The holder also reads the waiter's deadline at its check (``GIL.arm_drop_deadline``) and
    makes the request on the waiter's behalf once it has passed with no switch: the same
    moment as the waiter's own timeout, without the waiter having to run first. On a GIL
    host the timed-out waiter must first win the host's own lock to make its request (and
    the holder win it back), which added ~200 µs to every wait: 1.21 ms waits at
    ``--switch-interval 0.001``. The waiter's own timeout stays, for a holder that does
    not reach a check. When the GIL changes hands while others still wait, their deadline
    moves to the earliest end of their current waits plus one interval
    (``GIL._rearm_drop_deadline``), as each of them would re-wait in ``take_gil()``.

    Before the deadline, with no request pending, the plain check does not call ``check``
    at all (``runtime/check.py``): like CPython 3's eval breaker, the switch interval costs
    the holder nothing until a drop is due. Two busy threads against the same work in
    sequence (compiled tier, interval 100, medians of 9 or 11): 1.29–1.48× in two runs when
    every check with a waiter called ``check``, 1.17× without the call (docs/experiments.md,
    section 1, has the figure of the latest run).
    """

    name = "timed"
    # A holder that dropped the GIL on request wakes this often (seconds) to notice an abort;
    # the new holder's take wakes it at once (``switch_cond``), so no switch waits for this.
    ABORT_POLL_S = 0.05

    def __init__(self, switch_interval: float):
        self.switch_interval = switch_interval
        self.interval_ns = round(switch_interval * 1e9)

    def acquire(self, gil: GIL, thread: GuestThread) -> None:
        if gil.holder is None and not gil.waiters:
            self._take(gil, thread)
            return
        gil.start_waiting(thread)
        while gil.holder is not None:
            switches_before = gil.switches
            gil.arm_drop_deadline(thread, self.interval_ns)
            signalled = gil.cond.wait(self.switch_interval)
            gil.raise_if_stopping()
            if not signalled and gil.holder is not None and gil.switches == switches_before:
                gil.request_drop(thread)
        gil.stop_waiting(thread)
        self._take(gil, thread)

    def _take(self, gil: GIL, thread: GuestThread) -> None:
        gil.grant(thread)
        gil.clear_drop_request()  # as take_gil() resets gil_drop_request
        gil.switch_cond.notify_all()

    def release(self, gil: GIL, thread: GuestThread, reason: str) -> None:
        gil.vacate(thread, reason)
        gil.cond.notify()

    def check(self, gil: GIL, thread: GuestThread) -> None:
        if not gil.drop_request:
            if not gil.waiters:
                return
            # ``gil.drop_deadline_passed()`` written out: this runs at every check while
            # someone waits, a few microseconds apart on the compiled tier.
            deadline = gil.drop_deadline_ns
            if not deadline or gil.deadline_switches != gil.switches or time.perf_counter_ns() < deadline:
                gil.runs_on()
                return
        with gil.mutex:
            if not gil.drop_request and gil.waiters and gil.drop_deadline_passed():
                # The waiter's timeout, seen here first: the request is made on its behalf.
                gil.request_drop(gil.deadline_by)
            if not gil.drop_request or not gil.waiters:
                gil.clear_drop_request()
                return
            gil.vacate(thread, "forced")
            gil.cond.notify()
            # FORCE_SWITCHING: do not compete until someone else has had the GIL.
            while gil.last_holder is thread and gil.waiters:
                gil.switch_cond.wait(self.ABORT_POLL_S)
                gil.raise_if_stopping()
            self.acquire(gil, thread)
