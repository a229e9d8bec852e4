"""Observation is exact and harmless: every event arrives whole and once, in one order, and
watching a run never changes it (issue: torn JSON lines, tracing that changed a fifo run).

Events reach the sinks from several OS threads (the holder's instructions, the waiters' and
wakers' GIL and thread events); the bus delivers them one at a time. Hand-off policies wake
the next holder only after the releaser is queued, so a traced ``fifo``/``priority`` run is
the same run as an untraced one.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from golden import run_minivm

BUSY_AND_DOZER = """
fn busy() { let s = 0; for i in range(4000) { s += i; } return s; }
fn dozer() { for i in range(50) { sleep(0.0003); } }
let a = spawn busy(); let b = spawn dozer();
join(a); join(b);
"""

# Three threads race on a global: under fifo the lost updates are the same in every run.
RACY = """
let hits = 0;
fn bump(n) { for i in range(n) { hits += 1; } }
let ts = [];
for k in range(3) { push(ts, spawn bump(200)); }
for t in ts { join(t); }
print(hits);
"""

OBSERVATION_FLAGS = {
    "trace": ["--trace"],
    "trace-gil": ["--trace-gil"],
    "trace-json": ["--trace-json", "{dir}/t.jsonl"],
    "stats": ["--stats"],
    "timeline": ["--timeline", "{dir}/tl.json"],
    "plot": ["--plot", "{dir}/p.png"],
}
ALL_FLAGS = [flag for flags in OBSERVATION_FLAGS.values() for flag in flags]
TEXT_TRACE_LINE = re.compile(r"^\s*\d+\.\d{3} ms  thread \d+\s+\S")


def _check_trace_files(trace, stats) -> None:
    lines = trace.read_text(encoding="utf-8").splitlines()
    events = []
    for number, line in enumerate(lines, 1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"line {number} of the trace is not JSON: {line[:200]!r}")
    totals = json.loads(stats.read_text())
    instrs = [e for e in events if e["event"] == "instr"]
    assert len(instrs) == totals["instructions"]
    for thread in totals["threads"]:
        assert thread["instructions"] == sum(1 for e in instrs if e["thread"] == thread["id"])
    stamps = [e["ts_ns"] for e in events]
    assert stamps == sorted(stamps), "the sinks' order is not the order of the timestamps"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("policy", ["ticks", "timed", "fifo", "priority", "none"])
def test_json_trace_lines_are_whole_and_complete(policy, tmp_path):
    program = tmp_path / "prog.mv"
    program.write_text(BUSY_AND_DOZER)

    def one(run: int) -> None:
        trace, stats = tmp_path / f"t{run}.jsonl", tmp_path / f"s{run}.json"
        result = run_minivm(
            "run", "--policy", policy, "--trace-json", str(trace), "--stats-json", str(stats), str(program)
        )
        assert result.returncode == 0, result.stderr
        _check_trace_files(trace, stats)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(20)))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("policy", ["fifo", "none"])
def test_text_trace_lines_are_whole(policy, tmp_path):
    program = tmp_path / "prog.mv"
    program.write_text(BUSY_AND_DOZER)
    for _ in range(5):
        result = run_minivm("run", "--policy", policy, "--trace", str(program))
        assert result.returncode == 0, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) > 4000
        torn = [line for line in lines if not TEXT_TRACE_LINE.match(line)]
        assert torn == []


def _without_timestamps(text: str) -> list[str]:
    """Trace lines with the time column (text) or ``ts_ns`` (JSON) taken out."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            event.pop("ts_ns")
            out.append(json.dumps(event, sort_keys=True))
        else:
            out.append(re.sub(r"^\s*\d+\.\d{3} ms  ", "", line))
    return out


def _run_in_process(argv: list[str]) -> tuple[int, str, str]:
    """``minivm run`` in this process (no start-up per run): status, stdout, stderr."""
    from minivm.cli import build_parser

    args = build_parser("run").parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = args.handler(args)
    return status, out.getvalue(), err.getvalue()


def _observed_run(program, policy: str, flags: list[str], folder) -> tuple[str, list[str]]:
    folder.mkdir(exist_ok=True)
    args = [flag.format(dir=folder) for flag in flags]
    status, stdout, stderr = _run_in_process(["run", "--policy", policy, "--check-interval", "5", *args, str(program)])
    assert status == 0, stderr
    trace = stderr if ("--trace" in flags or "--trace-gil" in flags) else ""
    if "--trace-json" in flags:
        trace += (folder / "t.jsonl").read_text(encoding="utf-8")
    if "--stats" in flags:
        # The statistics table holds times: keep its exact counts only.
        trace = "\n".join(line for line in trace.splitlines() if TEXT_TRACE_LINE.match(line))
    return stdout, _without_timestamps(trace)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("policy", ["fifo", "priority"])
@pytest.mark.parametrize("observe", [*OBSERVATION_FLAGS, "all"])
def test_observation_never_changes_a_handoff_run(policy, observe, tmp_path):
    program = tmp_path / "racy.mv"
    program.write_text(RACY)
    unobserved = run_minivm("run", "--policy", policy, "--check-interval", "5", str(program))
    assert unobserved.returncode == 0
    flags = ALL_FLAGS if observe == "all" else OBSERVATION_FLAGS[observe]

    runs = [_observed_run(program, policy, flags, tmp_path / f"run{run}") for run in range(30)]
    outputs = {stdout for stdout, _ in runs}
    assert outputs == {unobserved.stdout}, "observation changed the program's output"
    traces = {tuple(trace) for _, trace in runs}
    assert len(traces) == 1, f"{len(traces)} different traces in 30 runs"
    assert int(unobserved.stdout) < 600, "the program no longer races: the test proves nothing"
