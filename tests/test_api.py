"""The Python API: docs/api.md run as a doctest, and the contract behind it."""

from __future__ import annotations

import doctest
import io
import sys
import time

import pytest
from golden import ROOT

import minivm
from minivm.errors import SourceError


@pytest.mark.timeout(300)
def test_docs_api_examples_run():
    failures, tried = doctest.testfile(str(ROOT / "docs" / "api.md"), module_relative=False, verbose=False)
    assert tried > 15
    assert failures == 0


def test_run_takes_source_text_and_prints_to_a_stream():
    stream = io.StringIO()
    result = minivm.run('print("hi", 1 + 2);', stdout=stream)
    assert (result.output, stream.getvalue(), result.exit_status, result.error) == ("", "hi 3\n", 0, None)


@pytest.mark.timeout(60)
def test_thread_errors_and_deadlocks_are_results():
    failed = minivm.run("fn f() { assert(false, \"no\"); }\nlet t = spawn f();\nlet ok = 1;")
    assert failed.exit_status == 1
    assert failed.error.message == "assertion failed: no"
    assert failed.error.thread_id == 1
    deadlock = minivm.run("let l = lock(); acquire(l);\nfn f() { acquire(l); }\njoin(spawn f());")
    assert deadlock.exit_status == 1
    assert deadlock.error.message.startswith("deadlock")


def test_bad_source_and_bad_settings_raise():
    with pytest.raises(SourceError) as caught:
        minivm.compile("let = 1;", filename="x.mv")
    assert caught.value.location.file == "x.mv"
    with pytest.raises(ValueError, match="unknown policy"):
        minivm.run("print(1);", policy="sometimes")
    with pytest.raises(ValueError, match="check interval"):
        minivm.run("print(1);", check_interval=0)
    # They used to start a run that failed at its first call, instruction or spawn.
    for setting, name in (("recursion_limit", "recursion limit"), ("max_steps", "step limit"),
                          ("max_threads", "thread limit")):  # fmt: skip
        for bad in (0, -3):
            with pytest.raises(ValueError, match=f"the {name} must be at least 1, got {bad}"):
                minivm.run("print(1);", **{setting: bad})
    with pytest.raises(TypeError):
        minivm.run(42)


def test_a_program_runs_many_times_with_the_same_result():
    program = minivm.compile("let s = 0; for i in range(100) { s += i; } print(s);")
    assert {minivm.run(program).output for _ in range(3)} == {"4950\n"}


def test_stats_and_heap_check():
    result = minivm.run("let a = [1, [2]]; print(len(a));", heap_check=True)
    assert result.exit_status == 0
    assert "heap audit: ok" in result.error_output
    assert result.stats["instructions"] > 0


def test_dataframe_needs_pandas_only_when_asked():
    rows = minivm.experiment("print(1);", policies=["fifo"])
    assert len(rows) == 1 and rows[0]["policy"] == "fifo"
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            rows.dataframe()
    else:
        assert list(rows.dataframe()["policy"]) == ["fifo"]


def test_importing_minivm_does_not_load_the_api():
    import subprocess
    import sys

    code = "import sys, minivm; print('minivm.api' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


DEADLOCK = "let l = lock(); acquire(l);\nfn f() { acquire(l); }\njoin(spawn f());"


@pytest.mark.timeout(60)
def test_the_run_as_a_whole_is_printed_at_the_edge_not_by_the_vm():
    from minivm.runtime.machine import Machine
    from minivm.runtime.outcome import render_outcome

    program = minivm.compile(DEADLOCK, filename="dl.mv")
    err = io.StringIO()
    machine = Machine(stdout=io.StringIO(), stderr=err)
    machine.start(program.code)
    machine.wait()
    outcome = machine.finish()
    assert (outcome.exit_status, outcome.vm_bug, outcome.errors) == (1, None, (outcome.deadlock,))
    assert err.getvalue() == ""  # finishing prints nothing: the caller renders the outcome
    render_outcome(outcome, machine.errors)
    assert err.getvalue() == minivm.run(program).error_output
    assert err.getvalue().startswith("error: deadlock: every live thread is blocked")


@pytest.mark.timeout(60)
def test_prepare_refuses_bad_settings_before_anything_runs_and_wait_gives_the_figures():
    with pytest.raises(ValueError, match="check placement"):
        minivm.prepare("print(1);", check_at="sometimes")
    prepared = minivm.prepare("fn f() { return 1; }\njoin(spawn f());\nprint(2);")
    assert prepared.result is None and prepared.machine.main is None  # built, not started
    result = prepared.start().wait()
    assert prepared.result is result and result.output == "2\n"
    figures = result.figures
    assert [t.tid for t in figures.threads] == [0, 1]
    assert result.stats["instructions"] == sum(t.instructions for t in figures.threads) > 0
    assert result.stats["wall_s"] == (figures.ended_ns - figures.started_ns) / 1e9


@pytest.mark.timeout(60)
def test_a_started_run_can_be_aborted():
    prepared = minivm.prepare('print("started");\nlet n = 0;\nwhile true { n += 1; }').start()
    while prepared.machine.main.clock.instructions == 0:  # counted at its first check, past the print
        time.sleep(0.001)
    prepared.abort()
    result = prepared.wait()
    assert (result.output, result.exit_status, result.errors) == ("started\n", 0, ())


@pytest.mark.timeout(60)
def test_a_run_prepared_with_no_program_cannot_start():
    prepared = minivm.prepare(None, stdout=io.StringIO())  # the REPL's VM: it drives the main thread
    assert prepared.machine.main is None
    with pytest.raises(ValueError, match="no program"):
        prepared.start()


@pytest.mark.timeout(60)
def test_an_interactive_compile_keeps_the_final_expression_value():
    from minivm.repl.session import Session

    # One input as the REPL runs it: its value is the result; a plain compile drops it.
    repl = Session(stdout=io.StringIO(), stderr=io.StringIO())
    try:
        assert repl.run(minivm.compile("1 + 2;", interactive=True).code).value == 3
        assert repl.run(minivm.compile("1 + 2;").code).value is None
    finally:
        repl.close()


@pytest.mark.skipif(not hasattr(sys, "set_int_max_str_digits"), reason="the host has no int digit limit")
def test_ints_of_any_size_print_in_full_through_the_api_too():
    # The command line lifted Python's 4,300-digit limit on int <-> text, the API did not:
    # minivm.run of a program printing a 5,000-digit int raised the host's ValueError
    # ("Exceeds the limit (4300 digits) for integer string conversion"), and a 5,000-digit
    # literal could not be compiled.
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)  # Python's default
    try:
        result = minivm.run("let x = 1;\nfor i in range(5000) { x = x * 10; }\nprint(x, [x], {x: 1});\n")
        assert result.exit_status == 0, result.error_output
        assert result.output == f"{10**5000} [{10**5000}] {{{10**5000}: 1}}\n"
        program = minivm.compile("print(" + "9" * 5000 + " % 1000);\n")
        assert minivm.run(program, engine="compiled").output == "999\n"
    finally:
        sys.set_int_max_str_digits(before)
