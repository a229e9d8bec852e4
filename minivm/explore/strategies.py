"""Strategies: who runs at each decision point, run after run.

Design note
-----------
A strategy is asked ``choose(index, decision, preemptions) -> int`` at each decision of a run
(``runner.Decision``: for a ``switch`` decision index 0 is the running thread, any other
index a preemption), ``is_new(preemptions) -> bool`` after it (False: the run repeated a
schedule already reported, to reach new ones) and ``next_run(trace) -> bool`` (False:
nothing left).

* ``DFS`` — CHESS's iterative context bounding (Musuvathi & Qadeer, PLDI 2007): every
  schedule with no preemption, then every schedule with exactly one, then two, up to the
  bound K; stateless (each run starts the program afresh and makes a prefix of choices,
  then goes on without preempting). Every schedule with at most K preemptions is reported
  exactly once, the simplest first, and within a level the earliest preemptions first; most
  concurrency bugs need one or two preemptions, so they surface early. A plain depth-first
  search with bound K spends its time on the last decisions of a run: for two threads each
  adding 1 to a global 200 times, it had not lost an update after 1,000 schedules, where
  the level of one preemption loses one in its first few. To make level k's schedules the
  search re-runs level k - 1's (``is_new`` is False for those). ``exhausted`` says the
  search finished; ``pruned`` says some schedule needed more than K preemptions (so
  finishing means "exhausted within the bound", not "all schedules").
* ``PCT`` — probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
  ASPLOS 2010): each thread gets a random priority (>= d) when it first appears; d-1 change
  points are drawn uniformly among the k decision points of a run; the highest-priority
  runnable thread always runs, and at the i-th change point the thread that would run
  drops to priority d-i. A bug of depth d (d ordering constraints) is found in one run with
  probability at least 1/(n·k^(d-1)) for n threads; k is estimated as the most decisions seen
  in a run so far.
* ``RandomWalk`` — a uniformly random choice at every decision (Shuttle's random scheduler).
"""

from __future__ import annotations

import random

from .runner import SWITCH, Decision


class DFS:
    """Iterative context bounding over all schedules with at most ``bound`` preemptions
    (None: no bound; the levels go on until a level has no schedule that could preempt again).

    A schedule is written sparsely, as its non-default choices (``{decision index: choice}``;
    every other decision takes index 0: no preemption, the first candidate). Level 0 is every
    schedule with no preemption: the default run, and every choice of who runs when a thread
    blocks or ends (free choices: they cost nothing), depth-first. Level k + 1 takes each
    schedule of level k in turn and adds one preemption at each later switch decision of its
    run, then every free choice after it: each schedule with k + 1 preemptions is made exactly
    once, from the schedule its last preemption extends. Walking level k again to do so
    re-runs its schedules (``is_new`` is False for those): 28 runs for 154 schedules on
    ``programs/race_small.mv``, fewer in proportion as the last level grows; in exchange no
    schedule is kept in memory but the current ones.
    """

    name = "dfs"

    def __init__(self, bound: int | None = 2):
        self.bound = bound
        self.level = 0
        self.exhausted = False
        self.pruned = False
        self._another_level = False  # a run of this level could have preempted once more
        self._walk = self._levels()
        self.prefix, self._new = next(self._walk)

    def choose(self, index: int, decision: Decision, preemptions: int) -> int:
        return self.prefix.get(index, 0)

    def is_new(self, preemptions: int) -> bool:
        """Whether the run just made belongs to the level being reported (else it was run to
        reach that level's schedules, and reported at a lower one)."""
        return self._new

    def next_run(self, trace: list) -> bool:
        """Take the trace of the run just made; False when every level is done."""
        try:
            self.prefix, self._new = self._walk.send(trace)
        except StopIteration:
            self.exhausted = True
            return False
        return True

    # The walk is a generator: it yields the next run to make, (sparse choices, is it new),
    # and is sent back that run's trace.
    def _levels(self):
        while True:
            self._another_level = False
            yield from self._schedules(self.level, True, self._note_another_level)
            if not self._another_level:
                return  # every schedule was run
            if self.bound is not None and self.level >= self.bound:
                self.pruned = True
                return
            self.level += 1

    def _note_another_level(self, prefix: dict, trace: list, start: int):
        if not self._another_level and any(decision.kind == SWITCH for decision, _, _ in trace[start:]):
            self._another_level = True
        yield from ()

    def _schedules(self, level: int, new: bool, visit):
        """Run every schedule with exactly ``level`` preemptions, and ``visit(prefix, trace,
        start)`` each (``start``: the first decision after its last non-default choice)."""
        if level == 0:
            yield from self._free_choices({}, 0, new, visit)
            return

        def preempt_once_more(prefix: dict, trace: list, start: int):
            for i in range(start, len(trace)):
                decision = trace[i][0]
                if decision.kind == SWITCH:
                    for alternative in range(1, len(decision.candidates)):
                        yield from self._free_choices({**prefix, i: alternative}, i + 1, new, visit)

        yield from self._schedules(level - 1, False, preempt_once_more)

    def _free_choices(self, prefix: dict, start: int, new: bool, visit):
        """Run ``prefix``, then every schedule that adds free choices (who runs after a block
        or an end) from decision ``start`` on, depth-first; ``visit`` each."""
        trace = yield (prefix, new)
        yield from visit(prefix, trace, start)
        for i in range(start, len(trace)):
            decision = trace[i][0]
            if decision.kind != SWITCH:
                for alternative in range(1, len(decision.candidates)):
                    yield from self._free_choices({**prefix, i: alternative}, i + 1, new, visit)


class PCT:
    """PCT with bug depth ``depth`` (d >= 1) and ``runs`` runs, seeded by ``seed``."""

    name = "pct"

    def __init__(self, depth: int = 2, runs: int = 1000, seed: int = 0, steps: int = 0):
        self.depth = max(1, depth)
        self.runs = runs
        self.rng = random.Random(seed)
        self.k = max(steps, 1)  # decisions per run, estimated from the runs so far
        self.done = 0
        self.exhausted = False
        self.pruned = False
        self._begin()

    def _begin(self) -> None:
        self.priority: dict[int, float] = {}
        points = range(1, self.k + 1)
        count = min(self.depth - 1, len(points))
        self.change_points = dict(zip(sorted(self.rng.sample(points, count)), range(1, count + 1), strict=True))
        self.step = 0

    def choose(self, index: int, decision: Decision, preemptions: int) -> int:
        for tid in decision.candidates:
            if tid not in self.priority:
                self.priority[tid] = self.depth + self.rng.random()
        self.step += 1

        def best() -> int:
            return max(range(len(decision.candidates)), key=lambda i: self.priority[decision.candidates[i]])

        if self.step in self.change_points:
            top = decision.candidates[best()]
            self.priority[top] = self.depth - self.change_points[self.step]
        return best()

    def is_new(self, preemptions: int) -> bool:
        """Every run is reported (a sample may repeat a schedule; it is counted again)."""
        return True

    def next_run(self, trace: list) -> bool:
        self.done += 1
        self.k = max(self.k, len(trace))
        self._begin()
        return self.done < self.runs


class RandomWalk:
    """A uniformly random choice at every decision, for ``runs`` runs, seeded by ``seed``."""

    name = "random"

    def __init__(self, runs: int = 1000, seed: int = 0):
        self.runs = runs
        self.rng = random.Random(seed)
        self.done = 0
        self.exhausted = False
        self.pruned = False

    def choose(self, index: int, decision: Decision, preemptions: int) -> int:
        return self.rng.randrange(len(decision.candidates))

    def is_new(self, preemptions: int) -> bool:
        """Every run is reported (a sample may repeat a schedule; it is counted again)."""
        return True

    def next_run(self, trace: list) -> bool:
        self.done += 1
        return self.done < self.runs


def make_strategy(name: str, preemptions: int | None, depth: int, runs: int | None, seed: int):
    """The strategy called ``name`` (dfs, pct, random); raises ``ValueError`` otherwise."""
    if name == "dfs":
        return DFS(preemptions)
    if name == "pct":
        return PCT(depth, runs or 1000, seed)
    if name == "random":
        return RandomWalk(runs or 1000, seed)
    raise ValueError(f"unknown strategy '{name}' (choose from: dfs, pct, random)")
