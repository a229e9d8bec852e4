"""How a guest thread's host thread waits: parked until woken, on a condition, or for the
end of a run — without the free-threaded host's spin.

Why not ``threading.Lock``, ``Condition`` and ``Event``: they block in an ``acquire`` of a
lock, and on free-threaded CPython 3.13 a contended ``acquire`` first spins, up to 40
``sched_yield`` calls, before it parks (``Python/lock.c``, ``MAX_SPIN_COUNT``, "only enabled
for ``--disable-gil`` builds"), whenever nobody is parked on that lock yet — which is every
wait here, since each waiter has a lock of its own. With a CPU-bound thread on the same core
each yield hands that thread a time slice, so on the 2-core development machine a 5 ms
timed wait beside a spinning thread lasted 60 ms (``lock.acquire(True, 0.005)``; the same
wait through ``queue.SimpleQueue.get(timeout=0.005)``: 5.1 ms), and a ``timed`` waiter's
drop request came twelve times late. ``queue.SimpleQueue`` waits in the host's parking lot
directly, without the spin, on 3.13t; on a GIL host it waits on a lock as before. So the
GIL's and the scheduler's waits go through this module.
"""

from __future__ import annotations

import queue
import threading
from collections import deque


class HostCondition:
    """A condition variable over ``mutex`` (a host ``threading.Lock``) whose waiters each
    wait on a ``queue.SimpleQueue`` of their own host thread. ``wait(timeout)`` (seconds, or
    ``None`` for no limit) returns True when notified, False on timeout; ``notify`` and
    ``notify_all`` wake waiters in arrival order. Calling any of them without holding
    ``mutex`` is a bug of the caller (not checked: every caller is in ``minivm.gil``)."""

    def __init__(self, mutex: threading.Lock):
        self.mutex = mutex
        self._waiters: deque[queue.SimpleQueue] = deque()
        self._mine = threading.local()

    def _waiter(self) -> queue.SimpleQueue:
        """This host thread's wake-up queue, empty whenever the thread is not waiting."""
        waiter = getattr(self._mine, "waiter", None)
        if waiter is None:
            waiter = self._mine.waiter = queue.SimpleQueue()
        return waiter

    def wait(self, timeout: float | None = None) -> bool:
        """Release ``mutex``, wait until notified or ``timeout`` seconds have passed, take
        ``mutex`` again. True if notified."""
        waiter = self._waiter()
        self._waiters.append(waiter)
        self.mutex.release()
        notified = False
        try:
            waiter.get(timeout=None if timeout is None else max(timeout, 0.0))
            notified = True
        except queue.Empty:
            pass
        finally:
            self.mutex.acquire()
            if not notified:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    # Notified between the timeout and getting ``mutex`` back: take the
                    # wake-up out, so the queue is empty for the next wait, and count the
                    # wait as notified (the notify was meant for us).
                    waiter.get()
                    notified = True
        return notified

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters, longest waiting first."""
        while self._waiters and n > 0:
            self._waiters.popleft().put(None)
            n -= 1

    def notify_all(self) -> None:
        """Wake every waiter."""
        self.notify(len(self._waiters))


class Parker:
    """One guest thread's wake-up signal: a binary semaphore born taken. ``park`` blocks the
    owner until another thread calls ``unpark`` (at once if it already did); ``pending`` says
    whether an ``unpark`` has not been consumed yet. Every ``unpark`` is made under the GIL's
    ``mutex`` by the thread that causes the wake-up (``gil/lock.py``), so at most one is
    pending; the owner alone parks."""

    __slots__ = ("_signal",)

    def __init__(self) -> None:
        self._signal: queue.SimpleQueue = queue.SimpleQueue()

    def park(self) -> None:
        """Block until unparked."""
        self._signal.get()

    def unpark(self) -> None:
        """Let the owner's ``park`` return."""
        self._signal.put(None)

    def pending(self) -> bool:
        """Whether an ``unpark`` is waiting to be consumed by ``park``."""
        return not self._signal.empty()


class HostEvent:
    """``threading.Event``'s ``set``/``is_set``/``wait(timeout seconds) -> bool`` on a
    ``HostCondition``: the end of a run, which the main host thread waits for."""

    def __init__(self) -> None:
        self._flag = False
        self._cond = HostCondition(threading.Lock())

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        with self._cond.mutex:
            self._flag = True
            self._cond.notify_all()

    def is_set(self) -> bool:
        """Whether ``set`` was called."""
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set or ``timeout`` seconds have passed; returns the flag."""
        with self._cond.mutex:
            if not self._flag:
                self._cond.wait(timeout)
            return self._flag
