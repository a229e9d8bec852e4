"""The tick clock (``runtime/clock.py``) and the check that sets its budgets
(``runtime/check.py``): the accounting, the budgets, and who calls whom — a thread refills
its own budget once it holds the GIL; the GIL never touches the clock.

Tests that run a program start guest threads and carry a timeout.
"""

from __future__ import annotations

import io
import threading

import pytest

from minivm.errors import ThreadAbort
from minivm.frontend.compiler import compile_source
from minivm.gil.lock import GIL
from minivm.gil.policies import make_policy
from minivm.observe.stats import collect
from minivm.runtime.clock import TickClock
from minivm.runtime.figures import take_figures
from minivm.runtime.machine import Machine, VMConfig
from minivm.runtime.threads import GuestThread


def test_account_counts_what_the_countdown_spent_once():
    clock = TickClock()
    clock.start_period(100)
    clock.give(40, True)
    clock.ticks = 15  # the engine ran 25 instructions
    assert clock.unaccounted() == 25
    assert clock.account() == 25
    assert (clock.instructions, clock.until_check, clock.budget) == (25, 75, 15)
    assert clock.account() == 0  # nothing new since
    clock.ticks = 0  # the budget is spent: the slow path accounts the rest
    assert clock.account() == 15
    assert (clock.instructions, clock.until_check, clock.budget) == (40, 60, 0)


def _machine(**config) -> Machine:
    return Machine(VMConfig(**config), stdout=io.StringIO(), stderr=io.StringIO())


def _thread(machine: Machine, tid: int = 1) -> GuestThread:
    return GuestThread(machine, tid, [])


@pytest.mark.parametrize(
    ("config", "budget"),
    [({"check_interval": 7}, 7), ({"check_interval": 100, "max_steps": 30}, 30)],
)
def test_refill_starts_a_period_and_a_budget_that_stops_at_the_next_limit(config, budget):
    machine = _machine(**config)
    thread = _thread(machine)
    machine.check.refill(thread)
    clock = thread.clock
    assert clock.until_check == config["check_interval"]
    assert clock.ticks == clock.budget == budget
    assert clock.fast_code is True


def test_refill_without_fused_instructions_runs_plain_code():
    machine = _machine(fused=False)
    thread = _thread(machine)
    machine.check.refill(thread)
    assert thread.clock.fast_code is False


def test_a_traced_thread_reaches_the_check_before_every_instruction():
    class Events:
        wants_instructions = True

    machine = Machine(VMConfig(), stdout=io.StringIO(), events=Events())
    thread = _thread(machine)
    machine.check.refill(thread)
    assert (thread.clock.ticks, thread.clock.fast_code) == (0, False)


@pytest.mark.parametrize("policy", ["ticks", "fifo", "timed", "priority", "none"])
def test_the_gil_leaves_the_clock_alone(policy):
    gil = GIL(make_policy(policy), threading.Lock())
    thread = _thread(_machine(policy=policy))
    before = (thread.clock.ticks, thread.clock.budget, thread.clock.until_check)
    with gil.mutex:
        gil.grant(thread)
        gil.vacate(thread, "exit")
    assert (thread.clock.ticks, thread.clock.budget, thread.clock.until_check) == before
    assert thread.acquisitions == 1


def test_a_stopping_gil_unwinds_its_waiters_and_the_abort_stops_it():
    machine = _machine()
    machine.gil.raise_if_stopping()  # not stopping: nothing happens
    machine.abort(None)
    assert machine.gil.stopping
    with pytest.raises(ThreadAbort):
        machine.gil.raise_if_stopping()


PROGRAM = """
fn work(n) { let s = 0; for i in range(n) { s += i; } return s; }
let t = spawn work(300);
sleep(0.001);
let u = spawn work(200);
print(join(t) + join(u));
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ["ticks", "fifo", "timed", "priority", "none"])
@pytest.mark.parametrize("engine", ["interp", "compiled"])
@pytest.mark.parametrize("max_steps", [None, 10**6])
def test_the_clocks_count_every_instruction_and_check(policy, engine, max_steps):
    # Without a step limit the plain check runs; with one, the full check and the shared step
    # count (kept only for the limit), which must be exact under ``none`` too.
    out = io.StringIO()
    config = VMConfig(policy=policy, check_interval=7, engine=engine, max_steps=max_steps)
    machine = Machine(config, stdout=out, stderr=io.StringIO())
    assert machine.run(compile_source(PROGRAM, "t.mv")) == 0
    assert out.getvalue() == "64750\n"
    threads = machine.scheduler.threads
    stats = collect(take_figures(machine))
    assert stats["instructions"] == sum(t.clock.instructions for t in threads)
    assert machine.check.steps == (0 if max_steps is None else stats["instructions"])
    assert stats["tick_checks"] == sum(t.clock.checks for t in threads)
    for thread in threads:
        clock = thread.clock
        assert clock.unaccounted() == 0  # every thread accounted when it ended
        # A check every 7 ticks of a period; a period restarts whenever the thread gets the
        # GIL back (after spawn's hand-off, sleep, join), so never more checks than 7 allow.
        assert clock.checks <= clock.instructions // 7
        if thread.tid:
            assert clock.checks > 0  # the workers run far longer than one period
