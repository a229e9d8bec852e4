"""Code generation: a code object's structure (``structure.Shape``) becomes the Python source
of one host function, plus a table that maps every host line back to a guest ``pc``.

The host function is ``def name(clock, budget, room, fn, l0, l1, ...)``: the running
thread's tick clock (``runtime/clock.py``; ``clock.thread`` is the thread, for the rarer
lines that need it), its tick budget (a host local from here on), how many more guest
calls the recursion limit allows, the guest function (for its captured cells) and the
arguments, which become guest locals ``l<slot>``. It returns the guest result and leaves
the budget in the clock (``clock.ticks``). Callers pass ``room - 1``; the entry only tests
it. Both choices save a line on every guest call (fib: 4-5%).

Ticks. A *block* is a run of instructions that ends at a control instruction or a call.
Every block is written in up to three copies, chosen on entry::

    if budget >= 5 and l0.__class__ is int:   # INT: the guard's locals are ints
        budget -= 5                           # the whole block is charged at once
        ...
    elif budget >= 5:                         # FAST: general code, types tested inline
        budget -= 5
        ...
    else:                                     # SLOW: the check falls inside this block
        if budget <= 0: budget = check(clock.thread, budget)
        ...
        if budget <= 3: budget = check(clock.thread, budget - 3) + 3
        ...
        budget -= 5

The slow copy calls the machine's check (``TickCheck.at_check``) before exactly the
instruction at which the interpreter would, with exactly the interpreter's tick count, so
the checks of both engines land at the same instructions. A block of one or two
instructions without int arithmetic has only its slow copy (cheaper than the test). The
control instruction itself (a branch, a call, a return) is written once, after the copies.

Each host line records the ``pc`` it belongs to and how its budget relates to the
interpreter's tick count there (``LineInfo``), so a host traceback or a host frame paused
in a check or a call can be read as the guest's own frame (``frames.py``).
"""

from __future__ import annotations

import re

from minivm.bytecode.code import CodeObject
from minivm.runtime.compiled import structure as st
from minivm.runtime.compiled.emitter import FAST, INT, SLOW, CopyEmitter
from minivm.runtime.compiled.lines import LineInfo, Writer
from minivm.runtime.compiled.regions import RegionWriter, region_guard
from minivm.runtime.compiled.sites import write_call
from minivm.runtime.compiled.stack import Entry, temp
from minivm.runtime.compiled.units import Unit, fits_region, is_call, stores_locals, units
from minivm.runtime.compiled.versions import MAX_VERSIONED, int_stable


class Generated:
    """The output of ``generate``: the source of one host function and its line table:
    ``lines[n]`` is the ``LineInfo`` of host line ``n`` (index 0 unused), ``sites`` the
    ``(pc, argument count)`` of every call site, ``constants`` the values of the constants
    not written inline, by name, and ``local_names`` the host names of the guest locals."""

    __slots__ = ("constants", "function_name", "lines", "local_names", "sites", "source")

    def __init__(
        self, function_name: str, source: str, lines: tuple, sites: tuple[tuple[int, int], ...],
        constants: dict, local_names: tuple[str, ...],
    ):  # fmt: skip
        self.function_name = function_name
        self.source = source
        self.lines = lines
        self.sites = sites
        self.constants = constants
        self.local_names = local_names


class FunctionGen:
    """Generates the host function for one code object."""

    def __init__(self, code: CodeObject, shape: st.Shape):
        self.code = code
        self.shape = shape
        self.writer = Writer()
        self.sites: list[tuple[int, int]] = []
        self.constants: dict[str, object] = {}
        self.max_indent = 0
        self.regions = True  # whether runs of blocks may become regions here
        self.known: frozenset[int] = frozenset()  # locals known to be ints (versions.py)
        self.versioned = 0  # how many type-versioned loops enclose what is being written
        # The file's own code outside its loops runs once: one copy of each block is enough
        # (the slow one, which costs a compare per instruction and keeps the host code small).
        self.once = code.name == "<main>"
        self.loops = 0  # how many loops enclose what is being written

    def info(self, pc: int, adjust: int = 0, kind: str = "code", name: str = "") -> LineInfo:
        """The ``LineInfo`` of a line written now (and keep track of how deep lines go)."""
        self.max_indent = max(self.max_indent, self.writer.indent)
        return LineInfo(pc, adjust, kind, name)

    def constant_name(self, index: int) -> str:
        """A name in the function's namespace for constant ``index`` (``K3``)."""
        name = f"K{index}"
        self.constants[name] = self.code.constants[index]
        return name

    def opcode(self, pc: int) -> int:
        """The opcode of the plain instruction at ``pc``."""
        return self.code.instructions[pc][0]

    # -- the function
    def generate(self) -> Generated:
        """The whole host function; raises ``Unsupported`` for what it cannot write."""
        code = self.code
        w = self.writer
        entry = LineInfo(0, 0, "entry")
        fname = _host_name(code)
        params = "".join(f", l{i}" for i in range(code.nparams))
        w.line(f"def {fname}(clock, budget, room, fn{params}):", entry)
        w.indent = 1
        w.line("if room < 0: raise recursion_error()", entry)
        others = [f"l{i}" for i in range(code.nparams, code.nlocals)]
        if others:
            w.line(" = ".join(others) + " = UNSET", entry)
        if code.free_names:
            cells = ", ".join(f"c{i}" for i in range(len(code.free_names)))
            w.line(f"{cells}{',' if len(code.free_names) == 1 else ''} = fn.cells", entry)
        end = self.seq(self.shape.body, [])
        if end is not None:
            raise st.Unsupported("the code does not end with a return")
        if self.max_indent > 90:
            raise st.Unsupported("nested too deeply for the host")
        return Generated(
            fname,
            "\n".join(w.lines) + "\n",
            (None, *w.infos),
            tuple(dict.fromkeys(self.sites)),
            dict(self.constants),
            tuple(f"l{i}" for i in range(code.nlocals)),
        )

    # -- sequences and blocks
    def seq(self, nodes: tuple, stack: list[Entry] | None) -> list[Entry] | None:
        """Write ``nodes``; returns the simulated stack after them, None if flow ended.
        Runs of units that fit a region share one budget test (``regions``)."""
        run = units(self.code, nodes)
        i = 0
        while i < len(run):
            if stack is None:
                raise st.Unsupported("reachable code after the end of the flow")
            j = i
            regions = self.regions and (self.loops or not self.once)
            while regions and j < len(run) and fits_region(self.code, run[j]):
                j += 1
                if is_call(self.code, run[j - 1].control):
                    break
            if j - i >= 2:
                stack = self.region(run[i:j], stack)
                i = j
            else:
                stack = self.unit(run[i], stack)
                i += 1
        return stack

    def unit(self, unit: Unit, stack: list[Entry]) -> list[Entry] | None:
        """One block, each instruction charged on its own, then its control."""
        control = unit.control
        if isinstance(control, st.Loop):
            return self.loop(control, stack)
        if unit.pcs:
            stack = self.block(unit.pcs, stack)
        if control is None:
            return stack
        if is_call(self.code, control):
            return self.call(control.pc, stack)
        return self.control(control, stack)

    def region(self, run: list[Unit], stack: list[Entry]) -> list[Entry] | None:
        """Several blocks with one budget test; else the same blocks one by one."""
        w = self.writer
        guard = region_guard(self, run, stack)
        writer = RegionWriter(self, run, INT if guard else FAST, guard)
        tests = "".join(f" and l{slot}.__class__ is int" for slot in sorted(guard))
        head = self.info(run[0].pcs[0] if run[0].pcs else 0)
        w.line(f"if budget >= {writer.total}{tests}:", head)
        w.indent += 1
        w.line(f"budget -= {writer.total}", head)
        fast = writer.write(stack)
        w.indent -= 1
        w.line("else:", head)
        w.indent += 1
        self.regions = False  # a region holds no loop: nothing inside needs one of its own
        normal: list[Entry] | None = stack
        for unit in run:
            if normal is None:
                raise st.Unsupported("reachable code after the end of the flow")
            normal = self.unit(unit, normal)
        self.regions = True
        w.indent -= 1
        if (fast is None) != (normal is None) or (
            fast is not None and not all(a.same(b) for a, b in zip(fast, normal, strict=True))  # type: ignore[arg-type]
        ):
            raise AssertionError(f"a region's two ways disagree at {run[0].pcs}: {fast} / {normal}")
        return None if normal is None else _untyped(normal)

    def block(self, pcs: list[int], stack: list[Entry]) -> list[Entry]:
        """Write the copies of one block; returns the stack after it (before its control)."""
        n = len(pcs)
        w = self.writer
        if self.once and not self.loops:
            return _untyped(self.copy(SLOW, pcs, stack, frozenset(), alone=True))
        guard = self.find_guard(pcs, stack)
        if not guard and n <= 2:
            return _untyped(self.copy(SLOW, pcs, stack, guard, alone=True))
        head = self.info(pcs[0])
        results = []
        if guard:
            tests = " and ".join(f"l{slot}.__class__ is int" for slot in sorted(guard))
            w.line(f"if budget >= {n} and {tests}:", head)
            results.append(self.copy(INT, pcs, stack, guard))
            w.line(f"elif budget >= {n}:", head)
        else:
            w.line(f"if budget >= {n}:", head)
        results.append(self.copy(FAST, pcs, stack, guard))
        w.line("else:", head)
        results.append(self.copy(SLOW, pcs, stack, guard))
        first = results[0]
        for other in results[1:]:
            if len(other) != len(first) or not all(a.same(b) for a, b in zip(first, other, strict=True)):
                raise AssertionError(f"copies of the block at {pcs[0]} disagree: {first} / {other}")
        return _untyped(first)

    def find_guard(self, pcs: list[int], stack: list[Entry]) -> frozenset[int]:
        """The locals whose being ints lets the block compute int arithmetic directly."""
        mark = self.writer.mark()
        trial = CopyEmitter(self, INT, stack, pcs, frozenset(range(self.code.nlocals)) - self.known)
        for i, pc in enumerate(pcs):
            trial.index = i
            trial.instruction(pc)
        self.writer.truncate(mark)
        return frozenset(trial.used_guards)

    def copy(
        self, mode: str, pcs: list[int], stack: list[Entry], guard: frozenset[int], alone: bool = False
    ) -> list[Entry]:
        """One copy (INT, FAST or SLOW) of the block ``pcs``; returns its stack at the end.
        A slow copy ``alone`` (no fast copy before it) is written unindented."""
        w = self.writer
        n = len(pcs)
        fast = mode != SLOW
        wrapped = not alone
        w.indent += wrapped
        emitter = CopyEmitter(self, mode, stack, pcs, guard if mode == INT else frozenset())
        if fast:
            w.line(f"budget -= {n}", self.info(pcs[0], n))
        for i, pc in enumerate(pcs):
            emitter.index = i
            if not fast:
                self.check_line(emitter, i)
            emitter.instruction(pc)
        result = emitter.canonical()
        if not fast:
            w.line(f"budget -= {n}", self.info(pcs[-1], n))
        w.indent -= wrapped
        return result

    def check_line(self, emitter: CopyEmitter, i: int) -> None:
        """In a slow copy, before instruction ``i``: the check, if the budget runs out here."""
        pc = emitter.pcs[i]
        if i == 0:
            text = "if budget <= 0: budget = check(clock.thread, budget)"
        else:
            text = f"if budget <= {i}: budget = check(clock.thread, budget - {i}) + {i}"
        info = LineInfo(pc, -i, "check", "", emitter.live_temps(), pc)
        self.max_indent = max(self.max_indent, self.writer.indent)
        self.writer.line(text, info)

    # -- control
    def control(self, node, stack: list[Entry]) -> list[Entry] | None:
        """Write what a block's control instruction does, after the block's copies."""
        w = self.writer
        info = self.info(node.pc)
        if isinstance(node, st.Goto):
            return stack
        if isinstance(node, st.Return):
            w.line("clock.ticks = budget", info)
            w.line(f"return {stack[-1].expr}", info)
            return None
        if isinstance(node, st.Continue):
            w.line("continue", info)
            return None
        if isinstance(node, st.Break):
            self.leave(node.pops, stack)
            return None
        if isinstance(node, st.ExitIf):
            cond = stack.pop()
            w.line(f"if not {cond.expr}:", info)
            self.nested(lambda: self.leave(node.pops, stack))
            return stack
        if isinstance(node, st.If):
            return self.if_(node, stack)
        if isinstance(node, st.AndOr):
            return self.and_or(node, stack)
        raise AssertionError(f"unknown node {node}")

    def nested(self, write) -> object:
        """Run ``write`` one level deeper; an empty body gets a ``pass``."""
        w = self.writer
        w.indent += 1
        mark = w.mark()
        result = write()
        if w.mark() == mark:
            w.line("pass", self.info(0))
        w.indent -= 1
        return result

    def leave(self, pops: tuple[int, ...], stack: list[Entry]) -> None:
        """``break``, after the ``for`` loop's two ``POP`` (charged like any block)."""
        if pops:
            self.block(list(pops), stack)
        self.writer.line("break", self.info(pops[-1] if pops else 0))

    def materialize_locals(self, stack: list[Entry], pc: int) -> list[Entry]:
        """Before flow that branches or loops: locals on the stack are copied to their slots
        (a branch might assign the local, and both paths must agree where values are)."""
        result = []
        for position, entry in enumerate(stack):
            if entry.kind == "local" or (entry.kind == "temp" and entry.expr != f"s{position}"):
                self.writer.line(f"s{position} = {entry.expr}", self.info(pc))
                entry = temp(position)
            result.append(entry)
        return result

    def if_(self, node: st.If, stack: list[Entry]) -> list[Entry] | None:
        """``if``/``else`` after its test block: both branches must leave the same stack."""
        w = self.writer
        cond = stack.pop()
        stack = self.materialize_locals(stack, node.pc)
        w.line(f"if {cond.expr}:", self.info(node.pc))
        ends = [self.nested(lambda: self.seq(node.then, list(stack)))]
        if node.orelse:
            w.line("else:", self.info(node.pc))
            ends.append(self.nested(lambda: self.seq(node.orelse, list(stack))))
        else:
            ends.append(stack)
        live = [end for end in ends if end is not None]
        if not live:
            return None
        for end in live:
            if len(end) != len(stack) or not all(a.same(b) for a, b in zip(end, stack, strict=True)):
                raise st.Unsupported(f"the branches at {node.pc} leave different stacks")
        return stack

    def and_or(self, node: st.AndOr, stack: list[Entry]) -> list[Entry]:
        """``and``/``or``: the deciding operand stays in ``s<depth>`` unless the right one runs."""
        w = self.writer
        position = len(stack) - 1
        below = stack[:position]
        if stores_locals(self.code, node.right):
            below = self.materialize_locals(below, node.pc)
        top = stack[position]
        target = f"s{position}"
        if not (top.kind == "temp" and top.expr == target):
            w.line(f"{target} = {top.expr}", self.info(node.pc))
        w.line(f"if {target}:" if node.is_and else f"if not {target}:", self.info(node.pc))

        def right() -> None:
            """The right operand, its value left in ``s<depth>``."""
            end = self.seq(node.right, list(below))
            if end is None or len(end) != position + 1:
                raise st.Unsupported(f"the right operand at {node.pc} does not leave one value")
            if not (end[-1].kind == "temp" and end[-1].expr == target):
                w.line(f"{target} = {end[-1].expr}", self.info(node.pc))

        self.nested(right)
        return [*below, temp(position)]

    def loop(self, node: st.Loop, stack: list[Entry]) -> list[Entry]:
        """A loop, in two versions when some of its locals stay ints (``versions``)."""
        stack = self.materialize_locals(stack, node.top)
        stable = int_stable(self, node) if self.versioned < MAX_VERSIONED else frozenset()
        if not stable:
            return self.plain_loop(node, stack)
        w = self.writer
        tests = " and ".join(f"l{slot}.__class__ is int" for slot in sorted(stable))
        w.line(f"if {tests}:", self.info(node.top))
        known, self.known = self.known, self.known | stable
        self.versioned += 1
        ends = [self.nested(lambda: self.plain_loop(node, list(stack)))]
        self.known = known
        w.line("else:", self.info(node.top))
        ends.append(self.nested(lambda: self.plain_loop(node, list(stack))))
        self.versioned -= 1
        if not all(a.same(b) for a, b in zip(ends[0], ends[1], strict=True)):
            raise AssertionError(f"the versions of the loop at {node.top} disagree")
        return _untyped(ends[1])

    def plain_loop(self, node: st.Loop, stack: list[Entry]) -> list[Entry]:
        """A ``while True`` for a ``while`` loop; the host's ``for`` for a ``for`` loop."""
        self.loops += 1
        try:
            if not node.for_iter:
                self.writer.line("while True:", self.info(node.top))
                self.nested(lambda: self.seq(node.body, list(stack)))
                return stack
            # A for loop: its first FOR_ITER is charged here, the others with what jumps back.
            stack = self.block([node.top], stack)
            position = len(stack)
            self.writer.line(f"for s{position} in {stack[-1].expr}:", self.info(node.top))
            self.nested(lambda: self.seq(node.body, [*stack, temp(position)]))
            return stack[:-2]
        finally:
            self.loops -= 1

    def call(self, pc: int, stack: list[Entry]) -> list[Entry]:
        """A guest call, after its block (``sites``)."""
        return write_call(self, pc, stack)


def _untyped(stack: list[Entry]) -> list[Entry]:
    return [entry.untyped() for entry in stack]


def _host_name(code: CodeObject) -> str:
    if code.name == "<main>":
        return "main"
    name = re.sub(r"\W", "_", code.name)
    return f"fn_{name}" if name else "fn_anonymous"


def generate(code: CodeObject) -> Generated:
    """The host source for ``code``; raises ``structure.Unsupported`` if it cannot be made."""
    return FunctionGen(code, st.read_shape(code)).generate()
