"""What the debugger shows of a stopped VM: threads, the GIL, frames, the heap, expressions.

Design note
-----------
* **Read only.** Everything here reads VM state while the world is held (see
  ``controller.py``) and changes nothing: ``print EXPR`` is evaluated by a small walk over the
  expression's tree, not by running bytecode on a guest thread, so it cannot move a program
  counter, take the GIL, allocate on the guest heap or call a guest function (calls are refused,
  except a few builtins that only look: ``len``, ``str``, ``type``, ``has``, ``int``,
  ``float``). This is Python Tutor's stance: show each step's frames and heap, never disturb.
* **Thread states** name what a thread waits for, in gdb's ``info threads`` manner: running
  (holds the GIL), waiting for the GIL, sleeping, blocked on a join or a lock (which, and who
  holds it), done.
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.bytecode.disasm import MEANING
from minivm.errors import GuestError, SourceError
from minivm.frontend import nodes as n
from minivm.frontend.parser import parse
from minivm.runtime import operations as ops
from minivm.runtime.builtins import BUILTINS
from minivm.runtime.heap import Heap, children, describe
from minivm.runtime.interpreter import FRAME_CELLS, FRAME_CODE, FRAME_LOCALS, FRAME_PC, FRAME_STACK
from minivm.runtime.threads import BLOCKED, DONE, SLEEPING, GuestLock, GuestThread
from minivm.runtime.values import UNSET, Cell, MvList, MvMap, map_key, to_repr


def instruction_text(code, pc: int) -> str:
    """``offset 3: LOAD_GLOBAL 0 (counter)`` — one instruction of ``code`` at offset ``pc``
    as ``minivm dis`` shows it (just ``offset N`` past the end)."""
    if not 0 <= pc < len(code.instructions):
        return f"offset {pc}"
    opcode, arg = code.instructions[pc]
    info = op.OPCODES[opcode]
    if info.operand is op.Operand.NONE:
        return f"offset {pc}: {info.name}"
    meaning = MEANING[info.operand](code, arg)
    return f"offset {pc}: {info.name} {arg} {meaning}".rstrip()


LOOKING_BUILTINS = frozenset(["len", "str", "type", "has", "int", "float"])
_BINARY = {
    "+": lambda a, b: ops.add(Heap(), a, b), "-": ops.sub, "*": ops.mul, "/": ops.div,
    "//": ops.floor_div, "%": ops.mod, "==": ops.equal, "!=": ops.not_equal, "<": ops.less,
    "<=": ops.less_equal, ">": ops.greater, ">=": ops.greater_equal,
}  # fmt: skip


def place(thread: GuestThread) -> str:
    """``work at demo.mv:2`` — the function and line a thread is about to run."""
    if not thread.frames:
        return "(no frame)"
    frame = thread.frames[-1]
    code = frame[FRAME_CODE]
    return f"{code.display_name} at {code.file}:{code.line_of(frame[FRAME_PC])}"


def state(thread: GuestThread) -> str:
    """The thread's state in words."""
    gil = thread.vm.gil
    if thread.state == DONE:
        return "done"
    if thread.state == BLOCKED:
        return f"blocked: {thread.waiting_for}"
    if thread.state == SLEEPING:
        return "sleeping"
    if gil.holder is thread:
        return "running (holds the GIL)"
    if thread in gil.waiters:
        return "waiting for the GIL"
    return "runnable"


def held_locks(vm) -> dict[int, list[str]]:
    """Thread id -> the locks it holds, named by the variables that reach them."""
    held: dict[int, list[str]] = {}
    for name, value in _roots(vm):
        for lock in _reachable_locks(value):
            if lock.owner is not None:
                names = held.setdefault(lock.owner.tid, [])
                if name not in names:
                    names.append(name)
    return held


def _roots(vm):
    for name, value in vm.globals.items():
        if name not in BUILTINS or BUILTINS[name] is not value:
            yield name, value
    for thread in vm.scheduler.threads:
        for frame in thread.frames:
            code = frame[FRAME_CODE]
            for name, value in zip(code.local_names, frame[FRAME_LOCALS], strict=False):
                yield name, value


def _reachable_locks(value):
    seen, todo = set(), [value]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, GuestLock):
            yield item
        elif isinstance(item, MvList | MvMap | Cell) or hasattr(item, "cells"):
            todo.extend(children(item))


def threads_text(vm, selected: int) -> list[str]:
    """One line per thread: ``* 1  running (holds the GIL)  work at demo.mv:2``."""
    locks = held_locks(vm)
    lines = []
    for thread in vm.scheduler.threads:
        mark = "*" if thread.tid == selected else " "
        holds = f", holds lock {', '.join(locks[thread.tid])}" if thread.tid in locks else ""
        where = "" if thread.state == DONE else "  " + place(thread)
        lines.append(f"{mark} {thread.tid}  {state(thread)}{holds}{where}")
    return lines


def gil_text(vm, policy) -> list[str]:
    """The GIL: holder, waiters in order, ticks left until the holder's check, the policy."""
    gil = vm.gil
    holder = gil.holder
    lines = [f"holder: {'nobody' if holder is None else f'thread {holder.tid}'}"]
    waiters = ", ".join(f"thread {t.tid}" for t in gil.waiters) or "none"
    lines.append(f"waiters (in order): {waiters}")
    if holder is not None:
        ticks = max(holder.clock.until_check, 0)
        lines.append(f"ticks left until the check: {ticks} (check interval {vm.config.check_interval})")
    how = "asking at every check (schedule manual)" if policy.asking else "fifo order until told otherwise"
    lines.append(f"policy: manual, {how}")
    if policy.pending is not None:
        lines.append(f"next check: the GIL goes to thread {policy.pending}")
    return lines


def heap_text(vm) -> list[str]:
    """Every live heap object: id, kind, reference count, value."""
    lines = []
    for oid in sorted(vm.heap.live):
        obj = vm.heap.live[oid]
        shown = to_repr(obj.value) if isinstance(obj, Cell) else to_repr(obj)
        lines.append(f"#{oid}  {describe(obj).split(' ')[0]:<8} rc={obj.rc}  {shown}")
    return lines or ["the heap is empty"]


def frame_variables(frame) -> list[tuple[str, object]]:
    """(name, value) of a frame's locals (set ones) and captured variables."""
    code = frame[FRAME_CODE]
    found: list[tuple[str, object]] = []
    for name, value in zip(code.local_names, frame[FRAME_LOCALS], strict=False):
        if isinstance(value, Cell):
            value = value.value
        if value is not UNSET and not name.startswith("<"):
            found.append((name, value))
    for name, cell in zip(code.free_names, frame[FRAME_CELLS], strict=False):
        if cell.value is not UNSET:
            found.append((name, cell.value))
    return found


def stack_text(frame) -> str:
    """The frame's value stack, bottom first."""
    return "[" + ", ".join(to_repr(v) for v in frame[FRAME_STACK]) + "]"


def evaluate(text: str, frame, vm) -> object:
    """The value of the minivm expression ``text`` in ``frame`` (its locals, captured
    variables, then the globals). Raises ``ValueError`` with a one-line reason."""
    try:
        program = parse(text.rstrip().rstrip(";") + ";", "<print>")
    except SourceError as error:
        raise ValueError(f"cannot read the expression: {error.message}") from None
    if len(program.body) != 1 or not isinstance(program.body[0], n.ExprStmt):
        raise ValueError("print takes one expression")
    scope = dict(vm.globals)
    scope.update(frame_variables(frame) if frame is not None else [])
    try:
        return _eval(program.body[0].expr, scope)
    except GuestError as error:
        raise ValueError(error.message) from None


def _eval(node: n.Node, scope: dict) -> object:
    if isinstance(node, n.Literal):
        return node.value
    if isinstance(node, n.Name):
        if node.name not in scope:
            raise GuestError(f"undefined variable '{node.name}'")
        return scope[node.name]
    if isinstance(node, n.ListLit):
        return MvList([_eval(item, scope) for item in node.items])
    if isinstance(node, n.MapLit):
        result = MvMap()
        for key, value in node.pairs:
            result[map_key(_eval(key, scope))] = _eval(value, scope)
        return result
    if isinstance(node, n.Binary):
        return _BINARY[node.op](_eval(node.left, scope), _eval(node.right, scope))
    if isinstance(node, n.Logical):
        left = _eval(node.left, scope)
        if (node.op == "and") != bool(left):
            return left
        return _eval(node.right, scope)
    if isinstance(node, n.Unary):
        value = _eval(node.operand, scope)
        return (not value) if node.op == "not" else ops.neg(value)
    if isinstance(node, n.Index):
        return ops.index(_eval(node.target, scope), _eval(node.index, scope))
    if isinstance(node, n.Call) and isinstance(node.callee, n.Name) and node.callee.name in LOOKING_BUILTINS:
        function = scope.get(node.callee.name)
        if function is BUILTINS[node.callee.name]:
            if not function.min_args <= len(node.args) <= function.max_args:
                raise GuestError(f"{function.name}() takes {function.min_args} to {function.max_args} arguments")
            return function.impl(None, [_eval(arg, scope) for arg in node.args])
    raise GuestError("print only looks: it cannot call functions, spawn or make functions")
