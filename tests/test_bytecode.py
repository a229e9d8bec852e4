"""The opcode table and everything derived from it: the compiler emits every plain opcode,
the disassembler can show every operand kind (exact text, checked by hand), the interpreter
executes every opcode (traced), and fused instructions behave exactly like the plain
sequences they stand for. (The package's import rules: ``test_layering.py``.)"""

from __future__ import annotations

import ast
import io
import operator
from pathlib import Path

import pytest
from golden import run_minivm

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.bytecode.disasm import MEANING, disassemble
from minivm.bytecode.verify import check_fused, stack_depths
from minivm.errors import InternalError
from minivm.frontend.compiler import compile_source
from minivm.observe.events import EventBus, Sink
from minivm.runtime.engine import make_runner
from minivm.runtime.interpreter import FRAME_CODE, FRAME_PC
from minivm.runtime.machine import Machine, VMConfig

PLAIN = {info.code for info in op.OPCODES if info.width == 1}
FUSED = {info.code for info in op.OPCODES if info.width > 1}


def names(codes) -> list[str]:
    return sorted(op.OPCODES[c].name for c in codes)


def all_code_objects(code: CodeObject) -> list[CodeObject]:
    found = [code]
    for nested in code.nested():
        found += all_code_objects(nested)
    return found


class OpcodeRecorder(Sink):
    """Collects the name of every instruction executed (tracing runs the plain code)."""

    wants_instructions = True

    def __init__(self) -> None:
        self.executed: set[str] = set()

    def receive(self, event: dict) -> None:
        if event["event"] == "instr":
            self.executed.add(event["op"])


def run(source: str, *, trace: OpcodeRecorder | None = None, **config) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    events = EventBus([trace]) if trace is not None else None
    machine = Machine(VMConfig(**config), stdout=out, stderr=err, events=events)
    status = machine.run(compile_source(source, "t.mv"))
    return status, out.getvalue(), err.getvalue()


# Programs that together use every language feature. Each: source, stdout, stderr fragment
# (or None when the program succeeds), and the opcodes it must contain.
FEATURES = {
    "arithmetic": (
        "let a = 7; let b = 2;\nprint(a + b, a - b, a * b, a / b, a // b, a % b, -a);\n",
        "9 5 14 3.5 3 1 -7\n", None,
        {"LOAD_CONST", "DEFINE_GLOBAL", "LOAD_GLOBAL", "ADD", "SUB", "MUL", "DIV", "FLOOR_DIV",
         "MOD", "NEG", "CALL", "POP", "RETURN"},
    ),
    "comparisons": (
        "let a = 1;\nprint(a == 1, a != 1, a < 2, a <= 0, a > 0, a >= 2, not a);\n",
        "true false true false true false false\n", None,
        {"EQ", "NE", "LT", "LE", "GT", "GE", "NOT"},
    ),
    "and_or": (
        "let z = 0;\nprint(z and 1, 2 and 3, z or 4, 5 or 6);\n",
        "0 3 4 5\n", None,
        {"JUMP_IF_FALSE_OR_POP", "JUMP_IF_TRUE_OR_POP"},
    ),
    "if_while_globals": (
        "let i = 0;\nwhile i < 3 {\n  if i == 1 { print(\"one\"); } else { print(i); }\n"
        "  i += 1;\n}\n",
        "0\none\n2\n", None,
        {"POP_JUMP_IF_FALSE", "JUMP", "STORE_GLOBAL"},
    ),
    "locals": (
        "fn f(a) { let b = a * 2; b = b + 1; return b; }\nprint(f(4));\n",
        "9\n", None,
        {"MAKE_FUNCTION", "LOAD_LOCAL", "STORE_LOCAL"},
    ),
    "lists_and_maps": (
        "let xs = [1, 2];\nxs[0] = 5;\nxs[1] += 10;\nlet m = {\"k\": 1};\nm[\"k\"] += 1;\n"
        "m[\"j\"] = xs;\nprint(xs, m, xs[-1], m[\"k\"]);\n",
        "[5, 12] {\"k\": 2, \"j\": [5, 12]} 12 2\n", None,
        {"BUILD_LIST", "BUILD_MAP", "STORE_INDEX", "DUP2", "INDEX"},
    ),
    "for_loops": (
        "let s = 0;\nfor x in [1, 2, 3, 4] { if x == 2 { continue; } if x == 4 { break; } s += x; }\n"
        "for k in {\"a\": 1, \"b\": 2} { print(k); }\nfor c in \"hi\" { print(c); }\nprint(s);\n",
        "a\nb\nh\ni\n4\n", None,
        {"GET_ITER", "FOR_ITER"},
    ),
    "closures": (
        "fn counter() {\n  let n = 0;\n  fn inc() { n += 1; return n; }\n  inc();\n"
        "  return [inc, n];\n}\nlet pair = counter();\nlet inc = pair[0];\ninc();\n"
        "print(pair[1], inc());\n",
        "1 3\n", None,
        {"MAKE_CELL", "STORE_CELL", "LOAD_CELL", "LOAD_FREE", "STORE_FREE"},
    ),
    "block_variable_cleared_each_iteration": (
        # The second time round, `y` belongs to a fresh block whose `let` has not run yet:
        # reading it is an error, not a stale value from the first iteration.
        "fn f() {\n  let i = 0;\n  while i < 2 {\n    if i == 1 { print(y); }\n"
        "    let y = i;\n    i += 1;\n  }\n}\nf();\n",
        "", "error in thread 0: undefined variable 'y' (used before its declaration)",
        {"CLEAR_LOCAL", "LOAD_LOCAL_CHECKED"},
    ),
    "spawn": (
        "fn w(x) { return x * 2; }\nlet t = spawn w(21);\nprint(join(t));\n",
        "42\n", None,
        {"SPAWN"},
    ),
}  # fmt: skip

# A function whose loop the compiler fuses into every kind of superinstruction.
FUSED_PROGRAM = """\
let limit = 3;
fn f(n) {
  let i = 0;
  let s = 0;
  let out = [];
  while i < n {
    if i != 3 {
      s += i;
    }
    push(out, i * 2);
    push(out, s - i);
    i += 1;
  }
  let k = 2;
  while k > 0 {
    k = k - 1;
  }
  let t = 0;
  for x in out {
    t = t + x % 3;
  }
  let m = 0;
  while m < limit {
    m = m + 1;
  }
  return [s, out, t + m];
}
print(f(5));
print(f(2.5));
"""
FUSED_OUTPUT = "[7, [0, 0, 2, 0, 4, 1, 6, 0, 8, 3], 9]\n[3, [0, 0, 2, 0, 4, 1], 7]\n"


def emitted(source: str) -> set[int]:
    code = compile_source(source, "t.mv")
    return {opcode for each in all_code_objects(code) for opcode, _ in each.instructions}


def test_opcode_table_is_consistent():
    assert [info.code for info in op.OPCODES] == list(range(len(op.OPCODES)))
    assert len(op.BY_NAME) == len(op.OPCODES)
    for info in op.OPCODES:
        assert getattr(op, info.name) == info.code
        assert info.doc
        assert (info.jump_effect is not None) == (info.operand is op.Operand.JUMP and info.width == 1)
    assert FUSED, "the fused instructions are part of the table"


def test_compiler_emits_every_plain_opcode():
    seen: set[int] = set()
    for source, *_ in FEATURES.values():
        seen |= emitted(source)
    seen |= emitted(FUSED_PROGRAM)
    assert names(PLAIN - seen) == []
    # Fused opcodes appear only in the fast form, never among the plain instructions.
    assert seen <= PLAIN


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_feature_program_contains_its_opcodes(feature):
    source, _, _, expected_ops = FEATURES[feature]
    assert {op.BY_NAME[name].code for name in expected_ops} <= emitted(source)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_interpreter_runs_every_feature(feature):
    source, stdout, error, expected_ops = FEATURES[feature]
    recorder = OpcodeRecorder()
    status, out, err = run(source, trace=recorder, policy="fifo")
    assert out == stdout
    if error is None:
        assert (status, err) == (0, "")
    else:
        assert status == 1
        assert error in err
    # Every opcode this feature is about was really executed, not just compiled.
    assert expected_ops <= recorder.executed, names(
        op.BY_NAME[n].code for n in expected_ops - recorder.executed
    )
    # The same program on the fast code, and on the plain code without tracing.
    assert run(source, policy="fifo", engine="interp") == (status, out, err)
    assert run(source, policy="fifo", engine="interp", fused=False) == (status, out, err)


@pytest.mark.timeout(60)
def test_interpreter_executes_every_plain_opcode():
    executed: set[str] = set()
    for source, *_ in FEATURES.values():
        recorder = OpcodeRecorder()
        run(source, trace=recorder, policy="fifo")
        executed |= recorder.executed
    assert sorted({op.OPCODES[c].name for c in PLAIN} - executed) == []


def test_fused_program_uses_every_fused_opcode():
    code = compile_source(FUSED_PROGRAM, "t.mv")
    fast_ops = {opcode for each in all_code_objects(code) for opcode, _ in each.fast}
    assert names(FUSED - fast_ops) == []
    for each in all_code_objects(code):
        check_fused(each, each.fast)  # the declarations hold (fuse checks this too)
        for opcode, record in each.fast:
            if opcode in FUSED:
                assert isinstance(record, op.OPCODES[opcode].fused.record)


def test_fused_declarations_are_consistent():
    for info in op.FUSED_OPCODES:
        declared = info.fused
        assert declared.record.__slots__, "a record names its fields"
        assert info.width == len(declared.replaces) > 1
        # Every plain opcode a declaration names exists, and a loop form begins with its jump.
        named = {name for allowed in declared.replaces for name in allowed}
        assert all(name in op.BY_NAME and op.BY_NAME[name].width == 1 for name in named)
        assert (declared.replaces[0] == ("JUMP",)) == declared.loop
    # Each loop form runs a head declared as its own sequence after the jump.
    heads = {info.fused.replaces: info for info in op.FUSED_OPCODES if not info.fused.loop}
    for loop in (info for info in op.FUSED_OPCODES if info.fused.loop):
        assert heads[loop.fused.replaces[1:]].fused.record is loop.fused.record


def test_verifier_rejects_a_loop_form_whose_target_is_not_its_head():
    code, fast = fused_form("fn f(n) { while n > 0 { n = n - 1; } return n; }")
    assert fast[0][0] == op.COMPARE_LOCAL_CONST_JUMP
    unfused = list(fast)
    unfused[0] = code.instructions[0]
    with pytest.raises(InternalError, match="its target does not hold the fused instruction it runs"):
        check_fused(code, tuple(unfused))


def test_fused_sequences_on_two_locals_are_left_plain():
    # Measured not to pay (docs/performance.md): only the store `j += i` is fused.
    code = compile_source("fn f(i, n) { while i < n { i += n; } return i + n; }", "t.mv").nested()[0]
    fused = [op.OPCODES[opcode].name for opcode, _ in code.fast if opcode in FUSED]
    assert fused == ["ARITH_LOCALS_STORE"]


def fused_form(source: str) -> tuple[CodeObject, list]:
    """The first function of ``source`` and its fast form as a list, to be spoiled."""
    code = compile_source(source, "t.mv").nested()[0]
    return code, list(code.fast)


def test_verifier_rejects_a_fused_instruction_that_breaks_its_declaration():
    code, fast = fused_form("fn f(n) { while n > 0 { n = n - 1; } return n; }")
    test_at = next(i for i, (o, _) in enumerate(fast) if o == op.COMPARE_LOCAL_CONST_JUMP)
    check_fused(code, tuple(fast))
    # The wrong record type for the opcode.
    wrong = list(fast)
    wrong[test_at] = (op.COMPARE_LOCAL_GLOBAL_JUMP, fast[test_at][1])
    with pytest.raises(InternalError, match="not a fused opcode with its declared record"):
        check_fused(code, tuple(wrong))
    # A store fused where the plain code holds a test.
    store = next(arg for o, arg in fast if o == op.ARITH_LOCAL_CONST_STORE)
    wrong = list(fast)
    wrong[test_at] = (op.ARITH_LOCAL_CONST_STORE, store)
    with pytest.raises(InternalError, match="ARITH_LOCAL_CONST_STORE at offset 0: offset 2 holds GT"):
        check_fused(code, tuple(wrong))
    with pytest.raises(InternalError, match="fast form has"):
        check_fused(code, tuple(fast[:-1]))


def test_verifier_rejects_a_jump_into_a_fused_instruction():
    # `(a and n) - 1`: the `and` jumps to the LOAD_CONST of `n - 1`, so the fuser leaves
    # `n = n - 1` plain; fused by hand, the jump would skip ticks the store charges.
    code, fast = fused_form("fn f(a, n) { n = (a and n) - 1; return n; }")
    assert not any(opcode in FUSED for opcode, _ in fast)
    at = next(i for i, (o, arg) in enumerate(code.instructions) if o == op.LOAD_LOCAL and arg == 1)
    assert at + 1 in {arg for o, arg in code.instructions if o in op.JUMP_OPCODES}
    record = op.ConstArithStore(slot=1, const=1, fn=operator.sub, dest=1, operation=op.SUB)
    fast[at] = (op.ARITH_LOCAL_CONST_STORE, record)
    with pytest.raises(InternalError, match=f"ARITH_LOCAL_CONST_STORE at offset {at}: a jump lands inside it"):
        check_fused(code, tuple(fast))


def watched_run(source: str, **config) -> tuple:
    """Status, output and every check (thread, function, pc, instructions so far) of one run
    on the interpreter, the engine that runs fused code."""
    out, err = io.StringIO(), io.StringIO()
    machine = Machine(VMConfig(engine="interp", **config), stdout=out, stderr=err)
    checks = []
    original = machine.check.at_check

    def at_check(thread, ticks):
        so_far = thread.clock.instructions + thread.clock.budget - ticks
        frame = thread.frames[-1]
        checks.append((thread.tid, frame[FRAME_CODE].display_name, frame[FRAME_PC], so_far))
        return original(thread, ticks)

    machine.check.at_check = at_check
    machine.run_thread = make_runner(machine, machine.engine)  # sees the watched check
    status = machine.run(compile_source(source, "t.mv"))
    return status, out.getvalue(), err.getvalue(), checks


RACY_FUSED_PROGRAM = """\
let counter = 0;
fn work(n) {
  while n > 0 { counter += 1; n = n - 1; }
  for x in range(4) { counter = counter + x % 2; }
  return n;
}
let a = spawn work(25);
let b = spawn work(25);
join(a); join(b);
print(counter);
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("check_interval", [1, 2, 3, 4, 5, 7, 100])
@pytest.mark.parametrize("source", [FUSED_PROGRAM, RACY_FUSED_PROGRAM], ids=["one_thread", "racy"])
def test_fused_and_plain_code_check_at_the_same_instructions(source, check_interval):
    # Ints take the fused fast path; the float call takes the general path inside them. Under
    # `fifo` the same checks mean the same switches, so the racy program loses the same updates.
    fused = watched_run(source, policy="fifo", check_interval=check_interval)
    plain = watched_run(source, policy="fifo", check_interval=check_interval, fused=False)
    assert fused == plain
    assert fused[2] == "" and len(fused[3]) > 0
    if source == FUSED_PROGRAM:
        assert fused[1] == FUSED_OUTPUT


def test_fused_instruction_errors_name_the_line():
    source = "fn g(a) {\n  return a + 1;\n}\nprint(g(\"x\"));\n"
    for fused in (True, False):
        status, _out, err = run(source, fused=fused, engine="interp")
        assert status == 1
        assert "error in thread 0: unsupported operand types for +: str and int" in err
        assert "t.mv:2 in g" in err


@pytest.mark.parametrize(
    ("bound", "message"),
    # `nope` fails at the first test (the fused test in place); `lim` turns into a string in
    # the body, so the second test fails (the one fused with the loop's back jump).
    [("nope", "undefined variable 'nope'"), ("lim", "unsupported operand types for <: int and str")],
)
def test_fused_test_on_a_global_fails_like_the_plain_code(bound, message):
    source = (
        f'let lim = 5;\nfn g() {{\n  let i = 0;\n  while i < {bound} {{\n    i = i + 1;\n    lim = "x";\n'
        "  }\n}\ng();\n"
    )
    results = [run(source, fused=fused, engine="interp") for fused in (True, False)]
    assert results[0] == results[1]
    status, _out, err = results[0]
    assert status == 1
    assert f"error in thread 0: {message}" in err, err
    assert "t.mv:4 in g" in err


def count_instructions(source: str) -> int:
    """Instructions executed by a single-threaded program, counted from the trace."""

    class Counter(Sink):
        wants_instructions = True
        count = 0

        def receive(self, event: dict) -> None:
            if event["event"] == "instr":
                self.count += 1

    counter = Counter()
    out, err = io.StringIO(), io.StringIO()
    Machine(VMConfig(), stdout=out, stderr=err, events=EventBus([counter])).run(
        compile_source(source, "t.mv")
    )
    return counter.count


@pytest.mark.parametrize("fused", [True, False])
def test_max_steps_counts_fused_instructions_as_their_width(fused):
    steps = count_instructions(FUSED_PROGRAM)
    assert steps > 100
    ok = run(FUSED_PROGRAM, max_steps=steps, fused=fused, engine="interp")
    assert ok == (0, FUSED_OUTPUT, "")
    status, _out, err = run(FUSED_PROGRAM, max_steps=steps - 1, fused=fused, engine="interp")
    assert status == 1
    assert f"step limit exceeded: {steps - 1} instructions" in err


# --------------------------------------------------------------------------------------
# The disassembler
# --------------------------------------------------------------------------------------


def test_every_operand_kind_has_a_meaning_formatter():
    kinds = {info.operand for info in op.OPCODES}
    assert kinds <= set(MEANING)
    assert set(op.Operand) <= set(MEANING)


def test_meanings_in_disassembly():
    """Each listed instruction shows the meaning its operand kind calls for."""
    sources = [s for s, *_ in FEATURES.values()] + [FUSED_PROGRAM]
    seen_kinds = set()
    for source in sources:
        code = compile_source(source, "t.mv")
        for each in all_code_objects(code):
            for opcode, arg in each.instructions:
                info = op.OPCODES[opcode]
                meaning = MEANING[info.operand](each, arg)
                seen_kinds.add(info.operand)
                kind = info.operand
                if kind is op.Operand.NONE:
                    assert meaning == ""
                elif kind is op.Operand.LOCAL:
                    assert meaning == f"({each.local_names[arg]})"
                elif kind is op.Operand.NAME:
                    assert meaning == f"({each.names[arg]})"
                elif kind is op.Operand.FREE:
                    assert meaning == f"({each.free_names[arg]})"
                elif kind is op.Operand.JUMP:
                    assert meaning == f"(to {arg})"
                    assert 0 <= arg <= len(each.instructions)
                elif kind is op.Operand.COUNT:
                    assert meaning == f"({arg} {'item' if arg == 1 else 'items'})"
                elif kind is op.Operand.CONST:
                    value = each.constants[arg]
                    if isinstance(value, CodeObject):
                        assert meaning == f"(<code {value.display_name}, line {value.first_line}>)"
                    else:
                        assert meaning.startswith("(") and meaning.endswith(")")
    assert seen_kinds == {info.operand for info in op.OPCODES if info.width == 1}
    fused_info = next(info for info in op.OPCODES if info.width > 1)
    assert MEANING[fused_info.operand](compile_source("print(1);"), (0, 1)) == "(fused)"


def test_constant_meanings_spell_literals():
    code = compile_source('print(nil, true, false, 2.5, -3, "a\\n\\"b");', "t.mv")
    meanings = [
        MEANING[op.Operand.CONST](code, arg)
        for opcode, arg in code.instructions
        if opcode == op.LOAD_CONST
    ]
    assert meanings == ["(nil)", "(true)", "(false)", "(2.5)", "(-3)", '("a\\n\\"b")', "(nil)"]


DIS_SOURCE = "let x = 1; fn f(a) { return a + x; } print(f(2));"


def test_disassembly_exact_text(tmp_path):
    path = tmp_path / "prog.mv"
    path.write_text(DIS_SOURCE, encoding="utf-8")
    result = run_minivm("dis", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    # Checked by hand: globals x (name 0) and f (name 1), print is name 2; constants 1, the
    # code of f, 2 and nil; f(2) and print(...) are both one-argument calls; no jumps, so no
    # `>>` marks; every instruction is on line 1. "max stack" is the verifier's depth + 1.
    expected = f"""\
<main> ({path}:1), 0 params, 0 locals, max stack 4
     offset  line  opcode                 arg  meaning
          0     1  LOAD_CONST               0  (1)
          1     1  DEFINE_GLOBAL            0  (x)
          2     1  MAKE_FUNCTION            1  (<code f, line 1>)
          3     1  DEFINE_GLOBAL            1  (f)
          4     1  LOAD_GLOBAL              2  (print)
          5     1  LOAD_GLOBAL              1  (f)
          6     1  LOAD_CONST               2  (2)
          7     1  CALL                     1  (1 item)
          8     1  CALL                     1  (1 item)
          9     1  POP
         10     1  LOAD_CONST               3  (nil)
         11     1  RETURN

f ({path}:1), 1 params, 1 locals, max stack 3
     offset  line  opcode                 arg  meaning
          0     1  LOAD_LOCAL               0  (a)
          1     1  LOAD_GLOBAL              0  (x)
          2     1  ADD
          3     1  RETURN
          4     1  LOAD_CONST               0  (nil)
          5     1  RETURN
"""
    assert result.stdout == expected
    # `dis -c` gives the same text under the name <string>.
    inline = run_minivm("dis", "-c", DIS_SOURCE)
    assert inline.returncode == 0
    assert inline.stdout == expected.replace(str(path), "<string>")


@pytest.mark.parametrize("source", ["", "# only a comment\n\n"])
def test_disassembly_of_a_program_without_statements(tmp_path, source):
    path = tmp_path / "empty.mv"
    path.write_text(source, encoding="utf-8")
    result = run_minivm("dis", str(path))
    assert (result.returncode, result.stderr) == (0, "")
    # The module code alone: return nil, on line 1.
    assert result.stdout == f"""\
<main> ({path}:1), 0 params, 0 locals, max stack 2
     offset  line  opcode                 arg  meaning
          0     1  LOAD_CONST               0  (nil)
          1     1  RETURN
"""
    inline = run_minivm("dis", "-c", source)
    assert inline.stdout == result.stdout.replace(str(path), "<string>")


JUMPS_SOURCE = """\
fn f(n) {
  let s = 0;
  while s < n {
    if s == 1 { s += 2; } else { s += 1; }
  }
  return s or -1;
}
print(f(3));
"""


def test_disassembly_exact_text_with_jumps_and_fused(tmp_path):
    path = tmp_path / "jumps.mv"
    path.write_text(JUMPS_SOURCE, encoding="utf-8")
    result = run_minivm("dis", str(path))
    assert result.returncode == 0, result.stderr
    # Checked by hand: n is local 0 and s local 1; the while condition (line 3) exits to 20;
    # the if (line 4) goes to its else at 15 and its then-branch jumps over it to 19, the
    # loop's back jump (line 3) to 2; `s or -1` jumps to the RETURN at 23 when s is true.
    # Jump targets 2, 15, 19, 20 and 23 carry `>>`. -1 is one constant (folded literal).
    # Fused: the test on a constant and both `s += k`; 15 is a jump target but the first
    # instruction of its sequence, so it can be fused. `s < n` (two locals) stays plain.
    expected = f"""\
<main> ({path}:1), 0 params, 0 locals, max stack 4
     offset  line  opcode                 arg  meaning
          0     1  MAKE_FUNCTION            0  (<code f, line 1>)
          1     1  DEFINE_GLOBAL            0  (f)
          2     8  LOAD_GLOBAL              1  (print)
          3     8  LOAD_GLOBAL              0  (f)
          4     8  LOAD_CONST               1  (3)
          5     8  CALL                     1  (1 item)
          6     8  CALL                     1  (1 item)
          7     8  POP
          8     8  LOAD_CONST               2  (nil)
          9     8  RETURN

f ({path}:1), 1 params, 2 locals, max stack 3
     offset  line  opcode                 arg  meaning
          0     2  LOAD_CONST               0  (0)
          1     2  STORE_LOCAL              1  (s)
  >>      2     3  LOAD_LOCAL               1  (s)
          3     3  LOAD_LOCAL               0  (n)
          4     3  LT
          5     3  POP_JUMP_IF_FALSE       20  (to 20)
          6     4  LOAD_LOCAL               1  (s)
          7     4  LOAD_CONST               1  (1)
          8     4  EQ
          9     4  POP_JUMP_IF_FALSE       15  (to 15)
         10     4  LOAD_LOCAL               1  (s)
         11     4  LOAD_CONST               2  (2)
         12     4  ADD
         13     4  STORE_LOCAL              1  (s)
         14     4  JUMP                    19  (to 19)
  >>     15     4  LOAD_LOCAL               1  (s)
         16     4  LOAD_CONST               1  (1)
         17     4  ADD
         18     4  STORE_LOCAL              1  (s)
  >>     19     3  JUMP                     2  (to 2)
  >>     20     6  LOAD_LOCAL               1  (s)
         21     6  JUMP_IF_TRUE_OR_POP     23  (to 23)
         22     6  LOAD_CONST               3  (-1)
  >>     23     6  RETURN
         24     6  LOAD_CONST               4  (nil)
         25     6  RETURN
  fused for speed (the loop runs these; each charges one tick per instruction):
          6  COMPARE_LOCAL_CONST_JUMP covers offsets 6-9
         10  ARITH_LOCAL_CONST_STORE covers offsets 10-13
         15  ARITH_LOCAL_CONST_STORE covers offsets 15-18
"""
    assert result.stdout == expected
    assert run_minivm("run", str(path)).stdout == "3\n"


def test_disassembly_lists_a_fused_back_jump_with_the_test_it_runs():
    code = compile_source("fn f(n) { while n > 0 { n = n - 1; } return n; }", "t.mv").nested()[0]
    lines = disassemble(code).splitlines()
    at = lines.index("  fused for speed (the loop runs these; each charges one tick per instruction):")
    assert lines[at + 1 :] == [
        "          0  COMPARE_LOCAL_CONST_JUMP covers offsets 0-3",
        "          4  ARITH_LOCAL_CONST_STORE covers offsets 4-7",
        "          8  LOOP_COMPARE_LOCAL_CONST covers offsets 8 and 0-3",
    ]


def test_disassembly_lists_nested_functions_and_captures():
    code = compile_source("fn outer() { let n = 1; fn inner() { return n; } return inner; }")
    text = disassemble(code)
    blocks = text.split("\n\n")
    assert [b.split(" ", 1)[0] for b in blocks] == ["<main>", "outer", "inner"]
    assert "  captures: n" in blocks[2]
    assert "LOAD_FREE                0  (n)" in blocks[2]
    assert "MAKE_CELL                0  (n)" in blocks[1]


def test_verifier_accepts_every_feature_program_and_bounds_max_stack():
    for source, *_ in [*FEATURES.values(), (FUSED_PROGRAM,)]:
        for each in all_code_objects(compile_source(source, "t.mv")):
            depths = [d for d in stack_depths(each) if d is not None]
            assert depths[0] == 0
            assert max(depths) < each.max_stack


def test_verifier_rejects_unbalanced_code():
    import dataclasses

    from minivm.errors import InternalError

    good = compile_source("print(1);", "t.mv")
    # One POP too many: the stack underflows.
    underflow = dataclasses.replace(good, instructions=((op.POP, 0), *good.instructions))
    with pytest.raises(InternalError, match="underflow"):
        stack_depths(underflow)
    # RETURN with nothing to return.
    empty = dataclasses.replace(good, instructions=((op.RETURN, 0),))
    with pytest.raises(InternalError, match="RETURN at depth 0"):
        stack_depths(empty)
    # `k or k`: the jump keeps the value, the fall-through pops it and pushes another, so
    # both paths reach RETURN at depth 1.
    balanced = dataclasses.replace(
        good,
        instructions=((op.LOAD_CONST, 0), (op.JUMP_IF_TRUE_OR_POP, 3), (op.LOAD_CONST, 0),
                      (op.RETURN, 0)),
    )  # fmt: skip
    assert stack_depths(balanced) == [0, 1, 0, 1]
    # Jumping to offset 2 instead: the paths meet there at depths 1 and 0.
    mismatched = dataclasses.replace(
        good,
        instructions=((op.LOAD_CONST, 0), (op.JUMP_IF_TRUE_OR_POP, 2), (op.LOAD_CONST, 0),
                      (op.RETURN, 0)),
    )  # fmt: skip
    with pytest.raises(InternalError, match="stack depth 1 meets 0 at offset 2"):
        stack_depths(mismatched)


def test_interpreter_dispatches_every_opcode_by_name():
    """The dispatch chain in interpreter.py compares ``op is NAME`` for every opcode."""
    source = (Path(op.__file__).parent.parent / "runtime" / "interpreter.py").read_text()
    compared = {
        node.comparators[0].id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Compare)
        and isinstance(node.left, ast.Name)
        and node.left.id == "op"
        and isinstance(node.ops[0], ast.Is)
        and isinstance(node.comparators[0], ast.Name)
    }
    assert sorted(info.name for info in op.OPCODES if info.name not in compared) == []


def test_dis_shows_control_characters_of_a_string_constant_as_pictures():
    # The escape sequence in the constant was written raw and acted on the terminal.
    from minivm.frontend.compiler import compile_source

    listing = disassemble(compile_source('let s = "a\x1b[2J\u202eb\\n";\n', "t.mv"))
    assert '(\"a\u241b[2J\ufffdb\\n\")' in listing
    assert "\x1b" not in listing and "\u202e" not in listing
