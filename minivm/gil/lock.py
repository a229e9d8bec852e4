"""The GIL: one lock for the whole VM, and the bookkeeping every policy shares.

Design note
-----------
* **What it is.** ``GIL.holder`` is the guest thread allowed to execute instructions; at most
  one thread holds it (CPython's ``interpreter_lock``/``gil->locked``). It is created when
  the VM starts and granted to the main thread before its first instruction (the VM's
  ``Py_Initialize``).
* **Who waits on what.** Every field here is guarded by ``mutex``, the scheduler's one
  lock (thread states and guest locks live under it too, so a wake-up and the GIL hand-off
  it causes are one atomic step). A thread waiting for the GIL waits either on ``cond``
  (the *battle* policies, ``ticks`` and ``timed``: whoever gets there first wins) or on its
  own ``wake`` lock (the *hand-off* policies, ``fifo`` and ``priority``: the releaser names
  the next holder and wakes exactly that thread).
* **When a switch may happen.** Only at the check (every ``check_interval`` ticks), when
  the holder blocks (``sleep``, ``join``, a contended ``acquire``), or when it ends. Never in
  the middle of an instruction: that is what makes one instruction atomic.
* **Invariants.** ``grant`` requires the GIL to be free and ``vacate`` requires the caller
  to be the holder; a violation raises ``InternalError`` at once (a broken lock must stop the
  VM, not limp on — the habit of CPython's ``Py_FatalError`` in ``ceval_gil.c``).
* **Layering.** The GIL knows guest threads only as holders and waiters; it never calls
  back into the runtime. In particular it does not refill a new holder's tick budget: the
  thread does that itself once ``acquire`` (or its policy's ``resume``) returns
  (``runtime/check.py``). The runtime tells it the VM is stopping with ``stop``.
* **What is counted.** ``switches`` counts changes of holder (CPython's ``switch_number``);
  ``releaser_reacquired`` counts checks at which another thread was waiting and the same
  thread ran on; per-thread held and waited time come from ``time.perf_counter_ns``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from minivm.errors import InternalError, ThreadAbort
from minivm.gil.parking import HostCondition

if TYPE_CHECKING:
    from minivm.gil.policies import Policy
    from minivm.runtime.threads import GuestThread


class GIL:
    """The global interpreter lock of one VM: holder, waiters, counters, events."""

    def __init__(self, policy: Policy, mutex: threading.Lock, events=None):
        self.policy = policy
        self.mutex = mutex
        self.cond = HostCondition(mutex)
        # Signalled when the holder changes (CPython's switch_cond, for forced switching).
        self.switch_cond = HostCondition(mutex)
        self.holder: GuestThread | None = None
        self.last_holder: GuestThread | None = None
        self.waiters: deque[GuestThread] = deque()
        self.drop_request = False
        # The earliest timed waiter's deadline (``perf_counter_ns``; 0: none), valid while
        # ``switches`` is still ``deadline_switches``, and that waiter (``arm_drop_deadline``).
        self.drop_deadline_ns = 0
        self.deadline_switches = 0
        self.deadline_by: GuestThread | None = None
        # The length of a timed wait (``timed``'s switch interval, ns), learnt when armed.
        self.drop_interval_ns = 0
        # Counters (read by statistics).
        self.switches = 0
        self.releaser_reacquired = 0
        self.drop_requests = 0
        self.forced_switches = 0
        self.events = events
        self.created_ns = time.perf_counter_ns()
        self.held_ns = 0
        # Set once when the VM stops (``stop``): every waiter gives up (``raise_if_stopping``).
        self.stopping = False

    # -- stopping
    def stop(self) -> None:
        """The VM is stopping (the runtime's abort, mutex held): from now on every thread that
        waits for the GIL, or is woken, unwinds instead of running on."""
        self.stopping = True

    def raise_if_stopping(self) -> None:
        """Raise ``ThreadAbort`` if the VM is stopping (a waiter calls this each time it wakes:
        it learns of the stop from the lock, not by reaching back into the runtime)."""
        if self.stopping:
            raise ThreadAbort

    # -- primitives; the caller holds ``mutex``
    def grant(self, thread: GuestThread, handoff: bool = False) -> None:
        """Make ``thread`` the holder. The GIL must be free. ``handoff``: another thread grants
        it (the grantee is parked and will ``resumed`` once its host thread runs again)."""
        if self.holder is not None:
            raise InternalError(
                f"GIL granted to thread {thread.tid} while thread {self.holder.tid} holds it"
            )
        now = time.perf_counter_ns()
        self.holder = thread
        if self.last_holder is not thread:
            self.switches += 1
            self.last_holder = thread
            if self.drop_deadline_ns and self.waiters:
                self._rearm_drop_deadline()
        thread.acquisitions += 1
        thread.held_since_ns = now
        if thread.wait_started_ns:
            waited = now - thread.wait_started_ns
            thread.waited_ns += waited
            thread.waits_ns.append(waited)
            thread.wait_started_ns = 0
        if self.events is not None:
            if handoff:
                self.events.gil_event("gil_acquire", thread, handoff=True)
            else:
                self.events.gil_event("gil_acquire", thread)

    def vacate(self, thread: GuestThread, reason: str) -> None:
        """``thread`` stops holding the GIL, for ``reason`` (tick, blocking, forced,
        handoff, exit); a ``forced`` release (a drop request obeyed) counts as a forced switch."""
        if self.holder is not thread:
            holder = "nobody" if self.holder is None else f"thread {self.holder.tid}"
            raise InternalError(f"thread {thread.tid} released the GIL held by {holder}")
        now = time.perf_counter_ns()
        self.holder = None
        if reason == "forced":
            self.forced_switches += 1
        held = now - thread.held_since_ns
        thread.held_ns += held
        self.held_ns += held
        thread.releases[reason] = thread.releases.get(reason, 0) + 1
        if self.events is not None:
            self.events.gil_event("gil_release", thread, reason=reason)

    def start_waiting(self, thread: GuestThread) -> None:
        """Record that ``thread`` begins to wait for the GIL and queue it, last."""
        thread.wait_started_ns = time.perf_counter_ns()
        self.waiters.append(thread)
        if self.events is not None:
            self.events.gil_event("gil_wait", thread)

    def stop_waiting(self, thread: GuestThread) -> None:
        """Take ``thread`` out of the waiter queue (it is about to be granted the GIL)."""
        self.waiters.remove(thread)
        thread.timed_wait_ends_ns = 0

    def hand_to(self, chosen: GuestThread) -> None:
        """The hand-off: grant the (free) GIL to the waiter ``chosen`` and wake it.

        The wake-up is the *last* step: by then the releaser is queued or gone and every
        field is consistent, and the woken thread passes through ``mutex`` (``park``,
        ``await_first_turn``) before it runs, so it sees the hand-off complete.
        """
        self.stop_waiting(chosen)
        self.grant(chosen, handoff=True)
        chosen.wake.unpark()

    def resumed(self, thread: GuestThread) -> None:
        """``thread``, granted the GIL by a hand-off, runs again on its host thread (the time
        in between was spent waiting for the host to schedule it: a timeline shows it)."""
        if self.events is not None:
            self.events.gil_event("resume", thread)

    def park(self, thread: GuestThread) -> None:
        """Wait on ``thread``'s own wake lock with ``mutex`` released; return with it held."""
        self.mutex.release()
        try:
            thread.wake.park()
        finally:
            self.mutex.acquire()

    def await_first_turn(self, thread: GuestThread) -> None:
        """A new thread's first wait (no mutex held): parked until its spawner made it
        runnable, then through ``mutex`` like every later wake-up, so that whatever the
        waker was doing under the mutex is finished before this thread looks at anything."""
        thread.wake.park()
        with self.mutex:
            pass

    def runs_on(self) -> None:
        """At a check with someone waiting, the holder keeps the GIL (``releaser_reacquired``)."""
        self.releaser_reacquired += 1

    def won_back(self, thread: GuestThread) -> None:
        """The holder released the battle lock at a check and took it straight back, with
        nobody else in between (``ticks``'s unobserved battle): counted as a tick release
        and a re-acquisition, as ``vacate`` and ``grant`` would, without ``mutex`` (only the
        holder writes these fields while it holds the GIL) and without any held-time split."""
        self.releaser_reacquired += 1
        thread.releases["tick"] = thread.releases.get("tick", 0) + 1
        thread.acquisitions += 1

    def clear_drop_request(self) -> None:
        """Forget a drop request (the GIL changed hands, or nobody waits any more)."""
        self.drop_request = False

    def arm_drop_deadline(self, by: GuestThread, interval_ns: int) -> None:
        """Waiter ``by`` begins a timed wait of ``interval_ns`` (mutex held): at that deadline,
        unless the GIL has changed hands meanwhile, a drop is due (``drop_deadline_passed``).
        The earliest deadline since the last switch stands, as the first waiter to time out
        sets ``gil_drop_request`` in ``take_gil()``."""
        deadline = time.perf_counter_ns() + interval_ns
        by.timed_wait_ends_ns = deadline
        self.drop_interval_ns = interval_ns
        if self.deadline_switches != self.switches or not self.drop_deadline_ns or deadline < self.drop_deadline_ns:
            self.drop_deadline_ns = deadline
            self.deadline_switches = self.switches
            self.deadline_by = by

    def _rearm_drop_deadline(self) -> None:
        """The GIL changed hands while timed waiters wait (mutex held, from ``grant``): the
        deadline they armed was for the old holder. In ``take_gil()`` each of them, when its
        timed wait ends, sees the switch number changed and waits one more interval before
        it makes a request; so the new deadline is the earliest end of their current waits
        plus one interval. Set here, the holder's check enforces it without waiting for that
        waiter to run again (on a GIL host, to win the host's lock first), and even if that
        waiter's own timer is longer than the interval."""
        first = None
        for waiter in self.waiters:
            if waiter.timed_wait_ends_ns and (first is None or waiter.timed_wait_ends_ns < first.timed_wait_ends_ns):
                first = waiter
        if first is not None:
            self.drop_deadline_ns = first.timed_wait_ends_ns + self.drop_interval_ns
            self.deadline_switches = self.switches
            self.deadline_by = first

    def drop_deadline_passed(self) -> bool:
        """Whether a timed waiter's deadline has passed with no switch since it was armed
        (read by the holder at its check, with or without the mutex)."""
        deadline = self.drop_deadline_ns
        return bool(deadline) and self.deadline_switches == self.switches and time.perf_counter_ns() >= deadline

    def request_drop(self, by: GuestThread) -> None:
        """A waiter timed out: ask the holder to drop the GIL at its next check."""
        self.drop_request = True
        self.drop_requests += 1
        if self.events is not None:
            self.events.gil_event("drop_request", by)

    # -- the policy's entry points, as the rest of the VM calls them
    def acquire(self, thread: GuestThread) -> None:
        """Block until ``thread`` holds the GIL (the policy decides who goes first)."""
        with self.mutex:
            self.policy.acquire(self, thread)

    def release(self, thread: GuestThread, reason: str) -> None:
        """``thread`` gives the GIL up because it blocks or ends."""
        with self.mutex:
            self.policy.release(self, thread, reason)

    def check(self, thread: GuestThread) -> None:
        """The check: the holder has spent its ticks; the policy may switch threads."""
        self.policy.check(self, thread)
