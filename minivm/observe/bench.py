"""``minivm bench``: minivm against the CPython that runs it, measured in one run.

Every figure is a ratio against a baseline measured in the same process, a moment apart:
each guest program against the same program in plain Python, the tick check against no
GIL, a GIL hand-off against a bare ``threading.Condition`` ping-pong, a guest spawn+join
against ``threading.Thread``, and start-up against ``python -c "import lark"``; and the
speed of ``minivm explore`` in schedules per second (no baseline: the target is 300/s).
Guest programs and the check are measured on both engines, the interpreter and the compiled
tier, side by side; both ratios are against the same baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import statistics
import subprocess
import sys
import threading
import time
import timeit

import attrs


@attrs.frozen
class Workload:
    """One benchmark program, written twice: in minivm and in plain Python."""

    name: str
    minivm: str
    python: str
    threaded: bool = False


def _suite(n: int) -> list[Workload]:
    """The fixed suite; ``n`` scales the work (smaller for ``--quick``)."""
    return [
        Workload(
            "countdown",
            f"fn count(n) {{ while n > 0 {{ n = n - 1; }} return n; }}\nprint(count({300_000 * n}));",
            f"def count(n):\n    while n > 0:\n        n = n - 1\n    return n\nprint(count({300_000 * n}))",
        ),
        Workload(
            "fib",
            f"fn fib(n) {{ if n < 2 {{ return n; }} return fib(n - 1) + fib(n - 2); }}\nprint(fib({18 + n}));",
            f"def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\nprint(fib({18 + n}))",
        ),
        Workload(
            "sieve",
            f"let n = {20_000 * n};\nlet flags = [];\nfor i in range(n + 1) {{ push(flags, true); }}\n"
            "let count = 0;\nfor i in range(2, n + 1) {\n  if flags[i] {\n    count += 1;\n"
            "    let j = i * i;\n    while j <= n { flags[j] = false; j += i; }\n  }\n}\nprint(count);",
            f"n = {20_000 * n}\nflags = []\nfor i in range(n + 1):\n    flags.append(True)\ncount = 0\n"
            "for i in range(2, n + 1):\n    if flags[i]:\n        count += 1\n        j = i * i\n"
            "        while j <= n:\n            flags[j] = False\n            j += i\nprint(count)",
        ),
        Workload(
            "word_count",
            'let words = ["the", "gil", "lock", "thread", "tick", "the", "vm", "gil"];\n'
            f"let counts = {{}};\nfor i in range({10_000 * n}) {{\n  let w = words[i % 8];\n"
            "  if has(counts, w) { counts[w] += 1; } else { counts[w] = 1; }\n}\nprint(counts[\"gil\"]);",
            'words = ["the", "gil", "lock", "thread", "tick", "the", "vm", "gil"]\n'
            f"counts = {{}}\nfor i in range({10_000 * n}):\n    w = words[i % 8]\n"
            "    if w in counts:\n        counts[w] += 1\n    else:\n        counts[w] = 1\nprint(counts['gil'])",
        ),
        Workload(
            "strings",
            f'let s = "";\nfor i in range({10_000 * n}) {{ s = s + str(i % 10); }}\nprint(len(s));',
            f's = ""\nfor i in range({10_000 * n}):\n    s = s + str(i % 10)\nprint(len(s))',
        ),
        Workload(
            "closures",
            "fn adder(k) { return fn (x) { return x + k; }; }\nlet add3 = adder(3);\nlet total = 0;\n"
            f"for i in range({30_000 * n}) {{ total = add3(total); }}\nprint(total);",
            "def adder(k):\n    return lambda x: x + k\nadd3 = adder(3)\ntotal = 0\n"
            f"for i in range({30_000 * n}):\n    total = add3(total)\nprint(total)",
        ),
        Workload(
            "two_threads",
            "fn count(n) { while n > 0 { n = n - 1; } return n; }\n"
            f"let a = spawn count({150_000 * n}); let b = spawn count({150_000 * n});\n"
            "print(join(a) + join(b));",
            "import threading\ndef count(n):\n    while n > 0:\n        n = n - 1\n    return n\n"
            f"ts = [threading.Thread(target=count, args=({150_000 * n},)) for _ in range(2)]\n"
            "[t.start() for t in ts]\n[t.join() for t in ts]\nprint(0)",
            threaded=True,
        ),
    ]


@contextlib.contextmanager
def _no_gc():
    """Time without the host's cyclic garbage collector, as ``timeit`` does: a collection
    that happens to fall inside one side's run would skew its ratio."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _timed(function) -> float:
    """Wall seconds of one call of ``function``, without the host's garbage collector."""
    with _no_gc():
        start = time.perf_counter()
        function()
        return time.perf_counter() - start


def interleaved(measures: dict, repeat: int) -> dict[str, float]:
    """Median seconds of each measure, taken in turns: round after round, every measure once.

    ``measures`` maps a name to a function returning seconds, or to ``(function, times)`` to
    take it ``times`` times per round (short baselines). The machine's speed drifts by tens
    of percent over seconds here (a shared host): measured in turns, both sides of a ratio
    see the same drift, where measured one after the other they would not."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeat):
        for name, measure in measures.items():
            function, times = measure if isinstance(measure, tuple) else (measure, 1)
            samples[name].extend(function() for _ in range(times))
    return {name: statistics.median(values) for name, values in samples.items()}


ENGINES = ("interp", "compiled")


def _run_minivm(program, policy: str = "ticks", check: int = 100, engine: str = "auto") -> tuple[float, int]:
    """One run of a compiled ``minivm.api.Program`` through the API: (wall seconds of
    ``api.run``, instructions run). Raises ``RuntimeError`` if the program fails."""
    from minivm import api

    with _no_gc():
        start = time.perf_counter()
        result = api.run(program, policy=policy, check_interval=check, engine=engine, stdout=io.StringIO())
        wall = time.perf_counter() - start
    if result.exit_status != 0:
        raise RuntimeError("benchmark program failed")
    return wall, result.stats["instructions"]


def _run_python(source: str) -> None:
    exec(compile(source, "<bench>", "exec"), {"__name__": "__bench__", "print": lambda *a: None})


def _minivm_measure(code, counts: dict, name: str, **kwargs):
    """A measure for ``interleaved``: one run of ``code`` on minivm; its instruction count
    goes in ``counts[name]``."""

    def measure() -> float:
        wall, counts[name] = _run_minivm(code, **kwargs)
        return wall

    return measure


def tracing_off_overhead(instructions: int, wall: float, check: int) -> float:
    """What tracing costs a run while it is off, as a ratio against no tracing code at all.

    With tracing off, the only tracing code that runs is one attribute test in the check
    (``if self.tracing``), reached once per ``check`` instructions; the loop itself has no
    tracing code. So the cost is that test, timed here, times the number of checks. The test
    reads a plain instance attribute, as on the VM: timed on a stand-in, so that the bench
    builds no VM of its own."""

    class _Machine:
        def __init__(self) -> None:
            self.tracing = False

    machine = _Machine()
    number = 1_000_000
    test = timeit.timeit("if machine.tracing: pass", globals={"machine": machine}, number=number)
    empty = timeit.timeit("pass", number=number)
    per_test = max(test - empty, 0.0) / number
    return 1 + (instructions / check) * per_test / wall


def condition_ping_pong(rounds: int) -> float:
    """Seconds per one-way hand-off between two threads using a bare Condition."""
    cond = threading.Condition()
    state = {"turn": 0}

    def player(me: int) -> None:
        for _ in range(rounds):
            with cond:
                while state["turn"] != me:
                    cond.wait()
                state["turn"] = 1 - me
                cond.notify()

    threads = [threading.Thread(target=player, args=(i,)) for i in (0, 1)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - start) / (2 * rounds)


def gil_handoff(rounds: int) -> float:
    """Seconds per ``fifo`` GIL hand-off: two guest threads at check interval 1, minus the
    same work with no hand-offs (interval larger than the work)."""
    from minivm import api

    program = api.compile(
        f"fn spin(n) {{ while n > 0 {{ n = n - 1; }} }}\nlet a = spawn spin({rounds}); "
        f"let b = spawn spin({rounds});\njoin(a); join(b);",
        filename="<bench>",
    )

    def run(check: int) -> tuple[float, int]:
        start = time.perf_counter()
        result = api.run(program, policy="fifo", check_interval=check, stdout=io.StringIO())
        return time.perf_counter() - start, result.stats["switches"]

    busy, switches = run(6)  # one hand-off per loop iteration (6 instructions)
    quiet, few = run(10**9)
    return max(busy - quiet, 0.0) / max(switches - few, 1)


def spawn_join(count: int) -> tuple[float, float]:
    """Seconds per guest spawn+join, and per bare ``threading.Thread`` start+join."""
    from minivm import api

    program = api.compile(
        f"fn nothing() {{ return 1; }}\nfor i in range({count}) {{ join(spawn nothing()); }}", filename="<bench>"
    )
    guest, _ = _run_minivm(program, policy="fifo")
    start = time.perf_counter()
    for _ in range(count):
        t = threading.Thread(target=lambda: 1)
        t.start()
        t.join()
    host = time.perf_counter() - start
    return guest / count, host / count


def startup(repeat: int) -> tuple[float, float]:
    """Wall time of ``minivm run`` on hello world, and of ``python -c "import lark"``."""

    def command(*words: str):
        return lambda: _timed(lambda: subprocess.run([sys.executable, *words], capture_output=True, check=True))

    medians = interleaved(
        {
            "minivm": command("-m", "minivm", "run", "-c", 'print("hello, world");'),
            "lark": command("-c", "import lark"),
        },
        repeat,
    )
    return medians["minivm"], medians["lark"]


# Two threads, 82 instructions in all: the program ``minivm explore``'s speed target names.
EXPLORE_PROGRAM = """let counter = 0;
fn work(n) { for i in range(n) { counter += 1; } }
let a = spawn work(3); let b = spawn work(3);
join(a); join(b);
print(counter);
"""


def explore_rate(seconds: float) -> tuple[float, int]:
    """Schedules per second of ``minivm explore`` (dfs, preemption bound 2) on
    ``EXPLORE_PROGRAM``, run for about ``seconds``; returns (rate, schedules run)."""
    from minivm.explore.engine import explore
    from minivm.explore.runner import Program
    from minivm.explore.strategies import DFS
    from minivm.frontend.compiler import compile_source

    program = Program("<explore>", EXPLORE_PROGRAM, compile_source(EXPLORE_PROGRAM, "<explore>"))
    report = explore(program, DFS(2), time_limit=seconds)
    return report.runs / report.elapsed_s, report.runs


def add_bench_parser(sub) -> None:
    """Register ``minivm bench``."""
    parser = sub.add_parser(
        "bench",
        help="measure minivm against CPython itself",
        description="Run the benchmark suite in minivm and as plain Python in the same run; print ratios.",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, fewer repeats (< 1 minute)")
    parser.set_defaults(handler=cmd_bench)


def _progress(text: str) -> None:
    sys.stderr.write(f"\r\033[K{text}")
    sys.stderr.flush()


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def cmd_bench(args: argparse.Namespace) -> int:
    """``minivm bench``: every guest program compiled and run through ``minivm.api``."""
    from minivm import api
    from minivm.outputs import cannot_write, open_output

    problem = cannot_write(args.json)  # before minutes of measuring, not after
    if problem:
        print(problem, file=sys.stderr)
        return 2
    scale, repeat = (1, 3) if args.quick else (3, 5)
    results: dict = {"quick": bool(args.quick), "python": sys.version.split()[0], "programs": []}
    header = f"{'program':<12} {'python s':>9} {'interp s':>9} {'ratio':>7} {'compiled s':>11} {'ratio':>7}"
    print(f"{header} {'instr/s':>9}")
    for workload in _suite(scale):
        _progress(f"bench: {workload.name} ...")
        program = api.compile(workload.minivm, filename=f"<{workload.name}>")
        counts: dict[str, int] = {}
        # The Python runs are short and cheap: more of them steady the baseline's median.
        python = (lambda w=workload: _timed(lambda: _run_python(w.python)), 4)
        walls = interleaved(
            {"python": python, **{e: _minivm_measure(program, counts, e, engine=e) for e in ENGINES}}, repeat
        )
        base = walls["python"]
        row = {"name": workload.name, "python_s": base, "threaded": workload.threaded,
               "instructions": counts["interp"]}  # fmt: skip
        for engine in ENGINES:
            wall = walls[engine]
            row[f"{engine}_s"] = wall
            row[f"{engine}_ratio"] = wall / base
            row[f"{engine}_instructions_per_s"] = counts[engine] / wall
        results["programs"].append(row)
        _progress("")
        rate = row["compiled_instructions_per_s"] / 1e6
        print(f"{row['name']:<12} {base:>9.4f} {row['interp_s']:>9.4f} {row['interp_ratio']:>6.1f}x "
              f"{row['compiled_s']:>11.4f} {row['compiled_ratio']:>6.2f}x {rate:>8.2f}M")  # fmt: skip
    for engine in ENGINES:
        single = [r[f"{engine}_ratio"] for r in results["programs"] if not r["threaded"]]
        results[f"geomean_ratio_{engine}"] = _geomean(single)
    print(f"geometric mean ratio, single-thread programs: interp {results['geomean_ratio_interp']:.1f}x, "
          f"compiled {results['geomean_ratio_compiled']:.2f}x")  # fmt: skip

    _progress("bench: tick check overhead ...")
    countdown = api.compile(_suite(scale)[0].minivm, filename="<countdown>")
    for engine in ENGINES:
        counts = {}
        settings = {"ticks": ("ticks", 100), "none": ("none", 100), "unchecked": ("ticks", 10**9)}
        walls = interleaved(
            {
                name: _minivm_measure(countdown, counts, name, policy=policy, check=check, engine=engine)
                for name, (policy, check) in settings.items()
            },
            repeat,
        )
        ticks_wall, none_wall, unchecked_wall = walls["ticks"], walls["none"], walls["unchecked"]
        ticked = counts["ticks"]
        results[f"tick_check_overhead_{engine}"] = ticks_wall / none_wall
        results[f"slow_path_overhead_{engine}"] = ticks_wall / unchecked_wall
        if engine == "interp":
            results["tracing_off_overhead"] = tracing_off_overhead(ticked, ticks_wall, check=100)
    _progress("bench: GIL hand-off ...")
    rounds = 3000 if args.quick else 10000
    results["gil_handoff_s"] = gil_handoff(rounds)
    results["condition_handoff_s"] = condition_ping_pong(rounds)
    results["handoff_ratio"] = results["gil_handoff_s"] / results["condition_handoff_s"]
    _progress("bench: spawn and join ...")
    guest_spawn, host_spawn = spawn_join(300 if args.quick else 1000)
    results["spawn_join_s"], results["thread_start_join_s"] = guest_spawn, host_spawn
    results["spawn_ratio"] = guest_spawn / host_spawn
    _progress("bench: explore ...")
    results["explore_schedules_per_s"], _ = explore_rate(0.5 if args.quick else 2.0)
    _progress("bench: start-up ...")
    mine, base = startup(3 if args.quick else 5)
    results["startup_s"], results["import_lark_s"] = mine, base
    results["startup_ratio"] = mine / base
    _progress("")
    print(f"tick check, ticks@100 vs none (one thread):     interp {results['tick_check_overhead_interp']:.3f}x, "
          f"compiled {results['tick_check_overhead_compiled']:.3f}x")  # fmt: skip
    print(f"the whole check, @100 vs never checking:        interp {results['slow_path_overhead_interp']:.3f}x, "
          f"compiled {results['slow_path_overhead_compiled']:.3f}x")  # fmt: skip
    print(f"tracing compiled in but off (its test per check): {results['tracing_off_overhead']:.4f}x (interp)")
    print(f"fifo GIL hand-off vs bare Condition hand-off:   {results['handoff_ratio']:.2f}x "
          f"({results['gil_handoff_s'] * 1e6:.1f} us vs {results['condition_handoff_s'] * 1e6:.1f} us)")  # fmt: skip
    print(f"spawn+join vs threading.Thread start+join:      {results['spawn_ratio']:.2f}x "
          f"({guest_spawn * 1e6:.0f} us vs {host_spawn * 1e6:.0f} us)")  # fmt: skip
    print(f"explore, two threads, 82 instructions (dfs):    {results['explore_schedules_per_s']:.0f} schedules/s")
    print(f"start-up (hello world) vs python -c 'import lark': {results['startup_ratio']:.2f}x "
          f"({mine * 1000:.0f} ms vs {base * 1000:.0f} ms)")  # fmt: skip
    if args.json:
        with open_output(args.json) as handle:
            json.dump(results, handle, indent=2)
            handle.write("\n")
    return 0
