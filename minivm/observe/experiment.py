"""``minivm experiment``: run a program under every combination of policy and interval, in a
fresh VM each time, and tabulate what each policy did to throughput, fairness and latency."""

from __future__ import annotations

import argparse
import csv
import statistics
import sys

from minivm.arguments import positive_int
from minivm.gil.policies import check_policy_name
from minivm.outputs import cannot_write, open_output
from minivm.runtime.config import seconds_value


def _seconds(text: str) -> float:
    """A switch interval in seconds, refused where ``minivm run`` refuses it (the VM's own
    ``seconds_value``: greater than 0, at most ``MAX_SECONDS``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    try:
        return seconds_value("switch interval", value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _list_of(kind, name: str):
    """An argparse type: a comma-separated list, each item checked by ``kind`` (``positive_int`` or
    ``_seconds``), so a list item is refused where ``minivm run`` would refuse the single
    value: a check interval of 0, a negative switch interval."""

    def parse(text: str):
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"{name}: empty list")
        return values

    return parse


def _policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    try:
        for name in names:
            check_policy_name(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not names:
        raise argparse.ArgumentTypeError("no policy given")
    return names


def add_experiment_parser(sub) -> None:
    """Register ``minivm experiment``."""
    parser = sub.add_parser(
        "experiment",
        help="run a program under several policies and intervals and compare",
        description="Run PROGRAM once per combination of policy and interval (each in a fresh VM) "
        "and print a table: wall time (median), instructions/s, switches, releaser-reacquired %, "
        "GIL wait p50/p99 and fairness (each thread's share of GIL time).",
    )
    parser.add_argument("program", help="the .mv file to run")
    parser.add_argument("--policy", type=_policies, default=["ticks", "fifo", "timed"], metavar="A,B,...",
                        help="policies to compare (default: ticks,fifo,timed)")  # fmt: skip
    parser.add_argument("--check-interval", type=_list_of(positive_int, "--check-interval"), default=[100],
                        metavar="N,M,...", help="check intervals (default: 100)")  # fmt: skip
    parser.add_argument("--switch-interval", type=_list_of(_seconds, "--switch-interval"), default=[0.005],
                        metavar="S,...", help="switch intervals for timed (default: 0.005)")  # fmt: skip
    parser.add_argument("--repeat", type=positive_int, default=1, metavar="N", help="runs per combination (median)")
    parser.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    parser.add_argument("--plot", metavar="PATH", help="draw wall time and switches against the interval")
    parser.set_defaults(experiment=True)


def summarize(runs: list[dict]) -> dict:
    """One table row from repeated runs of one combination (medians)."""
    median = statistics.median
    walls = [r["wall_s"] for r in runs]
    typical = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    checks_with_waiters = typical["releaser_reacquired"] + typical["switches"]
    held = [t["held_s"] for t in typical["threads"] if t["id"] != 0 and t["instructions"] > 0]
    total_held = sum(held) or 1.0
    return {
        "policy": typical["policy"],
        "check_interval": typical["check_interval"],
        "switch_interval": typical["switch_interval"],
        "wall_s": median(walls),
        "instructions": typical["instructions"],
        "instructions_per_s": median(r["instructions_per_s"] for r in runs),
        "switches": int(median(r["switches"] for r in runs)),
        "releaser_reacquired_pct": 100.0 * typical["releaser_reacquired"] / checks_with_waiters
        if checks_with_waiters
        else 0.0,
        "wait_p50_s": median(r["wait_p50_s"] for r in runs),
        "wait_p99_s": median(r["wait_p99_s"] for r in runs),
        "fairness": [round(h / total_held, 3) for h in held],
        "status": max(r["status"] for r in runs),
    }


COLUMNS = ("policy", "check", "switch_s", "wall_s", "instr/s", "switches", "reacq%", "wait_p50",
           "wait_p99", "fairness (share of GIL time per spawned thread)")  # fmt: skip


def format_row(row: dict) -> list[str]:
    """A summary row as table cells."""
    return [
        row["policy"],
        str(row["check_interval"]),
        f"{row['switch_interval']:g}",
        f"{row['wall_s']:.4f}",
        f"{row['instructions_per_s'] / 1e6:.2f}M",
        str(row["switches"]),
        f"{row['releaser_reacquired_pct']:.1f}",
        f"{row['wait_p50_s'] * 1e6:.0f}us",
        f"{row['wait_p99_s'] * 1e6:.0f}us",
        " ".join(f"{share:.2f}" for share in row["fairness"]) or "-",
    ]


def print_table(rows: list[dict], stream) -> None:
    """The experiment's table, aligned."""
    cells = [list(COLUMNS)] + [format_row(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    for line in cells:
        stream.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")


def run_experiment(args: argparse.Namespace, program) -> int:
    """``minivm experiment`` on an already compiled ``minivm.api.Program``."""
    for path in (args.csv, args.plot):
        problem = cannot_write(path)
        if problem:
            print(problem, file=sys.stderr)
            return 2
    from minivm.api import experiment

    def progress(done: int, total: int, policy: str, check: int, switch: float) -> None:
        sys.stderr.write(f"\r[{done}/{total}] {policy} check={check} switch={switch:g} ...")
        sys.stderr.flush()

    rows = experiment(
        program, policies=args.policy, check_intervals=args.check_interval,
        switch_intervals=args.switch_interval, repeat=args.repeat, progress=progress,
    )  # fmt: skip
    sys.stderr.write("\r" + " " * 60 + "\r")
    print_table(rows, sys.stdout)
    if args.csv:
        with open_output(args.csv, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(format_row(r) for r in rows)
    if args.plot:
        from minivm.observe.plot import PlotUnavailable, plot_experiment

        try:
            plot_experiment(args.plot, rows)
        except PlotUnavailable as exc:
            print(f"minivm: {exc}", file=sys.stderr)
            return 2
    failed = [r for r in rows if r["status"]]
    for row in failed:  # the program's own output is discarded: say which runs failed, and how to see why
        print(f"minivm: the program failed (exit status {row['status']}) under --policy {row['policy']} "
              f"--check-interval {row['check_interval']} --switch-interval {row['switch_interval']:g}; "
              f"minivm run with those options shows why", file=sys.stderr)  # fmt: skip
    return 1 if failed else 0
