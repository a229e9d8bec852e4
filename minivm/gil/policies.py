"""The lock policies by name (``make_policy``), and the ones that need no battle: the
*hand-off* policies, ``fifo`` and ``priority``, where the releaser names the next holder, and
``none``, with no GIL at all. The interface is ``gil/policy.py``; ``ticks`` and ``timed``,
where threads battle for a free GIL, are ``gil/battle.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minivm.errors import InternalError
from minivm.gil.battle import TicksPolicy, TimedPolicy
from minivm.gil.policy import Policy

if TYPE_CHECKING:
    from minivm.gil.lock import GIL
    from minivm.runtime.threads import GuestThread

__all__ = [
    "POLICY_NAMES", "FifoPolicy", "HandoffPolicy", "NoGilPolicy", "Policy", "PriorityPolicy",
    "TicksPolicy", "TimedPolicy", "check_policy_name", "make_policy",
]  # fmt: skip


class HandoffPolicy(Policy):
    """Shared mechanics of the policies that name the next holder: the GIL is never free
    while someone waits; the releaser grants it to the chosen waiter and wakes just that
    thread, which finds itself the holder when it wakes."""

    def choose(self, gil: GIL) -> GuestThread:
        """The waiter that gets the GIL next."""
        raise NotImplementedError

    def yields_to(self, holder: GuestThread, candidate: GuestThread) -> bool:
        """At the check: does the holder give way to ``candidate``?"""
        return True

    def acquire(self, gil: GIL, thread: GuestThread) -> None:
        if gil.holder is None and not gil.waiters:
            gil.grant(thread)
            return
        gil.start_waiting(thread)
        self._wait_for_grant(gil, thread)

    def _wait_for_grant(self, gil: GIL, thread: GuestThread) -> None:
        gil.park(thread)
        gil.raise_if_stopping()
        if gil.holder is not thread:
            raise InternalError(f"thread {thread.tid} woke without being granted the GIL")
        gil.resumed(thread)

    def _hand_over(self, gil: GIL) -> None:
        if gil.waiters:
            gil.hand_to(self.choose(gil))

    def release(self, gil: GIL, thread: GuestThread, reason: str) -> None:
        gil.vacate(thread, reason)
        self._hand_over(gil)

    def check(self, gil: GIL, thread: GuestThread) -> None:
        # An unlocked hint, decided again under the mutex: every thread that joins the queue
        # without sleeping is queued by the holder itself or by a releaser before it woke the
        # holder, so under ``fifo`` the hint is the same in every run.
        if not gil.waiters:
            return
        with gil.mutex:
            if not gil.waiters:
                return
            chosen = self.choose(gil)
            if not self.yields_to(thread, chosen):
                gil.runs_on()
                return
            self._switch(gil, thread, chosen)

    def _switch(self, gil: GIL, thread: GuestThread, chosen: GuestThread) -> None:
        """The holder ``thread`` hands the GIL to the waiter ``chosen`` and queues behind it,
        returning when it holds the GIL again (mutex held throughout). The releaser is queued
        *before* the next holder is woken: a woken thread that ran before the releaser had
        queued saw no waiter at its next check and ran on, so a traced fifo run differed."""
        gil.vacate(thread, "handoff")
        gil.start_waiting(thread)
        self._give(gil, chosen)
        self._wait_for_grant(gil, thread)

    def _give(self, gil: GIL, chosen: GuestThread) -> None:
        """Grant the free GIL to ``chosen`` and wake it (a controlled policy may also have to
        reserve it for a thread still on its way)."""
        gil.hand_to(chosen)

    def make_runnable(self, gil: GIL, thread: GuestThread) -> None:
        if gil.holder is None and not gil.waiters:
            gil.grant(thread, handoff=True)
            thread.wake.unpark()
        else:
            gil.start_waiting(thread)

    def resume(self, gil: GIL, thread: GuestThread) -> None:
        # The waker granted the GIL before it woke us: nothing left to do but say so.
        if gil.stopping:
            return
        if gil.holder is not thread:
            raise InternalError(f"thread {thread.tid} resumed without the GIL")
        with gil.mutex:
            gil.resumed(thread)


class FifoPolicy(HandoffPolicy):
    """``fifo`` — a fair ticket lock. At the check, if anyone waits, the GIL goes straight
    to the longest waiter and the holder queues behind it. No battle, so the releaser never
    wins it back (``releaser_reacquired`` is 0 by design), and with every wake-up made under
    the GIL by its cause, a program without ``sleep``/``time()`` is deterministic."""

    name = "fifo"

    def choose(self, gil: GIL) -> GuestThread:
        return gil.waiters[0]


class PriorityPolicy(HandoffPolicy):
    """``priority`` — Java-style thread priorities (``Thread.setPriority``). At the check the
    GIL goes to the waiting thread of highest priority if that is at least the holder's;
    ties go in arrival order. When the holder blocks, the highest waiter gets it."""

    name = "priority"

    def choose(self, gil: GIL) -> GuestThread:
        best = gil.waiters[0]
        for waiter in gil.waiters:
            if waiter.priority > best.priority:
                best = waiter
        return best

    def yields_to(self, holder: GuestThread, candidate: GuestThread) -> bool:
        return candidate.priority >= holder.priority


class NoGilPolicy(Policy):
    """``none`` — no GIL at all: threads run at once on an unguarded heap. This is what the
    GIL exists to prevent; ``programs/why_gil.mv`` with ``--heap-check`` shows the damage."""

    name = "none"
    uses_gil = False

    # Nothing to take or give: a thread that starts or wakes runs at once (and, like every
    # thread that may run again, refills its own tick budget: runtime/check.py).
    def acquire(self, gil: GIL, thread: GuestThread) -> None:
        return

    def release(self, gil: GIL, thread: GuestThread, reason: str) -> None:
        return

    def check(self, gil: GIL, thread: GuestThread) -> None:
        return

    def resume(self, gil: GIL, thread: GuestThread) -> None:
        return


POLICY_NAMES = ("ticks", "fifo", "timed", "priority", "none")


def check_policy_name(name: str) -> str:
    """``name`` if it is a policy; else ``ValueError`` listing the valid names."""
    if name not in POLICY_NAMES:
        raise ValueError(f"unknown policy '{name}' (choose from: {', '.join(POLICY_NAMES)})")
    return name


def make_policy(name: str, switch_interval: float = 0.005) -> Policy:
    """The policy called ``name``; raises ``ValueError`` listing the valid names."""
    check_policy_name(name)
    if name == "timed":
        return TimedPolicy(switch_interval)
    simple: dict[str, type[Policy]] = {
        "ticks": TicksPolicy, "fifo": FifoPolicy, "priority": PriorityPolicy, "none": NoGilPolicy,
    }  # fmt: skip
    return simple[name]()
