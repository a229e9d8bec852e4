"""The builtin functions of the language. Each takes the running thread and its arguments."""

from __future__ import annotations

import re

from minivm.errors import GuestError
from minivm.runtime.threads import GuestLock, GuestThread
from minivm.runtime.values import (
    VARIADIC,
    Builtin,
    MvList,
    MvMap,
    length,
    map_key,
    to_str,
    type_name,
)

_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")
# The host's clock cannot count further than about 292 years (Python's own time.sleep refuses
# more too); an int beyond a float (10 ** 400) or inf would break the host's arithmetic.
MAX_SLEEP_SECONDS = 1_000_000_000


def _print(thread: GuestThread, args: list) -> None:
    try:
        thread.vm.output.write_line(" ".join([to_str(a) for a in args]))
    except OSError as exc:
        # A full disk or a failing device (a reader that went away is no error: write_line
        # stops the run quietly then). The program's error, as in Python, not minivm's bug.
        raise GuestError(f"print() cannot write to standard output: {exc.strerror or exc}") from None


def _len(thread: GuestThread, args: list) -> int:
    value = args[0]
    if value.__class__ in (str, MvList, MvMap, range):
        return length(value)
    raise GuestError(f"len() of a value of type {type_name(value)}")


def _str(thread: GuestThread, args: list) -> str:
    return to_str(args[0])


def _int(thread: GuestThread, args: list) -> int:
    value = args[0]
    cls = value.__class__
    if cls is int:
        return value
    if cls is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise GuestError(f"int() cannot convert {value!r} to an int")
        return int(value)
    if cls is str:
        if not _INT_TEXT.fullmatch(value):
            raise GuestError(f"int() cannot convert the string {value!r} to an int")
        return int(value)
    raise GuestError(f"int() cannot convert a value of type {type_name(value)}")


def _float(thread: GuestThread, args: list) -> float:
    value = args[0]
    cls = value.__class__
    if cls is float:
        return value
    if cls is int:
        try:
            return float(value)
        except OverflowError:
            raise GuestError("float() of an int too large for a float") from None
    if cls is str:
        try:
            return float(value.replace("_", "!"))  # no underscores in numbers read from text
        except ValueError:
            raise GuestError(f"float() cannot convert the string {value!r} to a float") from None
    raise GuestError(f"float() cannot convert a value of type {type_name(value)}")


def _type(thread: GuestThread, args: list) -> str:
    return type_name(args[0])


def _range(thread: GuestThread, args: list) -> range:
    for a in args:
        if a.__class__ is not int:
            raise GuestError(f"range() expects ints, got {type_name(a)}")
    if len(args) == 3 and args[2] == 0:
        raise GuestError("range() step must not be zero")
    return range(*args)


def _push(thread: GuestThread, args: list) -> None:
    target, value = args
    if target.__class__ is not MvList:
        raise GuestError(f"push() expects a list, got {type_name(target)}")
    target.append(value)
    thread.vm.heap.incref(value)


def _pop(thread: GuestThread, args: list) -> object:
    target = args[0]
    if target.__class__ is not MvList:
        raise GuestError(f"pop() expects a list, got {type_name(target)}")
    try:
        value = target.pop()  # one step: under the none policy another thread may pop too
    except IndexError:
        raise GuestError("pop() from an empty list (index out of range)") from None
    # The value leaves the list for the stack, whose references are not counted.
    thread.vm.heap.decref(value)
    return value


def _keys(thread: GuestThread, args: list) -> MvList:
    target = args[0]
    if target.__class__ is not MvMap:
        raise GuestError(f"keys() expects a map, got {type_name(target)}")
    return thread.vm.heap.new_list(target.guest_keys())


def _has(thread: GuestThread, args: list) -> bool:
    target, key = args
    if target.__class__ is not MvMap:
        raise GuestError(f"has() expects a map, got {type_name(target)}")
    return map_key(key) in target


def _assert(thread: GuestThread, args: list) -> None:
    if not args[0]:
        if len(args) > 1:
            raise GuestError(f"assertion failed: {to_str(args[1])}")
        raise GuestError("assertion failed")


def _time(thread: GuestThread, args: list) -> float:
    return thread.vm.time_source()  # the host's monotonic clock, or a recorded one


def _sleep(thread: GuestThread, args: list) -> None:
    seconds = args[0]
    if seconds.__class__ not in (int, float):
        raise GuestError(f"sleep() expects a number of seconds, got {type_name(seconds)}")
    if seconds != seconds:
        raise GuestError("sleep() length must be a number, got nan")
    if seconds < 0:
        raise GuestError("sleep() length must not be negative")
    if seconds > MAX_SLEEP_SECONDS:
        raise GuestError(f"sleep() length too large (the limit is {MAX_SLEEP_SECONDS:,} seconds)")
    thread.vm.scheduler.sleep(thread, seconds)


def _join(thread: GuestThread, args: list) -> object:
    return thread.vm.scheduler.join(thread, args[0])


def _thread_id(thread: GuestThread, args: list) -> int:
    return thread.tid


def _lock(thread: GuestThread, args: list) -> GuestLock:
    return GuestLock()


def _acquire(thread: GuestThread, args: list) -> None:
    thread.vm.scheduler.acquire_lock(thread, args[0])


def _release(thread: GuestThread, args: list) -> None:
    thread.vm.scheduler.release_lock(thread, args[0])


def _set_priority(thread: GuestThread, args: list) -> None:
    value = args[0]
    if value.__class__ is not int:
        raise GuestError(f"set_priority() expects an int, got {type_name(value)}")
    thread.priority = value


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("print", _print, 0, VARIADIC),
        Builtin("len", _len, 1, 1),
        Builtin("str", _str, 1, 1),
        Builtin("int", _int, 1, 1),
        Builtin("float", _float, 1, 1),
        Builtin("type", _type, 1, 1),
        Builtin("range", _range, 1, 3),
        Builtin("push", _push, 2, 2),
        Builtin("pop", _pop, 1, 1),
        Builtin("keys", _keys, 1, 1),
        Builtin("has", _has, 2, 2),
        Builtin("assert", _assert, 1, 2),
        Builtin("time", _time, 0, 0),
        Builtin("sleep", _sleep, 1, 1, blocking=True),
        Builtin("join", _join, 1, 1, blocking=True),
        Builtin("thread_id", _thread_id, 0, 0),
        Builtin("lock", _lock, 0, 0),
        Builtin("acquire", _acquire, 1, 1, blocking=True),
        Builtin("release", _release, 1, 1),
        Builtin("set_priority", _set_priority, 1, 1),
    )
}
