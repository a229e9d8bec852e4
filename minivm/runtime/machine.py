"""The machine: one running VM — its GIL, heap, globals, threads and output — and the check.

``Machine.run`` is the VM's ``Py_Initialize`` plus ``Py_RunMain``: it creates the GIL, gives
it to the main thread before the first instruction, runs the main thread on its own OS
thread, and waits until every thread has ended or the run is aborted.

Every guest thread, the main one included, runs on an OS thread of the host's default stack
size: nothing the VM does on a guest thread recurses on the host (guest calls are frames in
a list; printing and comparing deep data keep their own stacks, see ``values``), so a deep
structure or a deep recursion needs the same room on every thread, which is none.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from typing import TextIO

from minivm.bytecode.code import CodeObject
from minivm.errors import (
    GuestError,
    InternalError,
    format_guest_error,
    format_internal_error,
)
from minivm.gil.lock import GIL
from minivm.gil.policies import Policy, ThreadAbort, make_policy
from minivm.runtime.builtins import BUILTINS
from minivm.runtime.engine import choose_engine, make_runner
from minivm.runtime.heap import AuditReport, Heap
from minivm.runtime.host import HostSwitching
from minivm.runtime.interpreter import (
    FRAME_CODE,
    FRAME_FUNCTION,
    FRAME_LOCALS,
    FRAME_PC,
    FRAME_STACK,
    call_chain,
    make_frame,
)
from minivm.runtime.output import Output
from minivm.runtime.threads import DONE, GuestThread, Scheduler
from minivm.runtime.values import UNSET

CHECK_PLACEMENTS = ("every", "backedge")


@dataclasses.dataclass
class VMConfig:
    """Everything a run can be configured with (the command line's options)."""

    policy: str = "ticks"
    check_interval: int = 100
    switch_interval: float = 0.005
    recursion_limit: int = 1000
    max_steps: int | None = None
    max_threads: int = 10_000
    heap_check: bool = False
    # Where the check may fall: "every" instruction (the contract's tick), or only at a
    # function's entry and backward jumps ("backedge", CPython 3.10+'s eval breaker).
    check_at: str = "every"
    # Seconds between the host's own thread switches while 2+ guest threads are alive
    # (None: minivm's default for the policy; see runtime/host.py).
    host_switch_interval: float | None = None
    # Run on the plain instructions even where fused ones exist (tracing always does).
    fused: bool = True
    # auto, interp or compiled (see runtime/engine.py).
    engine: str = "auto"


def _needs_interpreter(tracing: bool, config: VMConfig) -> str:
    """What a run asks that only the interpreter can do (see ``runtime/engine.py``), or ``""``."""
    if tracing:
        return "trace every instruction"
    if config.check_at != "every":
        return "place the check at backward jumps (--check-at backedge)"
    return ""


def step_limit_error(thread: GuestThread, limit: int) -> GuestError:
    """The step-limit error, its chain ending at the instruction the thread was about to run
    (the usual chain names the instruction that raised, which here has not run yet)."""
    error = GuestError(f"step limit exceeded: {limit} instructions (--max-steps)")
    error.thread_id = thread.tid
    error.chain = call_chain(thread.frames, about_to_run=True)
    return error


class Machine:
    """One VM. Create it, then ``run`` a compiled program once."""

    def __init__(
        self,
        config: VMConfig | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        events=None,
        source_lines: dict[str, list[str]] | None = None,
        policy: Policy | None = None,
    ):
        self.config = config or VMConfig()
        if self.config.check_interval < 1:
            raise ValueError("the check interval must be at least 1")
        if self.config.check_at not in CHECK_PLACEMENTS:
            raise ValueError(f"unknown check placement '{self.config.check_at}' (choose from: every, backedge)")
        # ``policy``: a policy object to use instead of the one named in the config (replay and
        # explore pass a controlled policy, minivm/schedule/control.py).
        self.policy = policy or make_policy(self.config.policy, self.config.switch_interval)
        # A policy that sets the length of every turn itself (``controls_turns``) is asked for
        # each budget and called at the end of each turn (``boundary``); None otherwise.
        self.turns = self.policy if self.policy.controls_turns else None
        # What ``time()`` returns: the host's clock, or a recorded one (minivm/schedule/).
        self.clock = time.monotonic
        self.events = events
        self.tracing = bool(events is not None and events.wants_instructions)
        self.engine = choose_engine(
            self.config.engine, _needs_interpreter(self.tracing, self.config), self.config.recursion_limit
        )
        self.gil = GIL(self.policy, threading.Lock(), events)
        self.host = HostSwitching(self.config.host_switch_interval, self.policy.uses_gil)
        self.heap = Heap()
        self.globals: dict[str, object] = dict(BUILTINS)
        self.scheduler = Scheduler(self)
        self.output = Output(stdout or sys.stdout, on_closed=lambda: self.abort(None))
        self.errors = Output(stderr or sys.stderr)
        self.source_lines = source_lines or {}
        self.aborting = False
        self.abort_error: BaseException | None = None
        self.failed = False
        self.interrupted = False
        self.finished = threading.Event()
        self.steps = 0
        # Under ``none`` threads account at once: the shared step count needs its own lock
        # (under a GIL policy only the holder accounts, so it needs none).
        self.check_everywhere = self.config.check_at == "every"
        self.steps_lock = None if self.policy.uses_gil else threading.Lock()
        self.main: GuestThread | None = None
        self.audit_report: AuditReport | None = None
        self.started_ns = 0
        self.ended_ns = 0
        self.run_thread = make_runner(self, self.engine)

    # -- running
    def run(self, code: CodeObject) -> int:
        """Run ``code`` as the main thread; returns the exit status (0 or 1).

        ``KeyboardInterrupt`` (Ctrl-C while waiting) propagates after every thread was told
        to stop; the caller turns it into exit status 130.
        """
        frame = make_frame(code, None, [UNSET] * len(code.local_names))
        self.started_ns = time.perf_counter_ns()
        self.main = self.scheduler.new_main([frame])
        host = threading.Thread(target=self.thread_main, args=(self.main,), name="minivm-0", daemon=True)
        self.main.host = host
        host.start()
        try:
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
        return self.finish_run()

    def finish_run(self) -> int:
        """After the last thread: reclaim, audit if asked, flush; returns the exit status."""
        self.output.flush()
        error = self.abort_error
        if isinstance(error, InternalError | AssertionError) or (
            error is not None and not isinstance(error, GuestError)
        ):
            self.errors.write_line(format_internal_error(error))
            self.errors.flush()
            return 1
        if isinstance(error, GuestError) and error.message.startswith("deadlock"):
            self.errors.write_line(format_guest_error(error, self.source_lines))
        if not self.aborting or self.config.heap_check:
            self.heap.reclaim(self._held_values(all_threads=False))
        if self.config.heap_check and not self.aborting:
            self.audit_report = self.heap.audit(self._counted_roots())
            self.errors.write_line(self.audit_report.describe())
            if not self.audit_report.ok:
                self.failed = True
        self.errors.flush()
        return 1 if (self.failed or self.abort_error is not None) else 0

    def thread_main(self, thread: GuestThread) -> None:
        """The body of every guest thread's OS thread."""
        try:
            if thread.tid != 0:
                self.gil.await_first_turn(thread)
                if self.aborting:
                    return
                self.policy.resume(self.gil, thread)
            thread.result = self.run_thread(thread)
        except ThreadAbort:
            return
        except GuestError as error:
            thread.error = error
            self.failed = True
            self.errors.write_line(format_guest_error(error, self.source_lines))
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
        self.abort_error = error
        self.scheduler.wake_everyone_for_abort()
        self.finished.set()

    # -- tick accounting and the check
    def refill(self, thread: GuestThread) -> None:
        """A fresh tick budget for a thread that has just taken the GIL."""
        thread.until_check = self.config.check_interval
        if self.tracing:
            thread.fast_code = False  # the trace shows every plain instruction
            budget = 0
        else:
            budget = self._budget(thread)
        thread.budget = thread.ticks = budget

    def _budget(self, thread: GuestThread) -> int:
        # A fused instruction runs only when the budget holds all its ticks; otherwise the
        # loop finishes the budget on the plain code, so the check lands exactly.
        budget = max(1, thread.until_check)
        if self.config.max_steps is not None:
            budget = max(1, min(budget, self.config.max_steps - self.steps))
        if self.turns is not None:
            budget = max(1, min(budget, self.turns.budget(thread)))
        thread.fast_code = self.config.fused
        return budget

    def account(self, thread: GuestThread) -> None:
        """Count the instructions ``thread`` ran since its budget was last set."""
        spent = thread.budget - thread.ticks
        thread.budget = thread.ticks
        thread.instructions += spent
        thread.until_check -= spent
        if self.steps_lock is None:
            self.steps += spent
        else:
            with self.steps_lock:
                self.steps += spent

    def at_check(self, thread: GuestThread, ticks: int) -> int:
        """The slow path, entered when the loop's budget is spent; returns the next budget.

        Here the policy's check runs when the thread's ``check_interval`` ticks are up, and
        here everything rare hangs: aborts, the step limit, heap reclamation, tracing.
        """
        thread.ticks = ticks
        self.account(thread)
        if self.aborting:
            raise ThreadAbort
        if thread.interrupt:
            thread.interrupt = False
            raise GuestError("interrupted (Ctrl-C)")
        limit = self.config.max_steps
        if limit is not None and self.steps >= limit:
            raise step_limit_error(thread, limit)
        if thread.until_check <= 0 and (self.check_everywhere or self._at_backedge(thread)):
            if self.heap.reclaim_due() and self.policy.uses_gil:
                self.heap.reclaim(self._held_values(all_threads=True))
            thread.tick_checks += 1
            self.gil.check(thread)
            # Whether or not the GIL changed hands, a new check period starts now.
            thread.until_check = self.config.check_interval
            if self.aborting:
                raise ThreadAbort
        if self.turns is not None:
            # A controlled policy may end the turn here and hand the GIL to another thread.
            self.turns.boundary(self.gil, thread)
            if self.aborting:
                raise ThreadAbort
        if self.tracing:
            frame = thread.frames[-1]
            code, pc = frame[FRAME_CODE], frame[FRAME_PC]
            opcode, arg = code.instructions[pc]
            self.events.instr(thread, code, pc, opcode, arg)
            thread.budget = thread.ticks = 1
            return 1
        budget = self._budget(thread)
        thread.budget = thread.ticks = budget
        return budget

    def reconfigure(self, policy: str | None = None, check_interval: int | None = None) -> None:
        """Change the lock policy or the check interval between two runs of the main thread
        (the REPL's ``:policy`` and ``:check-interval``). A new policy needs a quiet VM:
        ``ValueError`` if another thread is alive or anyone holds or waits for the GIL."""
        if check_interval is not None:
            if check_interval < 1:
                raise ValueError("the check interval must be at least 1")
            self.config.check_interval = check_interval
        if policy is None:
            return
        with self.gil.mutex:
            others = self.scheduler.live - (1 if self.main is not None and self.main.state != DONE else 0)
            if others or self.gil.holder is not None or self.gil.waiters:
                raise ValueError(f"{others} other thread(s) still alive: join them first")
            self.policy = make_policy(policy, self.config.switch_interval)
            self.config.policy = policy
            self.gil.policy = self.policy
            self.steps_lock = None if self.policy.uses_gil else threading.Lock()
            self.host.restore()
            self.host = HostSwitching(self.config.host_switch_interval, self.policy.uses_gil)

    def _at_backedge(self, thread: GuestThread) -> bool:
        """Whether ``thread`` is about to run a function's entry or a backward jump. With
        ``check_at="backedge"`` a spent budget waits for such a point, stepping one instruction
        at a time until then (ticks are still counted exactly)."""
        frame = thread.frames[-1]
        return frame[FRAME_PC] in frame[FRAME_CODE].backedge_points

    def unknown_opcode(self, opcode: int) -> None:
        """Reached by an opcode the dispatch chain does not know: a VM bug."""
        raise InternalError(f"unknown opcode {opcode}")

    # -- the heap's roots
    def _held_values(self, all_threads: bool):
        """Uncounted references: running frames' stacks, locals and functions, and results."""
        for thread in self.scheduler.threads:
            yield thread.result
            if thread.state == DONE and not all_threads:
                continue
            for frame in thread.frames:
                yield frame[FRAME_FUNCTION]
                yield from frame[FRAME_STACK]
                yield from frame[FRAME_LOCALS]

    def _counted_roots(self):
        """Counted references held outside the heap: the globals."""
        return list(self.globals.values())

    # -- events
    def emit_thread(self, kind: str, thread: GuestThread, **fields) -> None:
        """Send a thread event (spawn, block, wake, exit) to the observer, if any."""
        if self.events is not None:
            self.events.thread_event(kind, thread, **fields)
