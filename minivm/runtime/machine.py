"""The machine: one run's lifecycle — start, wait, abort, finish — binding the GIL, the
scheduler and the engine; the check is in ``check.py``.

The state a run is made of has its own homes: the settings in ``VMConfig`` (``config.py``,
validated once), the heap, globals and roots in ``World`` (``world.py``), the streams in
``Streams`` (``streams.py``), and how the run ended in ``RunOutcome`` with its ``RunFigures``
(``outcome.py``, ``figures.py``). The machine prints only a guest thread's runtime error,
as it happens; the outcome of the run as a whole is printed by the caller
(``render_outcome``: ``minivm.api``, the command line), which also owns the exit status.

``start`` plus ``wait`` is the VM's ``Py_Initialize`` plus ``Py_RunMain``: the GIL is
created with the machine and given to the main thread before its first instruction; the
main thread runs on its own OS thread, and ``wait`` returns when every thread has ended or
the run is aborted. ``run`` does it all and prints the outcome, for tests and tools.

Every guest thread, the main one included, runs on an OS thread of the host's default stack
size: nothing the VM does on a guest thread recurses on the host (guest calls are frames in
a list; printing and comparing deep data keep their own stacks, see ``values``), so a deep
structure or a deep recursion needs the same room on every thread, which is none.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from minivm.bytecode.code import CodeObject
from minivm.errors import (
    GuestError,
    InternalError,
    ThreadAbort,
    format_guest_error,
)
from minivm.gil.lock import GIL
from minivm.gil.parking import HostEvent
from minivm.gil.policies import Policy, make_policy
from minivm.runtime.check import TickCheck
from minivm.runtime.config import VMConfig, check_interval_value
from minivm.runtime.engine import choose_engine, make_runner
from minivm.runtime.figures import take_figures
from minivm.runtime.heap import AuditReport
from minivm.runtime.host import HostSwitching
from minivm.runtime.interpreter import (
    make_frame,
)
from minivm.runtime.outcome import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, RunOutcome, is_vm_bug, render_outcome
from minivm.runtime.streams import Streams
from minivm.runtime.threads import DONE, GuestThread, Scheduler
from minivm.runtime.values import UNSET
from minivm.runtime.world import World


def _needs_interpreter(tracing: bool, config: VMConfig) -> str:
    """What a run asks that only the interpreter can do (see ``runtime/engine.py``), or ``""``."""
    if tracing:
        return "trace every instruction"
    if config.check_at != "every":
        return "place the check at backward jumps (--check-at backedge)"
    return ""


class Machine:
    """One VM. Create it, then ``run`` a compiled program once."""

    def __init__(
        self,
        config: VMConfig | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        events=None,
        policy: Policy | None = None,
    ):
        self.config = (config or VMConfig()).validate()
        # ``policy``: a policy object to use instead of the one named in the config (replay and
        # explore pass a controlled policy, minivm/schedule/control.py).
        self.policy = policy or make_policy(self.config.policy, self.config.switch_interval)
        # A policy that sets the length of every turn itself (``controls_turns``) is asked for
        # each budget and called at the end of each turn (``boundary``); None otherwise.
        self.turns = self.policy if self.policy.controls_turns else None
        # What ``time()`` returns: the host's clock, or a recorded one (minivm/schedule/).
        self.time_source = time.monotonic
        self.events = events
        self.tracing = bool(events is not None and events.wants_instructions)
        self.engine = choose_engine(
            self.config.engine, _needs_interpreter(self.tracing, self.config), self.config.recursion_limit
        )
        self.gil = GIL(self.policy, threading.Lock(), events)
        self.host = HostSwitching(self.config.host_switch_interval, self.policy.uses_gil)
        # The shared world and the streams each have their own home; ``heap``, ``globals``,
        # ``output`` and ``errors`` name the same objects for the loops that read them often.
        self.world = World()
        self.heap = self.world.heap
        self.globals = self.world.globals
        self.scheduler = Scheduler(self)
        if self.turns is not None:
            self.turns.attach(self.scheduler.threads, self.abort_locked)
        self.streams = Streams(stdout, stderr, on_closed=lambda: self.abort(None))
        self.output = self.streams.output
        self.errors = self.streams.errors
        self.aborting = False
        self.abort_error: BaseException | None = None
        self.failed = False
        self.interrupted = False
        self.finished = HostEvent()
        # The check and the tick budgets it sets (runtime/check.py, runtime/clock.py).
        self.check = TickCheck(self)
        self.main: GuestThread | None = None
        self.audit_report: AuditReport | None = None
        self.started_ns = 0
        self.ended_ns = 0
        self.run_thread = make_runner(self, self.engine)

    # -- the run's lifecycle: start, wait, finish (abort below)
    def run(self, code: CodeObject) -> int:
        """Run ``code`` as the main thread and print its outcome as ``minivm run`` does
        (``render_outcome``); returns the exit status (0 or 1). ``start``, ``wait`` and
        ``finish`` are the same steps for a caller that renders the outcome itself.

        ``KeyboardInterrupt`` (Ctrl-C while waiting) propagates after every thread was told
        to stop; the caller turns it into exit status 130.
        """
        self.start(code)
        self.wait()
        outcome = self.finish()
        render_outcome(outcome, self.errors)
        return outcome.exit_status

    def start(self, code: CodeObject) -> None:
        """Start ``code`` as the main thread (``Py_RunMain``'s start): the GIL goes to it before
        its first instruction (``Scheduler.new_main``), and it runs on its own OS thread."""
        frame = make_frame(code, None, [UNSET] * len(code.local_names))
        self.started_ns = time.perf_counter_ns()
        self.main = self.scheduler.new_main([frame])
        host = threading.Thread(target=self.thread_main, args=(self.main,), name="minivm-0", daemon=True)
        host.start()
        self.main.host_ident = host.ident

    def wait(self) -> None:
        """Wait until every thread has ended or the run was aborted. On ``KeyboardInterrupt``
        every thread is told to stop and the interrupt propagates (``interrupted_outcome``
        then describes the run)."""
        try:
            # Short waits, so that Ctrl-C reaches this thread (a long wait would not wake).
            while not self.finished.wait(0.05):
                pass
        except KeyboardInterrupt:
            self.interrupted = True
            self.abort(None)
            raise
        finally:
            self.ended_ns = time.perf_counter_ns()
            with self.gil.mutex:
                self.host.restore()

    def finish(self) -> RunOutcome:
        """After the last thread: flush the output, reclaim, audit if asked; the outcome.
        Prints nothing (``render_outcome`` does, at the caller)."""
        self.output.flush()
        error = self.abort_error
        if is_vm_bug(error):
            return self._outcome(EXIT_FAILED)
        if not self.aborting or self.config.heap_check:
            self.world.reclaim_after_run(self.scheduler.threads)
        if self.config.heap_check and not self.aborting:
            self.audit_report = self.world.audit()
            if not self.audit_report.ok:
                self.failed = True
        return self._outcome(EXIT_FAILED if (self.failed or error is not None) else EXIT_OK)

    def interrupted_outcome(self) -> RunOutcome:
        """The outcome of a run stopped by Ctrl-C (after ``wait`` raised): no reclaim or
        audit, since threads told to stop may still be running their last instruction."""
        return self._outcome(EXIT_INTERRUPTED)

    def _outcome(self, status: int) -> RunOutcome:
        errors = [t.error for t in self.scheduler.threads if t.error is not None]
        if isinstance(self.abort_error, GuestError) and self.abort_error not in errors:
            errors.append(self.abort_error)  # a deadlock: no thread of its own failed
        return RunOutcome(
            exit_status=status,
            stop_error=self.abort_error,
            errors=tuple(errors),
            audit=self.audit_report,
            interrupted=self.interrupted,
            figures=take_figures(self),
        )

    def thread_main(self, thread: GuestThread) -> None:
        """The body of every guest thread's OS thread."""
        try:
            if thread.tid != 0:
                self.gil.await_first_turn(thread)
                if self.aborting:
                    return
                self.policy.resume(self.gil, thread)
            self.check.refill(thread)  # the GIL is ours: start counting ticks
            thread.result = self.run_thread(thread)
        except ThreadAbort:
            return
        except GuestError as error:
            thread.error = error
            self.failed = True
            self.errors.write_line(format_guest_error(error))
            if thread.tid == 0:
                # A runtime error in the main thread ends the program at once.
                self.abort(error)
                return
        except BaseException as error:  # a bug in minivm itself: stop everything, loudly
            self.abort(error)
            return
        try:
            self.scheduler.finish(thread)
        except ThreadAbort:
            return
        except BaseException as error:
            self.abort(error)

    def spawn(self, parent: GuestThread, function: object, args: list) -> GuestThread:
        """``spawn f(args)`` (the interpreter calls this)."""
        return self.scheduler.spawn(parent, function, args)

    # -- aborting
    def abort(self, error: BaseException | None) -> None:
        """Stop every thread: a deadlock, a failed main thread, Ctrl-C, or a VM bug."""
        with self.gil.mutex:
            self.abort_locked(error)

    def abort_locked(self, error: BaseException | None) -> None:
        """``abort`` with the scheduler's mutex already held."""
        if self.aborting:
            return
        self.aborting = True
        for thread in self.scheduler.threads:
            thread.stopping = True
        self.gil.stop()
        self.abort_error = error
        self.scheduler.wake_everyone_for_abort()
        self.finished.set()

    def reconfigure(self, policy: str | None = None, check_interval: int | None = None) -> None:
        """Change the lock policy or the check interval between two runs of the main thread
        (the REPL's ``:policy`` and ``:check-interval``). A new policy needs a quiet VM:
        ``ValueError`` if another thread is alive or anyone holds or waits for the GIL."""
        if check_interval is not None:
            self.config.check_interval = check_interval_value(check_interval)
        if policy is None:
            return
        with self.gil.mutex:
            others = self.scheduler.live - (1 if self.main is not None and self.main.state != DONE else 0)
            if others or self.gil.holder is not None or self.gil.waiters:
                raise ValueError(f"{others} other thread(s) still alive: join them first")
            self.policy = make_policy(policy, self.config.switch_interval)
            self.config.policy = policy
            self.gil.policy = self.policy
            self.check.use_policy(self.policy)
            # The engines hold the check they call (the namespace of generated code, the
            # interpreter's loop): make them anew, so they call the new policy's.
            self.run_thread = make_runner(self, self.engine)
            self.host.restore()
            self.host = HostSwitching(self.config.host_switch_interval, self.policy.uses_gil)

    def unknown_opcode(self, opcode: int) -> None:
        """Reached by an opcode the dispatch chain does not know: a VM bug."""
        raise InternalError(f"unknown opcode {opcode}")

    # -- the heap's roots (the world holds them; the check asks for them mid-run)
    def _held_values(self, all_threads: bool):
        """Uncounted references of every thread (``World.held_values``)."""
        return self.world.held_values(self.scheduler.threads, all_threads)

    # -- events
    def emit_thread(self, kind: str, thread: GuestThread, **fields) -> None:
        """Send a thread event (spawn, block, wake, exit) to the observer, if any."""
        if self.events is not None:
            self.events.thread_event(kind, thread, **fields)
