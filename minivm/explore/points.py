"""Switch points: the instructions before which another thread's turn can change an outcome.

Design note
-----------
Exploring every instruction boundary would multiply the schedules by the length of every
run of thread-local work, for nothing: a switch before ``LOAD_LOCAL`` or ``ADD`` cannot be
told apart from a switch a few instructions later. Only instructions that touch state
another thread can see (CHESS's "synchronisation and shared-variable accesses", Loom's
atomic operations) are switch points:

* globals that are both written somewhere (``STORE_GLOBAL``/``DEFINE_GLOBAL``) and named in
  a function (code that may run on a spawned thread). A name only the file's own top-level
  code uses lives on the main thread alone; a name nobody writes (a builtin) never changes;
* cells (``LOAD_CELL``, ``STORE_CELL``, ``LOAD_FREE``, ``STORE_FREE``): closures share them;
* containers: ``INDEX``, ``STORE_INDEX``, ``GET_ITER`` of a list or map, and ``FOR_ITER``
  unless its iterator is private (a range's, a string's);
* ``SPAWN``, and a ``CALL`` of a builtin that reads or writes shared state or blocks:
  ``print`` (the output is shared), ``push``, ``pop``, ``len``, ``keys``, ``has``, ``str``,
  ``acquire``, ``release``, ``join``, ``sleep``, ``time``.

Blocking and ending are decision points by themselves (the controlled policy asks whom to
run next). The table is computed once per code object (``SwitchPoints.table``); the dynamic
part (which callee a ``CALL`` has, which iterator a ``FOR_ITER`` has) is read off the value
stack when the thread reaches the instruction.
"""

from __future__ import annotations

from minivm.bytecode import opcodes as op
from minivm.bytecode.code import CodeObject
from minivm.runtime.interpreter import FRAME_CODE, FRAME_PC, FRAME_STACK
from minivm.runtime.values import Builtin, MvList, MvMap

# Builtins that touch nothing another thread can see.
PURE_BUILTINS = frozenset({"int", "float", "type", "range", "thread_id", "lock", "set_priority", "assert"})
_ALWAYS = frozenset({op.LOAD_CELL, op.STORE_CELL, op.LOAD_FREE, op.STORE_FREE, op.INDEX, op.STORE_INDEX, op.SPAWN})
_GLOBAL = frozenset({op.LOAD_GLOBAL, op.STORE_GLOBAL, op.DEFINE_GLOBAL})
_PRIVATE_ITERATORS = (type(iter(range(1))), type(iter(range(1 << 70))), type(iter("")))
STATIC, CALL, ITER, CONTAINER = 1, 2, 3, 4


def _all_code(root: CodeObject) -> list[CodeObject]:
    out, todo = [], [root]
    while todo:
        code = todo.pop()
        out.append(code)
        todo.extend(code.nested())
    return out


class SwitchPoints:
    """Which instructions of a program are switch points. ``is_point(thread)``: is the
    instruction ``thread`` is about to run one (see the module's note)?"""

    def __init__(self, program: CodeObject):
        codes = _all_code(program)
        written: set[str] = set()
        in_functions: set[str] = set()
        for code in codes:
            for opcode, arg in code.instructions:
                if opcode in _GLOBAL:
                    name = code.names[arg]
                    if opcode != op.LOAD_GLOBAL:
                        written.add(name)
                    if code is not program:
                        in_functions.add(name)
        self.shared_globals = frozenset(written & in_functions)
        self._tables: dict[int, tuple[CodeObject, tuple[int, ...]]] = {}
        for code in codes:
            self.table(code)

    def table(self, code: CodeObject) -> tuple[int, ...]:
        """Per instruction of ``code``: 0 (never a switch point), STATIC (always), CALL (if
        the callee is an impure builtin), ITER (if the iterator is not private) or CONTAINER
        (if the value iterated is a list or map)."""
        entry = self._tables.get(id(code))
        if entry is not None and entry[0] is code:
            return entry[1]
        kinds = []
        for opcode, arg in code.instructions:
            if opcode in _ALWAYS:
                kinds.append(STATIC)
            elif opcode in _GLOBAL:
                kinds.append(STATIC if code.names[arg] in self.shared_globals else 0)
            elif opcode == op.CALL:
                kinds.append(CALL)
            elif opcode == op.FOR_ITER:
                kinds.append(ITER)
            elif opcode == op.GET_ITER:
                kinds.append(CONTAINER)
            else:
                kinds.append(0)
        table = tuple(kinds)
        self._tables[id(code)] = (code, table)
        return table

    def is_point(self, thread) -> bool:
        """Whether the next instruction of ``thread`` is a switch point."""
        frame = thread.frames[-1]
        pc = frame[FRAME_PC]
        kind = self.table(frame[FRAME_CODE])[pc]
        if kind == 0 or kind == STATIC:
            return kind == STATIC
        stack = frame[FRAME_STACK]
        if kind == CALL:
            callee = stack[-frame[FRAME_CODE].instructions[pc][1] - 1]
            return callee.__class__ is Builtin and callee.name not in PURE_BUILTINS
        if kind == ITER:
            return not isinstance(stack[-1], _PRIVATE_ITERATORS)
        return stack[-1].__class__ in (MvList, MvMap)
