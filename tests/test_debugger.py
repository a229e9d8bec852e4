"""``minivm debug``: scripted sessions through standard input, with exact transcripts; and the
transcripts of docs/debugging.md, re-run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from golden import ROOT, popen_interruptible, run_minivm

ENV = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONPATH=str(ROOT))
LOST_UPDATE = """\
let counter = 0;
fn work() {
    counter += 1;
}
let a = spawn work();
let b = spawn work();
join(a);
join(b);
print(counter);
"""


FIRST_STOP = "thread 0 stopped before the first instruction at demo.mv:1 in <main>, offset 0: "


def session(tmp_path, program: str, commands: str, *options: str, command: str = "debug") -> str:
    """Debug ``program`` (saved as demo.mv) with ``commands``; the whole output."""
    (tmp_path / "demo.mv").write_text(program, encoding="utf-8")
    argv = ["debug", *options, "demo.mv"] if command == "debug" else ["run", "--debug", *options, "demo.mv"]
    result = subprocess.run(
        [sys.executable, "-m", "minivm", *argv], input=textwrap.dedent(commands).lstrip("\n"),
        env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=50,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert "Traceback" not in result.stdout
    return result.stdout


def expect(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.mark.timeout(60)
def test_stepping_across_a_thread_switch(tmp_path):
    program = "fn work() {\n    let x = 1;\n}\nlet t = spawn work();\njoin(t);\n"
    out = session(tmp_path, program, "step 3\nstep\nstep\nthreads\nquit\n", "--check-interval", "4")
    assert out == FIRST_STOP + "MAKE_FUNCTION 0 (<code work, line 1>)\n" + expect("""
        fn work() {
    (mdb) step 3
    thread 0 at demo.mv:4 in <main>, offset 3: SPAWN 0 (0 items)
        let t = spawn work();
    (mdb) step
      -- thread 0 spawns thread 1
      -- thread 1 takes the GIL
      -- thread 1 ends
      -- thread 0 takes the GIL
    thread 0 at demo.mv:4 in <main>, offset 4: DEFINE_GLOBAL 1 (t)
        let t = spawn work();
    (mdb) step
    thread 0 at demo.mv:5 in <main>, offset 5: LOAD_GLOBAL 2 (join)
        join(t);
    (mdb) threads
    * 0  running (holds the GIL)  <main> at demo.mv:5
      1  done
    (mdb) quit
    """)


@pytest.mark.timeout(60)
def test_a_breakpoint_in_a_spawned_thread_and_print_of_locals_and_captured_variables(tmp_path):
    program = ("fn outer(n) {\n    let seen = [n];\n    let inner = fn () {\n        push(seen, n * 2);\n"
               "    };\n    inner();\n}\nlet t = spawn outer(21);\njoin(t);\n")  # fmt: skip
    out = session(tmp_path, program, """
        break 4
        continue
        where
        locals
        print n * 2 + len(seen)
        print seen[0]
        print nope
        print inner()
        print 1 +
        thread 0
        backtrace
        continue
        quit
    """, command="run")  # fmt: skip
    assert out == FIRST_STOP + "MAKE_FUNCTION 0 (<code outer, line 1>)\n" + expect("""
        fn outer(n) {
    (mdb) break 4
    breakpoint at demo.mv:4
    (mdb) continue
      -- thread 0 spawns thread 1
      -- thread 0 blocks: joins thread 1
      -- thread 1 takes the GIL
    thread 1 at demo.mv:4 in <fn>, offset 0: LOAD_GLOBAL 0 (push)
        push(seen, n * 2);
    (mdb) where
      demo.mv:6 in outer
    > demo.mv:4 in <fn>
    (mdb) locals
    seen = [21]
    n = 21
    stack: []
    (mdb) print n * 2 + len(seen)
    43
    (mdb) print seen[0]
    21
    (mdb) print nope
    cannot print: undefined variable 'nope'
    (mdb) print inner()
    cannot print: print only looks: it cannot call functions, spawn or make functions
    (mdb) print 1 +
    cannot print: cannot read the expression: expected an expression, found ';'
    (mdb) thread 0
    thread 0: blocked: joins thread 1  <main> at demo.mv:9
    (mdb) backtrace
    > demo.mv:9 in <main>
    (mdb) continue
      -- thread 1 ends
      -- thread 0 takes the GIL
      -- thread 0 ends
    the program ended (exit status 0)
    (mdb) quit
    """)


@pytest.mark.timeout(60)
def test_run_t_forces_the_lost_update_deterministically(tmp_path):
    commands = "schedule manual\nbreak work\ncontinue\nrun 1\nstep\nrun 2\nnext\ncontinue\nquit\n"
    outs = {session(tmp_path, LOST_UPDATE, commands, "--check-interval", "1") for _ in range(3)}
    assert len(outs) == 1
    out = outs.pop()
    assert "\n1\n" in out and "the program ended (exit status 0)" in out
    # Without the person, fifo order gives both updates.
    out = session(tmp_path, LOST_UPDATE, "continue\nquit\n", "--check-interval", "1")
    assert "\n2\n" in out


@pytest.mark.timeout(60)
def test_threads_shows_a_blocked_join_and_a_held_lock(tmp_path):
    program = ("let l = lock();\nfn hold() {\n    acquire(l);\n    sleep(0);\n    release(l);\n}\n"
               "fn want() {\n    acquire(l);\n    release(l);\n}\nlet a = spawn hold();\n"
               "let b = spawn want();\njoin(a);\njoin(b);\n")  # fmt: skip
    out = session(tmp_path, program, "break 5\ncontinue\nthreads\ngil\nquit\n")
    assert out.endswith(expect("""
    (mdb) threads
      0  blocked: joins thread 1  <main> at demo.mv:13
    * 1  running (holds the GIL), holds lock l  hold at demo.mv:5
      2  blocked: waits for a lock held by thread 1  want at demo.mv:8
    (mdb) gil
    holder: thread 1
    waiters (in order): none
    ticks left until the check: 99 (check interval 100)
    policy: manual, fifo order until told otherwise
    (mdb) quit
    """)), out


@pytest.mark.timeout(60)
def test_record_writes_a_schedule_that_replays(tmp_path):
    commands = "record empty.json\ncontinue\nrecord all.json\nrecord /no/such/dir/x.json\nquit\n"
    out = session(tmp_path, LOST_UPDATE, commands)
    assert "schedule recorded to empty.json: 1 turns, 0 instructions (up to this stop)" in out
    assert "cannot write /no/such/dir/x.json: No such file or directory" in out
    data = json.loads((tmp_path / "all.json").read_text())
    assert data["format"] == "minivm-schedule" and data["version"] == 1 and data["check_interval"] == 100
    assert [tid for tid, _count, _end in data["turns"]] == [0, 1, 2, 0]
    assert sum(count for _tid, count, _end in data["turns"]) == 36
    program = tmp_path / "demo.mv"
    for name in ("empty.json", "all.json"):
        replayed = run_minivm("run", "--replay", str(tmp_path / name), str(program))
        assert (replayed.returncode, replayed.stdout) == (0, "2\n"), replayed.stderr


@pytest.mark.timeout(60)
def test_every_command_with_bad_arguments_gets_one_line(tmp_path):
    bad = ["step x", "step -1", "step 0", "next 2", "continue now", "break 99", "break nosuch", "clear 7",
           "thread 9", "thread x", "run 9", "run", "schedule", "schedule random", "record", "print",
           "frobnicate", "s 2 3"]  # fmt: skip
    out = session(tmp_path, LOST_UPDATE, "\n".join(bad) + "\nquit\n")
    lines = out.splitlines()[2:]
    answers = dict(zip(lines[0::2], lines[1::2], strict=False))
    assert answers == {
        "(mdb) step x": "usage: step [N] (N a whole number, at least 1), not 'x'",
        "(mdb) step -1": "usage: step [N] (N a whole number, at least 1), not '-1'",
        "(mdb) step 0": "usage: step [N] (N a whole number, at least 1), not '0'",
        "(mdb) next 2": "usage: next (no arguments)",
        "(mdb) continue now": "usage: continue (no arguments)",
        "(mdb) break 99": "no line 99 in demo.mv (it has 9 lines)",
        "(mdb) break nosuch": "usage: break LINE or break FUNC (no function named 'nosuch')",
        "(mdb) clear 7": "no breakpoint at '7'",
        "(mdb) thread 9": "usage: thread N (one of: 0)",
        "(mdb) thread x": "usage: thread N (one of: 0)",
        "(mdb) run 9": "usage: run T (a thread that has not ended: 0)",
        "(mdb) run": "usage: run T (a thread that has not ended: 0)",
        "(mdb) schedule": "usage: schedule manual|fifo (now: fifo)",
        "(mdb) schedule random": "usage: schedule manual|fifo (now: fifo)",
        "(mdb) record": "usage: record FILE",
        "(mdb) print": "usage: print EXPR",
        "(mdb) frobnicate": "unknown command 'frobnicate' (try help)",
        "(mdb) s 2 3": "usage: step [N] (N a whole number, at least 1), not '2 3'",
    }
    assert lines[-1] == "(mdb) quit"


# -- docs/debugging.md
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _doc_sessions():
    text = (ROOT / "docs" / "debugging.md").read_text(encoding="utf-8")
    blocks = [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]
    found = []
    for i, (kind, body) in enumerate(blocks):
        if kind == "console":
            program = blocks[i - 1][1] if i and blocks[i - 1][0] == "mv" else None
            found.append(pytest.param(program, body, id=body.split("\n", 1)[0]))
    return found


@pytest.fixture(scope="module")
def doc_dir(tmp_path_factory):
    """One folder for the whole page: a later block replays what an earlier one recorded."""
    return tmp_path_factory.mktemp("debugging_md")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("program", "body"), _doc_sessions())
def test_the_transcripts_of_docs_debugging_are_what_the_tools_print(doc_dir, program, body):
    tmp_path = doc_dir
    command, *expected = body.rstrip("\n").split("\n")
    assert command.startswith("$ minivm ")
    if program is not None:
        (tmp_path / "demo.mv").write_text(program, encoding="utf-8")
    prompts = ("(mdb) ", ">>> ", "... ")
    typed = [line[len(p) :] if line.startswith(p) else ""
             for line in expected for p in prompts if line.startswith(p.rstrip())]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "minivm", *command.split()[2:]], input="".join(t + "\n" for t in typed),
        env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=50,
    )  # fmt: skip
    assert result.stdout.rstrip("\n").split("\n") == expected


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "options, named",
    [
        (["--trace"], "--trace"),
        (["--replay", "missing.json"], "--replay"),
        (["--policy", "fifo", "--stats-json", "s.json"], "--policy, --stats-json"),
        (["--max-steps", "5", "--record", "r.json"], "--max-steps, --record"),
    ],
)
def test_run_debug_refuses_the_options_the_debugger_would_ignore(tmp_path, options, named):
    # They used to be dropped without a word: a run that was "replayed" or "traced" was neither.
    result = run_minivm("run", "--debug", *options, "-c", "print(1);", input_text="continue\n")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"minivm: --debug cannot go with {named} (the debugger takes only --check-interval: "
        "see minivm debug --help)\n"
    )
    assert run_minivm("run", "--debug", "--check-interval", "3", "-c", "print(1);", input_text="c\n").returncode == 0


@pytest.mark.timeout(60)
def test_ctrl_c_during_a_step_that_waits_stops_the_program_with_status_130(tmp_path):
    # 'step' past a join on a thread that sleeps 100 s waits; Ctrl-C used to end the debugger
    # without a word and with exit status 0.
    import signal
    import time

    (tmp_path / "demo.mv").write_text("fn f() { sleep(100); }\nlet t = spawn f();\njoin(t);\n")
    proc = popen_interruptible(
        [sys.executable, "-m", "minivm", "debug", "demo.mv"], env=ENV, cwd=tmp_path, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        proc.stdin.write("step 14\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("thread 0 stopped before the first instruction")
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err == "minivm: interrupted\n"
