"""The host-level waits of the GIL and the scheduler (minivm/gil/parking.py): a condition
variable, a per-thread wake-up signal and the end-of-run event, each checked for the
semantics of the ``threading`` primitive it replaces."""

from __future__ import annotations

import queue
import threading

import pytest

from minivm.gil.parking import HostCondition, HostEvent, Parker

# The test's timeout is the one guard against a hang: a wait that must end is never bounded
# by a time of its own (a 10 s join or a 30 s wait, on a loaded machine, measured the host).
pytestmark = pytest.mark.timeout(60)


def _start(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_wait_times_out_without_a_notify_and_holds_the_mutex_again():
    mutex = threading.Lock()
    cond = HostCondition(mutex)
    with mutex:
        assert cond.wait(0.01) is False
        assert mutex.locked()
        assert cond.wait(0) is False
    assert not mutex.locked()


def test_notify_wakes_the_longest_waiter_first_and_notify_all_the_rest():
    mutex = threading.Lock()
    cond = HostCondition(mutex)
    woken: list[str] = []
    queued = threading.Semaphore(0)

    def waiter(name: str) -> None:
        with mutex:
            queued.release()
            assert cond.wait() is True
            woken.append(name)

    threads = []
    for name in ("first", "second", "third"):
        threads.append(_start(lambda n=name: waiter(n)))
        queued.acquire()  # each one is queued before the next starts
    with mutex:
        cond.notify()
    threads[0].join()
    assert woken == ["first"]
    with mutex:
        cond.notify_all()
    for thread in threads:
        thread.join()
    assert sorted(woken[1:]) == ["second", "third"] and woken[0] == "first"


def test_a_notify_that_meets_a_timed_out_waiter_is_consumed_not_left_for_the_next_wait():
    mutex = threading.Lock()
    cond = HostCondition(mutex)

    class LateNotify(queue.SimpleQueue):
        """A wait that times out, and a notify that comes right after, before the waiter
        has the mutex back (the race ``HostCondition.wait`` must settle)."""

        late = True

        def get(self, block=True, timeout=None):
            if self.late and timeout is not None:
                self.late = False
                with mutex:
                    cond.notify()
                raise queue.Empty
            return super().get(block, timeout)

    cond._mine.waiter = waiter = LateNotify()
    with mutex:
        assert cond.wait(0.01) is True  # the notify was meant for this waiter
        assert waiter.empty() and not cond._waiters
        assert cond.wait(0.01) is False  # nothing left over for the next wait


def test_the_parker_is_born_taken_and_each_unpark_lets_one_park_through():
    parker = Parker()
    assert not parker.pending()
    parker.unpark()
    assert parker.pending()
    parker.park()  # returns at once: the unpark came first
    assert not parker.pending()
    through = threading.Event()

    def owner() -> None:
        parker.park()
        through.set()

    thread = _start(owner)
    assert not through.wait(0.05)  # parked until someone unparks it
    parker.unpark()
    thread.join()
    assert through.is_set()


def test_the_host_event_wakes_its_waiter_and_stays_set():
    event = HostEvent()
    assert event.wait(0.01) is False and not event.is_set()
    result: list[bool] = []
    thread = _start(lambda: result.append(event.wait()))
    event.set()
    thread.join()
    assert result == [True] and event.is_set() and event.wait(0) is True
