"""Run statistics: exact counts from the GIL and the threads (counted, not sampled).

They are read from a run's ``RunFigures`` (``runtime/figures.py``), the snapshot a finished
run hands back, never from the VM's own objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from minivm.runtime.host import describe_host

if TYPE_CHECKING:
    from minivm.runtime.figures import RunFigures


def percentile(values_ns: list[int], fraction: float) -> float:
    """The nearest-rank percentile of ``values_ns``, in seconds (0.0 for no values)."""
    if not values_ns:
        return 0.0
    ordered = sorted(values_ns)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank] / 1e9


def collect(figures: RunFigures) -> dict:
    """Every figure of a finished run (``Machine.finish().figures``), as the JSON-ready dict
    that ``--stats-json`` writes and ``minivm.api.Result.stats`` holds: counts exact, times
    in seconds."""
    wall_ns = figures.wall_ns
    threads = []
    for t in figures.threads:
        threads.append(
            {
                "id": t.tid,
                "instructions": t.instructions,
                "tick_checks": t.tick_checks,
                "acquisitions": t.acquisitions,
                "held_s": t.held_ns / 1e9,
                "waited_s": t.waited_ns / 1e9,
                "wait_p50_s": percentile(list(t.waits_ns), 0.50),
                "wait_p99_s": percentile(list(t.waits_ns), 0.99),
                "releases": dict(t.releases),
                "priority": t.priority,
                "failed": t.failed,
            }
        )
    all_waits = [w for t in figures.threads for w in t.waits_ns]
    return {
        "policy": figures.policy,
        "check_interval": figures.check_interval,
        "switch_interval": figures.switch_interval,
        "wall_s": wall_ns / 1e9,
        "instructions": sum(t["instructions"] for t in threads),
        "instructions_per_s": sum(t["instructions"] for t in threads) / (wall_ns / 1e9),
        "tick_checks": sum(t.tick_checks for t in figures.threads),
        "switches": figures.switches,
        "releaser_reacquired": figures.releaser_reacquired,
        "drop_requests": figures.drop_requests,
        "forced_switches": figures.forced_switches,
        "gil_held_fraction": min(1.0, figures.gil_held_ns / wall_ns) if figures.uses_gil else 0.0,
        "wait_p50_s": percentile(all_waits, 0.50),
        "wait_p99_s": percentile(all_waits, 0.99),
        "threads_spawned": figures.threads_spawned,
        "host": describe_host(figures.host_switch_interval_s),
        "heap": {
            "allocated": figures.heap_allocated,
            "freed": figures.heap_freed,
            "live": figures.heap_live,
        },
        "threads": threads,
    }


def write_table(stats: dict, stream: TextIO) -> None:
    """The statistics as a table for people (``--stats``)."""
    reacquired = stats["releaser_reacquired"]
    checks = stats["tick_checks"]
    host = stats["host"]
    lines = [
        f"policy {stats['policy']}, check interval {stats['check_interval']}, "
        f"switch interval {stats['switch_interval']} s",
        f"wall {stats['wall_s']:.4f} s, {stats['instructions']} instructions "
        f"({stats['instructions_per_s'] / 1e6:.2f} M/s)",
        f"tick checks {checks}, switches {stats['switches']}, releaser reacquired {reacquired}, "
        f"drop requests {stats['drop_requests']}, GIL held {stats['gil_held_fraction'] * 100:.1f}%",
        f"host: Python {host['python']} ({host['implementation']}), "
        f"{'with' if host['gil'] else 'without'} its own GIL, "
        f"host switch interval {host['switch_interval_s']:g} s while threads ran",
        f"heap: {stats['heap']['allocated']} allocated, {stats['heap']['freed']} freed, "
        f"{stats['heap']['live']} live",
        "",
        f"{'thread':>6} {'instructions':>12} {'acq':>6} {'held s':>9} {'waited s':>9} "
        f"{'wait p50':>10} {'wait p99':>10}  releases",
    ]
    for t in stats["threads"]:
        releases = ", ".join(f"{k} {v}" for k, v in t["releases"].items()) or "-"
        lines.append(
            f"{t['id']:>6} {t['instructions']:>12} {t['acquisitions']:>6} {t['held_s']:>9.4f} "
            f"{t['waited_s']:>9.4f} {t['wait_p50_s'] * 1e6:>8.1f}us {t['wait_p99_s'] * 1e6:>8.1f}us"
            f"  {releases}"
        )
    stream.write("\n".join(lines) + "\n")
