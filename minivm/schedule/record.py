"""Recording a run's schedule, under any GIL policy, without changing the run.

Design note
-----------
* **What is watched.** The GIL's own events, delivered by the event bus like every other
  observer's (``observe/events.py``): ``gil_acquire`` starts a turn, ``gil_release`` ends it
  (its ``reason`` says how: ``blocking`` and ``exit`` end it by the thread's own doing, any
  other reason is a preemption). The turn's length is read from the thread's instruction
  count, which the machine brings up to date before every release. ``time()`` goes through
  ``Machine.time_source``, which the recorder wraps to keep each value it returns.
* **Why it does not change the run.** The recorder asks for no instruction events (so the
  loop keeps its budgets and fused instructions), never takes a lock of the VM, and only
  appends to lists: the run goes exactly as it would have, as tests/test_observation_integrity.py
  demands of every observer.
* **Merging.** Under ``ticks`` the releaser often wins the GIL straight back; a preempted turn
  followed by a turn of the same thread is one turn (nothing another thread could see
  happened in between).
* **Where the idea comes from.** rr records the nondeterministic inputs of a process and the
  points where the kernel switched threads; under a GIL those points are the GIL's hand-offs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minivm.observe.events import Sink
from minivm.schedule.model import Schedule, Turn

if TYPE_CHECKING:
    from minivm.runtime.machine import Machine

_REASON_END = {"blocking": "b", "exit": "x"}


class Recorder(Sink):
    """An event sink that builds the schedule of the run it watches.

    Use: put it in the machine's ``EventBus``, ``attach(machine)`` before ``run``, and
    ``schedule(...)`` after. Raises ``ValueError`` from ``attach`` for the ``none`` policy
    (without a GIL there are no turns: threads run at once).
    """

    def __init__(self) -> None:
        self.machine: Machine | None = None
        self.turns: list[list] = []  # [thread, count, end]
        self.times: list[float] = []
        self._holder = -1
        self._start = 0

    def attach(self, machine: Machine) -> None:
        """Watch ``machine`` (call before its ``run``)."""
        if not machine.policy.uses_gil:
            raise ValueError("--record needs a GIL: under the none policy threads run at once, with no turns to record")
        self.machine = machine
        host_clock = machine.time_source

        def clock() -> float:
            value = host_clock()
            self.times.append(value)
            return value

        machine.time_source = clock

    def receive(self, event: dict) -> None:
        kind = event["event"]
        if kind == "gil_acquire":
            self._holder = event["thread"]
            self._start = self._instructions(self._holder)
        elif kind == "gil_release":
            tid = event["thread"]
            count = self._instructions(tid) - self._start
            self._add(tid, count, _REASON_END.get(event.get("reason", ""), "p"))
            self._holder = -1

    def _instructions(self, tid: int) -> int:
        assert self.machine is not None
        return self.machine.scheduler.threads[tid].clock.instructions

    def _add(self, tid: int, count: int, end: str, turns: list[list] | None = None) -> None:
        turns = self.turns if turns is None else turns
        if turns and turns[-1][0] == tid and turns[-1][2] == "p":
            turns[-1][1] += count
            turns[-1][2] = end
        else:
            turns.append([tid, count, end])

    def schedule(self, program: str, stopped: bool = False) -> Schedule:
        """The schedule of the run so far (the recorder goes on recording); ``program`` is the
        program's hash (``model.program_hash``). A thread still holding the GIL gets a last
        turn ending ``e`` (the run was aborted) or, with ``stopped`` (the run is paused and
        goes on: a debugger's ``record``), ``s``."""
        machine = self.machine
        assert machine is not None
        turns = [list(t) for t in self.turns]
        holder = machine.gil.holder
        if holder is not None and self._holder == holder.tid:
            # The loop had not accounted its last instructions (it stopped on an error, or is
            # paused): count them as ``TickClock.account`` would, without touching the thread.
            ran = holder.clock.instructions + holder.clock.unaccounted() - self._start
            self._add(holder.tid, ran, "s" if stopped else "e", turns)
        config = machine.config
        return Schedule(
            program=program,
            policy=config.policy,
            check_interval=config.check_interval,
            check_at=config.check_at,
            turns=tuple(Turn(*t) for t in turns),
            times=tuple(self.times),
        )
