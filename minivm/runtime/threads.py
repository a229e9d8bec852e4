"""Guest threads on real OS threads, guest locks, and the scheduler that blocks and wakes them.

Design note
-----------
* **One OS thread per guest thread** (``_thread.start_new_thread``, CPython's ``pthread_create``).
  A guest thread executes instructions only while it holds the GIL (``gil/lock.py``).
* **Every guest thread gets the same room**: the host's default stack size and recursion
  limit, the main thread included. Nothing a guest thread does recurses on the host in
  proportion to its data or its calls (guest frames are a list; printing and comparing
  keep their own stacks, ``values.MAX_DATA_DEPTH``), so no thread needs more, whatever
  its number, and 10,000 threads reserve only default-sized stacks.
* **One mutex for all scheduling state.** Thread states, guest locks, join lists and the
  GIL's own fields are guarded by the single ``mutex`` the GIL was built with, so "wake
  thread B and queue it for the GIL" is one atomic step.
* **Every wake-up is done by its cause, under the GIL**: spawn queues the new thread,
  releasing a lock hands it to the next waiter, a thread's exit wakes its joiners. Nothing
  depends on when an OS thread happens to get scheduled, which is why ``fifo`` is
  deterministic.
* **Blocking** (``join``, a contended ``acquire``) parks the thread on its own ``wake`` lock
  after releasing the GIL; ``sleep`` releases the GIL and sleeps. A thread is *live* until
  it ends; *blocked* while it waits on ``join`` or a lock.
* **Ticks.** Each thread carries its own tick clock (``thread.clock``, ``runtime/clock.py``).
  It settles its account before it blocks, sleeps or ends, and refills its own budget once
  it holds the GIL again (``TickCheck.refill``); the GIL never touches the clock.
* **Deadlock.** When every live thread is blocked, no one can ever wake them (only a running
  thread wakes others; a sleeper counts as running). That is checked, under the mutex, each
  time a thread blocks or ends, so a deadlock is reported at once, never waited out.
"""

from __future__ import annotations

import _thread
import time
from collections import deque
from typing import TYPE_CHECKING

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.errors import GuestError, InternalError, ThreadAbort
from minivm.gil.parking import Parker
from minivm.runtime.clock import TickClock
from minivm.runtime.interpreter import FRAME_STACK, Frame, arity_error, make_frame, new_frame
from minivm.runtime.values import Builtin, Function, type_name

if TYPE_CHECKING:
    from minivm.runtime.machine import Machine

RUNNING, BLOCKED, SLEEPING, DONE = "running", "blocked", "sleeping", "done"


class GuestThread:
    """A guest thread: its frames, state, result, and its counters for statistics."""

    guest_type = "thread"

    def __init__(self, vm: Machine, tid: int, frames: list[Frame]):
        self.vm = vm
        self.tid = tid
        self.frames = frames
        self.state = RUNNING
        self.priority = 0
        self.result: object = None
        self.error: GuestError | None = None
        self.joiners: list[GuestThread] = []
        self.waiting_for: str = ""
        # While blocked: the queue it waits in (a thread's ``joiners`` or a lock's ``waiters``),
        # and the error its wait ends with when the scheduler breaks it (``_break_wait``).
        self.waiting_in: list[GuestThread] | deque[GuestThread] | None = None
        self.wait_error: GuestError | None = None
        # Set by another thread (the REPL on Ctrl-C): raise "interrupted" at the next check.
        self.interrupt = False
        # Set on every thread when the run is being stopped (``Machine.abort``): raise
        # ``ThreadAbort`` at the next check. The machine's ``aborting`` says the same; the
        # check reads the thread's own copy, which under ``none`` no other running thread
        # touches (on a free-threaded host a shared object's reference count is contended).
        self.stopping = False
        # Parks the thread while it is blocked; a binary semaphore, born taken.
        self.wake = Parker()
        # The host thread's identifier (``threading.get_ident``), once it has started: where
        # another thread finds this one's host frames (``runtime/compiled/frames.py``).
        self.host_ident: int | None = None
        # Its ticks: budget, check period, instructions run (runtime/clock.py).
        self.clock = TickClock(self)
        # GIL statistics, filled in by the GIL.
        self.acquisitions = 0
        self.held_ns = 0
        self.held_since_ns = 0
        self.waited_ns = 0
        self.wait_started_ns = 0
        # When its current timed wait for the GIL ends (``perf_counter_ns``; 0: none), as
        # ``COND_TIMED_WAIT`` in ``take_gil()`` would (``GIL.arm_drop_deadline``).
        self.timed_wait_ends_ns = 0
        self.waits_ns: list[int] = []
        self.releases: dict[str, int] = {}
        self.started_ns = time.perf_counter_ns()
        self.ended_ns = 0

    def __repr__(self) -> str:
        return f"<thread {self.tid}>"


class GuestLock:
    """A guest mutex (``lock()``): an owner and the threads waiting for it, in order."""

    guest_type = "lock"

    def __init__(self) -> None:
        self.owner: GuestThread | None = None
        self.waiters: deque[GuestThread] = deque()

    def __repr__(self) -> str:
        return "<lock>"


class Scheduler:
    """Starts, blocks, wakes and ends guest threads; detects deadlocks."""

    def __init__(self, vm: Machine):
        self.vm = vm
        self.gil = vm.gil
        self.mutex = vm.gil.mutex
        self.threads: list[GuestThread] = []
        self.live = 0
        self.blocked = 0
        self.spawned = 0
        self.peak_live = 0
        # The REPL's main thread (``repl/session.py``), else None. At the prompt the person
        # can still end any wait with a later input, so a deadlock that includes this thread's
        # input fails that input only, instead of stopping the whole VM.
        self.prompt_thread: GuestThread | None = None

    # -- starting
    def new_main(self, frames: list[Frame]) -> GuestThread:
        """The main thread (id 0); it takes the GIL before its first instruction."""
        main = GuestThread(self.vm, 0, frames)
        self.threads.append(main)
        self.live = self.peak_live = 1
        self.gil.acquire(main)
        return main

    def spawn(self, parent: GuestThread, function: object, args: list) -> GuestThread:
        """Start ``function(*args)`` on a new OS thread; called by the parent under the GIL."""
        if function.__class__ is Function:
            if len(args) != function.code.arity:  # type: ignore[attr-defined]
                raise arity_error(function, len(args))
            frames = [new_frame(function, args)]  # type: ignore[arg-type]
        elif function.__class__ is Builtin:
            frames = [_builtin_frame(function, args)]  # type: ignore[arg-type]
        else:
            raise GuestError(f"spawn: {type_name(function)} is not callable")
        limit = self.vm.config.max_threads
        with self.mutex:
            if self.spawned >= limit:
                raise GuestError(f"too many threads: the limit is {limit} (--max-threads)")
            self.spawned += 1
            child = GuestThread(self.vm, self.spawned, frames)
            self.threads.append(child)
            self.live += 1
            self.peak_live = max(self.peak_live, self.live)
            self.vm.host.threads_alive(self.live)
            self.vm.emit_thread("spawn", child, parent=parent.tid)
            self.gil.policy.make_runnable(self.gil, child)
        # A bare host thread, not ``threading.Thread``: its ``start`` waits on an ``Event`` for
        # the new thread to run, which costs a time slice or more on a free-threaded host
        # while other threads spin (gil/parking.py); the child needs no such handshake, it
        # waits for its first turn on its own ``Parker``.
        try:
            child.host_ident = _thread.start_new_thread(self.vm.thread_main, (child,))
        except RuntimeError as exc:  # the OS refused another thread
            raise GuestError(f"cannot start a thread: {exc}") from None
        return child

    # -- blocking
    def _block(self, thread: GuestThread, waiting_for: str, queue: list | deque) -> None:
        """Queue ``thread`` in ``queue``, mark it blocked, give up the GIL, check for deadlock,
        park, and resume. Called with the mutex held; returns with it released and the GIL
        held. Raises the wait's ``GuestError`` when the scheduler broke the wait."""
        queue.append(thread)
        thread.waiting_in = queue
        thread.state = BLOCKED
        thread.waiting_for = waiting_for
        self.blocked += 1
        self.vm.check.account(thread)
        self.vm.emit_thread("block", thread, waiting_for=waiting_for)
        self.gil.policy.release(self.gil, thread, "blocking")
        self._check_deadlock()
        self.gil.park(thread)
        self.mutex.release()
        if self.vm.aborting:
            raise ThreadAbort
        self.gil.policy.resume(self.gil, thread)
        self.vm.check.refill(thread)  # the GIL is ours again: a fresh budget
        error, thread.wait_error = thread.wait_error, None
        if error is not None:
            raise error

    def _wake(self, thread: GuestThread) -> None:
        """Wake a blocked thread (mutex held, by the thread that caused the wake-up)."""
        thread.state = RUNNING
        thread.waiting_for = ""
        thread.waiting_in = None
        self.blocked -= 1
        self.vm.emit_thread("wake", thread)
        self.gil.policy.make_runnable(self.gil, thread)

    def join(self, thread: GuestThread, target: object) -> object:
        """Wait for ``target`` to end, without holding the GIL; return its result."""
        if not isinstance(target, GuestThread):
            raise GuestError(f"join expects a thread, got {type_name(target)}")
        if target is thread:
            raise GuestError(f"thread {thread.tid} cannot join itself")
        self.mutex.acquire()
        if target.state != DONE:
            self._block(thread, f"joins thread {target.tid}", target.joiners)
        else:
            self.mutex.release()
        if target.error is not None:
            raise GuestError(f"thread {target.tid} failed: {target.error.message}")
        return target.result

    def acquire_lock(self, thread: GuestThread, lock: object) -> None:
        """Take a guest lock, waiting without the GIL if another thread owns it."""
        if not isinstance(lock, GuestLock):
            raise GuestError(f"acquire expects a lock, got {type_name(lock)}")
        self.mutex.acquire()
        if lock.owner is None:
            lock.owner = thread
            self.mutex.release()
            return
        if lock.owner is thread:
            self.mutex.release()
            raise GuestError(f"thread {thread.tid} already holds this lock (acquired twice)")
        self._block(thread, f"waits for a lock held by thread {lock.owner.tid}", lock.waiters)
        if lock.owner is not thread:
            raise InternalError(f"thread {thread.tid} woke without the lock it waited for")

    def release_lock(self, thread: GuestThread, lock: object) -> None:
        """Release a guest lock; the longest waiter, if any, gets it at once."""
        if not isinstance(lock, GuestLock):
            raise GuestError(f"release expects a lock, got {type_name(lock)}")
        with self.mutex:
            if lock.owner is not thread:
                raise GuestError("lock not held by this thread (release of a lock not held)")
            if lock.waiters:
                nxt = lock.waiters.popleft()
                lock.owner = nxt
                self._wake(nxt)
            else:
                lock.owner = None

    def sleep(self, thread: GuestThread, seconds: float) -> None:
        """Sleep without holding the GIL (the model of blocking I/O)."""
        with self.mutex:
            thread.state = SLEEPING
            self.vm.check.account(thread)
            self.vm.emit_thread("block", thread, waiting_for="sleep")
            self.gil.policy.release(self.gil, thread, "blocking")
        deadline = time.monotonic() + seconds
        # Sleep in slices so an abort (deadlock elsewhere, Ctrl-C) is noticed promptly.
        while not self.vm.aborting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 0.05))
        if self.vm.aborting:
            raise ThreadAbort
        with self.mutex:
            thread.state = RUNNING
            self.vm.emit_thread("wake", thread)
        self.gil.acquire(thread)
        self.vm.check.refill(thread)

    # -- ending
    def finish(self, thread: GuestThread) -> None:
        """``thread`` has ended: wake its joiners, give up the GIL, maybe end the program."""
        with self.mutex:
            thread.state = DONE
            thread.ended_ns = time.perf_counter_ns()
            self.vm.check.account(thread)
            self.vm.emit_thread("exit", thread)
            for joiner in thread.joiners:
                self._wake(joiner)
            thread.joiners.clear()
            self.live -= 1
            self.vm.host.threads_alive(self.live)
            if self.gil.holder is thread or not self.gil.policy.uses_gil:
                self.gil.policy.release(self.gil, thread, "exit")
            if self.live == 0:
                self.vm.finished.set()
            else:
                self._check_deadlock()

    def _check_deadlock(self) -> None:
        if self.live == 0 or self.blocked < self.live or self.vm.aborting:
            return
        waits = [
            f"thread {t.tid} {t.waiting_for}" for t in self.threads if t.state == BLOCKED
        ]
        error = GuestError("deadlock: every live thread is blocked: " + "; ".join(waits))
        prompt = self.prompt_thread
        if prompt is not None and prompt.state == BLOCKED:
            self._break_wait(prompt, error)
            return
        self.vm.abort_locked(error)

    def _break_wait(self, thread: GuestThread, error: GuestError) -> None:
        """End ``thread``'s ``join`` or ``acquire`` with ``error`` (mutex held): it leaves its
        queue, wakes like any woken waiter, and raises ``error`` once it holds the GIL."""
        assert thread.waiting_in is not None
        thread.waiting_in.remove(thread)
        thread.wait_error = error
        self._wake(thread)

    def wake_everyone_for_abort(self) -> None:
        """Release every parked thread so it can see the abort and unwind (mutex held)."""
        for thread in self.threads:
            if thread.state != DONE and not thread.wake.pending():
                thread.wake.unpark()
        self.gil.cond.notify_all()
        self.gil.switch_cond.notify_all()


def _builtin_frame(builtin: Builtin, args: list) -> Frame:
    """A frame that calls a builtin and returns its result: ``spawn print("hi")`` works."""
    code = _call_thunk(len(args))
    frame = make_frame(code, None, [])
    frame[FRAME_STACK].extend([builtin, *args])
    return frame


def _call_thunk(arity: int) -> CodeObject:
    return CodeObject(
        name="<spawned builtin>", file="<builtin>", first_line=0, params=(), local_names=(),
        instructions=((op.CALL, arity), (op.RETURN, 0)), lines=(0, 0), constants=(), names=(),
        free_names=(), free_sources=(), max_stack=arity + 1,
        fast=((op.CALL, arity), (op.RETURN, 0)),
    )  # fmt: skip
