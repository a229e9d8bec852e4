"""``minivm bench``: the suite's two versions of each program agree, and the command reports
every figure the performance issue asks for. No test here asserts a time: speed is measured,
not tested."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from minivm.frontend.compiler import compile_source
from minivm.observe.bench import _suite
from minivm.runtime.machine import Machine, VMConfig

WORKLOADS = _suite(1)


def run_minivm(source: str, policy: str = "ticks", engine: str = "auto") -> str:
    out = io.StringIO()
    status = Machine(VMConfig(policy=policy, engine=engine), stdout=out).run(compile_source(source, "<bench>"))
    assert status == 0
    return out.getvalue()


def run_python(source: str) -> str:
    printed: list[str] = []

    def capture(*values: object) -> None:
        printed.append(" ".join(map(str, values)))

    exec(compile(source, "<bench>", "exec"), {"__name__": "__bench__", "print": capture})
    return "".join(line + "\n" for line in printed)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["interp", "compiled"])
@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_both_versions_of_each_program_print_the_same(workload, engine):
    # A ratio means something only if both sides do the same work, on either engine.
    expected = run_python(workload.python)
    assert expected.strip(), "the Python version prints its result"
    assert run_minivm(workload.minivm, engine=engine) == expected
    if workload.threaded:
        assert run_minivm(workload.minivm, policy="fifo", engine=engine) == expected


def test_the_suite_has_every_kind_of_program_the_issue_names():
    names = [w.name for w in WORKLOADS]
    assert names == ["countdown", "fib", "sieve", "word_count", "strings", "closures", "two_threads"]
    assert [w.name for w in WORKLOADS if w.threaded] == ["two_threads"]


@pytest.mark.timeout(600)
def test_bench_quick_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "minivm", "bench", "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=580,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "bench: fib" in result.stderr  # the progress line
    lines = result.stdout.splitlines()
    # Both engines side by side, each ratio against the same Python baseline.
    assert lines[0].split() == ["program", "python", "s", "interp", "s", "ratio", "compiled", "s", "ratio", "instr/s"]
    for workload in WORKLOADS:
        row = next(line for line in lines if line.startswith(workload.name))
        assert len(row.split()) == 7 and row.split()[3].endswith("x") and row.split()[5].endswith("x"), row
    for label in ("geometric mean ratio", "tick check", "the whole check", "tracing compiled in but off",
                  "fifo GIL hand-off", "spawn+join", "explore", "start-up"):  # fmt: skip
        assert any(label in line for line in lines), label
    for line in lines:
        if "geometric mean" in line or "check," in line:
            assert "interp" in line and "compiled" in line, line
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["quick"] is True
    assert [p["name"] for p in figures["programs"]] == [w.name for w in WORKLOADS]
    for program in figures["programs"]:
        assert program["python_s"] > 0 and program["instructions"] > 0
        for engine in ("interp", "compiled"):
            assert program[f"{engine}_s"] > 0 and program[f"{engine}_instructions_per_s"] > 0
            assert program[f"{engine}_ratio"] == pytest.approx(program[f"{engine}_s"] / program["python_s"])
    for key in ("geomean_ratio_interp", "geomean_ratio_compiled", "tick_check_overhead_interp",
                "tick_check_overhead_compiled", "slow_path_overhead_interp", "slow_path_overhead_compiled",
                "tracing_off_overhead", "handoff_ratio", "spawn_ratio", "startup_ratio",
                "explore_schedules_per_s"):  # fmt: skip
        assert figures[key] > 0, key


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["missing-dir/bench.json", "."])
def test_bench_refuses_an_unwritable_json_path_before_measuring(tmp_path, where):
    # It used to measure for minutes, then fail: "minivm internal error: [Errno 21] Is a directory".
    result = subprocess.run(
        [sys.executable, "-m", "minivm", "bench", "--quick", "--json", where],
        capture_output=True, text=True, timeout=50, cwd=tmp_path,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"minivm: cannot write '{where}'")
    assert "internal error" not in result.stderr and "bench:" not in result.stderr
