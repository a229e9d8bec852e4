"""Fuzzing the whole command line: generated programs never crash, hang or show a traceback.

Two hypothesis strategies:

* ``valid_programs()`` builds programs from the grammar's statements and expressions —
  ``let``, assignments (plain, compound, indexed), ``if``/``else if``/``else``, bounded
  ``while`` and ``for`` loops with ``break``/``continue``, functions, closures, recursion with
  a bounded depth, lists and maps, ``spawn``/``join``, ``lock``/``acquire``/``release``,
  ``sleep`` — always syntactically valid and free of compile errors (no duplicate ``let``,
  ``break`` only in loops, ``return`` only in functions). Loops are bounded by construction
  (every ``while`` has its own counter, incremented first thing in its body); ``--max-steps``
  is a safety net. The values are *mostly* well typed, so programs usually run to the end,
  but a runtime error (a bad index, a division by zero, a deadlock) is allowed: exit 0 or 1.
* ``mutated_programs()`` takes a valid program (generated, or one of a few hand-written
  seeds) and damages it: characters and tokens deleted, inserted, duplicated, swapped,
  replaced; stray bytes that are not UTF-8; truncation. The result may be valid or not:
  exit 0, 1 or 2.

Every program runs through ``python -m minivm run`` in a subprocess under a random policy
and check interval. It must end within a bounded time, with an exit status from the
contract, without a Python traceback and without "internal error" on stderr.

The example counts are modest so the file runs in about a minute; raise them with
``MINIVM_FUZZ_VALID`` and ``MINIVM_FUZZ_MUTANTS`` (and set ``MINIVM_FUZZ_RANDOM=1`` for fresh
programs instead of the same derandomized ones) for a longer campaign.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from golden import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALID_EXAMPLES = int(os.environ.get("MINIVM_FUZZ_VALID", "40"))
MUTANT_EXAMPLES = int(os.environ.get("MINIVM_FUZZ_MUTANTS", "60"))
POLICIES = ("ticks", "fifo", "timed", "priority", "none")
MAX_STEPS = 300_000
RUN_TIMEOUT = 30  # seconds; a generated program takes well under one


# --------------------------------------------------------------------------------------
# Running a program
# --------------------------------------------------------------------------------------


def run_bytes(source: bytes, *options: str) -> subprocess.CompletedProcess:
    """Run ``source`` (written to a temporary .mv file) with the CLI; bytes in, text out."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.mv"
        path.write_bytes(source)
        env = dict(os.environ, PYTHONIOENCODING="utf-8")
        try:
            return subprocess.run(
                [sys.executable, "-m", "minivm", "run", "--max-steps", str(MAX_STEPS), *options, str(path)],
                capture_output=True,
                timeout=RUN_TIMEOUT,
                env=env,
                cwd=ROOT,
                text=True,
                errors="replace",
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"hang: no exit within {RUN_TIMEOUT} s ({' '.join(options)})\n{source!r}")


def assert_well_behaved(result: subprocess.CompletedProcess, source: bytes, allowed: tuple[int, ...]) -> None:
    """The contract for any input: a known exit status, no traceback, no internal error."""
    where = f"exit {result.returncode}\nprogram:\n{source.decode('utf-8', 'replace')}\nstderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, where
    assert "internal error" not in result.stderr, where
    assert result.returncode in allowed, where
    if result.returncode == 2:
        # A bad program is rejected with a place: file:line:col, the kind, and a sentence.
        assert re.search(r"fuzz\.mv:\d+:\d+: (syntax|compile) error: \S", result.stderr), where
    elif result.returncode == 1:
        assert "error" in result.stderr, where


run_options = st.tuples(st.sampled_from(POLICIES), st.sampled_from(("1", "7", "100"))).map(
    lambda t: ("--policy", t[0], "--check-interval", t[1])
)


# --------------------------------------------------------------------------------------
# Valid programs
# --------------------------------------------------------------------------------------

_STRINGS = ("", "a", "hello", "tab\\there", "line\\nbreak", 'quote\\"d', "back\\\\slash", "é ü ∑")


class _ProgramBuilder:
    """Builds one valid program, drawing every choice from hypothesis.

    Variables are tracked with a kind (int, str, list, map, fn, lock, thread) so that most
    operations are well typed. Every declared name is fresh, so no block declares a name
    twice. ``ctx`` says where the statement stands: inside a loop, inside a function.
    """

    def __init__(self, draw, max_depth: int):
        self.draw = draw
        self.max_depth = max_depth
        self.counter = 0
        # Scopes: a list of dicts name -> kind; the first one holds the globals.
        self.scopes: list[dict[str, str]] = [{}]
        self.functions: list[str] = []  # top-level functions of one int parameter, in order

    # -- helpers
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def choice(self, options):
        return self.draw(st.sampled_from(options))

    def names(self, kind: str) -> list[str]:
        seen: dict[str, str] = {}
        for scope in self.scopes:
            seen.update(scope)
        return [name for name, k in seen.items() if k == kind]

    def declare(self, name: str, kind: str) -> None:
        self.scopes[-1][name] = kind

    # -- expressions, by the kind of value they produce
    def int_expr(self, depth: int) -> str:
        leaves = ["lit", "lit", "var", "var"]
        nodes = ["bin", "bin", "neg", "len", "call", "index", "logic", "conv", "fnlit"] if depth > 0 else []
        kind = self.choice(leaves + nodes)
        ints = self.names("int")
        if kind == "var" and ints:
            return self.choice(ints)
        if kind in ("lit", "var"):
            return str(self.draw(st.integers(-20, 1000)))
        if kind == "bin":
            op = self.choice(["+", "-", "*", "+", "-", "//", "%"])
            left, right = self.int_expr(depth - 1), self.int_expr(depth - 1)
            if op in ("//", "%"):
                right = f"({right} % 7 + 1)" if self.draw(st.booleans()) else right
            return f"({left} {op} {right})"
        if kind == "neg":
            return f"-{self.int_expr(depth - 1)}"
        if kind == "len":
            return f"len({self.any_container(depth - 1)})"
        if kind == "call":
            fns = self.names("fn")
            if fns:
                return f"{self.choice(fns)}({self.int_expr(depth - 1)})"
            return f"int(str({self.int_expr(depth - 1)}))"
        if kind == "index":
            lists = self.names("list")
            if lists:
                target = self.choice(lists)
                return f"{target}[{self.int_expr(depth - 1)} % (len({target}) + 1)]"
            return f"[{self.int_expr(depth - 1)}, 2, 3][{self.draw(st.integers(-3, 2))}]"
        if kind == "logic":
            op = self.choice(["and", "or"])
            return f"({self.int_expr(depth - 1)} {op} {self.int_expr(depth - 1)})"
        if kind == "conv":
            return self.choice(
                [f"int({self.float_expr()})", f'int("{self.draw(st.integers(-99, 99))}")', "thread_id()"]
            )
        # fnlit: an anonymous function called on the spot, closing over what is in scope
        param = self.fresh("p")
        self.scopes.append({param: "int"})
        body = self.int_expr(depth - 1)
        self.scopes.pop()
        return f"(fn ({param}) {{ return {body}; }})({self.int_expr(depth - 1)})"

    def float_expr(self) -> str:
        return self.choice(["1.5", "0.25", "2.0e-3", "1e5", "3.0", "-0.5"])

    def bool_expr(self, depth: int) -> str:
        kind = self.choice(["cmp", "cmp", "lit", "not", "has", "eq"] if depth > 0 else ["lit"])
        if kind == "lit":
            return self.choice(["true", "false"])
        if kind == "cmp":
            op = self.choice(["<", "<=", ">", ">=", "==", "!="])
            return f"({self.int_expr(depth - 1)} {op} {self.int_expr(depth - 1)})"
        if kind == "not":
            return f"(not {self.bool_expr(depth - 1)})"
        if kind == "has":
            return f"has({self.map_expr(depth - 1)}, {self.key_expr(depth - 1)})"
        return f"({self.any_value(depth - 1)} == {self.any_value(depth - 1)})"

    def str_expr(self, depth: int) -> str:
        kind = self.choice(["lit", "lit", "str", "cat", "type", "var"] if depth > 0 else ["lit"])
        strs = self.names("str")
        if kind == "var" and strs:
            return self.choice(strs)
        if kind in ("lit", "var"):
            return '"' + self.choice(_STRINGS) + '"'
        if kind == "str":
            return f"str({self.any_value(depth - 1)})"
        if kind == "cat":
            return f"({self.str_expr(depth - 1)} + {self.str_expr(depth - 1)})"
        return f"type({self.any_value(depth - 1)})"

    def key_expr(self, depth: int) -> str:
        return self.choice(['"a"', '"b"', "1", "2", "nil", "true", self.int_expr(max(depth, 0))])

    def list_expr(self, depth: int) -> str:
        lists = self.names("list")
        kind = self.choice(["lit", "var", "cat", "keys"] if depth > 0 else ["lit", "var"])
        if kind == "var" and lists:
            return self.choice(lists)
        if kind == "cat":
            return f"({self.list_expr(depth - 1)} + {self.list_expr(depth - 1)})"
        if kind == "keys":
            return f"keys({self.map_expr(depth - 1)})"
        n = self.draw(st.integers(0, 3))
        items = [self.int_expr(max(depth - 1, 0)) for _ in range(n)]
        trailing = "," if items and self.draw(st.booleans()) else ""
        return "[" + ", ".join(items) + trailing + "]"

    def map_expr(self, depth: int) -> str:
        maps = self.names("map")
        if maps and self.draw(st.booleans()):
            return self.choice(maps)
        n = self.draw(st.integers(0, 3))
        pairs = [f"{self.key_expr(0)}: {self.any_value(max(depth - 1, 0))}" for _ in range(n)]
        return "{" + ", ".join(pairs) + "}"

    def any_container(self, depth: int) -> str:
        make = self.choice([self.list_expr, self.str_expr, self.map_expr])
        return make(depth)

    def any_value(self, depth: int) -> str:
        which = self.draw(st.integers(0, 6))
        if which <= 2:
            return self.int_expr(depth)
        if which == 3:
            return self.str_expr(depth)
        if which == 4:
            return self.list_expr(depth)
        if which == 5:
            return self.bool_expr(depth)
        return self.choice(["nil", self.float_expr(), "range(3)", "range(1, 9, 2)"])

    # -- statements
    def block(self, depth: int, ctx: frozenset[str], count: int | None = None) -> list[str]:
        """Statements of one block (its own scope)."""
        self.scopes.append({})
        n = count if count is not None else self.draw(st.integers(1, 4))
        lines: list[str] = []
        for _ in range(n):
            lines.extend(self.stmt(depth, ctx))
        self.scopes.pop()
        return lines

    def braces(self, header: str, body: list[str]) -> list[str]:
        return [header + " {", *("    " + line for line in body), "}"]

    def stmt(self, depth: int, ctx: frozenset[str]) -> list[str]:
        kinds = ["let", "let", "assign", "assign", "print", "push", "index_store", "map_store"]
        if depth > 0:
            kinds += ["if", "if", "for", "while", "fn", "closure", "locked"]
        if "loop" in ctx:
            kinds += ["break", "continue"]
        if "fn" in ctx:
            kinds += ["return"]
        if "top" in ctx and depth > 0:
            kinds += ["spawn", "spawn"]
        kind = self.choice(kinds)
        e = self.int_expr
        if kind == "let":
            sort = self.choice(["int", "int", "list", "map", "str"])
            name = self.fresh({"int": "n", "list": "l", "map": "m", "str": "s"}[sort])
            value = {"int": e, "list": self.list_expr, "map": self.map_expr, "str": self.str_expr}[sort](2)
            self.declare(name, sort)
            return [f"let {name} = {value};"]
        if kind == "assign":
            ints = self.names("int")
            if not ints:
                return [f"print({e(2)});"]
            op = self.choice(["=", "+=", "-=", "*=", "//=", "%="])
            value = e(2) if op not in ("//=", "%=") else f"({e(1)} % 5 + 1)"
            return [f"{self.choice(ints)} {op} {value};"]
        if kind == "print":
            n = self.draw(st.integers(0, 3))
            return ["print(" + ", ".join(self.any_value(2) for _ in range(n)) + ");"]
        if kind == "push":
            lists = self.names("list")
            if not lists:
                return [f"{self.list_expr(1)};"]
            target = self.choice(lists)
            if self.draw(st.booleans()):
                return [f"push({target}, {self.any_value(1)});"]
            return [f"if len({target}) > 0 {{ pop({target}); }}"]
        if kind == "index_store":
            lists = self.names("list")
            if not lists:
                return [f"{self.map_expr(1)};"]
            target = self.choice(lists)
            op = self.choice(["=", "+="])
            return [f"if len({target}) > 0 {{ {target}[{e(1)} % len({target})] {op} {e(1)}; }}"]
        if kind == "map_store":
            maps = self.names("map")
            if not maps:
                return [f"{self.str_expr(1)};"]
            return [f"{self.choice(maps)}[{self.key_expr(1)}] = {self.any_value(1)};"]
        if kind == "if":
            lines = self.braces(f"if {self.bool_expr(2)}", self.block(depth - 1, ctx))
            if self.draw(st.booleans()):
                lines[-1] = "} else if " + self.bool_expr(1) + " {"
                lines += ["    " + line for line in self.block(depth - 1, ctx)] + ["}"]
            if self.draw(st.booleans()):
                lines[-1] = "} else {"
                lines += ["    " + line for line in self.block(depth - 1, ctx)] + ["}"]
            return lines
        if kind == "for":
            var = self.fresh("i")
            iterable = self.choice(
                [f"range({self.draw(st.integers(0, 6))})", self.list_expr(1), '"abc"', self.map_expr(1)]
            )
            self.scopes.append({var: "int" if iterable.startswith("range") else "any"})
            body = self.block(depth - 1, ctx | {"loop"})
            self.scopes.pop()
            return self.braces(f"for {var} in {iterable}", body)
        if kind == "while":
            counter = self.fresh("w")
            limit = self.draw(st.integers(0, 6))
            # The counter is not visible to the body (kind "counter"), and steps first,
            # so `continue` cannot skip it: the loop always ends.
            self.declare(counter, "counter")
            body = [f"{counter} += 1;", *self.block(depth - 1, ctx | {"loop"})]
            return [f"let {counter} = 0;", *self.braces(f"while {counter} < {limit}", body)]
        if kind == "fn":
            name = self.fresh("f")
            param = self.fresh("p")
            self.declare(name, "fn")  # visible to its own body: recursion, bounded below
            self.scopes.append({param: "int"})
            body = self.block(depth - 1, (ctx - {"loop", "top"}) | {"fn"})
            self.scopes.pop()
            # Recursion always goes down: a call with the parameter at or below 0 returns.
            guard = f"if {param} <= 0 {{ return 0; }}"
            tail = f"return {param} + {name}({param} - 1) % 3;" if self.draw(st.booleans()) else f"return {e(1)};"
            return self.braces(f"fn {name}({param})", [guard, *body, tail])
        if kind == "closure":
            name = self.fresh("c")
            param = self.fresh("p")
            self.scopes.append({param: "int"})
            body = self.block(max(depth - 2, 0), frozenset({"fn"}))
            result = e(1)
            self.scopes.pop()
            self.declare(name, "fn")
            return [f"let {name} = fn ({param}) {{", *("    " + line for line in body), f"    return {result};", "};"]
        if kind == "locked":
            locks = self.names("lock")
            if not locks:
                name = self.fresh("k")
                self.declare(name, "lock")
                return [f"let {name} = lock();"]
            lk = self.choice(locks)
            # No break/continue/return inside: they would leave the lock held.
            body = self.block(0, frozenset(c for c in ctx if c == "top"), count=self.draw(st.integers(1, 2)))
            return [f"acquire({lk});", *body, f"release({lk});"]
        if kind == "spawn":
            fns = self.names("fn")
            thread = self.fresh("t")
            if fns:
                call = f"{self.choice(fns)}({e(1)})"
            else:
                call = self.choice(["print(thread_id())", "sleep(0.001)", f"len({self.list_expr(1)})"])
            self.declare(thread, "thread")
            return [f"let {thread} = spawn {call};"]
        if kind == "break":
            return [f"if {self.bool_expr(1)} {{ break; }}"]
        if kind == "continue":
            return [f"if {self.bool_expr(1)} {{ continue; }}"]
        assert kind == "return"
        return [f"return {e(2)};"]

    def program(self) -> str:
        lines = [
            "let g_total = 0;",
            "let g_list = [1, 2, 3];",
            'let g_map = {"a": 1, "b": [2], 3: nil};',
            "let g_lock = lock();",
            'let g_text = "minivm";',
        ]
        self.scopes = [{"g_total": "int", "g_list": "list", "g_map": "map", "g_lock": "lock", "g_text": "str"}]
        for _ in range(self.draw(st.integers(1, 7))):
            lines.extend(self.stmt(self.max_depth, frozenset({"top"})))
        # Join every thread that was started; each join adds its result if it is an int.
        for thread in self.names("thread"):
            lines.append(f"let r_{thread} = join({thread});")
            lines.append(f'if type(r_{thread}) == "int" {{ g_total += r_{thread}; }}')
        lines.append("print(g_total, g_list, g_map, g_text);")
        return "\n".join(lines) + "\n"


@st.composite
def valid_programs(draw, max_depth: int = 3) -> str:
    """A syntactically valid program without compile errors, whose loops all end."""
    return _ProgramBuilder(draw, max_depth).program()


# --------------------------------------------------------------------------------------
# Mutated programs
# --------------------------------------------------------------------------------------

SEEDS = (
    'let x = 1;\nlet s = "a\\tb";\nfn f(a, b,) { return [a, b, {"k": a}]; }\nprint(f(x, s)[2]["k"]);\n',
    "fn fib(n) { if n < 2 { return n; } return fib(n - 1) + fib(n - 2); }\nprint(fib(12));\n",
    "let total = 0;\nlet guard = lock();\nfn work(n) {\n"
    "    for i in range(n) { acquire(guard); total += i; release(guard); }\n"
    "    return n;\n}\nlet ts = [];\nfor k in range(3) { push(ts, spawn work(50)); }\nfor t in ts { join(t); }\n"
    "print(total);\n",
    'let m = {};\nfor w in ["a", "b", "a"] { if has(m, w) { m[w] += 1; } else { m[w] = 1; } }\n'
    "let i = 0;\nwhile i < 5 { i += 1; if i == 2 { continue; } if i == 4 { break; } }\nprint(m, i, keys(m));\n",
    "fn make() { let n = 0; return fn () { n += 1; return n; }; }\nlet c = make();\nc(); c();\n"
    "print(c(), -1.5e3 // 2, 7 % -3, not nil or false and true);\n",
)

_INSERTIONS = (
    ";", "{", "}", "(", ")", "[", "]", ",", ".", "=", "==", "+", "-", "*", "/", "//", "%", "<", ">",
    '"', "\\", "#", "\n", "\t", " ", "\x00", "é", "let ", "fn ", "return ", "break;", "continue;",
    "if ", "else ", "while ", "for ", " in ", "spawn ", "nil", "true", "and", "not", "0", "1e999", "x",
    "999999999999999999999999", "\\q", "lock()", "join(", "\u2028", "\x0c",
)  # fmt: skip
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|\d[\d_.eE]*|//=?|[-+*/%<>=!]=|\S')


@st.composite
def mutated_programs(draw) -> bytes:
    """A valid program (generated or a seed) damaged by one to four mutations."""
    if draw(st.booleans()):
        text = draw(st.sampled_from(SEEDS))
    else:
        text = draw(valid_programs(max_depth=2))
    for _ in range(draw(st.integers(1, 4))):
        tokens = [m.span() for m in _TOKEN.finditer(text)] or [(0, 0)]
        kind = draw(st.sampled_from(["del_char", "ins", "swap_chars", "del_token", "dup_token", "swap_tokens",
                                     "replace_token", "truncate"]))  # fmt: skip
        if kind == "del_char" and text:
            i = draw(st.integers(0, len(text) - 1))
            text = text[:i] + text[i + 1 :]
        elif kind == "ins":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(_INSERTIONS)) + text[i:]
        elif kind == "swap_chars" and len(text) > 1:
            i = draw(st.integers(0, len(text) - 2))
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        elif kind in ("del_token", "dup_token", "replace_token"):
            a, b = draw(st.sampled_from(tokens))
            if kind == "del_token":
                text = text[:a] + text[b:]
            elif kind == "dup_token":
                text = text[:b] + " " + text[a:b] + text[b:]
            else:
                text = text[:a] + draw(st.sampled_from(_INSERTIONS)).strip() + text[b:]
        elif kind == "swap_tokens" and len(tokens) > 1:
            (a1, b1), (a2, b2) = sorted(draw(st.lists(st.sampled_from(tokens), min_size=2, max_size=2, unique=True)))
            if b1 <= a2:
                text = text[:a1] + text[a2:b2] + text[b1:a2] + text[a1:b1] + text[b2:]
        elif kind == "truncate" and text:
            text = text[: draw(st.integers(0, len(text) - 1))]
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:  # now and then, a byte that is not UTF-8
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x80", b"\x80"])) + data[i:]
    return data


# --------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------

_SETTINGS = settings(
    deadline=None,
    # The same programs every run, so a failure is reproducible; MINIVM_FUZZ_RANDOM=1 explores.
    derandomize=not os.environ.get("MINIVM_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.mark.timeout(600)
@settings(_SETTINGS, max_examples=VALID_EXAMPLES)
@given(program=valid_programs(), options=run_options)
def test_valid_programs_run_cleanly(program, options):
    source = program.encode("utf-8")
    result = run_bytes(source, *options)
    # Valid programs are never rejected; they end normally or with a runtime error.
    assert_well_behaved(result, source, allowed=(0, 1))
    if result.returncode == 0:
        assert result.stdout.endswith("\n"), result.stdout
        if "--policy" in options and options[options.index("--policy") + 1] != "none":
            assert result.stderr == "", result.stderr


@pytest.mark.timeout(600)
@settings(_SETTINGS, max_examples=MUTANT_EXAMPLES)
@given(source=mutated_programs(), options=run_options)
def test_mutated_programs_fail_cleanly(source, options):
    result = run_bytes(source, *options)
    assert_well_behaved(result, source, allowed=(0, 1, 2))


FEATURES = (
    "while ", "for ", "fn (", "fn f", "spawn ", "join(", "acquire(", "release(", "break;", "continue;",
    "return ", "} else {", "} else if ", "+=", '": ', "push(", "sleep(",
)  # fmt: skip


def test_generated_programs_compile_and_cover_the_language():
    """The generator itself: what it makes compiles (in-process, not run), and across a
    few hundred programs every feature the fuzzing is meant to reach does appear."""
    from minivm.frontend.compiler import compile_source

    seen: set[str] = set()

    @settings(_SETTINGS, max_examples=300)
    @given(program=valid_programs())
    def check(program):
        compile_source(program, "gen.mv")  # raises SourceError if the generator is wrong
        seen.update(feature for feature in FEATURES if feature in program)

    check()
    assert seen == set(FEATURES), set(FEATURES) - seen
