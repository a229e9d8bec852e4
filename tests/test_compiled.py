"""The compiled tier (``minivm/runtime/compiled``) against the interpreter, the reference.

Differential tests, as byterun tests its VM: the same program on both engines must print the
same, fail with the same message and call chain, and — what makes the tier exact — reach the
check the same number of times, each time at the same instruction: the same thread, function,
pc and number of instructions so far, at every check interval. Under ``fifo`` that is the
same interleaving of threads. Every test that starts threads has a timeout.
"""

from __future__ import annotations

import io
import os

import pytest
from golden import golden_files, run_minivm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import MAX_STEPS, valid_programs

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.errors import SourceError
from minivm.frontend.compiler import compile_source
from minivm.observe.stats import collect
from minivm.runtime.compiled import Fallback, Translation, translate
from minivm.runtime.compiled.emitter import HANDLED
from minivm.runtime.engine import choose_engine, make_runner
from minivm.runtime.figures import take_figures
from minivm.runtime.interpreter import FRAME_CODE, FRAME_PC
from minivm.runtime.machine import Machine, VMConfig

ENGINES = ("interp", "compiled")
INTERVALS = (*range(1, 11), 100)


class Run:
    """One in-process run: output, status, statistics and every check it made."""

    def __init__(self, source: str, engine: str, **config):
        self.checks: list[tuple] = []
        out, err = io.StringIO(), io.StringIO()
        machine = Machine(VMConfig(engine=engine, **config), stdout=out, stderr=err)
        original = machine.check.at_check

        def at_check(thread, ticks):
            frame = thread.frames[-1]
            so_far = thread.clock.instructions + thread.clock.budget - ticks
            self.checks.append((thread.tid, frame[FRAME_CODE].display_name, frame[FRAME_PC], so_far))
            return original(thread, ticks)

        machine.check.at_check = at_check
        machine.run_thread = make_runner(machine, machine.engine)  # sees the watched check
        self.machine = machine
        self.status = machine.run(compile_source(source, "t.mv"))
        self.stdout = out.getvalue()
        self.stderr = err.getvalue()
        self.stats = collect(take_figures(machine))

    def summary(self) -> tuple:
        """Everything both engines must agree on."""
        threads = [(t["id"], t["instructions"], t["failed"]) for t in self.stats["threads"]]
        heap = self.stats["heap"]
        return (self.status, self.stdout, self.stderr, self.stats["tick_checks"], threads,
                heap["allocated"], heap["live"], heap["freed"], self.checks)  # fmt: skip


def assert_same(source: str, **config) -> Run:
    """Run ``source`` on both engines; everything observable must be equal."""
    interp = Run(source, "interp", **config)
    compiled = Run(source, "compiled", **config)
    assert compiled.machine.engine == "compiled"
    a, b = interp.summary(), compiled.summary()
    for i, what in enumerate(("status", "stdout", "stderr", "tick_checks", "threads", "allocated", "live", "freed")):
        assert a[i] == b[i], (what, a[i], b[i])
    if a[-1] != b[-1]:
        first = next(i for i, (x, y) in enumerate(zip(a[-1], b[-1], strict=False)) if x != y)
        raise AssertionError(f"check {first} differs: {a[-1][first]} vs {b[-1][first]} ({len(a[-1])} vs {len(b[-1])})")
    return compiled


PROGRAMS = {
    "countdown": "fn count(n) { while n > 0 { n = n - 1; } return n; }\nprint(count(300));",
    "fib": "fn fib(n) { if n < 2 { return n; } return fib(n - 1) + fib(n - 2); }\nprint(fib(10));",
    "closures": (
        "fn adder(k) { return fn (x) { return x + k; }; }\nlet add3 = adder(3);\nlet total = 0;\n"
        "for i in range(40) { total = add3(total); }\nprint(total);"
    ),
    "loops": (
        "let out = [];\nfor i in range(12) {\n  if i % 3 == 0 { continue; }\n  if i > 9 { break; }\n"
        "  let j = 0;\n  while j < i { j += 2; if j == 6 { break; } }\n  push(out, [i, j]);\n}\nprint(out);"
    ),
    "and_or": (
        "fn f(a, b) { return (a and b) or (not a and [a, b]) or nil; }\n"
        'print(f(1, 2), f(0, 3), f("", 0), f(nil, false), 1 < 2 and 2 < 3 or false);'
    ),
    "strings_maps": (
        'let words = ["a", "b", "a", "c"];\nlet counts = {};\nfor w in words {\n'
        "  if has(counts, w) { counts[w] += 1; } else { counts[w] = 1; }\n}\n"
        'let s = "";\nfor k in keys(counts) { s = s + k + str(counts[k]); }\nprint(s, counts, len(s));'
    ),
    "floats_and_errors_caught": "let x = 1.5;\nlet y = x * 2 + 1;\nprint(y / 4, 7 // 2, -7 % 3, 2.0 == 2, -x);",
    "cells": (
        "fn make() { let n = 0; let inc = fn () { n += 1; return n; }; inc(); return [inc, fn () { return n; }]; }\n"
        "let p = make();\np[0](); p[0]();\nprint(p[1]());"
    ),
    "nested_for_break": (
        "let found = nil;\nfor a in range(5) {\n  for b in [1, 2, 3] {\n    if a * b == 6 { found = [a, b]; break; }\n"
        "  }\n  if found { break; }\n}\nprint(found);"
    ),
    "index_ops": (
        "let l = [1, 2, 3];\nl[0] += 5;\nl[-1] = l[0] * 2;\nlet m = {1: [7]};\nm[1][0] -= 1;\nprint(l, m);"
    ),
    "race": (
        "let counter = 0;\nfn work(n) { for i in range(n) { counter += 1; } return n; }\n"
        "let a = spawn work(40); let b = spawn work(40);\njoin(a); join(b);\nprint(counter);"
    ),
    "cell_race": (
        "fn run() {\n  let c = 0;\n  let bump = fn (n) { while n > 0 { c += 1; n -= 1; } return 0; };\n"
        "  let t1 = spawn bump(30); let t2 = spawn bump(30);\n  join(t1); join(t2);\n  return c;\n}\nprint(run());"
    ),
    "locks": (
        "let l = lock();\nlet total = 0;\n"
        "fn add(k) { for j in range(k) { acquire(l); total += 1; release(l); } return k; }\n"
        "let ts = [];\nfor k in range(3) { push(ts, spawn add(10 + k)); }\nfor t in ts { join(t); }\nprint(total);"
    ),
    "thread_error": (
        "fn bad(n) { return [1][n]; }\nlet t = spawn bad(3);\nlet u = spawn bad(0);\nprint(join(u));\n"
        "fn later() { return join(t); }\nprint(later());"
    ),
    "spawn_builtin": "let t = spawn len([1, 2]);\nlet u = spawn print(\"hi\");\nprint(join(t), join(u));",
    "recursion_limit": "fn down(n) { return down(n + 1); }\nprint(down(0));",
    "undefined_global": "fn f() { return g + 1; }\nprint(1);\nf();",
    "main_error": "let l = [];\nfor i in range(5) { push(l, i); }\nprint(l[1] + l[9]);",
    "loop_types": (
        "fn f(x) { let i = 0; while x < 5 { x = x + 1; i += 1; } return [x, i]; }\n"
        "fn g(n) { let a = 0; while n > 0 { n -= 1; if n == 2 { a = 1.5; } a = a * 2; } return a; }\n"
        'fn h(n) { let s = 0; while n > 0 { s = s + n; n = n - 1; if n == 3 { s = "x"; break; } } return s; }\n'
        "print(f(0.5), f(2), f(-1), g(5), g(1), h(5), h(2), -7 // 2, 7 % -3);"
    ),
    "builtins_inline": (
        'let m = {"a": 1, 2: [3]};\nlet l = [];\nfor x in ["a", 2, true, nil, 3] { push(l, has(m, x)); }\n'
        'print(l, len(l), len("héllo"), len(m), str(l), str(2.5), str(nil));\n'
        "let len = fn (x) { return 42; };\nprint(len([1]));"
    ),
    "builtin_errors_inline": 'let l = [1];\npush(l, 2);\nprint(has([1], 1));',
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_both_engines_check_at_the_same_instructions(name, interval):
    assert_same(PROGRAMS[name], policy="fifo", check_interval=interval, recursion_limit=60)


# --------------------------------------------------------------------------------------
# Generated programs (the fuzzer's generator), threads included
# --------------------------------------------------------------------------------------

GENERATED_EXAMPLES = int(os.environ.get("MINIVM_COMPILED_EXAMPLES", "60"))
_SETTINGS = settings(
    deadline=None,
    derandomize=not os.environ.get("MINIVM_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def deterministic(program: str) -> str:
    """A generated program without ``sleep``, which makes even ``fifo`` depend on the clock."""
    return program.replace("sleep(0.001)", "len([1])")


@pytest.mark.timeout(1200)
@settings(_SETTINGS, max_examples=GENERATED_EXAMPLES)
@given(program=valid_programs(), interval=st.sampled_from(INTERVALS))
def test_generated_programs_check_at_the_same_instructions(program, interval):
    program = deterministic(program)
    assert fallbacks(compile_source(program, "t.mv")) == []  # the tier runs all of it
    # The step limit is the fuzzer's safety net; it stops both engines at the same check.
    assert_same(program, policy="fifo", check_interval=interval, max_steps=MAX_STEPS)


def fallbacks(code: CodeObject) -> list[str]:
    """The functions of a program that the compiled tier leaves to the interpreter."""
    found = []
    pending = [code]
    while pending:
        current = pending.pop()
        pending.extend(current.nested())
        translation = translate(current)
        if isinstance(translation, Fallback):
            found.append(f"{current.display_name}: {translation.reason}")
    return found


@pytest.mark.parametrize("path", golden_files("programs", "tests/programs", "tests/programs/regressions"), ids=str)
def test_every_golden_program_runs_on_the_compiled_tier(path):
    # A function the translator cannot handle runs correctly on the interpreter, so the
    # differential tests alone would not notice a fallback: no program of the corpus has one.
    try:
        code = compile_source(path.read_text(encoding="utf-8", errors="replace"), str(path))
    except SourceError:
        return
    assert fallbacks(code) == []


# --------------------------------------------------------------------------------------
# The heap: roots held only in generated frames
# --------------------------------------------------------------------------------------

# The heap reclaims (once 20,000 objects were allocated) at a check inside ``churn``, while
# some value is held only by a compiled frame; if reclaim missed that root, the value would be
# freed, and storing it in ``saved`` afterwards would leave the audit a reference to a freed
# object.
CHURN = """\
let saved = [];
fn churn(n) { let i = 0; while i < n { let junk = [i, [i]]; i += 1; } return i; }
"""
HELD_ONLY_BY_FRAMES = {
    "a local": "fn f() { let keep = [1, [2]]; churn(11000); return keep; }\npush(saved, f());",
    "a value pending under a call": "push(saved, [[0, [0]], churn(11000), [1]]);",
    "a loop's iterable": "for x in [[5], [6]] { churn(11000); push(saved, x); }",
    "a thread blocked in join": (
        'fn worker() { let mine = {"w": [1]}; let t = spawn churn(11000); join(t); return mine; }\n'
        "push(saved, join(spawn worker()));"
    ),
    "a thread not started yet": "let t = spawn len([[3], [4]]);\nchurn(11000);\npush(saved, join(t));",
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("policy", ["ticks", "fifo", "timed", "priority"])
@pytest.mark.parametrize("case", sorted(HELD_ONLY_BY_FRAMES))
def test_reclaim_finds_roots_held_only_in_compiled_frames(case, policy):
    source = CHURN + HELD_ONLY_BY_FRAMES[case] + "\nprint(saved);\n"
    runs = {engine: Run(source, engine, policy=policy, heap_check=True) for engine in ENGINES}
    compiled = runs["compiled"]
    assert compiled.status == 0, compiled.stderr
    assert compiled.stderr.startswith("heap audit: ok"), compiled.stderr
    assert compiled.stdout == runs["interp"].stdout
    assert compiled.stats["heap"] == runs["interp"].stats["heap"]
    assert compiled.stats["heap"]["freed"] > 20_000  # the heap did reclaim during the run


@pytest.mark.timeout(300)
def test_reclaim_frees_the_same_objects_at_the_same_checks():
    # Under fifo the runs are the same instruction by instruction, so every reclaim happens at
    # the same check and must find the same roots: a stale host temporary must not count.
    source = CHURN + "\n".join(HELD_ONLY_BY_FRAMES.values()) + "\nprint(saved);\n"
    for interval in (1, 7, 100):
        assert_same(source, policy="fifo", check_interval=interval, heap_check=True)


# --------------------------------------------------------------------------------------
# Functions the translator leaves to the interpreter
# --------------------------------------------------------------------------------------


def nested_loops(depth: int, body: str) -> str:
    """A function body of ``depth`` nested one-pass loops around ``body`` (CPython allows 20
    statically nested blocks: such a function stays interpreted)."""
    opening = "".join(f"let i{k} = 0; while i{k} < 1 {{ i{k} += 1; " for k in range(depth))
    return opening + body + " }" * depth


FALLBACK = f"""\
fn leaf(n) {{ if n > 3 {{ return [1][n]; }} return n * 10; }}
fn deep(n) {{ let r = 0; {nested_loops(19, "r = leaf(n) + deep_again(n);")} return r; }}
fn deep_again(n) {{ if n > 0 {{ return deep(n - 1); }} return 0; }}
fn down(n) {{ {nested_loops(19, "if n > 0 { return down(n - 1); }")} return 0; }}
print(deep(2));
print(down(20));
print(deep(5));
"""


def test_a_deeply_nested_function_falls_back_to_the_interpreter():
    code = compile_source(FALLBACK, "t.mv")
    reasons = {c.name: translate(c) for c in code.nested()}
    assert isinstance(reasons["deep"], Fallback) and "nested too deeply" in reasons["deep"].reason
    assert isinstance(reasons["leaf"], Translation)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("interval", [1, 3, 100])
def test_compiled_and_interpreted_frames_mix_exactly(interval):
    # main (compiled) -> deep (interpreted) -> leaf -> ... fails inside the interpreter: the
    # call chain joins both kinds of frames; the recursion limit counts both.
    run = assert_same(FALLBACK, policy="fifo", check_interval=interval, recursion_limit=25)
    assert "in deep" in run.stderr and "in <main>" in run.stderr
    assert_same(FALLBACK.replace("down(20)", "down(30)"), policy="fifo", recursion_limit=25)


# --------------------------------------------------------------------------------------
# The translator and the command line
# --------------------------------------------------------------------------------------


def test_unstructured_code_falls_back_with_a_reason():
    code = CodeObject(
        name="odd", file="t.mv", first_line=1, params=(), local_names=(),
        # a conditional jump backwards: no loop the compiler makes looks like this
        instructions=((op.LOAD_CONST, 0), (op.POP_JUMP_IF_FALSE, 0), (op.LOAD_CONST, 0), (op.RETURN, 0)),
        lines=(1, 1, 1, 1), constants=(None,), names=(), free_names=(), free_sources=(), max_stack=2,
    )  # fmt: skip
    fallback = translate(code)
    assert isinstance(fallback, Fallback) and "branch at 1 to 0" in fallback.reason


def test_every_opcode_has_code_in_the_compiled_tier():
    assert {info.code for info in op.PLAIN_OPCODES} <= HANDLED


def test_dis_compiled_shows_the_host_source_per_function():
    source = "fn f(n) { return n + 1; }\nprint(f(1));\n" + f"fn g() {{ {nested_loops(19, 'print(1);')} }}\n"
    result = run_minivm("dis", "--compiled", "-c", source)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "<main> (<string>:1)" in out and "def main(clock, budget, room, fn):" in out
    assert "def fn_f(clock, budget, room, fn, l0):" in out
    assert "g (<string>:3): runs on the interpreter (loops nested too deeply)" in out
    assert any(line.startswith("  @") for line in out.splitlines())


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        (("--engine", "compiled", "--trace"), 2, "the compiled engine cannot trace every instruction"),
        (("--engine", "fast"), 2, "unknown engine 'fast'"),
        (("--engine", "interp", "--trace"), 0, "LOAD_CONST"),
        (("--trace",), 0, "LOAD_CONST"),
        (("--engine", "compiled", "--max-steps", "3"), 1, "step limit exceeded: 3 instructions"),
    ],
)
def test_engine_option(options, status, message):
    result = run_minivm("run", *options, "-c", "print(1);")
    assert result.returncode == status, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("limit", ["2147483648", "99999999999999999999"])
def test_a_recursion_limit_beyond_the_hosts_runs(engine, limit):
    # The compiled tier raises the host's limit to fit the guest's; the host's setter takes
    # only a C int, and a larger guest limit was an internal error.
    result = run_minivm("run", "--engine", engine, "--recursion-limit", limit, "-c", "print(1);")
    assert (result.returncode, result.stdout, result.stderr) == (0, "1\n", "")


def test_engine_choice():
    tracing = "trace every instruction"
    assert choose_engine("auto") == "compiled"
    assert choose_engine("auto", tracing) == "interp"
    assert choose_engine("interp") == "interp"
    with pytest.raises(ValueError, match="cannot trace"):
        choose_engine("compiled", tracing)
    with pytest.raises(ValueError, match="unknown engine"):
        Machine(VMConfig(engine="jit"))
    # --check-at backedge reads the instruction about to run at every check: the interpreter.
    assert Machine(VMConfig(check_at="backedge")).engine == "interp"
    with pytest.raises(ValueError, match="backward jumps"):
        Machine(VMConfig(check_at="backedge", engine="compiled"))


# --------------------------------------------------------------------------------------
# The heap audit on both engines
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
@pytest.mark.parametrize("engine", ENGINES)
def test_heap_audit_fails_without_a_gil_on_both_engines(tmp_path, engine):
    """As in test_threads: four threads racing on shared containers under `none` lose
    reference-count updates, and the audit catches it (in one of twenty attempts); under a GIL
    the same program keeps every count right."""
    path = tmp_path / "hammer.mv"
    path.write_text(HAMMER, encoding="utf-8")
    for _ in range(20):
        result = run_minivm("run", "--engine", engine, "--policy", "none", "--heap-check", str(path), timeout=120)
        assert result.stdout == "done\n" and "Traceback" not in result.stderr
        if "wrong reference counts" in result.stderr:
            assert result.returncode == 1
            break
    else:
        pytest.fail(f"the heap audit never caught the race on the {engine} engine")
    for policy in ("ticks", "fifo", "timed", "priority"):
        result = run_minivm("run", "--engine", engine, "--policy", policy, "--heap-check", str(path), timeout=120)
        assert result.returncode == 0 and result.stderr.startswith("heap audit: ok"), (policy, result.stderr)


HAMMER = """\
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
"""
