"""A run's figures: a frozen snapshot of every count the statistics report.

The counts live where they are kept while the run goes (each ``GuestThread``'s tick and GIL
counters, the ``GIL``'s switch counts, the heap's allocation counts); ``take_figures`` copies
them once, when the run has ended, into plain records that the observation side
(``observe/stats.py``, ``--stats-json``) reads instead of the VM's internals. Times are in
nanoseconds of ``time.perf_counter_ns`` (the clock the trace events are stamped with).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minivm.runtime.machine import Machine


@dataclasses.dataclass(frozen=True)
class ThreadFigures:
    """One guest thread's counts: instructions and checks (ticks), GIL acquisitions, time
    held and waited (ns), every wait (ns), releases by reason, its priority, and whether it
    ended with a runtime error."""

    tid: int
    instructions: int
    tick_checks: int
    acquisitions: int
    held_ns: int
    waited_ns: int
    waits_ns: tuple[int, ...]
    releases: dict[str, int]
    priority: int
    failed: bool


@dataclasses.dataclass(frozen=True)
class RunFigures:
    """A whole run's counts: its settings (policy name, check interval in ticks, switch
    interval in seconds), whether the policy uses a GIL, when the run started and ended (ns),
    the GIL's counts (``ceval_gil.c``'s switches, plus the releaser re-taking the lock it
    dropped, drop requests and forced switches), the time any thread held the GIL (ns),
    threads spawned, the host switch interval in effect (s), the heap's counts, and
    ``threads`` in order of id."""

    policy: str
    check_interval: int
    switch_interval: float
    uses_gil: bool
    started_ns: int
    ended_ns: int
    switches: int
    releaser_reacquired: int
    drop_requests: int
    forced_switches: int
    gil_held_ns: int
    threads_spawned: int
    host_switch_interval_s: float
    heap_allocated: int
    heap_freed: int
    heap_live: int
    threads: tuple[ThreadFigures, ...]

    @property
    def wall_ns(self) -> int:
        """The run's wall time (ns, at least 1: rates divide by it)."""
        return max(self.ended_ns - self.started_ns, 1)


def take_figures(machine: Machine) -> RunFigures:
    """The figures of ``machine``'s run (call it once the run has ended or been stopped)."""
    config, gil, heap = machine.config, machine.gil, machine.heap
    threads = tuple(
        ThreadFigures(
            tid=t.tid,
            instructions=t.clock.instructions,
            tick_checks=t.clock.checks,
            acquisitions=t.acquisitions,
            held_ns=t.held_ns,
            waited_ns=t.waited_ns,
            waits_ns=tuple(t.waits_ns),
            releases=dict(sorted(t.releases.items())),
            priority=t.priority,
            failed=t.error is not None,
        )
        for t in machine.scheduler.threads
    )
    return RunFigures(
        policy=config.policy,
        check_interval=config.check_interval,
        switch_interval=config.switch_interval,
        uses_gil=machine.policy.uses_gil,
        started_ns=machine.started_ns,
        ended_ns=machine.ended_ns,
        switches=gil.switches,
        releaser_reacquired=gil.releaser_reacquired,
        drop_requests=gil.drop_requests,
        forced_switches=gil.forced_switches,
        gil_held_ns=gil.held_ns,
        threads_spawned=machine.scheduler.spawned,
        host_switch_interval_s=machine.host.in_effect_s,
        heap_allocated=heap.allocated,
        heap_freed=heap.freed,
        heap_live=len(heap.live),
        threads=threads,
    )
