"""The interface of a lock policy: what the GIL asks, and when.

A policy decides three things, always with the GIL's ``mutex`` held unless noted:

* ``acquire(gil, t)`` — ``t`` wants the GIL: take it now or wait;
* ``release(gil, t, reason)`` — ``t`` blocks or ends: who, if anyone, gets the GIL;
* ``check(gil, t)`` — the holder reached the check (called *without* the mutex, so that
  the common case, nobody waiting, costs no locking at all);
* ``make_runnable(gil, t)`` — the holder wakes ``t`` (from ``join``, a lock, or spawn);
  ``resume(gil, t)`` — ``t``'s own host thread continues after that wake (no mutex held).

Every wake-up is performed by the thread that causes it, while it holds the GIL: under
``fifo`` that makes a program without ``sleep`` or ``time()`` run the same way every time.

A policy sees only the GIL and the threads it is handed: it changes the GIL's state through
the primitives of ``gil/lock.py`` (never its fields or its waiter queue directly), learns
that the VM is stopping from ``gil.raise_if_stopping()``, and never touches a thread's tick
clock (the thread refills its own budget once it holds the GIL again).

The policies come in two families: the *battle* policies (``gil/battle.py``: ``ticks`` and
``timed``, where the GIL is free at a switch and whoever takes it first wins, as in CPython)
and the *hand-off* policies (``gil/policies.py``: ``fifo`` and ``priority``, where the
releaser names the next holder); ``none`` has no GIL at all. ``gil/policies.py`` finds a
policy by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minivm.gil.lock import GIL
    from minivm.runtime.threads import GuestThread


class Policy:
    """The interface every lock policy implements."""

    name = "?"
    uses_gil = True
    # True for a policy that decides the length of every turn itself (replay, explore: see
    # minivm/schedule/control.py); the machine then asks it for ``budget(thread)`` and calls
    # ``boundary(gil, thread)`` at every check of the loop.
    controls_turns = False

    def acquire(self, gil: GIL, thread: GuestThread) -> None:
        """Take the GIL for ``thread`` now, or wait until this policy lets it."""
        raise NotImplementedError

    def release(self, gil: GIL, thread: GuestThread, reason: str) -> None:
        """``thread`` gives the GIL up (it blocks or ends)."""
        raise NotImplementedError

    def check(self, gil: GIL, thread: GuestThread) -> None:
        """The holder reached the check; switch threads if the policy says so. Called only
        when someone waits for the GIL (``TickCheck``): with nobody waiting no policy has
        anything to decide, and no drop request is pending either (``timed``'s waiter makes
        it, and the grant that ends its wait clears it). A policy that arms a drop deadline
        (``GIL.arm_drop_deadline``) is not asked by the plain check before that deadline
        unless a drop is requested; the holder's run-on is counted for it."""
        raise NotImplementedError

    def make_runnable(self, gil: GIL, thread: GuestThread) -> None:
        """The holder wakes ``thread``; by default it will compete for the GIL itself."""
        thread.wake.unpark()

    def resume(self, gil: GIL, thread: GuestThread) -> None:
        """``thread`` was woken; get the GIL back before running on."""
        gil.acquire(thread)
