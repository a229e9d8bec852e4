"""Guest frames read off the host stack: heap roots, the check's frame, error call chains.

A thread running compiled code keeps no frame list: its guest frames *are* host frames of
generated functions. They are read back only when someone asks, which is rare (a heap
reclaim, a test watching the checks, a runtime error):

* ``HostFrames`` stands in for ``thread.frames`` while the thread runs compiled code. It
  yields frames of the interpreter's shape (``[code, function, locals, stack, pc, cells]``,
  see ``interpreter.py``) built from the host frames of that thread: the guest locals are
  the host locals ``l<slot>``, the stack is the host locals the line's ``LineInfo`` lists as
  live (so a stale temporary does not keep an object alive), and the pc is the one the
  interpreter would show there. A paused thread is only ever at a check or a call line.
  Frames of an interpreter that runs a fallback function inside compiled code are taken
  from that ``execute`` call's own frame list.
* ``read_traceback`` turns the host traceback of a failed call into the guest's call chain
  and the exact tick count at the failure (``budget`` plus the line's ``adjust``).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from minivm.errors import CallSite
from minivm.runtime import interpreter
from minivm.runtime.compiled.translation import translation_of_host_code
from minivm.runtime.values import UNSET

if TYPE_CHECKING:
    from minivm.runtime.threads import GuestThread

_EXECUTE_CODE = interpreter.execute.__code__


class HostFrames:
    """``thread.frames`` for a thread that runs compiled code: its guest frames, outermost
    first, read from its host stack each time they are asked for."""

    def __init__(self, thread: GuestThread):
        self.thread = thread

    def _top(self):
        host = self.thread.host_ident
        if host is None or host == threading.get_ident():
            return sys._getframe(1)
        return sys._current_frames().get(host)

    def frames(self) -> list[list]:
        """The guest frames now, outermost first."""
        found: list[list] = []
        frame = self._top()
        while frame is not None:
            host_code = frame.f_code
            if host_code is _EXECUTE_CODE:
                nested = frame.f_locals.get("frames")
                if nested is not None and nested is not self:
                    found.extend(reversed(list(nested)))
            else:
                translation = translation_of_host_code(host_code)
                if translation is not None:
                    found.append(guest_frame(translation, frame))
            frame = frame.f_back
        found.reverse()
        return found

    def __iter__(self):
        return iter(self.frames())

    def __len__(self) -> int:
        return len(self.frames())

    def __getitem__(self, index):
        return self.frames()[index]


def guest_frame(translation, frame) -> list:
    """An interpreter-shaped frame for a generated host frame paused at a check or a call."""
    info = translation.line(frame.f_lineno)
    values = frame.f_locals
    function = values.get("fn")
    local_values = [values.get(name, UNSET) for name in translation.local_names]
    stack = [values[name] for name in info.temps if name in values]
    cells = function.cells if function is not None else ()
    return [translation.code, function, local_values, stack, info.frame_pc, cells]


class FailedAt:
    """Where a compiled call failed: the guest chain and the thread's exact tick count."""

    def __init__(self, chain: tuple[CallSite, ...], ticks: int | None, undefined: str):
        self.chain = chain
        self.ticks = ticks
        # The global a KeyError was looking up, when it was one ("" otherwise).
        self.undefined = undefined


def read_traceback(tb, thread_ticks: int, deferring_codes: frozenset) -> FailedAt:
    """Read a host traceback that went through generated code.

    ``deferring_codes`` are host code objects that keep ``thread.clock.ticks`` exact themselves
    (the builtin and interpreter entries): a failure inside them takes the tick count from
    the thread, not from the caller's ``budget``.
    """
    chain: list[CallSite] = []
    last = None  # (translation, frame, info) of the innermost generated entry
    deferred = False
    raised_here = False
    while tb is not None:
        host_code = tb.tb_frame.f_code
        translation = translation_of_host_code(host_code)
        if translation is not None:
            info = translation.line(tb.tb_lineno)
            last = (translation, tb.tb_frame, info)
            deferred = False
            raised_here = tb.tb_next is None
            if info.kind != "entry":
                code = translation.code
                chain.append(code.call_site(info.pc))
        elif host_code in deferring_codes:
            deferred = True
        tb = tb.tb_next
    ticks = None
    undefined = ""
    if last is not None:
        translation, frame, info = last
        if deferred:
            ticks = thread_ticks
        else:
            budget = frame.f_locals.get("budget")
            ticks = None if budget is None else budget + info.adjust
        if info.kind == "global" and raised_here:
            undefined = info.name
    return FailedAt(tuple(chain), ticks, undefined)
