"""Pictures (matplotlib, an optional extra: ``pip install 'minivm[plot]'``)."""

from __future__ import annotations

from minivm.observe.timeline import BLOCKED, HOLDING, HOST, RUNNING, WAITING, Slice

COLOURS = {HOLDING: "#2e7d32", WAITING: "#f9a825", BLOCKED: "#9e9e9e", RUNNING: "#1565c0", HOST: "#ef9a9a"}
LABELS = {HOLDING: "holding the GIL", WAITING: "waiting for the GIL", BLOCKED: "blocked",
          RUNNING: "running (no GIL)", HOST: "runnable, waiting for the host"}  # fmt: skip


class PlotUnavailable(Exception):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(
            "plotting needs matplotlib, an optional extra: pip install 'minivm[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_timeline(path: str, slices: list[Slice], start_ns: int, title: str) -> None:
    """The classic picture: one row per thread over time, holding, waiting and blocked in
    distinct colours."""
    plt = _pyplot()
    threads = sorted({s.thread for s in slices} | {0})
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.45 * len(threads)))
    for state in (BLOCKED, WAITING, HOST, HOLDING, RUNNING):
        for row, tid in enumerate(threads):
            bars = [
                ((s.start_ns - start_ns) / 1e6, (s.end_ns - s.start_ns) / 1e6)
                for s in slices
                if s.thread == tid and s.state == state
            ]
            if bars:
                ax.broken_barh(bars, (row - 0.35, 0.7), color=COLOURS[state], linewidth=0)
    ax.set_yticks(range(len(threads)), [f"thread {t}" for t in threads])
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[s]) for s in (HOLDING, WAITING, HOST, BLOCKED)]
    ax.legend(handles, [LABELS[s] for s in (HOLDING, WAITING, HOST, BLOCKED)], loc="upper right",
              fontsize="small", ncol=3)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_experiment(path: str, rows: list[dict]) -> None:
    """Wall time and switches against the check interval, one line per policy."""
    plt = _pyplot()
    fig, (wall_ax, switch_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for policy in sorted({r["policy"] for r in rows}):
        mine = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["check_interval"])
        xs = [r["check_interval"] for r in mine]
        wall_ax.plot(xs, [r["wall_s"] for r in mine], marker="o", label=policy)
        switch_ax.plot(xs, [max(r["switches"], 0.5) for r in mine], marker="o", label=policy)
    for ax, label in ((wall_ax, "wall time (s, median)"), (switch_ax, "GIL switches")):
        ax.set_xscale("log")
        ax.set_xlabel("check interval (ticks)")
        ax.set_ylabel(label)
        ax.legend(fontsize="small")
    switch_ax.set_yscale("log")
    fig.suptitle("minivm experiment")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
