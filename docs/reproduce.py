"""Regenerate docs/experiments.md: minivm's GIL experiments beside CPython's, from one run.

Each experiment runs a minivm program (``programs/``) and, where one exists, its plain-Python
twin (``benchmarks/twins/``) under every CPython this script finds: ``python2.7`` (the
``ticks`` GIL), the running ``python3`` (the ``timed`` GIL) and a free-threaded ``python3.13t``
(no GIL). minivm itself runs on the GIL host (this interpreter) and, when given one, on the
free-threaded host. Every table is measured in this run, and every sentence of agreement or
difference on the page is computed from its own table (``_verdict``), so the page cannot
claim what its figures do not show.

Usage::

    python docs/reproduce.py [--repeat N] [--quick] [--free-threaded PYTHON] [--write]

``--free-threaded`` (or ``$MINIVM_FREE_THREADED_PYTHON``) names a free-threaded Python that
has minivm's dependencies (lark, attrs) installed. ``--write`` replaces docs/experiments.md;
otherwise the page is printed. Figures are medians of ``--repeat`` runs (default 3).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWINS = ROOT / "benchmarks" / "twins"
SAME_KIND = "the same kind (both none or both some)"


# -- finding the hosts
def find_python27() -> str | None:
    """A CPython 2.7 on PATH or under pyenv, if any."""
    found = shutil.which("python2.7")
    if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
        return found
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python2.7")))
    return candidates[-1] if candidates else None


def describe(python: str) -> str:
    """``CPython 3.11.7`` or ``CPython 3.13.5t`` for an interpreter path."""
    code = (
        "import sys, sysconfig; v = sys.version.split()[0]; "
        "print(v + ('t' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return f"CPython {out.stdout.strip()}"


class Hosts:
    """The interpreters of this run: CPythons for the twins, hosts for minivm."""

    def __init__(self, free_threaded: str | None):
        self.py27 = find_python27()
        self.py3 = sys.executable
        self.ft = free_threaded
        self.minivm_hosts = {"GIL host": self.py3}
        if self.ft:
            self.minivm_hosts["free-threaded host"] = self.ft


# -- running
def run(command: list[str], timeout: float = 300) -> str:
    """Run ``command`` from the repository root; its stdout (stripped). A failure raises."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout.strip()


def minivm(host: str, program: str, *options: str, stats: Path | None = None) -> tuple[str, dict]:
    """Run a minivm program on ``host``; its output and (if asked) its statistics."""
    extra = ["--stats-json", str(stats)] if stats else []
    out = run([host, "-m", "minivm", "run", *options, *extra, program])
    return out, (json.loads(stats.read_text()) if stats else {})


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    return statistics.median(values)


# -- the words, from the figures
def _verdict(ours: float, theirs: float, tolerance: float = 0.25) -> str:
    """``agrees`` when within ``tolerance`` (relative), else how far off and which way."""
    if theirs == 0:
        return "agrees" if ours == 0 else "differs"
    ratio = ours / theirs
    if abs(ratio - 1) <= tolerance:
        return f"agrees ({ratio:.2f}× of CPython's figure)"
    return f"differs: {ratio:.2f}× CPython's figure"


def fmt(value: float | None, unit: str = "") -> str:
    """A figure for a table cell (``—`` when not measured)."""
    if value is None:
        return "—"
    if unit == "us":
        return f"{value:,.0f} µs"
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:,.0f}"


class Experiments:
    """The experiments; each returns the markdown of its section."""

    def __init__(self, hosts: Hosts, repeat: int, folder: Path):
        self.hosts = hosts
        self.repeat = repeat
        self.folder = folder

    def _repeat(self, measure) -> float:
        return median([measure() for _ in range(self.repeat)])

    # (1) two CPU threads against the same work in sequence
    def seed(self) -> str:
        rows = []
        cpython = {}
        if self.hosts.py27:
            for interval in (100, 10):
                value = self._repeat(
                    lambda i=interval: int(run([self.hosts.py27, str(TWINS / "seed_ratio.py"), str(i)])) / 100
                )
                cpython[f"2.7 @{interval}"] = value
        cpython["3"] = self._repeat(lambda: int(run([self.hosts.py3, str(TWINS / "seed_ratio.py")])) / 100)
        if self.hosts.ft:
            cpython["3.13t"] = self._repeat(lambda: int(run([self.hosts.ft, str(TWINS / "seed_ratio.py")])) / 100)
        settings = [("ticks", "100"), ("ticks", "10"), ("timed", "100"), ("fifo", "100"), ("none", "100")]
        ours: dict[tuple[str, str], dict[str, float]] = {}
        for policy, interval in settings:
            ours[(policy, interval)] = {}
            for name, host in self.hosts.minivm_hosts.items():
                ours[(policy, interval)][name] = self._repeat(
                    lambda h=host, p=policy, i=interval: (
                        int(minivm(h, "programs/seed_ratio.mv", "--policy", p, "--check-interval", i)[0]) / 100
                    )
                )
        host_names = list(self.hosts.minivm_hosts)
        rows.append("| minivm | " + " | ".join(host_names) + " | CPython |")
        rows.append("| --- | " + " | ".join("---" for _ in host_names) + " | --- |")
        twin_of = {("ticks", "100"): "2.7 @100", ("ticks", "10"): "2.7 @10", ("timed", "100"): "3",
                   ("none", "100"): "3.13t"}  # fmt: skip
        sentences = []
        for key, figures in ours.items():
            twin = twin_of.get(key)
            theirs = cpython.get(twin) if twin else None
            label = f"`{key[0]}` @{key[1]}" if key[0] in ("ticks",) else f"`{key[0]}`"
            cells = " | ".join(fmt(figures[h], "x") for h in host_names)
            rows.append(f"| {label} | {cells} | {f'{twin}: ' + fmt(theirs, 'x') if theirs else '—'} |")
            if theirs:
                for h in host_names:
                    sentences.append(f"- {label} on the {h}: {fmt(figures[h], 'x')} against CPython {twin}'s "
                                     f"{fmt(theirs, 'x')} — {_verdict(figures[h], theirs)}.")  # fmt: skip
        return "\n".join(
            [
                "## (1) Two CPU-bound threads against the same work in sequence",
                "",
                "`programs/seed_ratio.mv` and its twin `benchmarks/twins/seed_ratio.py`: threaded time",
                "divided by sequential time (1.0× = threads cost nothing; 0.5× = perfect parallelism).",
                "",
                *rows,
                "",
                *sentences,
            ]
        )

    # (1b) the price of a check: the time between checks decides the ratio
    def check_period(self) -> str:
        work = "fn work(n) { while n > 0 { n -= 1; } return n; }\n"
        timer = work + ("let best = nil;\nfor r in range(3) { let t0 = time(); work(300000); let d = time() - t0;"
                        " if best == nil or d < best { best = d; } }\nprint(best);\n")  # fmt: skip
        twin_timer = ("import time\ndef work(n):\n    while n > 0:\n        n -= 1\nbest = None\nfor r in range(3):\n"
                      "    t0 = time.time(); work(300000); d = time.time() - t0\n"
                      "    best = d if best is None or d < best else best\nprint(best)\n")  # fmt: skip
        stats = self.folder / "ticks.json"

        def instructions(n: int) -> int:
            run([self.hosts.py3, "-m", "minivm", "run", "--stats-json", str(stats), "-c", work + f"work({n});"])
            return json.loads(stats.read_text())["instructions"]

        # Ticks per loop iteration, counted by minivm itself; CPython 2.7 ticks twice an
        # iteration of this loop (ceval.c: LOAD_FAST, LOAD_CONST, STORE_FAST and COMPARE_OP's
        # predicted jump go to fast_next_opcode, past the ticker).
        per_iteration = (instructions(2000) - instructions(1000)) / 1000
        rows = ["| `ticks` | time between checks | threads vs sequence | added per contended check |",
                "| --- | --- | --- | --- |"]  # fmt: skip
        figures: dict[str, tuple[float, float]] = {}
        settings = [("GIL host", "compiled", i) for i in (100, 200, 400)] + [("GIL host", "interp", 100)]
        if self.hosts.ft:
            settings += [("free-threaded host", "compiled", 100), ("free-threaded host", "interp", 100)]
        for host_name, engine, interval in settings:
            host = self.hosts.minivm_hosts[host_name]
            vm = ["--policy", "ticks", "--engine", engine, "--check-interval", str(interval)]
            best = self._repeat(lambda h=host, o=vm: float(run([h, "-m", "minivm", "run", *o, "-c", timer])))
            ratio = self._repeat(lambda h=host, o=vm: int(minivm(h, "programs/seed_ratio.mv", *o)[0]) / 100)
            tier = "compiled tier" if engine == "compiled" else "interpreter"
            figures[f"minivm, {host_name}, {tier} @{interval}"] = (best / (300000 * per_iteration / interval) * 1e6,
                                                                   ratio)  # fmt: skip
        if self.hosts.py27:
            best = self._repeat(lambda: float(run([self.hosts.py27, "-c", twin_timer])))
            for interval in (100, 200):
                ratio = self._repeat(
                    lambda i=interval: int(run([self.hosts.py27, str(TWINS / "seed_ratio.py"), str(i)])) / 100
                )
                figures[f"CPython 2.7 @{interval}"] = (best / (300000 * 2 / interval) * 1e6, ratio)
        for label, (period, ratio) in figures.items():
            rows.append(f"| {label} | {period:.2f} µs | {ratio:.2f}× | {(ratio - 1) * period:.2f} µs |")
        sentences = []
        theirs = figures.get("CPython 2.7 @100")
        if theirs:
            compiled = {k: v for k, v in figures.items() if k.startswith("minivm, GIL host, compiled")}
            closest = min(compiled, key=lambda k: abs(compiled[k][0] - theirs[0]))
            period, ratio = compiled[closest]
            sentences.append(f"- At about CPython 2.7's time between checks at @100 ({theirs[0]:.2f} µs), "
                             f"{closest} ({period:.2f} µs) reads {ratio:.2f}× against 2.7's "
                             f"{theirs[1]:.2f}× — {_verdict(ratio, theirs[1])}.")  # fmt: skip
            for host_name in self.hosts.minivm_hosts:
                added = median([(r - 1) * p for k, (p, r) in figures.items() if k.startswith(f"minivm, {host_name}")])
                sentences.append(f"- What a contended check adds on the {host_name}, median of its rows: "
                                 f"{added:.2f} µs; CPython 2.7 @100: {(theirs[1] - 1) * theirs[0]:.2f} µs — "
                                 f"{_verdict(added, (theirs[1] - 1) * theirs[0], 0.5)}.")  # fmt: skip
        return "\n".join(
            [
                "## (1b) The price of a check: the time between checks decides the ratio",
                "",
                "Under `ticks` a check with a waiter releases the GIL, which wakes the parked waiter,",
                "and re-takes it; now and then the waiter wins and the GIL changes hands. That price is",
                "paid per check, so two threads against the same work in sequence",
                "(`programs/seed_ratio.mv`) cost more the shorter the time between checks: the check",
                "interval times the time a tick takes, here a loop iteration timed alone divided by its",
                f"ticks ({per_iteration:g} for minivm, counted; 2 for CPython 2.7, whose commonest",
                "opcodes do not tick). minivm's compiled tier has the shortest ticks, so at @100 it",
                "checks most often. Added per contended check: (ratio − 1) × time between checks. On",
                "the GIL host a battle's winner must also win the host's own lock before it runs",
                "(docs/gil.md, `ticks`: \"What a contended check costs on a GIL host\").",
                "",
                *rows,
                "",
                *sentences,
            ]
        )

    # (2) the battle under ticks
    def battle(self) -> str:
        rows = ["| `ticks` @100, two CPU threads | releaser reacquired | switches |", "| --- | --- | --- |"]
        sentences = []
        theirs = None
        if self.hosts.py27:
            theirs = self._repeat(lambda: float(run([self.hosts.py27, str(TWINS / "battle_share.py")])))
            rows.append(f"| CPython 2.7 (twin, this machine) | {theirs:.2f}% | — |")
        for name, host in self.hosts.minivm_hosts.items():
            shares, switches = [], []
            for run_number in range(self.repeat):
                stats_path = self.folder / f"battle{run_number}.json"
                _, stats = minivm(host, "programs/seed_ratio.mv", "--policy", "ticks", stats=stats_path)
                released = sum(t["releases"].get("tick", 0) for t in stats["threads"])
                shares.append(100 * stats["releaser_reacquired"] / max(1, released))
                switches.append(stats["switches"])
            share = median(shares)
            rows.append(f"| minivm, {name} | {share:.2f}% | {median(switches):,.0f} |")
            inside = 95 <= share <= 99.5
            sentence = (f"- On the {name} the releaser won {share:.2f}% of battles; CPython 2.7 won 98.7% "
                        f"in David Beazley's published measurement (Mac OS X) — "
                        f"{'within' if inside else 'outside'} the 95–99.5% band around it")  # fmt: skip
            if theirs is not None:
                lost_ours, lost_theirs = 100 - share, 100 - theirs
                sentence += (f"; CPython 2.7 on this machine: {theirs:.2f}%, its waiter winning "
                             f"{lost_theirs:.3f}% of battles to minivm's {lost_ours:.3f}% — "
                             f"{_verdict(lost_ours, lost_theirs, 0.5)}")  # fmt: skip
            sentences.append(sentence + ".")
        return "\n".join(
            [
                "## (2) The battle: how often the releaser takes the GIL straight back",
                "",
                "Of the checks at which the holder released the GIL (`tick` releases), the share it won",
                "back at once (`releaser_reacquired`). CPython 2.7 does not count this; its twin",
                "(`benchmarks/twins/battle_share.py`) counts the battles its waiting thread won (changes",
                "of owner seen by two spinning threads) against the checks made (4 ticks an iteration,",
                "100 ticks a check).",
                "",
                *rows,
                "",
                *sentences,
            ]
        )

    # (3) the convoy: an I/O thread beside a CPU thread that keeps running
    def convoy(self) -> str:
        def lateness(command: list[str]) -> float:
            return float(run(command).split()[1])

        cpython = {}
        if self.hosts.py27:
            cpython["2.7"] = self._repeat(lambda: lateness([self.hosts.py27, str(TWINS / "convoy_running.py")]))
        cpython["3"] = self._repeat(lambda: lateness([self.hosts.py3, str(TWINS / "convoy_running.py")]))
        if self.hosts.ft:
            cpython["3.13t"] = self._repeat(lambda: lateness([self.hosts.ft, str(TWINS / "convoy_running.py")]))
        host_names = list(self.hosts.minivm_hosts)
        rows = [
            "| minivm | " + " | ".join(host_names) + " | CPython |",
            "| --- | " + " | ".join("---" for _ in host_names) + " | --- |",
        ]
        sentences = []
        for policy, twin in (("ticks", "2.7"), ("timed", "3"), ("none", "3.13t")):
            figures = {
                name: self._repeat(
                    lambda h=host, p=policy: float(minivm(h, "programs/convoy_running.mv", "--policy", p)[0].split()[1])
                )
                for name, host in self.hosts.minivm_hosts.items()
            }
            theirs = cpython.get(twin)
            rows.append(f"| `{policy}` | " + " | ".join(fmt(figures[h], "us") for h in host_names)
                        + f" | {twin}: {fmt(theirs, 'us')} |")  # fmt: skip
            if theirs is not None:
                for h in host_names:
                    sentences.append(f"- `{policy}` on the {h}: a median wake-up {fmt(figures[h], 'us')} late "
                                     f"against CPython {twin}'s {fmt(theirs, 'us')} — "
                                     f"{_verdict(figures[h], theirs, 0.5)}.")  # fmt: skip
        return "\n".join(
            [
                "## (3) The convoy: an I/O thread's wake-up beside a CPU thread that keeps running",
                "",
                "`programs/convoy_running.mv` and its twin: a thread sleeps 2 ms thirty times beside a",
                "CPU-bound thread that spins until the I/O thread is done; the median lateness of its",
                "wake-ups (sleep's end to running again).",
                "",
                *rows,
                "",
                *sentences,
            ]
        )

    # (4) timed: the wait follows the switch interval
    def timed_waits(self) -> str:
        program = self.folder / "spin.mv"
        program.write_text(
            "fn spin(n) { let s = 0; for i in range(n) { s += 1; } return s; }\n"
            "let a = spawn spin(300000); let b = spawn spin(300000); join(a); join(b);\n"
        )
        host_names = list(self.hosts.minivm_hosts)
        rows = [
            "| `--switch-interval` | " + " | ".join(host_names) + " |",
            "| --- | " + " | ".join("---" for _ in host_names) + " |",
        ]
        sentences = []
        for interval in (0.001, 0.002, 0.005, 0.020):
            figures = {}
            for name, host in self.hosts.minivm_hosts.items():

                def wait(h=host, i=interval) -> float:
                    stats = self.folder / "waits.json"
                    return minivm(h, str(program), "--policy", "timed", "--switch-interval", str(i), stats=stats)[1][
                        "wait_p50_s"
                    ]

                figures[name] = self._repeat(wait)
            rows.append(
                f"| {interval * 1e3:g} ms | " + " | ".join(fmt(figures[h] * 1e6, "us") for h in host_names) + " |"
            )
            for h in host_names:
                within = abs(figures[h] / interval - 1) <= 0.2
                verdict = "within" if within else "outside"
                sentences.append(
                    f"- {interval * 1e3:g} ms on the {h}: median wait {figures[h] * 1e3:.2f} ms, "
                    f"{figures[h] / interval:.2f}× the interval — {verdict} ±20%."
                )
        return "\n".join(
            [
                "## (4) `timed`: a waiter's wait follows the switch interval",
                "",
                "Two spinning threads under `timed`: the median GIL wait (`wait_p50_s`) for each",
                "`--switch-interval`. On CPython 3 the wait is the switch interval by construction.",
                "",
                *rows,
                "",
                *sentences,
            ]
        )

    # (5) the racy counter: where the check may fall
    def racy_counter(self) -> str:
        def lost(command: list[str]) -> float:
            return float(run(command).split()[1])

        cpython = {}
        if self.hosts.py27:
            cpython["2.7"] = self._repeat(lambda: lost([self.hosts.py27, str(TWINS / "racy_counter.py")]))
        cpython["3"] = self._repeat(lambda: lost([self.hosts.py3, str(TWINS / "racy_counter.py")]))
        if self.hosts.ft:
            cpython["3.13t"] = self._repeat(lambda: lost([self.hosts.ft, str(TWINS / "racy_counter.py")]))
        host_names = list(self.hosts.minivm_hosts)
        rows = [
            "| minivm | " + " | ".join(host_names) + " | CPython |",
            "| --- | " + " | ".join("---" for _ in host_names) + " | --- |",
        ]
        sentences = []
        for label, options, twin in (
            ("`ticks`", ["--policy", "ticks"], "2.7"),
            ("`timed`, `--check-at every`", ["--policy", "timed"], None),
            ("`timed`, `--check-at backedge`", ["--policy", "timed", "--check-at", "backedge"], "3"),
            ("`none`", ["--policy", "none"], "3.13t"),
        ):
            figures = {
                name: self._repeat(
                    lambda h=host, o=options: float(minivm(h, "programs/racy_counter.mv", *o)[0].split()[1])
                )
                for name, host in self.hosts.minivm_hosts.items()
            }
            theirs = cpython.get(twin) if twin else None
            rows.append(f"| {label} | " + " | ".join(fmt(figures[h]) for h in host_names)
                        + f" | {f'{twin}: ' + fmt(theirs) if theirs is not None else '—'} |")  # fmt: skip
            for h in host_names:
                if theirs is None:
                    continue
                same_kind = (figures[h] == 0) == (theirs == 0)
                sentences.append(f"- {label} on the {h} lost {fmt(figures[h])} of 400,000 updates, CPython {twin} "
                                 f"lost {fmt(theirs)}: {SAME_KIND if same_kind else 'a different kind'}.")  # fmt: skip
        return "\n".join(
            [
                "## (5) A racy counter: where the check may fall",
                "",
                "`programs/racy_counter.mv` and its twin: two threads each do `counter += 1` 200,000",
                "times without a lock; the number of lost updates (median). CPython 3.10+ checks for a",
                "switch only at backward jumps and calls, so it never splits `counter += 1`",
                "(`--check-at backedge` models it).",
                "",
                *rows,
                "",
                *sentences,
            ]
        )

    # (6) what the GIL protects: the heap audit
    def heap_audit(self) -> str:
        host_names = list(self.hosts.minivm_hosts)
        rows = [
            "| policy | " + " | ".join(host_names) + " |",
            "| --- | " + " | ".join("---" for _ in host_names) + " |",
        ]
        for policy in ("ticks", "fifo", "timed", "none"):
            cells = []
            for host in self.hosts.minivm_hosts.values():
                failed = 0
                for _ in range(self.repeat):
                    result = subprocess.run([host, "-m", "minivm", "run", "--policy", policy, "--heap-check",
                                             "programs/why_gil.mv"], capture_output=True, text=True, cwd=ROOT,
                                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)  # fmt: skip
                    failed += "heap audit: ok" not in result.stderr
                cells.append(f"{failed} of {self.repeat} runs failed")
            rows.append(f"| `{policy}` | " + " | ".join(cells) + " |")
        return "\n".join(
            [
                "## (6) What the GIL protects: the heap audit",
                "",
                "`programs/why_gil.mv` with `--heap-check` (every reference count recounted at exit):",
                "under a GIL policy the audit passes; under `none` threads update reference counts at",
                "once and it fails — on the free-threaded host most of all, where they truly run in",
                "parallel.",
                "",
                *rows,
            ]
        )


def page(hosts: Hosts, sections: list[str]) -> str:
    """The whole of docs/experiments.md."""
    found = [describe(hosts.py3) + " (GIL)"]
    if hosts.py27:
        found.insert(0, describe(hosts.py27))
    if hosts.ft:
        found.append(describe(hosts.ft) + " (free-threaded)")
    return "\n".join(
        [
            "# Reproductions: minivm's GIL beside CPython's",
            "",
            "Generated by `python docs/reproduce.py --write` (do not edit by hand). Every figure below",
            "comes from one run of that script on the machine it ran on, and every sentence is",
            "computed from the table above it. Interpreters found: " + ", ".join(found) + ".",
            "minivm ran on the GIL host (the host's own switch interval kept out of the way, see",
            "docs/gil.md) and, where available, on the free-threaded host.",
            "",
            *(section + "\n" for section in sections),
        ]
    )


def main() -> None:
    """Run every experiment and print or write the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run per figure")
    parser.add_argument("--free-threaded", default=os.environ.get("MINIVM_FREE_THREADED_PYTHON"))
    parser.add_argument("--write", action="store_true", help="replace docs/experiments.md")
    args = parser.parse_args()
    hosts = Hosts(args.free_threaded)
    repeat = 1 if args.quick else args.repeat
    with tempfile.TemporaryDirectory() as name:
        experiments = Experiments(hosts, repeat, Path(name))
        sections = []
        for step in (experiments.seed, experiments.check_period, experiments.battle, experiments.convoy,
                     experiments.timed_waits, experiments.racy_counter, experiments.heap_audit):  # fmt: skip
            print(f"reproduce: {step.__name__} ...", file=sys.stderr, flush=True)
            sections.append(step())
    text = page(hosts, sections)
    if args.write:
        (ROOT / "docs" / "experiments.md").write_text(text, encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
