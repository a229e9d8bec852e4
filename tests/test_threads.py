"""Guest threads, guest locks and the GIL policies.

Every test here starts threads, so every test carries a timeout. In-process runs use
``Machine`` with ``StringIO`` streams; the command line is used where the process matters
(exit status, Ctrl-C, bounded waiting for a deadlock report).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque

import pytest
from golden import ROOT, popen_interruptible, run_cli_without_polls, run_minivm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minivm.bytecode import opcodes as op
from minivm.frontend.compiler import compile_source
from minivm.runtime.machine import Machine, VMConfig
from minivm.runtime.threads import GuestThread
from minivm.runtime.values import Builtin

GIL_POLICIES = ("ticks", "fifo", "timed", "priority")
ALL_POLICIES = (*GIL_POLICIES, "none")


def make_machine(**config) -> tuple[Machine, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Machine(VMConfig(**config), stdout=out, stderr=err), out, err


def run(source: str, **config) -> tuple[int, str, str]:
    machine, out, err = make_machine(**config)
    status = machine.run(compile_source(source, "t.mv"))
    return status, out.getvalue(), err.getvalue()


def write(tmp_path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------------------
# Every thread builtin under every GIL policy
# --------------------------------------------------------------------------------------

BUILTINS_PROGRAM = """\
fn work(n) { return [n * 10, thread_id()]; }
let ts = [];
for i in range(5) { push(ts, spawn work(i)); }
let rs = [];
for t in ts { push(rs, join(t)); }
print(rs, thread_id());
print(str(ts[0]), type(ts[0]), str(ts[4]));

# thread ids count spawns in order, wherever they happen
fn parent() { let child = spawn thread_id(); return [thread_id(), join(child)]; }
print(join(spawn parent()), join(spawn thread_id()));

let l = lock();
print(str(l), type(l));
let counter = 0;
fn add(k) {
  for j in range(k) { acquire(l); counter += 1; release(l); }
  return k;
}
let adders = [];
for k in range(4) { push(adders, spawn add(300 + k)); }
let total = 0;
for t in adders { total += join(t); }
print(total, counter);

fn sleeper(s) { let t0 = time(); sleep(s); return time() - t0 >= s; }
print(join(spawn sleeper(0.02)), sleep(0), sleep(0.01));

print(set_priority(3));
fn prio() { set_priority(-2); return thread_id(); }
print(join(spawn prio()));
print(join(spawn print("spawned builtin")));
"""

BUILTINS_OUTPUT = """\
[[0, 1], [10, 2], [20, 3], [30, 4], [40, 5]] 0
<thread 1> thread <thread 5>
[6, 7] 8
<lock> lock
1206 1206
true nil nil
nil
14
spawned builtin
nil
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ALL_POLICIES)
@pytest.mark.parametrize("check_interval", [1, 7, 100])
def test_thread_builtins(policy, check_interval):
    status, out, err = run(BUILTINS_PROGRAM, policy=policy, check_interval=check_interval)
    assert (status, err) == (0, "")
    assert out == BUILTINS_OUTPUT


@pytest.mark.timeout(30)
@pytest.mark.parametrize("policy", GIL_POLICIES)
def test_sleep_releases_the_gil(policy):
    # Main spins until, running, it sees the other thread asleep: only possible if a sleeping
    # thread does not hold the GIL (else the spin never ends, and the timeout fails the test).
    # The sleeper naps until main is done, so the order of the log does not depend on how
    # soon the host runs main (it used to race a 0.3 s sleep against main's loop).
    source = """\
let log = [];
let done = false;
fn sleeper() { while not done { sleep(0.002); } push(log, "slept"); }
let t = spawn sleeper();
while not asleep(t) { }
push(log, "main ran");
done = true;
join(t);
print(log);
"""
    machine, out, err = make_machine(policy=policy, check_interval=5)
    machine.globals["asleep"] = Builtin("asleep", lambda thread, args: args[0].state == "sleeping", 1, 1)
    status = machine.run(compile_source(source, "t.mv"))
    assert (status, out.getvalue(), err.getvalue()) == (0, '["main ran", "slept"]\n', "")


@pytest.mark.timeout(30)
def test_priority_policy_keeps_the_gil_with_the_most_urgent_thread():
    # Main (priority 10) never yields to its priority-0 children until it blocks.
    source = """\
set_priority(10);
let log = [];
fn w(k) { push(log, k); return k; }
let a = spawn w(1);
let b = spawn w(2);
let i = 0;
while i < 500 { i += 1; }
print(len(log));
print(join(a) + join(b), log);
"""
    assert run(source, policy="priority", check_interval=5) == (0, "0\n3 [1, 2]\n", "")
    # Under fifo the children run while main loops.
    status, out, _ = run(source, policy="fifo", check_interval=5)
    assert status == 0 and out.splitlines()[0] == "2"


@pytest.mark.timeout(30)
def test_priority_policy_lets_an_urgent_thread_finish_first():
    # The child raises its own priority at once; from then on main (priority 0) never gets
    # the GIL back at a check, so the child's work ends before main pushes anything.
    source = """\
let log = [];
fn urgent() {
  set_priority(5);
  let i = 0;
  while i < 300 { i += 1; }
  push(log, "t");
}
let t = spawn urgent();
for i in range(60) { push(log, "m"); }
join(t);
let first = 0;
while log[first] != "t" { first += 1; }
print(first, len(log));
"""
    assert run(source, policy="priority", check_interval=5) == (0, "0 61\n", "")


# --------------------------------------------------------------------------------------
# Failing threads
# --------------------------------------------------------------------------------------

FAILING_JOIN = """\
fn inner(x) {
  return x // 0;
}
fn outer(x) {
  return inner(x) + 1;
}
let t = spawn outer(5);
sleep(0.05);
print("before join");
print(join(t));
print("never");
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", GIL_POLICIES)
def test_join_of_a_failed_thread_raises(tmp_path, policy):
    path = write(tmp_path, "fail.mv", FAILING_JOIN)
    result = run_minivm("run", "--policy", policy, path, timeout=30)
    assert result.returncode == 1
    assert result.stdout == "before join\n"
    assert "Traceback" not in result.stderr
    expected_thread_error = (
        "error in thread 1: division by zero\n"
        "  call chain (most recent call last):\n"
        f"    {path}:5 in outer\n"
        "      return inner(x) + 1;\n"
        f"    {path}:2 in inner\n"
        "      return x // 0;\n"
    )
    expected_join_error = (
        "error in thread 0: thread 1 failed: division by zero\n"
        "  call chain (most recent call last):\n"
        f"    {path}:10 in <main>\n"
        "      print(join(t));\n"
    )
    assert result.stderr == expected_thread_error + expected_join_error


@pytest.mark.timeout(60)
def test_unjoined_thread_error_is_reported_and_sets_exit_status(tmp_path):
    path = write(
        tmp_path,
        "unjoined.mv",
        'fn bad() { return [1][5]; }\nlet t = spawn bad();\nsleep(0.05);\nprint("main done");\n',
    )
    result = run_minivm("run", path, timeout=30)
    assert result.returncode == 1
    assert result.stdout == "main done\n"
    assert result.stderr == (
        "error in thread 1: index out of range: 5 (length 1)\n"
        "  call chain (most recent call last):\n"
        f"    {path}:1 in bad\n"
        "      fn bad() { return [1][5]; }\n"
    )


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("join(5);", "join expects a thread, got int"),
        ("let l = lock(); release(l);", "lock not held"),
        ("let l = lock(); fn f() { acquire(l); } join(spawn f()); release(l);", "lock not held"),
        ("let l = lock(); acquire(l); acquire(l);", "thread 0 already holds this lock"),
        ("fn f(a) { return a; } spawn f(1, 2);", "f() expects 1 argument, got 2"),
        ("spawn 5();", "spawn: int is not callable"),
    ],
)
def test_thread_builtin_errors(source, message):
    status, _out, err = run(source, policy="fifo")
    assert status == 1
    assert f"error in thread 0: {message}" in err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_spawn_arguments_and_several_joiners(policy):
    source = """\
fn f(x) { return [x, thread_id()]; }
print(join(spawn f(thread_id())));
fn slow() { sleep(0.05); return "r"; }
let t = spawn slow();
fn j() { return join(t); }
let a = spawn j();
let b = spawn j();
print(join(a), join(b), join(t));
fn sp() { return spawn f(thread_id()); }
print(join(join(spawn sp())));
"""
    # The callee and its arguments are evaluated by the spawning thread; every joiner of a
    # thread gets its result; a thread can be joined by a thread other than its spawner.
    expected = "[0, 1]\nr r r\n[5, 6]\n"
    assert run(source, policy=policy, check_interval=3) == (0, expected, "")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_an_error_in_main_ends_the_program_at_once(tmp_path, monkeypatch, policy):
    path = write(
        tmp_path,
        "main_fails.mv",
        "fn spin() { let i = 0; while true { i += 1; } }\nspawn spin();\nspawn spin();\n"
        "let l = lock();\nacquire(l);\nfn w() { acquire(l); }\nspawn w();\n"
        'print("x");\nprint(1 // 0);\nprint("never");\n',
    )
    # The spinners stop at their next check, the lock's waiter is woken by the abort: with
    # the GIL waits' abort polls at ten minutes, only that can end the run.
    assert run_cli_without_polls(monkeypatch, "--policy", policy, path) == (1, "x\n", (
        "error in thread 0: division by zero\n"
        "  call chain (most recent call last):\n"
        f"    {path}:9 in <main>\n"
        "      print(1 // 0);\n"
    ))


# --------------------------------------------------------------------------------------
# The lost update under fifo, against a reference model of the fifo policy
# --------------------------------------------------------------------------------------


def race_program(iterations: int) -> str:
    return f"""\
let counter = 0;
fn work() {{
  let i = 0;
  while i < {iterations} {{ counter += 1; i += 1; }}
}}
let a = spawn work();
let b = spawn work();
join(a); join(b);
print(counter);
"""


class _SimThread:
    def __init__(self, function, args=()):
        code = function
        slots = list(args) + [None] * (len(code.local_names) - len(args))
        self.frames = [[code, 0, slots, []]]
        self.done = False
        self.result = None
        self.joiners: list[_SimThread] = []
        self.ticks = 0


def simulate_fifo(source: str, check_interval: int) -> list[str]:
    """What LANGUAGE.md's fifo policy prescribes, run on the program's plain instructions.

    One instruction is one tick; after ``check_interval`` ticks the holder hands the GIL to
    the longest waiter and queues behind it; a new holder starts a fresh count; spawn and
    the end of a joined thread queue the woken thread; a blocked ``join`` hands the GIL on.
    Only the instructions the race program needs are modelled.
    """
    code = compile_source(source, "t.mv")
    globals_: dict[str, object] = {}
    output: list[str] = []
    holder: _SimThread | None = _SimThread(code)
    holder.ticks = check_interval
    waiters: deque[_SimThread] = deque()

    def grant(thread: _SimThread) -> None:
        nonlocal holder
        holder = thread
        thread.ticks = check_interval

    def release() -> None:
        nonlocal holder
        holder = None
        if waiters:
            grant(waiters.popleft())

    def make_runnable(thread: _SimThread) -> None:
        if holder is None and not waiters:
            grant(thread)
        else:
            waiters.append(thread)

    compare = {op.LT: lambda a, b: a < b}
    while holder is not None:
        thread = holder
        if thread.ticks <= 0:
            if waiters:
                waiters.append(thread)
                grant(waiters.popleft())
                continue
            thread.ticks = check_interval
        thread.ticks -= 1
        frame = thread.frames[-1]
        fcode, pc, slots, stack = frame
        opcode, arg = fcode.instructions[pc]
        frame[1] = pc + 1
        if opcode == op.LOAD_CONST:
            stack.append(fcode.constants[arg])
        elif opcode == op.LOAD_LOCAL:
            stack.append(slots[arg])
        elif opcode == op.STORE_LOCAL:
            slots[arg] = stack.pop()
        elif opcode == op.LOAD_GLOBAL:
            name = fcode.names[arg]
            stack.append(globals_.get(name, name))  # builtins stand for themselves
        elif opcode in (op.STORE_GLOBAL, op.DEFINE_GLOBAL):
            globals_[fcode.names[arg]] = stack.pop()
        elif opcode == op.ADD:
            b = stack.pop()
            stack[-1] = stack[-1] + b
        elif opcode in compare:
            b = stack.pop()
            stack[-1] = compare[opcode](stack[-1], b)
        elif opcode == op.POP_JUMP_IF_FALSE:
            if not stack.pop():
                frame[1] = arg
        elif opcode == op.JUMP:
            frame[1] = arg
        elif opcode == op.MAKE_FUNCTION:
            stack.append(fcode.constants[arg])
        elif opcode == op.POP:
            stack.pop()
        elif opcode == op.SPAWN:
            args = stack[len(stack) - arg :]
            del stack[len(stack) - arg :]
            child = _SimThread(stack.pop(), args)
            make_runnable(child)
            stack.append(child)
        elif opcode == op.CALL:
            args = stack[len(stack) - arg :]
            del stack[len(stack) - arg :]
            callee = stack.pop()
            if callee == "print":
                output.append(" ".join(str(a) for a in args))
                stack.append(None)
            elif callee == "join":
                target = args[0]
                if target.done:
                    stack.append(target.result)
                else:
                    target.joiners.append(thread)
                    release()
            else:
                raise NotImplementedError(callee)
        elif opcode == op.RETURN:
            value = stack.pop()
            thread.frames.pop()
            thread.done, thread.result = True, value
            for joiner in thread.joiners:
                joiner.frames[-1][3].append(value)
                make_runnable(joiner)
            release()
        else:
            raise NotImplementedError(op.OPCODES[opcode].name)
    return output


def test_reference_model_of_fifo_is_not_trivial():
    # The model itself: without switching the count is exact, with switching it loses.
    assert simulate_fifo(race_program(500), 10_000_000) == ["1000"]
    assert simulate_fifo(race_program(500), 7) != ["1000"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("check_interval", [1, 2, 5, 6, 7, 9, 13, 50, 100, 1000])
def test_fifo_interleaving_matches_the_reference_model(check_interval):
    source = race_program(2000)
    expected = simulate_fifo(source, check_interval)
    status, out, err = run(source, policy="fifo", check_interval=check_interval)
    assert (status, err) == (0, "")
    assert out.splitlines() == expected


# Every check with a waiter is a hand-off here; on a free-threaded host each one is an OS-level
# wake-up of the other thread (~0.2-1 ms on a busy 2-core machine), hence smaller sizes there.
HOST_HAS_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()
ITERATIONS_AT_INTERVAL_1 = 20_000 if HOST_HAS_GIL else 1_000
RACE_ITERATIONS = 20_000 if HOST_HAS_GIL else 2_000


@pytest.mark.timeout(120)
def test_fifo_race_is_deterministic_at_check_interval_1(tmp_path):
    """Two runs at check interval 1 give the same count (the one the model predicts: at this
    interval the two threads' read-modify-write windows never overlap, so nothing is lost)."""
    path = write(tmp_path, "race.mv", race_program(ITERATIONS_AT_INTERVAL_1))
    command = [sys.executable, "-m", "minivm", "run", "--policy", "fifo", "--check-interval", "1", path]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(2)
    ]  # the two runs go side by side: each is mostly thread switching
    results = [p.communicate(timeout=100) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert results[0] == results[1]
    assert results[0][0] == "\n".join(simulate_fifo(race_program(ITERATIONS_AT_INTERVAL_1), 1)) + "\n"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("check_interval", [5, 7])
def test_fifo_race_loses_updates_the_same_way_every_time(tmp_path, check_interval):
    path = write(tmp_path, "race.mv", race_program(RACE_ITERATIONS))
    args = ("run", "--policy", "fifo", "--check-interval", str(check_interval), path)
    first, second = run_minivm(*args, timeout=100), run_minivm(*args, timeout=100)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert int(first.stdout) < 2 * RACE_ITERATIONS  # lossy
    assert first.stdout.splitlines() == simulate_fifo(race_program(RACE_ITERATIONS), check_interval)


@pytest.mark.timeout(60)
def test_fifo_race_without_switching_counts_exactly(tmp_path):
    path = write(tmp_path, "race.mv", race_program(20000))
    result = run_minivm(
        "run", "--policy", "fifo", "--check-interval", "10_000_000", path, timeout=50
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "40000\n", "")


# --------------------------------------------------------------------------------------
# Deadlocks: reported, never a hang
# --------------------------------------------------------------------------------------

DEADLOCKS = {
    "lock_cycle": (
        # Each takes its first lock, then waits, polling, until the other has taken its own
        # (a fixed sleep, on a busy machine, let one thread take both locks before the other
        # had started: no deadlock at all).
        "let l1 = lock(); let l2 = lock(); let has = [false, false];\n"
        "fn a() { acquire(l1); has[0] = true; while not has[1] { sleep(0.001); } acquire(l2); return 1; }\n"
        "fn b() { acquire(l2); has[1] = true; while not has[0] { sleep(0.001); } acquire(l1); return 2; }\n"
        "let t1 = spawn a(); let t2 = spawn b();\n"
        "print(join(t1) + join(t2));\n",
        "",
        "error: deadlock: every live thread is blocked: thread 0 joins thread 1; "
        "thread 1 waits for a lock held by thread 2; thread 2 waits for a lock held by thread 1\n",
    ),
    "main_joins_thread_waiting_for_mains_lock": (
        "let l = lock();\nacquire(l);\nfn w() { acquire(l); return 1; }\n"
        'let t = spawn w();\nprint("joining");\njoin(t);\nprint("never");\n',
        "joining\n",
        "error: deadlock: every live thread is blocked: thread 0 joins thread 1; "
        "thread 1 waits for a lock held by thread 0\n",
    ),
    "threads_join_each_other": (
        # Each waits, polling, until the other's thread is set (a fixed sleep let thread 1
        # reach its join before main had set ts[1]: "join expects a thread, got nil").
        "let ts = [nil, nil];\nfn f(k) { while ts[1 - k] == nil { sleep(0.001); } return join(ts[1 - k]); }\n"
        "ts[0] = spawn f(0);\nts[1] = spawn f(1);\nprint(join(ts[0]));\n",
        "",
        "error: deadlock: every live thread is blocked: thread 0 joins thread 1; "
        "thread 1 joins thread 2; thread 2 joins thread 1\n",
    ),
    "main_ends_holding_the_lock": (
        'let l = lock();\nacquire(l);\nfn w() { acquire(l); print("got it"); }\n'
        'spawn w();\nprint("main ends");\n',
        "main ends\n",
        "error: deadlock: every live thread is blocked: thread 1 waits for a lock held by thread 0\n",
    ),
    "dead_thread_keeps_its_lock": (
        "let l = lock();\nfn holder() { acquire(l); return 1; }\njoin(spawn holder());\n"
        "fn w() { acquire(l); return 2; }\nprint(join(spawn w()));\n",
        "",
        "error: deadlock: every live thread is blocked: thread 0 joins thread 2; "
        "thread 2 waits for a lock held by thread 1\n",
    ),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("policy", ALL_POLICIES)
@pytest.mark.parametrize("case", sorted(DEADLOCKS))
def test_deadlock_is_reported_at_once_not_waited_out(tmp_path, monkeypatch, case, policy):
    source, stdout, stderr = DEADLOCKS[case]
    path = write(tmp_path, f"{case}.mv", source)
    assert run_cli_without_polls(monkeypatch, "--policy", policy, path) == (1, stdout, stderr)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(DEADLOCKS))
def test_each_deadlock_program_deadlocks_in_the_same_way_under_any_schedule(tmp_path, case):
    # The programs above must not depend on timing: explored schedules stand in for a busy
    # machine, on which a thread can start late or wake early.
    source, stdout, stderr = DEADLOCKS[case]
    path = write(tmp_path, f"{case}.mv", source)
    result = run_minivm("explore", path, "--strategy", "random", "--runs", "20", "--max-steps", "5000",
                        "--save", str(tmp_path / "s"), timeout=100)  # fmt: skip
    outcomes = [line for line in result.stdout.splitlines() if line.lstrip().startswith("#")]
    assert len(outcomes) == 1, result.stdout
    replayed = run_minivm("run", "--replay", str(tmp_path / "s" / "outcome-1.json"), path)
    assert (replayed.returncode, replayed.stdout, replayed.stderr) == (1, stdout, stderr)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_joining_oneself_is_an_error_not_a_deadlock(tmp_path, monkeypatch, policy):
    # The thread waits until main has stored it (a fixed sleep let it read ``me`` before main
    # had set it, on a busy machine: "join expects a thread, got nil").
    path = write(
        tmp_path,
        "self.mv",
        "let me = nil;\nfn f() { while me == nil { sleep(0.001); } return join(me); }\nme = spawn f();\n"
        "print(join(me));\n",
    )
    status, _out, err = run_cli_without_polls(monkeypatch, "--policy", policy, path)
    assert status == 1
    assert "deadlock" not in err
    assert err.startswith(
        "error in thread 1: thread 1 cannot join itself\n"
        "  call chain (most recent call last):\n"
        f"    {path}:2 in f\n"
    )
    assert "error in thread 0: thread 1 failed: thread 1 cannot join itself" in err


# --------------------------------------------------------------------------------------
# Many threads, stress, and the GIL's one holder
# --------------------------------------------------------------------------------------

THOUSAND = """\
fn sq(n) { return n * n; }
let ts = [];
for i in range(1000) { push(ts, spawn sq(i)); }
let s = 0;
for t in ts { s += join(t); }
print(s, len(ts), thread_id());
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_a_thousand_threads(policy):
    machine, out, err = make_machine(policy=policy)
    status = machine.run(compile_source(THOUSAND, "t.mv"))
    assert (status, out.getvalue(), err.getvalue()) == (0, f"{sum(i * i for i in range(1000))} 1000 0\n", "")
    assert len(machine.scheduler.threads) == 1001
    assert all(t.state == "done" for t in machine.scheduler.threads)


STRESS = """\
let l = lock();
let shared = [];
let total = 0;
fn worker(k) {
  let mine = [];
  for i in range(40) {
    probe();
    push(mine, i * k);
    acquire(l);
    total += 1;
    push(shared, k);
    release(l);
    if i % 10 == 0 { sleep(0); }
  }
  let s = 0;
  for x in mine { s += x; }
  return s;
}
let ts = [];
for k in range(8) { push(ts, spawn worker(k)); }
let sum = 0;
for t in ts { sum += join(t); }
print(sum, total, len(shared));
"""
STRESS_OUTPUT = f"{sum(i * k for i in range(40) for k in range(8))} 320 320\n"


def install_probe(machine: Machine) -> dict[str, int]:
    """A builtin that notes how many guest threads are inside it at once. A guest thread
    calls it while it holds the GIL, and it lingers there, so under a GIL no two threads can
    ever be inside together -- an independent witness to the one-holder rule."""
    state = {"inside": 0, "most": 0, "calls": 0}
    guard = threading.Lock()

    def probe(thread, args):
        with guard:
            state["inside"] += 1
            state["calls"] += 1
            state["most"] = max(state["most"], state["inside"])
        time.sleep(0.0002)
        with guard:
            state["inside"] -= 1

    machine.globals["probe"] = Builtin("probe", probe, 0, 0)
    return state


@pytest.mark.timeout(120)
@pytest.mark.parametrize("policy", GIL_POLICIES)
def test_the_gil_never_has_two_holders(policy):
    for check_interval in range(1, 6):
        machine, out, err = make_machine(
            policy=policy, check_interval=check_interval, heap_check=True
        )
        probe = install_probe(machine)
        status = machine.run(compile_source(STRESS, "t.mv"))
        where = f"{policy} check interval {check_interval}"
        assert "internal error" not in err.getvalue(), where
        assert (status, out.getvalue()) == (0, STRESS_OUTPUT), (where, err.getvalue())
        # Shared lists under a guest lock, and the GIL: every reference count is right.
        assert machine.audit_report is not None and machine.audit_report.ok, where
        assert err.getvalue().startswith("heap audit: ok"), where
        assert probe["calls"] == 320
        assert probe["most"] == 1, where
        assert machine.gil.holder is None
        assert machine.gil.switches > 8, where  # the threads really did take turns


@pytest.mark.timeout(60)
def test_the_probe_sees_threads_running_at_once_without_a_gil():
    # The witness works: with no GIL, guest threads are inside the probe together.
    most = []
    for _ in range(3):
        machine, out, _err = make_machine(policy="none", check_interval=1)
        probe = install_probe(machine)
        status = machine.run(compile_source(STRESS, "t.mv"))
        assert (status, out.getvalue()) == (0, STRESS_OUTPUT)
        assert probe["calls"] == 320
        most.append(probe["most"])
        if probe["most"] > 1:
            break
    assert max(most) > 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ALL_POLICIES)
@pytest.mark.parametrize("check_interval", [1, 100])
def test_a_spinning_main_thread_lets_the_others_run(policy, check_interval):
    # Liveness: main busy-waits for a flag only another thread sets. Every policy must let
    # the waiting thread in (fifo/priority hand over at the check, ticks wins a battle
    # sooner or later, timed forces a switch after the switch interval).
    source = """let flag = false;
fn setter() { flag = true; }
spawn setter();
while not flag { }
print("seen");
"""
    assert run(source, policy=policy, check_interval=check_interval) == (0, "seen\n", "")


# Each thread spins until the other has made progress, so the run can only end if the
# holder is forced to switch (however long the host takes to wake the waiter).
BUSY_PAIR = """let progress = [0, 0];
fn spin(me, other) { let i = 0; while i < 1000 or progress[other] < 1000 { i += 1; progress[me] = i; } return 1; }
let a = spawn spin(0, 1);
let b = spawn spin(1, 0);
print(join(a) + join(b));
"""


@pytest.mark.timeout(60)
def test_timed_policy_forces_switches_between_busy_threads():
    machine, out, err = make_machine(policy="timed", switch_interval=0.001)
    status = machine.run(compile_source(BUSY_PAIR, "t.mv"))
    assert (status, out.getvalue(), err.getvalue()) == (0, "2\n", "")
    assert machine.gil.drop_requests >= 1
    assert machine.gil.forced_switches >= 1


def test_a_timed_waiters_deadline_holds_until_the_gil_changes_hands():
    machine, _, _ = make_machine(policy="timed")
    gil = machine.gil
    holder, waiter, later = (GuestThread(machine, tid, []) for tid in (1, 2, 3))
    with gil.mutex:
        gil.grant(holder)
        assert not gil.drop_deadline_passed()  # nobody waits
        gil.arm_drop_deadline(waiter, 0)  # a wait that has already timed out
        assert gil.drop_deadline_passed() and gil.deadline_by is waiter
        gil.arm_drop_deadline(later, 10**12)  # a later deadline: the earliest stands
        assert gil.drop_deadline_passed() and gil.deadline_by is waiter
        gil.vacate(holder, "tick")
        gil.grant(waiter)  # a switch: the deadline was for another holder
        assert not gil.drop_deadline_passed()
        gil.arm_drop_deadline(later, 10**12)
        assert not gil.drop_deadline_passed() and gil.deadline_by is later


def test_a_switch_rearms_the_deadline_of_the_timed_waiters_left_waiting():
    # take_gil(): a waiter whose timed wait ends after a switch waits one more interval before
    # it asks, so the new holder's deadline is the earliest wait's end plus one interval.
    machine, _, _ = make_machine(policy="timed")
    gil = machine.gil
    holder, first, second = (GuestThread(machine, tid, []) for tid in (1, 2, 3))
    interval = 10**12
    with gil.mutex:
        gil.grant(holder)
        for waiter in (first, second):
            gil.start_waiting(waiter)
            gil.arm_drop_deadline(waiter, interval)
        assert gil.deadline_by is first
        gil.vacate(holder, "tick")
        gil.stop_waiting(first)
        gil.grant(first)
        assert first.timed_wait_ends_ns == 0
        assert gil.deadline_by is second
        assert gil.drop_deadline_ns == second.timed_wait_ends_ns + interval
        assert gil.deadline_switches == gil.switches and not gil.drop_deadline_passed()
        gil.vacate(first, "tick")
        gil.stop_waiting(second)
        gil.grant(second)  # nobody is left waiting: the old deadline just lapses
        assert not gil.drop_deadline_passed()


def test_the_plain_check_asks_timed_only_once_a_deadline_passed_or_a_drop_is_requested():
    machine, _, _ = make_machine(policy="timed")
    gil = machine.gil
    holder, waiter = GuestThread(machine, 1, []), GuestThread(machine, 2, [])
    asked = []
    check = machine.check._plain_check_for(lambda thread: asked.append(thread.tid))
    with gil.mutex:
        gil.grant(holder)
        gil.start_waiting(waiter)
        gil.arm_drop_deadline(waiter, 10**12)  # a wait that times out in 1000 s
    machine.check.refill(holder)
    check(holder, 0)
    assert asked == [] and gil.releaser_reacquired == 1  # ran on, unasked
    gil.drop_request = True  # the waiter's own timeout made the request
    check(holder, 0)
    assert asked == [1]
    gil.drop_request = False
    with gil.mutex:
        gil.arm_drop_deadline(waiter, 0)  # an earlier deadline, already passed
    check(holder, 0)
    assert asked == [1, 1]
    assert holder.clock.checks == 3


@pytest.mark.timeout(60)
def test_the_holder_makes_a_timed_waiters_request_at_its_deadline():
    # The waiters' own timeouts are a minute long here, the deadlines they arm 1 ms: only the
    # holder, reading the deadline at its checks, can force the switches this run needs.
    machine, out, err = make_machine(policy="timed", switch_interval=0.001)
    machine.policy.switch_interval = 60.0
    status = machine.run(compile_source(BUSY_PAIR, "t.mv"))
    assert (status, out.getvalue(), err.getvalue()) == (0, "2\n", "")
    assert machine.gil.forced_switches >= 1
    assert machine.gil.drop_requests >= machine.gil.forced_switches


@pytest.mark.timeout(60)
def test_print_lines_are_never_torn_without_a_gil():
    source = """\
fn talk(k) {
  let line = "";
  for i in range(60) { line = line + str(k); }
  for i in range(50) { print(line); }
}
let ts = [];
for k in range(6) { push(ts, spawn talk(k)); }
for t in ts { join(t); }
"""
    status, out, _err = run(source, policy="none", check_interval=1)
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 300
    assert sorted(set(lines)) == [str(k) * 60 for k in range(6)]


def test_unknown_policy_is_a_usage_error():
    result = run_minivm("run", "--policy", "bogus", "-c", "print(1);")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "unknown policy 'bogus'" in result.stderr
    for name in ALL_POLICIES:
        assert name in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------
# Generated race-free threaded programs: the same output under every policy
# --------------------------------------------------------------------------------------


def mv_repr(value) -> str:
    """How a value prints inside a container."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(mv_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{mv_repr(k)}: {mv_repr(v)}" for k, v in value.items()) + "}"
    return repr(value)


def task_source(kind: str, name: str, c: int, p: int) -> str:
    """A worker function using only its own local data."""
    if kind == "arith":
        body = f"let s = {c};\n  for i in range(n) {{ s = (s * {c} + i) % {p}; }}\n  return s;"
    elif kind == "list":
        body = (
            f"let xs = [];\n  let i = 0;\n  while i < n {{ push(xs, i * {c} % {p}); i += 1; }}\n"
            "  let total = 0;\n  for x in xs { total += x; }\n  return [len(xs), total, xs[n // 2]];"
        )
    elif kind == "map":
        body = (
            "let m = {};\n  for i in range(n) {\n"
            f"    let key = str(i % {c});\n"
            "    if has(m, key) { m[key] += i; } else { m[key] = i; }\n  }\n  return m;"
        )
    elif kind == "closures":
        body = (
            f"let fs = [];\n  for i in range(n) {{ push(fs, fn (x) {{ return x * {c} + i; }}); }}\n"
            f"  let acc = 0;\n  for f in fs {{ acc = f(acc) % {p}; }}\n  return acc;"
        )
    elif kind == "counter":
        body = (
            f"let count = 0;\n  fn bump(d) {{ count += d; return count; }}\n"
            f"  for i in range(n) {{ bump(i % {c}); }}\n  return [count, bump(0)];"
        )
    elif kind == "string":
        body = 'let t = "";\n  for i in range(n) { t = t + str(i % 10); }\n  return t;'
    else:  # fib
        body = "fn fib(k) { if k < 2 { return k; } return fib(k - 1) + fib(k - 2); }\n  return fib(n % 12);"
    return f"fn {name}(n) {{\n  {body}\n}}\n"


def task_result(kind: str, n: int, c: int, p: int):
    if kind == "arith":
        s = c
        for i in range(n):
            s = (s * c + i) % p
        return s
    if kind == "list":
        xs = [i * c % p for i in range(n)]
        return [len(xs), sum(xs), xs[n // 2]]
    if kind == "map":
        m: dict[str, int] = {}
        for i in range(n):
            key = str(i % c)
            m[key] = m.get(key, 0) + i
        return m
    if kind == "closures":
        acc = 0
        for i in range(n):
            acc = (acc * c + i) % p
        return acc
    if kind == "counter":
        count = sum(i % c for i in range(n))
        return [count, count]
    if kind == "string":
        return "".join(str(i % 10) for i in range(n))
    a, b = 0, 1
    for _ in range(n % 12):
        a, b = b, a + b
    return a


tasks = st.tuples(
    st.sampled_from(["arith", "list", "map", "closures", "counter", "string", "fib"]),
    st.integers(1, 60),  # n
    st.integers(1, 9),  # c
    st.integers(2, 1000),  # p
)


def threaded_program(spec) -> tuple[str, str]:
    """Source and expected output: K workers, joined in spawn order, printed by main."""
    parts, spawns, expected = [], [], []
    for k, (kind, n, c, p) in enumerate(spec):
        parts.append(task_source(kind, f"w{k}", c, p))
        parts.append(f"fn r{k}(n) {{ return [thread_id(), w{k}(n)]; }}\n")
        spawns.append(f"push(ts, spawn r{k}({n}));\n")
        expected.append([k + 1, task_result(kind, n, c, p)])
    main = (
        "let ts = [];\n" + "".join(spawns)
        + "let rs = [];\nfor t in ts { push(rs, join(t)); }\nprint(rs);\n"
        + "for r in rs { print(r[1]); }\n"
    )  # fmt: skip
    lines = [mv_repr(expected)] + [
        r[1] if isinstance(r[1], str) else mv_repr(r[1]) for r in expected
    ]
    return "".join(parts) + main, "\n".join(lines) + "\n"


@pytest.mark.timeout(300)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.lists(tasks, min_size=1, max_size=4),
    intervals=st.tuples(*[st.integers(1, 1000) for _ in ALL_POLICIES]),
)
def test_race_free_programs_print_the_same_under_every_policy(spec, intervals):
    source, expected = threaded_program(spec)
    code = compile_source(source, "t.mv")
    for policy, check_interval in zip(ALL_POLICIES, intervals, strict=True):
        uses_gil = policy != "none"
        machine, out, err = make_machine(
            policy=policy, check_interval=check_interval, heap_check=uses_gil
        )
        status = machine.run(code)
        where = f"{policy}, check interval {check_interval}"
        assert out.getvalue() == expected, where
        assert status == 0, (where, err.getvalue())
        if uses_gil:
            # The heap audit passes under every GIL policy.
            assert machine.audit_report is not None and machine.audit_report.ok, where
            assert err.getvalue().startswith("heap audit: ok"), where
        else:
            assert err.getvalue() == "", where


@pytest.mark.timeout(300)
def test_heap_audit_fails_when_threads_race_without_a_gil(tmp_path):
    """Under `none`, four threads storing fresh lists and maps into shared containers lose
    reference-count updates; the audit notices. A lost update needs a host switch at the wrong
    moment, which no run is sure to have (on one loaded core, half the runs had none), so the
    program runs until the audit catches one; the test's timeout bounds the attempts."""
    path = write(
        tmp_path,
        "hammer.mv",
        """\
let shared = [];
let m = {};
let slots = [nil, nil, nil, nil];
fn hammer(k) {
  for i in range(3000) {
    let fresh = [i, [k]];
    push(shared, fresh);
    m[i % 7] = {"v": fresh};
    slots[i % 4] = [fresh, {}];
    if len(shared) > 3 { pop(shared); }
  }
}
let ts = [];
for k in range(4) { push(ts, spawn hammer(k)); }
for t in ts { join(t); }
print("done");
""",
    )
    while True:
        result = run_minivm("run", "--policy", "none", "--heap-check", path, timeout=120)
        assert result.stdout == "done\n"
        assert "Traceback" not in result.stderr
        if "wrong reference counts" in result.stderr:
            assert "heap audit:" in result.stderr
            assert result.returncode == 1
            break
        assert result.stderr.startswith("heap audit: ok") and result.returncode == 0, result.stderr
    # The same program under a GIL keeps every count right.
    result = run_minivm("run", "--policy", "fifo", "--heap-check", path, timeout=120)
    assert result.returncode == 0
    assert result.stderr.startswith("heap audit: ok")


# --------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------

SPINNING = """\
fn spin() { let i = 0; while true { i += 1; } }
let a = spawn spin(); let b = spawn spin();
print("started");
join(a);
"""
BLOCKED_AND_SLEEPING = """\
let l = lock();
acquire(l);
fn w() { acquire(l); }
fn s() { sleep(100); }
let a = spawn w(); let b = spawn s();
fn spin() { let i = 0; while true { i += 1; } }
let c = spawn spin();
print("started");
join(b);
"""
# Main waits until the other thread has the lock (after a fixed sleep, on a busy machine,
# main could take the lock first, end, and leave a deadlock to report before the Ctrl-C).
MAIN_WAITS_FOR_LOCK = """\
let l = lock();
let held = false;
fn hold() { acquire(l); held = true; let i = 0; while true { i += 1; } }
let t = spawn hold();
while not held { sleep(0.001); }
print("started");
acquire(l);
"""
MAIN_SLEEPS = """\
fn spin() { let i = 0; while true { i += 1; } }
spawn spin();
print("started");
sleep(100);
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("program", "policy"),
    [
        (SPINNING, "ticks"),
        (SPINNING, "fifo"),
        (BLOCKED_AND_SLEEPING, "ticks"),
        (BLOCKED_AND_SLEEPING, "timed"),
        (MAIN_WAITS_FOR_LOCK, "priority"),
        (MAIN_SLEEPS, "ticks"),
    ],
    ids=["spinning-ticks", "spinning-fifo", "blocked-sleeping-ticks", "blocked-sleeping-timed",
         "main-acquire-priority", "main-sleeps-ticks"],
)  # fmt: skip
def test_ctrl_c_interrupts(tmp_path, program, policy):
    path = write(tmp_path, "spin.mv", program)
    proc = popen_interruptible(
        [sys.executable, "-m", "minivm", "run", "--policy", policy, path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout.readline() == "started\n"  # the VM is up and its threads run
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        # The run ends on the signal, whatever its threads do: none of them can end by itself
        # before the test's timeout, which is the guard against a hang. (A bound of 3 s on the
        # exit measured the host: on a loaded machine a low-priority process's exit alone
        # took longer.)
        _out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err


@pytest.mark.timeout(60)
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
@pytest.mark.parametrize("engine", ["interp", "compiled"])
def test_print_to_a_full_disk_is_the_printing_threads_error(engine):
    # It used to be "minivm internal error: [Errno 28] No space left on device (this is a
    # bug in minivm, not in your program)".
    code = 'fn f() { print("x"); }\njoin(spawn f());\n'
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "minivm", "run", "--engine", engine, "-c", code],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=50)  # fmt: skip
    assert result.returncode == 1
    message = "error in thread 1: print() cannot write to standard output: No space left on device\n"
    assert result.stderr.startswith(message)
    assert "internal error" not in result.stderr
