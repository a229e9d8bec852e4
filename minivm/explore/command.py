"""``minivm explore``: the command line of the exploration (parser, report, saved schedules).

Prints, on standard output: how many schedules ran and how fast, whether the (bounded)
space was exhausted, and each distinct outcome with its count and the saved schedule of
fewest preemptions that produces it (a file ``minivm run --replay`` accepts). A progress line
goes to standard error. Exit status: 0, or 1 when some outcome is an error (exit status not 0)
— as a test runner would; 2 for bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor

from minivm.arguments import non_negative_int, positive_float, positive_int
from minivm.schedule.session import save

from .engine import STOP_ON, Report, explore
from .runner import Program, follow, run_once
from .strategies import make_strategy

HELP = "run a program under many schedules and report every outcome"


def add_explore_parser(sub) -> argparse.ArgumentParser:
    """Register ``minivm explore`` on the command line's sub-parsers."""
    parser = sub.add_parser(
        "explore", help=HELP,
        description="Run a program under many thread schedules (switching only where threads "
        "touch shared state) and report every distinct outcome with a schedule that produces it.",
    )  # fmt: skip
    parser.add_argument("program", metavar="FILE", help="the .mv file to explore")
    parser.add_argument("--strategy", choices=("dfs", "pct", "random"), default="dfs",
                        help="dfs: every schedule within the preemption bound, fewest preemptions first (default); "
                        "pct: probabilistic concurrency testing; random: random choices")  # fmt: skip
    parser.add_argument("--preemptions", type=non_negative_int, default=2, metavar="K",
                        help="dfs: at most K preemptions per schedule (default 2)")  # fmt: skip
    parser.add_argument("--depth", type=positive_int, default=2, metavar="D",
                        help="pct: the bug depth to aim for (default 2)")  # fmt: skip
    parser.add_argument("--runs", type=positive_int, default=None, metavar="N",
                        help="at most N schedules (pct and random: default 1000)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="pct and random: the seed (default 0)")
    parser.add_argument("--time-limit", type=positive_float, default=None, metavar="S", help="stop after S seconds")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="J",
                        help="pct and random: split the runs over J processes (default 1)")  # fmt: skip
    parser.add_argument("--stop-on", choices=STOP_ON, default=None,
                        help="stop at the first outcome that is an error, a deadlock or a failed assert")  # fmt: skip
    parser.add_argument("--max-steps", type=positive_int, default=100_000, metavar="N",
                        help="instructions per run before it counts as a runaway (default 100000)")  # fmt: skip
    parser.add_argument("--save", metavar="DIR", default=None,
                        help="where to save one schedule per outcome (default: FILE's name + .schedules)")  # fmt: skip
    return parser




def _progress(report: Report) -> None:
    rate = report.runs / report.elapsed_s if report.elapsed_s else 0.0
    sys.stderr.write(f"\rexplore: {report.runs} schedules, {len(report.outcomes)} outcomes, {rate:.0f}/s ")
    sys.stderr.flush()


def _worker(job: tuple) -> Report:
    """One process of ``--jobs``: compile and explore with its own seed."""
    from minivm.frontend.compiler import compile_source

    name, text, strategy, depth, runs, seed, time_limit, stop_on, max_steps = job
    program = Program(name, text, compile_source(text, name), max_steps=max_steps)
    return explore(program, make_strategy(strategy, None, depth, runs, seed), None, time_limit, stop_on)


def _run(args: argparse.Namespace, program: Program) -> Report:
    if args.jobs > 1 and args.strategy != "dfs":
        total = args.runs or 1000
        shares = [total // args.jobs + (1 if i < total % args.jobs else 0) for i in range(args.jobs)]
        jobs = [
            (program.name, program.text, args.strategy, args.depth, share, args.seed + i, args.time_limit,
             args.stop_on, program.max_steps)
            for i, share in enumerate(shares) if share
        ]  # fmt: skip
        with ProcessPoolExecutor(len(jobs)) as pool:
            reports = list(pool.map(_worker, jobs))
        merged = Report(args.strategy, elapsed_s=max(r.elapsed_s for r in reports))
        for report in reports:
            merged.merge(report)
        return merged
    if args.jobs > 1:
        print("minivm: note: dfs runs in one process (--jobs applies to pct and random)", file=sys.stderr)
    strategy = make_strategy(args.strategy, args.preemptions, args.depth, args.runs, args.seed)
    runs = args.runs if args.strategy == "dfs" else None
    return explore(program, strategy, runs, args.time_limit, args.stop_on, _progress)


def run_explore(args: argparse.Namespace, name: str, text: str, code) -> int:
    """``minivm explore``, once the program is compiled; returns the exit status."""
    program = Program(name, text, code, max_steps=args.max_steps)
    save_dir = args.save or os.path.basename(name).removesuffix(".mv") + ".schedules"
    try:
        os.makedirs(save_dir, exist_ok=True)
    except OSError as exc:
        print(f"minivm: cannot create '{save_dir}': {exc.strerror or exc}", file=sys.stderr)
        return 2
    report = _run(args, program)
    _progress(report)
    sys.stderr.write("\n")
    _print_report(args, program, report, save_dir)
    return 1 if any(outcome.status != 0 for outcome in report.outcomes) else 0


def _space(args: argparse.Namespace, report: Report) -> str:
    if args.strategy != "dfs":
        return f"not exhaustive ({args.strategy} samples schedules; seed {args.seed})"
    if report.exhausted and not report.pruned:
        return "exhausted: every schedule was run"
    if report.exhausted:
        return f"exhausted within the bound: every schedule with at most {args.preemptions} preemptions was run"
    return "not exhausted"


def _print_report(args: argparse.Namespace, program: Program, report: Report, save_dir: str) -> None:
    from .points import SwitchPoints

    rate = report.runs / report.elapsed_s if report.elapsed_s else 0.0
    bound = f", preemption bound {args.preemptions}" if args.strategy == "dfs" else ""
    print(f"explore {program.name}: strategy {args.strategy}{bound}")
    repeats = f"; and {report.repeats} repeated to reach them" if report.repeats else ""
    print(f"schedules run: {report.runs} in {report.elapsed_s:.2f} s ({rate:.0f}/s{repeats})")
    print(f"space: {_space(args, report)}")
    if report.stopped:
        print(f"stopped: {report.stopped}")
    print(f"outcomes: {len(report.outcomes)}")
    points = SwitchPoints(program.code)
    ordered = sorted(report.outcomes.items(), key=lambda item: (-item[1].count, item[1].preemptions))
    for number, (outcome, found) in enumerate(ordered, 1):
        print(f"  #{number}: {found.count} schedule{'s' if found.count != 1 else ''}: {outcome.describe()}")
        rerun = run_once(program, points, follow(found.choices), record=True)
        path = os.path.join(save_dir, f"outcome-{number}.json")
        assert rerun.schedule is not None
        save(rerun.schedule, path)
        same = (
            "" if rerun.outcome == outcome else " (note: its rerun gave another outcome: the program reads the clock)"
        )
        print(f"      fewest preemptions: {found.preemptions}; schedule: {path}{same}")
        compact = rerun.schedule.to_compact()
        if len(compact) <= 200:
            print(f"      {compact}")

