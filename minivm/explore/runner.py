"""One explored run: a fresh VM under a controlled policy whose director asks a strategy at
every switch point, and the outcome it came to.

Design note
-----------
* **Decisions.** ``ExploreDirector`` steps the holder one instruction at a time (budget 1)
  and makes a decision where the next instruction is a switch point (``points.py``) and
  another thread could run, and whenever the holder blocks or ends with two or more threads
  able to go on. A ``switch`` decision lists the running thread first (choosing it is no
  preemption, any other is one); a ``release`` decision lists the threads by id (whoever runs
  next, no preemption is counted: the holder gave up by itself). A thread just given the GIL
  always runs its next instruction before the next decision, so that "switch to B at once"
  is not explored twice.
* **The engine is the interpreter.** Each run is a fresh VM built through the front door
  users get (``minivm.api.prepare`` with ``control=``, the controlled policy), on plain
  (unfused) instructions of the same compiled program; guest threads are real OS threads,
  but under the controlled hand-off only the chosen one moves, so a run is a pure function
  of its choices (and of ``time()``/``sleep`` if the program uses them).
* **Outcomes** are what a user sees: standard output, exit status, standard error.
* **A found schedule becomes a file** by running its choices once more with the recorder of
  ``minivm.schedule`` attached: the file is an ordinary schedule that ``--replay`` follows.
"""

from __future__ import annotations

import io

import attrs

from minivm import api
from minivm.bytecode.code import CodeObject
from minivm.errors import format_internal_error
from minivm.observe.events import EventBus
from minivm.schedule.control import ControlledPolicy, Director
from minivm.schedule.model import Schedule, program_hash
from minivm.schedule.record import Recorder

from .points import SwitchPoints

SWITCH, RELEASE = "switch", "release"


@attrs.frozen
class Decision:
    """A decision point: ``kind`` (switch or release), the running (or releasing) thread's id
    ``current``, and the ids of the threads that could run next, in the order a strategy
    indexes them (for ``switch``, ``current`` first)."""

    kind: str
    current: int
    candidates: tuple[int, ...]


@attrs.frozen
class Outcome:
    """What one run came to: its standard output, exit status and standard error."""

    output: str
    status: int
    errors: str

    def describe(self, width: int = 60) -> str:
        """One line: ``exit 1, output "2", stderr "error in thread 1: ..."`` (the output and
        the first line of standard error, each shortened to ``width`` with ``...``)."""
        output = self.output.rstrip("\n").replace("\n", " | ")
        line = f'exit {self.status}, output "{_shorten(output, width)}"'
        if self.errors.strip():
            line += f', stderr "{_shorten(self.errors.strip().splitlines()[0], width)}"'
        return line


def _shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in ``...`` when it was cut."""
    return text if len(text) <= width else text[: width - 3] + "..."


@attrs.frozen
class Program:
    """A compiled program to explore, and the VM settings of every run: ``name`` (its file
    name), ``text`` (its source), ``code``, ``check_interval`` in ticks, ``max_steps`` in
    instructions per run. ``program`` is the same as the front door's ``minivm.api.Program``,
    made once so that a run adds no work of its own."""

    name: str
    text: str
    code: CodeObject
    check_interval: int = 100
    max_steps: int = 100_000
    program: api.Program = attrs.field(init=False, eq=False, repr=False)

    @program.default
    def _front_door_program(self) -> api.Program:
        return api.Program(code=self.code, filename=self.name, source=self.text)

    def settings(self) -> dict:
        """The ``minivm.api.prepare`` settings of one explored run (plain instructions, the
        step limit; ``explore`` names the policy in the run's statistics)."""
        # The interpreter: switch points are found from the instruction about to run, which
        # only the interpreter's frames show at every boundary (runtime/engine.py).
        return {
            "policy": "explore", "check_interval": self.check_interval, "max_steps": self.max_steps,
            "fused": False, "engine": "interp",
        }  # fmt: skip


class ExploreDirector(Director):
    """Asks ``choose(index, decision, preemptions) -> int`` (a strategy) at every decision and
    keeps the trace: (decision, chosen index, preemptions before it)."""

    def __init__(self, points: SwitchPoints, choose):
        self.points = points
        self.choose = choose
        self.trace: list[tuple[Decision, int, int]] = []
        self.preemptions = 0
        self._fresh = None
        self._fresh_at = -1

    def budget(self, thread) -> int:
        return 1

    def due(self, thread) -> bool:
        if thread is self._fresh and thread.clock.instructions == self._fresh_at:
            return False
        scheduler = thread.vm.scheduler
        if scheduler.live - scheduler.blocked < 2:
            return False
        return self.points.is_point(thread)

    def started(self, thread) -> None:
        self._fresh, self._fresh_at = thread, thread.clock.instructions

    def _decide(self, kind: str, current, candidates: list):
        decision = Decision(kind, current.tid, tuple(c.tid for c in candidates))
        index = self.choose(len(self.trace), decision, self.preemptions)
        index = min(max(index, 0), len(candidates) - 1)
        self.trace.append((decision, index, self.preemptions))
        if kind == SWITCH and index != 0:
            self.preemptions += 1
        return candidates[index]

    def at_boundary(self, thread, candidates: list):
        if len(candidates) < 2:
            return thread
        return self._decide(SWITCH, thread, candidates)

    def after_release(self, thread, reason: str, candidates: list):
        if len(candidates) < 2:
            return candidates[0] if candidates else None
        return self._decide(RELEASE, thread, candidates)

    def choices(self) -> list[int]:
        """The chosen index at each decision, in order."""
        return [index for _, index, _ in self.trace]


@attrs.frozen
class RunResult:
    """One run: its outcome, its decisions, its preemptions, and (if recorded) its schedule."""

    outcome: Outcome
    trace: list
    preemptions: int
    schedule: Schedule | None = None


def run_once(program: Program, points: SwitchPoints, choose, record: bool = False) -> RunResult:
    """Run ``program`` once, asking ``choose`` at each decision; with ``record``, also return
    the run's schedule (``Schedule.policy`` is ``explore``). A bug of minivm itself under
    this schedule is an outcome too (exit 1, the internal error on standard error), reported
    with the schedule that reproduces it."""
    out, err = io.StringIO(), io.StringIO()
    director = ExploreDirector(points, choose)
    recorder = Recorder() if record else None
    run = api.prepare(
        program.program, stdout=out, stderr=err, events=EventBus([recorder]) if recorder else False,
        control=ControlledPolicy(director), **program.settings(),
    )  # fmt: skip
    if recorder:
        recorder.attach(run.machine)  # the recorder reads the VM's clocks (Run.machine)
    try:
        status = run.start().wait().exit_status
    except Exception as bug:  # a VM bug found by a schedule: worth reporting with the schedule
        err.write(format_internal_error(bug) + "\n")
        status = run.result.exit_status
    schedule = recorder.schedule(program_hash(program.text)) if recorder else None
    return RunResult(Outcome(out.getvalue(), status, err.getvalue()), director.trace, director.preemptions, schedule)


def follow(choices: list[int]):
    """A chooser that makes ``choices`` in order, then never preempts (index 0)."""

    def choose(index: int, decision: Decision, preemptions: int) -> int:
        return choices[index] if index < len(choices) else 0

    return choose
