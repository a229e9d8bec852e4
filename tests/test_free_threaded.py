"""minivm on a free-threaded host (CPython 3.13t, no host GIL): ``fifo`` is deterministic by
construction, the VM's own counters are exact under ``none``, and the heap audit passes under
every GIL policy and fails under ``none``.

These tests run minivm on a free-threaded Python: the one running the tests if it is one,
else ``$MINIVM_FREE_THREADED_PYTHON`` (a 3.13t with lark and attrs installed). CI runs this
file on a 3.13t; elsewhere, without one, the tests are skipped and say why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig

import pytest
from golden import ROOT


def _free_threaded_python() -> str | None:
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return sys.executable
    return os.environ.get("MINIVM_FREE_THREADED_PYTHON") or None


FT_PYTHON = _free_threaded_python()
pytestmark = pytest.mark.skipif(
    FT_PYTHON is None,
    reason="no free-threaded Python: run the tests on a CPython 3.13t or set MINIVM_FREE_THREADED_PYTHON",
)

RACY = """
let hits = 0;
fn bump(n) { for i in range(n) { hits += 1; } }
let ts = [];
for k in range(3) { push(ts, spawn bump(100)); }
for t in ts { join(t); }
print(hits);
"""

WORKERS = """
fn work(n) { let s = 0; for i in range(n) { s += i; } return s; }
let ts = [];
for k in range(4) { push(ts, spawn work(20000)); }
let total = 0;
for t in ts { total += join(t); }
print(total);
"""


def run_ft(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``minivm`` on the free-threaded host."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [FT_PYTHON, "-m", "minivm", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def test_the_host_really_has_no_gil(tmp_path):
    stats = tmp_path / "s.json"
    result = run_ft("run", "--stats-json", str(stats), "-c", "print(1);")
    assert result.returncode == 0, result.stderr
    host = json.loads(stats.read_text())["host"]
    assert host["free_threaded_build"] is True
    assert host["gil"] is False


@pytest.mark.timeout(900)
@pytest.mark.parametrize("policy", ["fifo", "priority"])
def test_handoff_policies_are_deterministic_without_a_host_gil(tmp_path, policy):
    program = tmp_path / "racy.mv"
    program.write_text(RACY)
    outputs, traces = set(), set()
    for run in range(50):
        trace = tmp_path / f"t{run}.jsonl"
        result = run_ft("run", "--policy", policy, "--check-interval", "5", "--trace-json", str(trace), str(program))
        assert result.returncode == 0, result.stderr
        outputs.add(result.stdout)
        events = [json.loads(line) for line in trace.read_text().splitlines()]
        traces.add(tuple((e["event"], e["thread"], e.get("pc"), e.get("reason")) for e in events))
    assert len(outputs) == 1 and len(traces) == 1, (outputs, len(traces))
    assert int(outputs.pop()) < 300, "the program no longer races: the test proves nothing"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("interval", [1, 7, 100])
def test_counters_are_exact_under_none(tmp_path, interval):
    program = tmp_path / "workers.mv"
    program.write_text(WORKERS)
    reference = tmp_path / "fifo.json"
    assert run_ft("run", "--policy", "fifo", "--stats-json", str(reference), str(program)).returncode == 0
    expected = {t["id"]: t["instructions"] for t in json.loads(reference.read_text())["threads"]}
    for run in range(5):
        stats = tmp_path / f"none{run}.json"
        options = ("--policy", "none", "--check-interval", str(interval), "--stats-json", str(stats))
        result = run_ft("run", *options, str(program))
        assert result.returncode == 0, result.stderr
        figures = json.loads(stats.read_text())
        assert {t["id"]: t["instructions"] for t in figures["threads"]} == expected
        assert figures["instructions"] == sum(expected.values())
        for thread in figures["threads"][1:]:  # the workers never block: one check per interval
            n = thread["instructions"]
            assert thread["tick_checks"] in {(n - 1) // interval, n // interval}
        assert figures["tick_checks"] == sum(t["tick_checks"] for t in figures["threads"])


@pytest.mark.timeout(120)
def test_max_steps_is_exact_under_none(tmp_path):
    program = tmp_path / "spin.mv"
    program.write_text("fn spin() { while true { } }\nlet a = spawn spin(); let b = spawn spin(); join(a);")
    result = run_ft("run", "--policy", "none", "--max-steps", "50000", str(program))
    assert result.returncode == 1
    assert "step limit exceeded: 50000 instructions" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(600)
@pytest.mark.parametrize("policy", ["ticks", "fifo", "timed", "priority"])
def test_heap_audit_passes_under_every_gil_policy(policy):
    result = run_ft("run", "--policy", policy, "--heap-check", "programs/why_gil.mv")
    assert result.returncode == 0, result.stderr
    assert "heap audit: ok" in result.stderr


@pytest.mark.timeout(600)
def test_heap_audit_fails_under_none_and_the_vm_does_not():
    # A lost update needs two threads in the same update at once, which no run is sure to have
    # (on a loaded machine the threads may hardly overlap): the program runs until the audit
    # catches one, at least five times; the test's timeout bounds the attempts.
    failures = runs = 0
    while runs < 5 or not failures:
        result = run_ft("run", "--policy", "none", "--heap-check", "programs/why_gil.mv")
        runs += 1
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
        failures += result.returncode == 1 and "heap audit:" in result.stderr and "heap audit: ok" not in result.stderr
