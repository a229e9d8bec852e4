"""The check: the slow path a running thread enters when its tick budget is spent.

Design note
-----------
* **What it is.** CPython's ``eval_breaker``: one branch of the dispatch loop (``ticks <= 0``)
  that everything rare hangs off — aborts, Ctrl-C, the step limit, heap reclamation, the lock
  policy's check, a controlled policy's turn boundary, tracing. With tracing off the loop
  pays one compare per instruction and nothing more.
* **Who calls it.** Only the running thread, on its own host thread: both engines call
  ``at_check`` (the interpreter from its loop, the compiled tier from its slow copies) and
  the runtime calls ``refill`` each time a thread has just got the GIL back (``Machine``
  at a thread's start, the scheduler after blocking or sleeping). The GIL never calls in
  here: it only says who holds it.
* **One machine, many clocks.** The per-thread state is the thread's ``TickClock``
  (``runtime/clock.py``); what is shared by the run lives here: the step count for
  ``--max-steps`` (under ``none`` threads account at once, so it has its own lock then),
  the check placement, and the settings every budget is computed from.
* **Exactness.** A budget never runs past the check period, the step limit or a controlled
  turn, so the check falls at exactly the instruction the one-by-one count says, on both
  engines (``tests/test_compiled.py`` compares their check lists).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING

from minivm.errors import GuestError, ThreadAbort, count_of
from minivm.runtime.interpreter import FRAME_CODE, FRAME_PC, call_chain

if TYPE_CHECKING:
    from minivm.gil.policies import Policy
    from minivm.runtime.machine import Machine
    from minivm.runtime.threads import GuestThread


def step_limit_error(thread: GuestThread, limit: int) -> GuestError:
    """The step-limit error, its chain ending at the instruction the thread was about to run
    (the usual chain names the instruction that raised, which here has not run yet)."""
    error = GuestError(f"step limit exceeded: {count_of(limit, 'instruction')} (--max-steps)")
    error.thread_id = thread.tid
    error.chain = call_chain(thread.frames, about_to_run=True)
    return error


class TickCheck:
    """The check of one machine: sets each thread's budget and runs the slow path.

    ``steps`` counts the instructions of every thread (ticks), kept only for ``--max-steps``.
    Reads the machine's config (``check_interval`` may change between REPL inputs), each
    thread's ``stopping`` flag (set by ``Machine.abort``) and the machine's roots (for heap
    reclamation at a check). ``at_check`` is one of three: the full check, the plain check
    (no step limit, turns or tracing) and, without a GIL, ``unlocked_check``.
    """

    def __init__(self, vm: Machine):
        self.vm = vm
        self.config = vm.config
        self.gil = vm.gil
        self.heap = vm.heap
        self.events = vm.events
        self.tracing = vm.tracing
        # A policy that sets the length of every turn itself (``controls_turns``) is asked for
        # each budget and called at the end of each turn (``boundary``); None otherwise.
        self.turns = vm.turns
        # Where the check may fall: every instruction, or (``backedge``) only at a function's
        # entry and backward jumps, as CPython 3.10+ polls its eval breaker.
        self.check_everywhere = self.config.check_at == "every"
        # ``steps`` counts every thread's instructions, only under a step limit (its one use).
        self.counts_steps = self.config.max_steps is not None
        self.steps = 0
        self.steps_lock: threading.Lock | None = None
        # The check most runs take: no step limit, no controlled turns, no tracing, a check
        # allowed at every instruction.
        self.plain = not self.counts_steps and self.turns is None and not self.tracing and self.check_everywhere
        self.use_policy(vm.policy)

    def use_policy(self, policy: Policy) -> None:
        """Follow a change of lock policy. Under ``none`` threads account at once: the shared
        step count needs its own lock (under a GIL policy only the holder accounts)."""
        self.steps_lock = None if policy.uses_gil else threading.Lock()
        self.uses_gil = policy.uses_gil
        # ``GIL.check`` without its frame: the policy's check, bound to this machine's GIL.
        self.policy_check = functools.partial(policy.check, self.gil)
        # What the engines call when a budget is spent. An attribute, which the engines read
        # once (the machine makes them anew after a change of policy).
        if not self.plain:
            self.at_check = self._full_check
        elif policy.uses_gil:
            self.at_check = self._plain_check_for(self.policy_check)
        else:
            self.at_check = unlocked_check

    # -- budgets
    def refill(self, thread: GuestThread) -> None:
        """A fresh check period and budget for ``thread``, which has just got the GIL (under
        ``none``: has just started or woken). Called by the thread itself."""
        clock = thread.clock
        clock.start_period(self.config.check_interval, self.config.fused and not self.tracing)
        if self.tracing:
            clock.give(0, False)  # the trace shows every plain instruction
        else:
            clock.give(self._budget(thread), self.config.fused)

    def _budget(self, thread: GuestThread) -> int:
        # A fused instruction runs only when the budget holds all its ticks; otherwise the
        # loop finishes the budget on the plain code, so the check lands exactly.
        budget = max(1, thread.clock.until_check)
        if self.config.max_steps is not None:
            budget = max(1, min(budget, self.config.max_steps - self.steps))
        if self.turns is not None:
            budget = max(1, min(budget, self.turns.budget(thread)))
        return budget

    def account(self, thread: GuestThread) -> None:
        """Count the instructions ``thread`` ran since its budget was last set (before it
        blocks, sleeps or ends; the engine stored its countdown in the clock first)."""
        spent = thread.clock.account()
        if not self.counts_steps:
            return
        if self.steps_lock is None:
            self.steps += spent
        else:
            with self.steps_lock:
                self.steps += spent

    # -- the slow path
    def _plain_check_for(self, policy_check) -> Callable[[GuestThread, int], int]:
        """The check under a GIL policy, with no step limit, controlled turns or tracing, and
        the check allowed at every instruction: the budget always ends with the check period,
        so the check is always due, and the next budget is a whole period (``clock.period``,
        set when the thread last got the GIL). The policy is asked only when someone waits;
        otherwise it has nothing to decide. Raises as ``_full_check`` does.

        A closure over what it reads, with the accounting written out rather than called
        (``clock.account``, ``_budget``): at interval 100 the compiled tier spends a large
        share of its time here (docs/performance.md), and each call or attribute load saved
        showed on countdown and fib.
        """
        heap, gil, vm = self.heap, self.gil, self.vm

        def plain_check(thread: GuestThread, ticks: int) -> int:
            clock = thread.clock
            clock.instructions += clock.budget - ticks
            # Accounted before the policy may block this thread: anyone reading the clock
            # while it waits for the GIL sees every instruction counted and none pending.
            clock.budget = clock.ticks = ticks
            if thread.stopping:
                raise ThreadAbort
            if thread.interrupt:
                raise take_interrupt(thread)
            if heap.until_reclaim <= 0 and heap.reclaim_due():
                heap.reclaim(vm._held_values(all_threads=True))
            clock.checks += 1
            if gil.waiters:  # else the policy has nothing to decide (``Policy.check``)
                # A timed waiter's deadline (``GIL.arm_drop_deadline``; 0 under the other
                # policies): before it, with no drop requested, the holder runs on unasked,
                # as CPython 3's eval breaker costs nothing until a request is pending.
                deadline = gil.drop_deadline_ns
                if not deadline or gil.drop_request or deadline <= perf_counter_ns():
                    policy_check(thread)
                    if thread.stopping:
                        raise ThreadAbort
                else:
                    gil.runs_on()
            budget = clock.period
            clock.until_check = clock.budget = clock.ticks = budget
            clock.fast_code = clock.fused
            return budget

        return plain_check

    def _full_check(self, thread: GuestThread, ticks: int) -> int:
        """The slow path, entered when the loop's budget is spent (``ticks`` <= 0: the loop's
        countdown); returns the next budget, in ticks.

        Raises ``ThreadAbort`` when the run is being stopped, ``GuestError`` for Ctrl-C and
        the step limit. The policy's check runs when the thread's check period is up.
        """
        clock = thread.clock
        clock.ticks = ticks
        spent = clock.account()
        if self.counts_steps:
            if self.steps_lock is None:
                self.steps += spent
            else:
                with self.steps_lock:
                    self.steps += spent
        vm = self.vm
        if thread.stopping:
            raise ThreadAbort
        if thread.interrupt:
            raise take_interrupt(thread)
        config = self.config
        limit = config.max_steps
        if limit is not None and self.steps >= limit:
            raise step_limit_error(thread, limit)
        if clock.until_check <= 0 and (self.check_everywhere or _at_backedge(thread)):
            if self.heap.reclaim_due() and self.uses_gil:
                self.heap.reclaim(vm._held_values(all_threads=True))
            clock.checks += 1
            if self.gil.waiters:
                self.policy_check(thread)
            # Whether or not the GIL changed hands, a new check period starts now.
            clock.until_check = config.check_interval
            if thread.stopping:
                raise ThreadAbort
        turns = self.turns
        if turns is not None:
            # A controlled policy may end the turn here and hand the GIL to another thread;
            # back with the GIL, the thread starts a fresh period as every new holder does.
            if turns.boundary(self.gil, thread):
                clock.until_check = config.check_interval
            if thread.stopping:
                raise ThreadAbort
        if self.tracing:
            frame = thread.frames[-1]
            code, pc = frame[FRAME_CODE], frame[FRAME_PC]
            opcode, arg = code.instructions[pc]
            self.events.instr(thread, code, pc, opcode, arg)
            clock.budget = clock.ticks = 1
            return 1
        budget = self._budget(thread)
        clock.budget = clock.ticks = budget
        clock.fast_code = config.fused
        return budget


def take_interrupt(thread: GuestThread) -> GuestError:
    """The guest error of the Ctrl-C that ``thread`` was sent (``GuestThread.interrupt``),
    which it clears: the check raises it at the thread's next check."""
    thread.interrupt = False
    return GuestError("interrupted (Ctrl-C)")


def _at_backedge(thread: GuestThread) -> bool:
    """Whether ``thread`` is about to run a function's entry or a backward jump. With
    ``check_at="backedge"`` a spent budget waits for such a point, stepping one instruction
    at a time until then (ticks are still counted exactly)."""
    frame = thread.frames[-1]
    return frame[FRAME_PC] in frame[FRAME_CODE].backedge_points


def unlocked_check(thread: GuestThread, ticks: int) -> int:
    """``at_check`` under a policy without a GIL (``none``) and with no step limit, controlled
    turns or tracing: there is nothing for a policy to decide and no heap reclamation (it
    needs the world stopped), so the check only settles the thread's account, notices an
    abort or Ctrl-C and starts a new period. Raises as ``TickCheck._full_check`` does.

    A module function reading only the thread and its clock, where the other checks are
    methods reading the machine: under ``none`` every thread runs this at once, and on a
    free-threaded host each read of a shared object (the machine, its config, the bound
    method itself) is an atomic update of that object's reference count, contended by every
    thread. Measured on 3.13t, two CPU threads against the same work in sequence, median of
    14 runs: 0.575 with the method, 0.53 with this function (CPython 3.13t itself: 0.53).
    """
    clock = thread.clock
    clock.instructions += clock.budget - ticks
    clock.budget = clock.ticks = ticks
    if thread.stopping:
        raise ThreadAbort
    if thread.interrupt:
        raise take_interrupt(thread)
    clock.checks += 1
    budget = clock.period
    clock.until_check = clock.budget = clock.ticks = budget
    clock.fast_code = clock.fused
    return budget
