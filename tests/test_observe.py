"""Traces, statistics, timelines, plots and experiments, checked on exact counts."""

from __future__ import annotations

import itertools
import json
import os

import pytest
from golden import ROOT, run_minivm

TWO_THREADS = """
fn work(n) { let s = 0; while n > 0 { n -= 1; s += 1; } return s; }
let a = spawn work(2000); let b = spawn work(2000);
print(join(a) + join(b));
"""


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "two.mv"
    path.write_text(TWO_THREADS)
    return path


@pytest.mark.timeout(60)
def test_instr_events_equal_executed_instructions(program, tmp_path):
    trace, stats = tmp_path / "t.jsonl", tmp_path / "s.json"
    result = run_minivm("run", "--policy", "fifo", "--trace-json", str(trace), "--stats-json", str(stats), str(program))
    assert result.returncode == 0 and result.stdout == "4000\n"
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    for e in events:
        assert {"event", "thread", "ts_ns"} <= e.keys()
    instrs = [e for e in events if e["event"] == "instr"]
    assert all({"op", "arg", "line", "func", "pc"} <= e.keys() for e in instrs)
    totals = json.loads(stats.read_text())
    assert len(instrs) == totals["instructions"]
    for t in totals["threads"]:
        assert t["instructions"] == sum(1 for e in instrs if e["thread"] == t["id"])
    reasons = {e["reason"] for e in events if e["event"] == "gil_release"}
    assert {"handoff", "exit", "blocking"} <= reasons
    assert {"spawn", "block", "wake", "exit"} <= {e["event"] for e in events}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("interval", [10, 100])
def test_fifo_stats_are_exact(program, tmp_path, interval):
    stats = tmp_path / "s.json"
    result = run_minivm(
        "run", "--policy", "fifo", "--check-interval", str(interval), "--stats-json", str(stats), str(program)
    )
    assert result.returncode == 0
    s = json.loads(stats.read_text())
    for key in ("policy", "check_interval", "switch_interval", "wall_s", "instructions", "tick_checks",
                "switches", "releaser_reacquired", "drop_requests", "gil_held_fraction", "threads"):
        assert key in s
    assert s["policy"] == "fifo" and s["check_interval"] == interval
    assert s["releaser_reacquired"] == 0
    assert sum(t["instructions"] for t in s["threads"]) == s["instructions"]
    workers = sum(t["instructions"] for t in s["threads"] if t["id"] != 0)
    # Two CPU-bound threads: a hand-off at every check while both run.
    assert abs(s["switches"] - workers / interval) <= workers / interval * 0.1 + 6
    for t in s["threads"]:
        wanted = {"id", "instructions", "acquisitions", "held_s", "waited_s", "wait_p50_s", "wait_p99_s", "releases"}
        assert wanted <= t.keys()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ["ticks", "fifo", "timed", "priority"])
def test_timeline_is_valid_and_holds_never_overlap(program, tmp_path, policy):
    timeline = tmp_path / "tl.json"
    result = run_minivm("run", "--policy", policy, "--check-interval", "50", "--timeline", str(timeline), str(program))
    assert result.returncode == 0
    doc = json.loads(timeline.read_text())
    events = doc["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "thread_name"}
    assert set(names) >= {0, 1, 2}
    holds = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("ph") == "X" and "gil held" in e["name"])
    assert holds
    for (_, end), (start, _) in itertools.pairwise(holds):
        assert start >= end - 1e-6
    for e in events:
        if e.get("ph") == "X":
            assert e["dur"] >= 0 and {"name", "ts", "pid", "tid"} <= e.keys()


@pytest.mark.timeout(60)
def test_plot_is_written(program, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "p.png"
    result = run_minivm("run", "--policy", "timed", "--plot", str(plot), str(program))
    assert result.returncode == 0
    assert plot.stat().st_size > 1000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(60)
def test_trace_text_has_instructions_and_gil_events():
    result = run_minivm("run", "--trace", "-c", "let x = 1 + 2; print(x);")
    assert result.stdout == "3\n"
    lines = result.stderr.splitlines()
    assert any("LOAD_CONST" in line and "tick 1" in line for line in lines)
    assert any("gil_acquire" in line for line in lines)
    gil_only = run_minivm("run", "--trace-gil", "-c", "let x = 1 + 2; print(x);")
    assert "LOAD_CONST" not in gil_only.stderr and "gil_release" in gil_only.stderr


@pytest.mark.timeout(120)
def test_experiment_table_and_csv(tmp_path):
    csv_path = tmp_path / "e.csv"
    result = run_minivm("experiment", str(ROOT / "programs" / "race_fixed.mv"), "--policy", "ticks,fifo",
                        "--check-interval", "10,100", "--csv", str(csv_path))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("ticks", "10"), ("ticks", "100"), ("fifo", "10"), ("fifo", "100")]
    fifo_reacquired = [float(r[6]) for r in rows if r[0] == "fifo"]
    assert fifo_reacquired == [0.0, 0.0]
    assert len(csv_path.read_text().splitlines()) == 5


def test_unknown_policy_in_experiment_is_a_usage_error():
    result = run_minivm("experiment", str(ROOT / "programs" / "fib.mv"), "--policy", "bogus")
    assert result.returncode == 2 and "ticks, fifo, timed, priority, none" in result.stderr


SPAN = "the switch interval must be greater than 0 and at most 1,000,000,000 seconds, got "


@pytest.mark.parametrize(
    "option, value, reason",
    [
        ("--check-interval", "100,0", "must be at least 1, got 0"),
        ("--check-interval", "10,x", "expected a whole number, got 'x'"),
        ("--switch-interval", "-1", SPAN + "-1.0"),
        ("--switch-interval", "0.001,nan", SPAN + "nan"),
        ("--switch-interval", "1e300", SPAN + "1e+300"),
        ("--repeat", "0", "must be at least 1, got 0"),
    ],
)
def test_experiment_refuses_what_run_refuses_before_anything_runs(option, value, reason):
    # A check interval of 0 and --repeat 0 used to end in "minivm internal error", and a
    # negative switch interval was run as if it made sense.
    result = run_minivm("experiment", str(ROOT / "programs" / "fib.mv"), "--policy", "timed", option, value)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"minivm experiment: error: argument {option}: {reason}"


def test_experiment_api_refuses_no_repeats():
    from minivm.api import experiment

    with pytest.raises(ValueError, match="repeat must be at least 1, got 0"):  # was an IndexError
        experiment("print(1);", repeat=0)


@pytest.mark.timeout(60)
def test_experiment_says_which_runs_failed(tmp_path):
    # The program's output is discarded, so a failing program used to give exit status 1
    # and not one word about it.
    program = tmp_path / "fails.mv"
    program.write_text("fn f() { return 1 / 0; }\njoin(spawn f());\n")
    result = run_minivm("experiment", str(program), "--policy", "fifo", "--check-interval", "7")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "minivm: the program failed (exit status 1) under --policy fifo --check-interval 7 "
        "--switch-interval 0.005; minivm run with those options shows why"
    )


@pytest.mark.timeout(60)
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
@pytest.mark.parametrize("option", ["--trace-json", "--stats-json", "--timeline", "--record"])
def test_an_output_file_on_a_full_disk_is_a_clear_error_not_a_minivm_bug(program, option):
    # They used to end in "minivm internal error: [Errno 28] No space left on device
    # (this is a bug in minivm, not in your program)".
    result = run_minivm("run", "--policy", "fifo", option, "/dev/full", str(program))
    assert (result.returncode, result.stdout) == (1, "4000\n")
    assert result.stderr == "minivm: cannot write '/dev/full': No space left on device\n"


@pytest.mark.timeout(60)
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
def test_a_trace_that_fills_the_disk_mid_run_lets_the_run_finish(tmp_path):
    stats = tmp_path / "s.json"
    result = run_minivm("run", "--policy", "fifo", "--trace-json", "/dev/full", "--stats-json", str(stats),
                        str(ROOT / "programs" / "race.mv"))  # fmt: skip
    assert result.returncode == 1 and "lost updates" in result.stdout
    assert result.stderr == "minivm: cannot write '/dev/full': No space left on device\n"
    assert json.loads(stats.read_text())["instructions"] > 100_000  # the other outputs are written


@pytest.mark.timeout(60)
@pytest.mark.parametrize("option", ["--stats-json", "--timeline", "--record"])
def test_a_document_output_named_dash_goes_to_standard_output_after_the_programs_lines(program, option):
    # It used to be written to a file named '-' in the current folder.
    result = run_minivm("run", "--policy", "fifo", option, "-", str(program))
    assert (result.returncode, result.stderr) == (0, "")
    printed, document = result.stdout.split("\n", 1)
    assert printed == "4000"
    keys = {"--stats-json": "threads", "--timeline": "traceEvents", "--record": "turns"}
    assert keys[option] in json.loads(document)
    assert not (ROOT / "-").exists()


@pytest.mark.timeout(60)
def test_a_trace_named_dash_interleaves_whole_json_lines_with_the_programs_lines(program):
    result = run_minivm("run", "--policy", "fifo", "--trace-json", "-", str(program))
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines.count("4000") == 1
    events = [json.loads(line) for line in lines if line != "4000"]
    assert {"gil_acquire", "instr", "exit"} <= {event["event"] for event in events}
    assert not (ROOT / "-").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("option", ["--trace-json", "--stats-json", "--timeline", "--record"])
def test_an_output_on_standard_output_stops_quietly_when_its_reader_goes_away(program, option):
    import subprocess
    import sys

    command = f"'{sys.executable}' -m minivm run {option} - '{program}' | head -c 1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert (result.returncode, result.stdout, result.stderr) == (0, "{" if option == "--trace-json" else "4", "")
