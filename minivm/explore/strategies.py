"""Strategies: who runs at each decision point, run after run.

Design note
-----------
A strategy is asked ``choose(index, decision, preemptions) -> int`` at each decision of a run
(``runner.Decision``: for a ``switch`` decision index 0 is the running thread, any other
index a preemption) and ``next_run(trace) -> bool`` after each run (False: nothing left).

* ``DFS`` — exhaustive depth-first search with a preemption bound, stateless (each run
  starts the program afresh and replays a prefix of choices, then goes on without
  preempting). This is CHESS's iterative context bounding (Musuvathi & Qadeer, PLDI 2007)
  and Loom's bounded exhaustive search: every schedule with at most K preemptions is run
  exactly once; most concurrency bugs need very few preemptions. ``exhausted`` says the
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
    """Depth-first over all schedules with at most ``bound`` preemptions (None: no bound)."""

    name = "dfs"

    def __init__(self, bound: int | None = 2):
        self.bound = bound
        self.prefix: list[int] = []
        self.exhausted = False
        self.pruned = False

    def choose(self, index: int, decision: Decision, preemptions: int) -> int:
        return self.prefix[index] if index < len(self.prefix) else 0

    def next_run(self, trace: list) -> bool:
        """Backtrack to the deepest decision with an untried choice within the bound."""
        for i in range(len(trace) - 1, -1, -1):
            decision, chosen, before = trace[i]
            for alternative in range(chosen + 1, len(decision.candidates)):
                cost = before + (1 if decision.kind == SWITCH and alternative != 0 else 0)
                if self.bound is None or cost <= self.bound:
                    self.prefix = [c for _, c, _ in trace[:i]] + [alternative]
                    return True
                self.pruned = True
        self.exhausted = True
        return False


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
