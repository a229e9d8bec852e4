"""The exploration loop: run after run under a strategy, collecting distinct outcomes.

Design note
-----------
dejafu's idea: the result of testing a concurrent program is the *set* of its outcomes, each
with a witness. ``explore`` keeps, per distinct outcome (output, exit status, errors), how
many schedules gave it and the choices of the one with the fewest preemptions (the simplest
explanation — Shuttle and CHESS report the same). It stops when the strategy has nothing
left (dfs: the bounded space is exhausted), at ``runs`` or ``time_limit``, or at the first
outcome that matches ``stop_on`` (error: exit status not 0; deadlock; assert: a failed
``assert``). ``--jobs`` splits pct and random runs over processes with distinct seeds and
merges their reports; dfs runs in one process (its runs depend on each other).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from .points import SwitchPoints
from .runner import Outcome, Program, run_once

STOP_ON = ("error", "deadlock", "assert")


@attrs.define
class Found:
    """One distinct outcome: how many schedules gave it, and the choices (one index per
    decision) and preemption count of the simplest."""

    count: int
    choices: list[int]
    preemptions: int


@attrs.define
class Report:
    """What an exploration found. ``exhausted``: the strategy ran out of schedules (dfs);
    ``pruned``: the preemption bound cut some off; ``stopped``: why it ended early, or ""."""

    strategy: str
    runs: int = 0
    # Runs that repeated a schedule already reported, to reach new ones (dfs's levels).
    repeats: int = 0
    elapsed_s: float = 0.0
    exhausted: bool = False
    pruned: bool = False
    stopped: str = ""
    outcomes: dict[Outcome, Found] = attrs.field(factory=dict)

    def add(self, outcome: Outcome, choices: list[int], preemptions: int, count: int = 1) -> None:
        """Count ``count`` schedules ending in ``outcome``; keep the simplest witness."""
        found = self.outcomes.get(outcome)
        if found is None:
            self.outcomes[outcome] = Found(count, choices, preemptions)
            return
        found.count += count
        if (preemptions, len(choices)) < (found.preemptions, len(found.choices)):
            found.choices, found.preemptions = choices, preemptions

    def merge(self, other: Report) -> None:
        """Add another process's report to this one."""
        self.runs += other.runs
        self.repeats += other.repeats
        self.stopped = self.stopped or other.stopped
        for outcome, found in other.outcomes.items():
            self.add(outcome, found.choices, found.preemptions, found.count)


def matches(outcome: Outcome, stop_on: str | None) -> bool:
    """Whether ``outcome`` is what ``--stop-on`` waits for."""
    if stop_on == "error":
        return outcome.status != 0
    if stop_on == "deadlock":
        return "deadlock" in outcome.errors
    if stop_on == "assert":
        return "assertion failed" in outcome.errors
    return False


def explore(
    program: Program,
    strategy,
    runs: int | None = None,
    time_limit: float | None = None,
    stop_on: str | None = None,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Run ``program`` under ``strategy`` until it is done or a limit is reached."""
    points = SwitchPoints(program.code)
    report = Report(strategy.name)
    started = last_progress = time.perf_counter()
    while True:
        result = run_once(program, points, strategy.choose)
        new = strategy.is_new(result.preemptions)
        if new:
            report.runs += 1
            report.add(result.outcome, [index for _, index, _ in result.trace], result.preemptions)
        else:
            report.repeats += 1
        now = time.perf_counter()
        report.elapsed_s = now - started
        if new and matches(result.outcome, stop_on):
            report.stopped = f"at the first {stop_on}"
            break
        if not strategy.next_run(result.trace):
            break
        if runs is not None and report.runs >= runs:
            report.stopped = f"after {runs} runs (--runs)"
            break
        if time_limit is not None and report.elapsed_s >= time_limit:
            report.stopped = f"after {time_limit:g} s (--time-limit)"
            break
        if progress is not None and now - last_progress >= 0.5:
            last_progress = now
            progress(report)
    report.exhausted = bool(strategy.exhausted)
    report.pruned = bool(strategy.pruned)
    report.elapsed_s = time.perf_counter() - started
    return report
