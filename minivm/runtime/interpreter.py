"""The dispatch loop: runs one guest thread's frames while that thread holds the GIL.

Design note
-----------
* **Who holds what.** ``execute`` is entered by a thread that holds the GIL (or, under the
  ``none`` policy, by any thread at all). It gives the GIL up only inside the slow path (the
  check) or inside a blocking builtin (``sleep``, ``join``, ``acquire``), and each of those
  returns with the GIL held again and a fresh tick budget.
* **The tick.** Every executed instruction costs one tick: ``ticks -= 1`` and one compare at
  the top of the loop. When the budget is spent the thread reaches the *check*
  (``TickCheck.at_check``, ``runtime/check.py``): the lock policy decides there whether
  another thread runs, and the same branch carries everything rare — tracing, the step limit, aborts. This is CPython's
  ``eval_breaker`` idea: with tracing off the loop pays one compare, nothing more. Tracing
  simply asks for a budget of one, so the slow path sees every instruction.
* **Why the loop looks like this.** The frame's code, instructions, constants, locals and
  stack are hoisted into locals (local loads are the cheapest thing in CPython), reloaded
  only when a call or return switches frames. ``stack.append`` is called as a method, not
  hoisted as a bound method: CPython 3.11 specialises ``list.append`` calls, so it is as
  fast, and a call no longer pays for making two bound methods. Dispatch is a chain of
  ``is`` tests ordered by measured frequency: opcode numbers are small ints, which CPython
  caches, so identity is exact and cheaper than ``==`` (measured: 8.7 ns against 12.7 ns).
  Each opcode's general case lives in ``operations``; the loop inlines only the int fast paths.
* **Fused instructions** (``bytecode.fusion``) do the work of several plain ones and
  charge all their ticks. One runs only if the budget holds all its ticks; if the check
  falls inside it, the loop runs the plain code up to the check instead, so the check falls
  exactly where the per-instruction count says. Each carries the operand record the opcode
  table declares for it (``opcodes.ConstTest``...), read by field name: a slotted attribute
  read costs what indexing a tuple does (CPython 3.11 specialises both). Only those that
  measurably pay on the benchmark suite exist (docs/performance.md).
* **Errors.** A guest error is a ``GuestError`` raised by a handler; the ``except`` at the
  bottom records where the thread was and re-raises it with the call chain attached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minivm.bytecode.opcodes import (
    ADD,
    ARITH_LOCAL_CONST_STORE,
    ARITH_LOCALS_STORE,
    BINARY_LOCAL_CONST,
    BUILD_LIST,
    BUILD_MAP,
    CALL,
    CLEAR_LOCAL,
    COMPARE_LOCAL_CONST_JUMP,
    COMPARE_LOCAL_GLOBAL_JUMP,
    DEFINE_GLOBAL,
    DIV,
    DUP2,
    EQ,
    FIRST_FUSED,
    FLOOR_DIV,
    FOR_ITER,
    FOR_ITER_STORE_LOCAL,
    GE,
    GET_ITER,
    GT,
    INDEX,
    JUMP,
    JUMP_IF_FALSE_OR_POP,
    JUMP_IF_TRUE_OR_POP,
    LE,
    LOAD_CELL,
    LOAD_CONST,
    LOAD_FREE,
    LOAD_GLOBAL,
    LOAD_LOCAL,
    LOAD_LOCAL_CHECKED,
    LOOP_COMPARE_LOCAL_CONST,
    LOOP_COMPARE_LOCAL_GLOBAL,
    LOOP_FOR_ITER_STORE_LOCAL,
    LT,
    MAKE_CELL,
    MAKE_FUNCTION,
    MOD,
    MUL,
    NE,
    NEG,
    NOT,
    OPCODES,
    POP,
    POP_JUMP_IF_FALSE,
    RETURN,
    SPAWN,
    STORE_CELL,
    STORE_FREE,
    STORE_GLOBAL,
    STORE_INDEX,
    STORE_LOCAL,
    SUB,
)
from minivm.errors import CallSite, GuestError, count_of
from minivm.runtime import operations as ops
from minivm.runtime.values import (
    HEAP_TYPES,
    UNSET,
    VARIADIC,
    Builtin,
    Function,
    MvList,
    MvMap,
    map_key,
    type_name,
)

if TYPE_CHECKING:
    from minivm.bytecode.code import CodeObject
    from minivm.runtime.machine import Machine
    from minivm.runtime.threads import GuestThread

# The ticks a fused instruction charges beyond the loop's one (its width - 1), by opcode.
EXTRA_TICKS = tuple(info.width - 1 for info in OPCODES)
_DONE = object()  # what ``next`` returns when a for loop's iterator is exhausted


# A frame is a plain list, not an object: every call builds one and every return unpacks
# one, and a list literal costs a quarter of a slotted object's construction (measured:
# 62 ns against 251 ns; fib runs 12% faster). Its slots, by index:
FRAME_CODE, FRAME_FUNCTION, FRAME_LOCALS, FRAME_STACK, FRAME_PC, FRAME_CELLS = range(6)
Frame = list  # [code, function, locals, stack, pc, cells]


def make_frame(code: CodeObject, function: Function | None, local_values: list) -> Frame:
    """A frame about to run ``code`` from its first instruction: ``function`` (None for the
    file's own code) with its locals; the value stack starts empty."""
    return [code, function, local_values, [], 0, function.cells if function is not None else ()]


def new_frame(function: Function, args: list) -> Frame:
    """A frame for calling ``function`` with ``args`` (arity already checked)."""
    code = function.code
    local_values = args
    missing = code.nlocals - len(args)
    if missing:
        local_values += [UNSET] * missing
    return make_frame(code, function, local_values)


def recursion_error(limit: int) -> GuestError:
    """``maximum recursion depth exceeded (limit 1000 calls)``, on both engines."""
    return GuestError(f"maximum recursion depth exceeded (limit {count_of(limit, 'call')})")


def arity_error(function, given: int) -> GuestError:
    """``f() expects 2 arguments, got 3``."""
    expected = function.code.arity
    noun = "argument" if expected == 1 else "arguments"
    return GuestError(f"{function.code.display_name}() expects {expected} {noun}, got {given}")


def call_chain(frames: list[Frame], about_to_run: bool = False) -> tuple[CallSite, ...]:
    """The guest call chain of a thread, outermost first. Each frame names the instruction
    it last ran (a caller's: the call); with ``about_to_run`` the innermost one names the
    instruction it is about to run instead (a stop between instructions, like the step limit)."""
    sites = []
    frames = list(frames)  # one snapshot: a compiled thread's frames are read off its host stack
    for f in frames:
        code, pc = f[FRAME_CODE], f[FRAME_PC]
        offset = pc if about_to_run and f is frames[-1] else max(pc - 1, 0)
        sites.append(code.call_site(offset))
    return tuple(sites)


def execute(vm: Machine, thread: GuestThread, frames: list[Frame] | None = None, below: int = 0) -> object:
    """Run ``thread`` until its outermost frame returns; returns that value.

    ``frames`` defaults to the thread's own; the compiled tier passes a list of its own for
    a function it leaves to the interpreter, with ``below`` the guest frames under it (they
    count toward the recursion limit). Raises ``GuestError`` (with thread and call chain)
    if the guest program fails.
    """
    heap = vm.heap
    globals_ = vm.globals
    recursion_limit = vm.config.recursion_limit
    room = recursion_limit - below
    frames = thread.frames if frames is None else frames
    frame = frames[-1]
    code, _function, local, stack, pc, cells = frame
    # The thread's tick clock: its countdown lives in ``ticks`` (a host local) while the loop
    # runs, and goes back to the clock before anything else may read it.
    clock = thread.clock
    at_check = vm.check.at_check
    fast_code = clock.fast_code  # changes only at a check or in a blocking builtin
    instrs = code.fast if fast_code else code.instructions
    consts = code.constants
    names = code.names
    ticks = clock.ticks
    extra_ticks = EXTRA_TICKS
    try:
        while True:
            if ticks <= 0:
                frame[FRAME_PC] = pc
                ticks = at_check(thread, ticks)
                fast_code = clock.fast_code
                instrs = code.fast if fast_code else code.instructions
            ticks -= 1
            op, arg = instrs[pc]
            pc += 1
            if op >= FIRST_FUSED:
                if ticks < extra_ticks[op]:
                    # The check falls inside this fused instruction: run the plain code up
                    # to it instead, so it lands exactly where counting one by one puts it.
                    ticks += 1
                    pc -= 1
                    clock.fast_code = fast_code = False
                    instrs = code.instructions
                    continue
                # Fused instructions (bytecode.fusion): in loops they are most of what runs.
                # ``arg`` is the operand record the opcode table declares for each.
                if op is LOOP_COMPARE_LOCAL_CONST or op is COMPARE_LOCAL_CONST_JUMP:
                    a = local[arg.slot]
                    b = arg.const
                    ticks -= extra_ticks[op]
                    if a.__class__ is int and b.__class__ is int:
                        pc = arg.after if arg.fn(a, b) else arg.target
                    else:
                        pc = arg.after - 3  # an error names the test's line, not the back jump's
                        pc = arg.after if ops.binary(arg.operation, heap, a, b) else arg.target
                elif op is ARITH_LOCAL_CONST_STORE:
                    a = local[arg.slot]
                    b = arg.const
                    ticks -= 3
                    pc += 3
                    if a.__class__ is int and b.__class__ is int:
                        local[arg.dest] = arg.fn(a, b)
                    else:
                        local[arg.dest] = ops.binary(arg.operation, heap, a, b)
                elif op is LOOP_FOR_ITER_STORE_LOCAL or op is FOR_ITER_STORE_LOCAL:
                    value = next(stack[-1], _DONE)
                    ticks -= extra_ticks[op] - 1  # the back jump, if any; the store is charged below
                    if value is _DONE:
                        del stack[-2:]
                        pc = arg.exit
                    else:
                        ticks -= 1
                        local[arg.dest] = value
                        pc = arg.after
                elif op is BINARY_LOCAL_CONST:
                    a = local[arg.slot]
                    b = arg.const
                    ticks -= 2
                    pc += 2
                    if a.__class__ is int and b.__class__ is int:
                        stack.append(arg.fn(a, b))
                    else:
                        stack.append(ops.binary(arg.operation, heap, a, b))
                elif op is LOOP_COMPARE_LOCAL_GLOBAL or op is COMPARE_LOCAL_GLOBAL_JUMP:
                    a = local[arg.slot]
                    ticks -= extra_ticks[op]
                    try:
                        b = globals_[arg.name]
                    except KeyError:
                        pc = arg.after - 3
                        raise GuestError(f"undefined variable '{arg.name}'") from None
                    if a.__class__ is int and b.__class__ is int:
                        pc = arg.after if arg.fn(a, b) else arg.target
                    else:
                        pc = arg.after - 3
                        pc = arg.after if ops.binary(arg.operation, heap, a, b) else arg.target
                elif op is ARITH_LOCALS_STORE:
                    a = local[arg.slot]
                    b = local[arg.other]
                    ticks -= 3
                    pc += 3
                    if a.__class__ is int and b.__class__ is int:
                        local[arg.dest] = arg.fn(a, b)
                    else:
                        local[arg.dest] = ops.binary(arg.operation, heap, a, b)
                else:
                    vm.unknown_opcode(op)
            elif op is LOAD_GLOBAL:
                try:
                    stack.append(globals_[names[arg]])
                except KeyError:
                    raise GuestError(f"undefined variable '{names[arg]}'") from None
            elif op is LOAD_LOCAL:
                stack.append(local[arg])
            elif op is CALL:
                base = len(stack) - arg
                function = stack[base - 1]
                cls = function.__class__
                if cls is Function:
                    code = function.code
                    if arg != code.nparams:
                        raise arity_error(function, arg)
                    if len(frames) > room:  # the main frame is not a call
                        raise recursion_error(recursion_limit)
                    if arg == 1:  # the commonest call: two pops beat a slice and a del
                        args = [stack.pop()]
                        stack.pop()
                    else:
                        args = stack[base:]
                        del stack[base - 1 :]
                    if code.nlocals != arg:
                        args += [UNSET] * (code.nlocals - arg)
                    frame[FRAME_PC] = pc
                    stack = []
                    cells = function.cells
                    frame = [code, function, args, stack, 0, cells]  # make_frame, inlined
                    frames.append(frame)
                    instrs = code.fast if fast_code else code.instructions
                    consts = code.constants
                    names = code.names
                    local = args
                    pc = 0
                elif cls is Builtin:
                    args = stack[base:]
                    del stack[base - 1 :]
                    if not function.min_args <= arg <= function.max_args:
                        raise builtin_arity_error(function, arg)
                    if function.blocking:
                        # The builtin gives the GIL away and takes it back: save where we are,
                        # then start a fresh tick budget, as every new holder does.
                        frame[FRAME_PC] = pc
                        clock.ticks = ticks
                        stack.append(function.impl(thread, args))
                        ticks = clock.ticks
                        fast_code = clock.fast_code
                        instrs = code.fast if fast_code else code.instructions
                    else:
                        stack.append(function.impl(thread, args))
                else:
                    raise GuestError(f"{type_name(function)} is not callable")
            elif op is LOAD_CONST:
                stack.append(consts[arg])
            elif op is ADD:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is b.__class__ and (a.__class__ is int or a.__class__ is str):
                    stack[-1] = a + b
                else:
                    stack[-1] = ops.add(heap, a, b)
            elif op is POP:
                stack.pop()
            elif op is RETURN:
                value = stack.pop()
                frames.pop()
                if not frames:
                    clock.ticks = ticks
                    return value
                frame = frames[-1]
                code, _function, local, stack, pc, cells = frame
                instrs = code.fast if fast_code else code.instructions
                consts = code.constants
                names = code.names
                stack.append(value)
            elif op is POP_JUMP_IF_FALSE:
                if not stack.pop():
                    pc = arg
            elif op is STORE_GLOBAL:
                name = names[arg]
                try:
                    old = globals_[name]
                except KeyError:
                    raise GuestError(f"undefined variable '{name}'") from None
                value = stack.pop()
                globals_[name] = value
                if value.__class__ in HEAP_TYPES:
                    value.rc += 1
                if old.__class__ in HEAP_TYPES:
                    old.rc -= 1
            elif op is STORE_LOCAL:
                local[arg] = stack.pop()
            elif op is INDEX:
                key = stack.pop()
                target = stack[-1]
                cls = target.__class__
                if (cls is MvList and key.__class__ is int) or (
                    cls is MvMap and (key.__class__ is str or key.__class__ is int)
                ):
                    try:
                        stack[-1] = target[key]
                    except LookupError:
                        stack[-1] = ops.index(target, key)  # raises the guest's error
                else:
                    stack[-1] = ops.index(target, key)
            elif op is JUMP:
                pc = arg
            elif op is STORE_INDEX:
                value = stack.pop()
                key = stack.pop()
                target = stack.pop()
                cls = target.__class__
                if cls is MvList and key.__class__ is int:
                    try:
                        old = target[key]
                        target[key] = value  # no len() test first: under `none` it may shrink
                    except IndexError:
                        ops.store_index(heap, target, key, value)  # raises the guest's error
                        continue
                elif cls is MvMap and (key.__class__ is str or key.__class__ is int):
                    old = target.get(key)
                    target[key] = value
                else:
                    ops.store_index(heap, target, key, value)
                    continue
                if value.__class__ in HEAP_TYPES:
                    value.rc += 1
                if old.__class__ in HEAP_TYPES:
                    old.rc -= 1
            elif op is EQ:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is b.__class__ and (a.__class__ is int or a.__class__ is str):
                    stack[-1] = a == b
                else:
                    stack[-1] = ops.equal(a, b)
            elif op is LOAD_FREE:
                value = cells[arg].value
                if value is UNSET:
                    raise unset_error(code.free_names[arg])
                stack.append(value)
            elif op is SUB:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is int and b.__class__ is int:
                    stack[-1] = a - b
                else:
                    stack[-1] = ops.sub(a, b)
            elif op is FOR_ITER:
                value = next(stack[-1], _DONE)
                if value is _DONE:
                    del stack[-2:]
                    pc = arg
                else:
                    stack.append(value)
            elif op is JUMP_IF_TRUE_OR_POP:
                if stack[-1]:
                    pc = arg
                else:
                    stack.pop()
            elif op is GT:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is int and b.__class__ is int:
                    stack[-1] = a > b
                else:
                    stack[-1] = ops.greater(a, b)
            elif op is LE:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is int and b.__class__ is int:
                    stack[-1] = a <= b
                else:
                    stack[-1] = ops.less_equal(a, b)
            elif op is LT:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is int and b.__class__ is int:
                    stack[-1] = a < b
                else:
                    stack[-1] = ops.less(a, b)
            elif op is GE:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is int and b.__class__ is int:
                    stack[-1] = a >= b
                else:
                    stack[-1] = ops.greater_equal(a, b)
            elif op is NE:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is b.__class__ and (a.__class__ is int or a.__class__ is str):
                    stack[-1] = a != b
                else:
                    stack[-1] = ops.not_equal(a, b)
            elif op is MUL:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is int and b.__class__ is int:
                    stack[-1] = a * b
                else:
                    stack[-1] = ops.mul(a, b)
            elif op is MOD:
                b = stack.pop()
                a = stack[-1]
                if a.__class__ is int and b.__class__ is int and b:
                    stack[-1] = a % b
                else:
                    stack[-1] = ops.mod(a, b)
            elif op is DUP2:
                stack.extend(stack[-2:])
            elif op is BUILD_LIST:
                if arg:
                    items = stack[-arg:]
                    del stack[-arg:]
                    stack.append(heap.new_list(items))
                else:
                    stack.append(heap.new_list())
            elif op is MAKE_FUNCTION:
                fcode = consts[arg]
                captured = tuple(
                    local[src.index] if src.from_local else cells[src.index]
                    for src in fcode.free_sources
                )
                stack.append(heap.new_function(fcode, captured))
            elif op is GET_ITER:
                stack.append(ops.iterate(stack[-1]))
            elif op is DEFINE_GLOBAL:
                name = names[arg]
                value = stack.pop()
                old = globals_.get(name)
                globals_[name] = value
                heap.incref(value)
                heap.decref(old)
            elif op is DIV:
                b = stack.pop()
                stack[-1] = ops.div(stack[-1], b)
            elif op is BUILD_MAP:
                stack.append(build_map(heap, stack, arg))
            elif op is SPAWN:
                base = len(stack) - arg
                args = stack[base:]
                function = stack[base - 1]
                del stack[base - 1 :]
                frame[FRAME_PC] = pc
                stack.append(vm.spawn(thread, function, args))
            elif op is JUMP_IF_FALSE_OR_POP:
                if stack[-1]:
                    stack.pop()
                else:
                    pc = arg
            elif op is LOAD_CELL:
                value = local[arg].value
                if value is UNSET:
                    raise unset_error(code.local_names[arg])
                stack.append(value)
            elif op is STORE_CELL:
                store_cell(local[arg], stack.pop())
            elif op is STORE_FREE:
                store_cell(cells[arg], stack.pop())
            elif op is MAKE_CELL:
                local[arg] = heap.new_cell()
            elif op is LOAD_LOCAL_CHECKED:
                value = local[arg]
                if value is UNSET:
                    raise unset_error(code.local_names[arg])
                stack.append(value)
            elif op is NOT:
                stack[-1] = not stack[-1]
            elif op is NEG:
                a = stack[-1]
                stack[-1] = -a if a.__class__ is int else ops.neg(a)
            elif op is FLOOR_DIV:
                b = stack.pop()
                stack[-1] = ops.floor_div(stack[-1], b)
            elif op is CLEAR_LOCAL:
                local[arg] = UNSET
            else:
                vm.unknown_opcode(op)
    except GuestError as error:
        frame[FRAME_PC] = pc
        clock.ticks = ticks
        if error.thread_id is None:
            error.thread_id = thread.tid
            error.chain = call_chain(frames)
        raise
    except (RecursionError, MemoryError) as host_error:
        # RecursionError is a safety net: no walk over guest values recurses on the host
        # (they raise the same guest error themselves past values.MAX_DATA_DEPTH), and guest
        # threads run under the host's default recursion limit, which fits every thread's
        # stack. MemoryError is the program's own doing (a list or string doubled in a loop).
        frame[FRAME_PC] = pc
        error = host_limit_error(host_error)
        error.thread_id = thread.tid
        error.chain = call_chain(frames)
        raise error from None


def host_limit_error(error: RecursionError | MemoryError) -> GuestError:
    """The guest error for a host limit the program ran into: the host's stack
    (``RecursionError``) or its memory (``MemoryError``, as Python reports it to a script)."""
    if isinstance(error, MemoryError):
        return GuestError("out of memory")
    return GuestError("maximum recursion depth exceeded (structure too deeply nested)")


def store_cell(cell, value: object) -> None:
    """Store into a cell, keeping reference counts (a cell's value is a counted reference)."""
    old = cell.value
    cell.value = value
    if value.__class__ in HEAP_TYPES:
        value.rc += 1
    if old.__class__ in HEAP_TYPES:
        old.rc -= 1


def build_map(heap, stack: list, pairs: int) -> MvMap:
    """Pop ``pairs`` key/value pairs (keys first, in source order) into a new map."""
    result = heap.new_map()
    if pairs:
        flat = stack[-2 * pairs :]
        del stack[-2 * pairs :]
        for i in range(0, len(flat), 2):
            key = map_key(flat[i])
            old = result.get(key)
            result[key] = flat[i + 1]
            heap.incref(flat[i + 1])
            heap.decref(old)
    return result


def unset_error(name: str) -> GuestError:
    """Reading a block variable before its ``let`` ran."""
    return GuestError(f"undefined variable '{name}' (used before its declaration)")


def builtin_arity_error(builtin: Builtin, given: int) -> GuestError:
    """``len() expects 1 argument, got 2``."""
    low, high = builtin.min_args, builtin.max_args
    if low == high:
        wanted = f"{low} argument" + ("" if low == 1 else "s")
    elif high >= VARIADIC:
        wanted = f"at least {low} argument" + ("" if low == 1 else "s")
    else:
        wanted = f"{low} to {high} arguments"
    return GuestError(f"{builtin.name}() expects {wanted}, got {given}")
