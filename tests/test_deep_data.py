"""Deep guest data behaves the same in every guest thread.

Printing (``print``, ``str``), ``==`` and ``!=`` walk nested lists and maps; the heap's
reclaim and audit walk every object. None of these may use the host's stack in proportion
to the depth of the data: a guest thread runs on an OS thread with the host's default stack
(8 MiB on Linux, far less elsewhere), and a walk that recursed on it crashed the whole
process (a segmentation fault, exit 139) where the main thread printed normally.

* Every walk works up to ``MAX_DATA_DEPTH`` nested containers, and one level deeper it is
  the guest error ``maximum recursion depth exceeded (structure too deeply nested)``, in
  the main thread, in the 2nd and in the 10th spawned thread alike; never a signal, never a
  Python traceback.
* Ordering (``<``) and map keys never walk: lists are not ordered and not keys, whatever
  their depth.
* The heap's reclaim and audit handle any depth (they walk the table of live objects).
* The walks need no host stack at all: they run on a thread with a 128 KiB stack, and whole
  programs run with every OS thread's default stack cut to 256 KiB (as on hosts whose
  default thread stack is small).
* The iterative walks print and compare exactly as a plain recursive walk does.

Every test that starts guest threads carries a timeout.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from golden import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from minivm.errors import GuestError
from minivm.runtime.heap import Heap
from minivm.runtime.values import (
    MAX_DATA_DEPTH,
    MvList,
    MvMap,
    map_key,
    to_repr,
    to_str,
    values_equal,
)

TOO_DEEP = "maximum recursion depth exceeded (structure too deeply nested)"
DEPTHS = (1_000, 20_000, MAX_DATA_DEPTH)  # 100,000: the deepest that still prints
CONTEXTS = ("main", "spawned")  # the main thread; spawned threads 2 and 10

# --------------------------------------------------------------------------------------
# Running guest programs
# --------------------------------------------------------------------------------------

# Guest helpers. nest(levels, leaf): `levels` lists inside each other, the innermost holding
# `leaf`; nest_map(levels): the same with maps (a quoted string at the bottom); loop(levels):
# nest(levels, 0) whose innermost list also holds the outermost one.
PRELUDE = """\
fn nest(levels, leaf) { let x = [leaf]; for i in range(levels - 1) { x = [x, i]; } return x; }
fn nest_map(levels) {
    let x = {"leaf": "a\\"b"};
    for i in range(levels - 1) { x = {"in": x, "i": i}; }
    return x;
}
fn loop(levels) {
    let x = nest(levels, 0);
    let inner = x;
    for i in range(levels - 1) { inner = inner[0]; }
    push(inner, x);
    return x;
}
fn idle() { return nil; }
"""


def in_context(context: str, setup: str, walk: str) -> str:
    """A program that runs ``setup`` (statements at top level: the data is built once, in
    the main thread), then ``walk`` in the main thread, or in spawned threads 2 and 10
    (threads 1 and 3 to 9 start and end in between). The spawned ones are not joined: each
    reports its own error, and the others run on."""
    program = PRELUDE + setup + "\nfn work() {\n" + walk + "\nreturn nil;\n}\n"
    if context == "main":
        return program + "work();\n"
    return program + "join(spawn idle());\nspawn work();\nfor k in range(7) { join(spawn idle()); }\nspawn work();\n"


def run_program(source: str, *options: str, stack_kib: int | None = None, timeout: float = 280):
    """``minivm run OPTIONS -c SOURCE`` in a fresh interpreter. ``stack_kib`` caps the
    process's stack limit, which is also the default stack of every OS thread it starts."""
    preexec = None
    if stack_kib is not None:
        import resource

        def preexec() -> None:
            limit = stack_kib * 1024
            resource.setrlimit(resource.RLIMIT_STACK, (limit, limit))

    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "minivm", "run", *options, "-c", source],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout, preexec_fn=preexec,
    )  # fmt: skip


def assert_ended_cleanly(result: subprocess.CompletedProcess, status: int) -> None:
    """Exit ``status`` (never a signal) and no host traceback or internal error."""
    assert result.returncode >= 0, f"killed by signal {-result.returncode}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "internal error" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == status, (result.returncode, result.stderr[-3000:])


def assert_guest_error(result: subprocess.CompletedProcess, context: str, message: str) -> None:
    """Exit 1 with ``message`` reported by the thread, or each of the threads, of ``context``."""
    assert_ended_cleanly(result, 1)
    for tid in (0,) if context == "main" else (2, 10):
        assert f"error in thread {tid}: {message}\n" in result.stderr, result.stderr[-3000:]


# Expected text, computed by the host.


def nest_text(levels: int, leaf: str = "0") -> str:
    return "[" * (levels - 1) + f"[{leaf}]" + "".join(f", {i}]" for i in range(levels - 1))


def nest_map_text(levels: int) -> str:
    return '{"in": ' * (levels - 1) + '{"leaf": "a\\"b"}' + "".join(f', "i": {i}}}' for i in range(levels - 1))


# --------------------------------------------------------------------------------------
# Up to the limit: every walk works, in every thread, with the heap audited
# --------------------------------------------------------------------------------------

EVERY_WALK_SETUP = """\
let x = nest(LEVELS, 0);
let y = nest(LEVELS, 0);
let z = nest(LEVELS, 1);
let m = nest_map(LEVELS);
let n = nest_map(LEVELS);
let s = loop(LEVELS);
"""
EVERY_WALK = """\
print(thread_id(), len(str(x)), x == y, x != y, x == z, x != z, m == n, m != n, s == s, [x] == [x]);
print(x);
print(m);
print(s);
let garbage = nest(LEVELS, 2);
"""


def expected_every_walk(tid: int, levels: int) -> list[str]:
    return [
        f"{tid} {len(nest_text(levels))} true false false true true false true true",
        nest_text(levels),
        nest_map_text(levels),
        nest_text(levels, "0, [...]"),
    ]


def every_walk_in_every_context(levels: int) -> str:
    """EVERY_WALK in the main thread, then in spawned threads 2 and 10; then the data is
    dropped, for the reclaim at the end."""
    return (
        PRELUDE + EVERY_WALK_SETUP.replace("LEVELS", str(levels))
        + "fn work() {\n" + EVERY_WALK.replace("LEVELS", str(levels)) + "return nil;\n}\n"
        "work();\n"
        "join(spawn idle());\njoin(spawn work());\n"
        "for k in range(7) { join(spawn idle()); }\njoin(spawn work());\n"
        "x = nil; y = nil; z = nil; m = nil; n = nil; s = nil;\n"
    )  # fmt: skip


@pytest.mark.timeout(600)
@pytest.mark.parametrize("levels", DEPTHS)
def test_every_walk_works_up_to_the_limit_in_every_thread(levels):
    # Each thread also makes garbage as deep: reclaims during the run (every 20,000
    # allocations) and at its end free it, and the audit recounts what is left (the
    # self-containing lists, which counting cannot free).
    result = run_program(every_walk_in_every_context(levels), "--heap-check", timeout=580)
    assert_ended_cleanly(result, 0)
    lines = result.stdout.split("\n")
    expected = [line for tid in (0, 2, 10) for line in expected_every_walk(tid, levels)]
    assert lines[:-1] == expected, [line[:200] for line in lines]
    assert lines[-1] == ""
    assert "heap audit: ok (" in result.stderr, result.stderr[-3000:]


SMALL_STACK_KIB = 256


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="there the default thread stack is the rlimit")
@pytest.mark.timeout(600)
def test_walks_work_and_fail_the_same_with_small_thread_stacks():
    # Every OS thread the run starts at the default size gets 256 KiB (the main guest
    # thread too), as on hosts whose default thread stack is small; the walks need none of it.
    levels = MAX_DATA_DEPTH
    setup = f"let x = nest({levels}, 0);\nlet y = nest({levels}, 0);\nlet s = loop({levels});\n"
    walk = "print(thread_id(), len(str(x)), x == y, x != y, s == s);\nprint(s);\nprint(len(str([x])));"
    result = run_program(in_context("main", setup, walk), stack_kib=SMALL_STACK_KIB, timeout=580)
    assert_guest_error(result, "main", TOO_DEEP)
    line = f"{len(nest_text(levels))} true false true"
    loop_text = nest_text(levels, "0, [...]")
    assert result.stdout.split("\n") == [f"0 {line}", loop_text, ""]

    result = run_program(in_context("spawned", setup, walk), stack_kib=SMALL_STACK_KIB, timeout=580)
    assert_guest_error(result, "spawned", TOO_DEEP)
    assert sorted(result.stdout.split("\n")) == sorted(["", f"2 {line}", loop_text, f"10 {line}", loop_text])


# --------------------------------------------------------------------------------------
# One level past the limit: the same clean error in every thread
# --------------------------------------------------------------------------------------

PAST_THE_LIMIT = {  # name: (setup, walk)
    "str": ("let x = nest(LEVELS, 0);", "print(len(str(x)));"),
    "print": ("let x = nest(LEVELS, 0);", "print(x);"),
    "equal": ("let x = nest(LEVELS, 0);\nlet y = nest(LEVELS, 0);", "print(x == y);"),
    "not_equal": ("let x = nest(LEVELS, 0);\nlet y = nest(LEVELS, 0);", "print(x != y);"),
    "map_str": ("let m = nest_map(LEVELS);", "print(len(str(m)));"),
    "map_equal": ("let m = nest_map(LEVELS);\nlet n = nest_map(LEVELS);", "print(m == n);"),
    "assert_message": ("let x = nest(LEVELS, 0);", "assert(false, x);"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("walk", list(PAST_THE_LIMIT))
def test_one_level_past_the_limit_is_a_clean_error_in_every_thread(walk, context):
    setup, statement = PAST_THE_LIMIT[walk]
    result = run_program(in_context(context, setup.replace("LEVELS", str(MAX_DATA_DEPTH + 1)), statement))
    assert_guest_error(result, context, TOO_DEEP)
    assert result.stdout == ""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("levels", (1, *DEPTHS))
def test_comparing_self_containing_structures_is_a_clean_error_in_every_thread(levels, context):
    # Two lists that contain themselves (at the bottom of `levels` levels) are equal all
    # the way down: the comparison goes deeper and deeper until the limit stops it.
    setup = f"let a = loop({levels});\nlet b = loop({levels});"
    result = run_program(in_context(context, setup, "print(a == a);\nprint(a == b);"))
    assert_guest_error(result, context, TOO_DEEP)
    assert result.stdout == ("true\n" if context == "main" else "true\ntrue\n")


# --------------------------------------------------------------------------------------
# Walks that never happen: lists are not ordered and are not map keys
# --------------------------------------------------------------------------------------

NEVER_WALK = {
    "less": ("print(x < x);", "unsupported operand types for <: list and list"),
    "map_store": ("let m = {};\nm[x] = 1;", "invalid map key: list (keys are nil, bools, ints and strings)"),
    "map_has": ("print(has({}, x));", "invalid map key: list (keys are nil, bools, ints and strings)"),
    "map_index": ('print({"k": 1}[x]);', "invalid map key: list (keys are nil, bools, ints and strings)"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("levels", DEPTHS)
@pytest.mark.parametrize("operation", list(NEVER_WALK))
def test_ordering_and_map_keys_reject_deep_lists_at_once(operation, levels, context):
    statement, message = NEVER_WALK[operation]
    result = run_program(in_context(context, f"let x = nest({levels}, 0);", statement))
    assert_guest_error(result, context, message)


# --------------------------------------------------------------------------------------
# The walks themselves, in process
# --------------------------------------------------------------------------------------


def nest(levels: int, leaf: object = 0) -> MvList:
    x = MvList([leaf])
    for i in range(levels - 1):
        x = MvList([x, i])
    return x


def on_small_stack(function, stack_bytes: int = 128 * 1024):
    """Run ``function`` on a thread with a ``stack_bytes`` stack; return (or raise) its
    result. A walk that recursed on the host would crash the process here."""
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    old = threading.stack_size()
    threading.stack_size(stack_bytes)
    try:
        worker = threading.Thread(target=body)
        worker.start()
    finally:
        threading.stack_size(old)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


def in_child_on_small_stack(name: str) -> object:
    """The result of this module's function ``name``, run by ``on_small_stack`` in a child
    process (so that a walk that crashed the host fails one test, not the whole session)."""
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        f"import test_deep_data as t\nprint(repr(t.on_small_stack(t.{name})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=110)
    assert_ended_cleanly(result, 0)
    return ast.literal_eval(result.stdout)


def walks_at_the_limit() -> tuple[int, bool, bool]:
    x, y, z = nest(MAX_DATA_DEPTH), nest(MAX_DATA_DEPTH), nest(MAX_DATA_DEPTH, 1)
    return len(to_str(x)), values_equal(x, y), values_equal(x, z)


def walks_past_the_limit() -> list[str]:
    x, y = nest(MAX_DATA_DEPTH + 1), nest(MAX_DATA_DEPTH + 1)
    messages = []
    for walk in (lambda: to_str(x), lambda: to_repr(x), lambda: values_equal(x, y)):
        try:
            walk()
        except GuestError as error:
            messages.append(error.message)
    return messages


def heap_walks() -> tuple[int, int, bool]:
    heap = Heap()
    top = heap.new_list([0])
    for i in range(2 * MAX_DATA_DEPTH):  # no limit: these walks go over the live table
        top = heap.new_list([top, i])
    loop = heap.new_list([0])  # a deep cycle, which counting can never free
    inner = loop
    for _ in range(MAX_DATA_DEPTH):
        inner = heap.new_list([inner])
    loop.append(inner)
    heap.incref(inner)
    before = heap.audit([])
    freed = heap.reclaim([loop])  # everything but the cycle was garbage
    return freed, len(heap.live), before.ok and heap.audit([]).ok


@pytest.mark.timeout(120)
def test_walks_at_the_limit_need_no_host_stack():
    assert in_child_on_small_stack("walks_at_the_limit") == (len(nest_text(MAX_DATA_DEPTH)), True, False)


@pytest.mark.timeout(120)
def test_one_level_past_the_limit_raises_the_guest_error():
    assert in_child_on_small_stack("walks_past_the_limit") == [TOO_DEEP] * 3


@pytest.mark.timeout(120)
def test_reclaim_and_audit_of_deep_data_need_no_host_stack():
    live = MAX_DATA_DEPTH + 1
    assert in_child_on_small_stack("heap_walks") == (2 * MAX_DATA_DEPTH + 1, live, True)


def test_the_limit_counts_lists_and_maps_alike():
    mixed: object = MvList([0])
    for i in range(MAX_DATA_DEPTH - 1):  # maps and lists in turn around a list: the limit
        if i % 2:
            mixed = MvList([mixed])
        else:
            wrapper = MvMap()
            wrapper[map_key("in")] = mixed
            mixed = wrapper
    kinds = ["{" if i % 2 == 0 else "[" for i in range(MAX_DATA_DEPTH - 1)]
    opening = "".join('{"in": ' if kind == "{" else "[" for kind in reversed(kinds))
    closing = "".join("}" if kind == "{" else "]" for kind in kinds)
    assert to_str(mixed) == opening + "[0]" + closing
    assert values_equal(mixed, mixed) and values_equal(MvList([mixed]), MvList([mixed]))
    deeper = MvList([mixed])
    other = MvList([MvList([mixed])[0]])
    with pytest.raises(GuestError, match="structure too deeply nested"):
        to_str(deeper)
    assert values_equal(deeper, other)  # the same object below the top: no need to go deeper


# --------------------------------------------------------------------------------------
# The iterative walks agree with a plain recursive walk
# --------------------------------------------------------------------------------------


def reference_repr(value: object, seen: frozenset[int] = frozenset()) -> str:
    """Printing as a recursive walk does it (the walk minivm had before)."""
    cls = value.__class__
    if cls is str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
    if cls is MvList or cls is MvMap:
        if id(value) in seen:
            return "[...]" if cls is MvList else "{...}"
        inner = seen | {id(value)}
        if cls is MvList:
            return "[" + ", ".join(reference_repr(v, inner) for v in value) + "]"
        pairs = (f"{reference_repr(getattr(k, 'value', k))}: {reference_repr(v, inner)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return to_repr(value)


def reference_equal(a: object, b: object) -> bool:
    """``==`` as a recursive walk does it (RecursionError where it would not end)."""
    ca, cb = a.__class__, b.__class__
    if ca is not cb:
        return ca in (int, float) and cb in (int, float) and a == b
    if ca is MvList:
        return a is b or (len(a) == len(b) and all(reference_equal(x, y) for x, y in zip(a, b, strict=True)))
    if ca is MvMap:
        return a is b or (len(a) == len(b) and all(k in b and reference_equal(v, b[k]) for k, v in a.items()))
    return a == b


ATOMS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.0, 2.5, float("nan"), 1e300]),
    st.text(alphabet='ab"\\\n\té', max_size=4),
)  # fmt: skip
KEYS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.text(alphabet='k"\\', max_size=2))


@st.composite
def guest_values(draw) -> tuple[object, object]:
    """Two nested guest values that may share containers and contain themselves."""
    made: list[object] = []

    def value(depth: int) -> object:
        kind = draw(st.sampled_from(["atom", "atom", "list", "map", "shared"] if depth else ["atom", "shared"]))
        if kind == "shared" and made:
            return draw(st.sampled_from(made))
        if kind == "list":
            result = MvList()
            made.append(result)
            for _ in range(draw(st.integers(0, 3))):
                result.append(value(depth - 1))
            return result
        if kind == "map":
            result = MvMap()
            made.append(result)
            for _ in range(draw(st.integers(0, 3))):
                result[map_key(draw(KEYS))] = value(depth - 1)
            return result
        return draw(ATOMS)

    first = value(4)
    second = first if draw(st.booleans()) and draw(st.booleans()) else value(4)
    return first, second


def outcome(walk) -> object:
    try:
        return walk()
    except (RecursionError, GuestError):
        return "too deep"


@settings(max_examples=300, deadline=None)
@given(guest_values())
def test_iterative_walks_agree_with_recursive_ones(pair):
    a, b = pair
    for value in (a, b):
        assert to_repr(value) == reference_repr(value)
        assert to_str(value) == (value if value.__class__ is str else reference_repr(value))
    assert outcome(lambda: values_equal(a, b)) == outcome(lambda: reference_equal(a, b))
    assert outcome(lambda: values_equal(b, a)) == outcome(lambda: reference_equal(b, a))


def test_printing_is_unchanged_for_self_references_and_escapes():
    a = MvList([1, "x\n\"y\\"])
    a.append(a)
    m = MvMap()
    m[map_key(True)] = a
    m[map_key("k")] = m
    m[map_key(None)] = MvList([m, a])
    assert to_str(a) == '[1, "x\\n\\"y\\\\", [...]]'
    assert to_str(m) == '{true: [1, "x\\n\\"y\\\\", [...]], "k": {...}, nil: [{...}, [1, "x\\n\\"y\\\\", [...]]]}'


# --------------------------------------------------------------------------------------
# The compiler's room is its own
# --------------------------------------------------------------------------------------


def test_only_the_compiler_runs_with_a_raised_host_recursion_limit():
    from minivm.frontend import room

    before = sys.getrecursionlimit()
    assert room.with_big_stack(sys.getrecursionlimit) == max(before, room.COMPILE_RECURSION_LIMIT)
    assert sys.getrecursionlimit() == before


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "source",
    ["let l = " + "[" * 15_000 + "1" + "]" * 15_000 + ";",
     "let f = " + "fn () { return " * 3_000 + "1" + "; }" * 3_000 + ";"],
    ids=["lists", "functions"],
)  # fmt: skip
def test_nesting_beyond_what_a_small_compile_stack_affords_is_a_syntax_error(monkeypatch, source):
    # Under `ulimit -v` the compiler falls back to a 64 MB or 16 MB stack with a recursion
    # limit scaled to it, but the nesting limit stayed at 20,000 levels: 15,000 nested lists
    # ended in "minivm internal error: maximum recursion depth exceeded".
    from minivm.errors import SourceError
    from minivm.frontend import room
    from minivm.frontend.parser import FRAMES_PER_LEVEL

    monkeypatch.setattr(room, "COMPILE_RECURSION_LIMIT", 8_000)  # as a 20 MB stack gets
    limit = max(sys.getrecursionlimit(), 8_000) // FRAMES_PER_LEVEL
    with pytest.raises(SourceError, match=rf"^nesting too deep \(more than {limit} levels"):
        room.compile_with_room(source, "deep.mv")
