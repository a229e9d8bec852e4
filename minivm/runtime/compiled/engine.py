"""The compiled engine of one machine: runs guest threads on generated host functions.

``CompiledEngine(vm).run(thread)`` is what ``Machine`` calls in place of the interpreter's
``execute``. It owns what the generated code of one machine shares: the namespace every
host function is made in (the machine's globals dict ``G``, its ``heap``, its check
``TickCheck.at_check``, the general operations), the host function made for each code object
(``instances``), and the call-site caches. A call site ``C<pc>`` caches ``(function, entry)``
as one tuple, so that two threads running at once (``--policy none``) never see the
function of one call with the entry of another; ``B<pc>`` caches a builtin that cannot block.

Calls go guest to guest as host calls (``entry(clock, budget, room, fn, *args)``, with the
thread's tick clock and ``room`` the calls the recursion limit still allows): the
budget travels as an argument and comes back in the thread's clock (``clock.ticks``), as
it does around the interpreter's blocking builtins. ``resolve`` handles a cache miss the way the interpreter's
``CALL`` does (arity, then the recursion limit, builtins, "not callable"); every entry it
returns is a plain Python function called with positional arguments, so CPython runs guest
calls without using the C stack.
"""

from __future__ import annotations

import sys

from minivm.errors import GuestError
from minivm.runtime import operations as ops
from minivm.runtime.compiled.frames import HostFrames, read_traceback
from minivm.runtime.compiled.sites import INLINE_NAMES
from minivm.runtime.compiled.translation import Fallback, instantiate, translate
from minivm.runtime.interpreter import (
    _DONE,
    arity_error,
    builtin_arity_error,
    execute,
    host_limit_error,
    new_frame,
    recursion_error,
    store_cell,
    unset_error,
)
from minivm.runtime.values import HEAP_TYPES, UNSET, Builtin, Function, MvList, MvMap, map_key, to_str, type_name

_NO_FUNCTION = object()  # what an empty call-site cache compares against
_EMPTY_SITE = (_NO_FUNCTION, None)
# Host frames a guest call may take beyond the guest's own (the interpreter's are on the heap).
_HOST_FRAMES_SPARE = 1000
# The largest limit sys.setrecursionlimit takes (a C int); a guest limit above it cannot be
# reached before memory runs out anyway.
_HOST_LIMIT_MAX = 2**31 - 1


def build_map(heap, flat: tuple) -> MvMap:
    """``BUILD_MAP``: a new map from ``(key, value, key, value, ...)`` in source order."""
    result = heap.new_map()
    for i in range(0, len(flat), 2):
        key = map_key(flat[i])
        old = result.get(key)
        value = flat[i + 1]
        result[key] = value
        heap.incref(value)
        heap.decref(old)
    return result


# What every generated function may name, whichever machine it belongs to.
SHARED_NAMES = {
    "UNSET": UNSET, "DONE": _DONE, "HEAP": HEAP_TYPES, "MvList": MvList, "MvMap": MvMap,
    "unset_error": unset_error, "store_cell": store_cell, "build_map": build_map,
    "op_add": ops.add, "op_sub": ops.sub, "op_mul": ops.mul, "op_div": ops.div,
    "op_floor_div": ops.floor_div, "op_mod": ops.mod, "op_neg": ops.neg,
    "op_lt": ops.less, "op_le": ops.less_equal, "op_gt": ops.greater, "op_ge": ops.greater_equal,
    "op_eq": ops.equal, "op_ne": ops.not_equal, "op_index": ops.index,
    "op_store_index": ops.store_index, "op_iterate": ops.iterate, "to_str": to_str,
    **INLINE_NAMES,
}  # fmt: skip


class Site:
    """One call site of one host function: where ``resolve`` stores what it found."""

    __slots__ = ("builtin_name", "cache_name", "namespace")

    def __init__(self, namespace: dict, pc: int):
        self.namespace = namespace
        self.cache_name = f"C{pc}"
        self.builtin_name = f"B{pc}"


class CompiledEngine:
    """Runs the threads of one machine on the compiled tier."""

    def __init__(self, vm):
        self.vm = vm
        self.limit = vm.config.recursion_limit
        self.instances: dict = {}
        self.namespace = dict(SHARED_NAMES)
        self.namespace.update(
            G=vm.globals, heap=vm.heap, check=vm.check.at_check, spawn=vm.spawn, resolve=self.resolve,
            recursion_error=self.recursion_error,
        )  # fmt: skip
        self.deferring = frozenset({self.call_builtin.__code__, self.call_interpreted.__code__})
        # One host frame per guest call: make room for the deepest recursion allowed.
        needed = min(self.limit + _HOST_FRAMES_SPARE, _HOST_LIMIT_MAX)
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)

    # -- host functions
    def entry(self, code):
        """The host function for ``code`` in this machine, or None if it runs interpreted."""
        found = self.instances.get(code)
        if found is None:
            translation = translate(code)
            if isinstance(translation, Fallback):
                found = translation
            else:
                namespace = dict(self.namespace)
                for pc, _ in translation.sites:
                    namespace[f"C{pc}"] = _EMPTY_SITE
                    namespace[f"B{pc}"] = _NO_FUNCTION
                    namespace[f"S{pc}"] = Site(namespace, pc)
                found = instantiate(translation, namespace)
            self.instances[code] = found
        return None if isinstance(found, Fallback) else found

    def recursion_error(self) -> GuestError:
        """Raised by a host function's first line, on behalf of its caller."""
        return recursion_error(self.limit)

    # -- calls
    def resolve(self, function: object, count: int, site: Site):
        """A call-site cache miss: check the call as the interpreter does and return the
        entry to call; remember the callee at the site when it can be remembered."""
        cls = function.__class__
        if cls is Function:
            code = function.code  # type: ignore[attr-defined]
            if count != code.nparams:
                raise arity_error(function, count)
            entry = self.entry(code)
            if entry is None:
                return self.call_interpreted
            site.namespace[site.cache_name] = (function, entry)
            return entry
        if cls is Builtin:
            if not function.min_args <= count <= function.max_args:  # type: ignore[attr-defined]
                raise builtin_arity_error(function, count)  # type: ignore[arg-type]
            if not function.blocking:  # type: ignore[attr-defined]
                site.namespace[site.builtin_name] = function
            return self.call_builtin
        raise GuestError(f"{type_name(function)} is not callable")

    def call_builtin(self, clock, budget: int, room: int, function, *args):
        """Call a builtin; a blocking one gives the GIL away, so the budget goes through the
        thread's clock, as around the interpreter's blocking builtins."""
        clock.ticks = budget
        return function.impl(clock.thread, list(args))

    def call_interpreted(self, clock, budget: int, room: int, function, *args):
        """Call a function the compiled tier left to the interpreter: ``execute`` runs it
        (and everything it calls) on a frame list of its own, counting the compiled frames
        below it toward the recursion limit."""
        if room < 0:
            raise self.recursion_error()
        clock.ticks = budget
        try:
            return execute(self.vm, clock.thread, [new_frame(function, list(args))], self.limit - room)
        except GuestError as error:
            # The interpreter named its own frames; the compiled ones around it come later.
            if error.thread_id is not None:
                error.inner_chain = error.chain  # type: ignore[attr-defined]
                error.thread_id = None
                error.chain = ()
            raise

    # -- threads
    def run(self, thread) -> object:
        """Run ``thread`` to its end and return its result (``Machine.thread_main`` calls
        this). Threads the tier cannot start (a spawned builtin, a fallback function) run
        on the interpreter."""
        frames = thread.frames
        if len(frames) != 1 or frames[0][3] or frames[0][4]:
            return execute(self.vm, thread)
        code, function, local_values = frames[0][0], frames[0][1], frames[0][2]
        entry = self.entry(code)
        if entry is None:
            return execute(self.vm, thread)
        args = local_values[: code.nparams]
        thread.frames = HostFrames(thread)
        try:
            return entry(thread.clock, thread.clock.ticks, self.limit, function, *args)
        except GuestError as error:
            raise self._placed(thread, error) from None
        except KeyError as error:
            failed = read_traceback(error.__traceback__, thread.clock.ticks, self.deferring)
            if not failed.undefined:
                raise
            raise self._placed(thread, GuestError(f"undefined variable '{failed.undefined}'"), error) from None
        except (RecursionError, MemoryError) as error:
            # Deep structures (printing a 100000-deep list) exhaust the host stack; data that
            # keeps growing exhausts its memory.
            raise self._placed(thread, host_limit_error(error), error) from None
        finally:
            thread.frames = []

    def _placed(self, thread, error: GuestError, cause: BaseException | None = None) -> GuestError:
        """``error`` with its thread and call chain, and the thread's exact tick count."""
        failed = read_traceback((cause or error).__traceback__, thread.clock.ticks, self.deferring)
        if failed.ticks is not None:
            thread.clock.ticks = failed.ticks
        if error.thread_id is None:
            error.thread_id = thread.tid
            error.chain = failed.chain + getattr(error, "inner_chain", ())
        error.__traceback__ = None
        return error
