"""Every error minivm reports, and the one place their messages are formatted.

Three families, kept apart on purpose:

* ``SourceError`` — the guest program cannot be compiled (syntax or compile error, exit 2).
* ``GuestError`` — the guest program failed while running (runtime error, exit 1).
* ``InternalError`` — minivm itself is broken (a violated invariant); never the guest's fault.

``ThreadAbort`` is none of them: it only unwinds a guest thread while the VM stops.
"""

from __future__ import annotations

import dataclasses

from minivm.source import SourceFile, displayable_line, displayable_text, render_location


class MinivmError(Exception):
    """Root of every error minivm raises on purpose."""


@dataclasses.dataclass(frozen=True)
class Location:
    """A point in a source file: 1-based line and column."""

    file: str
    line: int
    column: int = 0


class SourceError(MinivmError):
    """A syntax or compile error: the program is rejected before it runs."""

    def __init__(self, kind: str, message: str, location: Location, source_line: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.location = location
        self.source_line = source_line

    @classmethod
    def at(cls, kind: str, message: str, source: SourceFile, line: int, column: int) -> SourceError:
        """The error at ``line``:``column`` (1-based) of ``source``, carrying that line's text
        for the caret (``""`` when the place is past the end). How every frontend pass
        builds its errors."""
        return cls(kind, message, Location(source.name, line, column), source.line(line))


@dataclasses.dataclass(frozen=True)
class CallSite:
    """One entry of a guest call chain: which function, where (1-based line).

    ``source`` is the file the function was compiled from (its code object's ``source``),
    so the chain can show each line without a table of source lines; it takes no part in
    comparing entries (a recursion's entries are equal however they were made)."""

    function: str
    file: str
    line: int
    source: SourceFile | None = dataclasses.field(default=None, compare=False, repr=False)


class GuestError(MinivmError):
    """A runtime error of the guest program; the VM fills in thread and call chain."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.thread_id: int | None = None
        self.chain: tuple[CallSite, ...] = ()


class InternalError(MinivmError):
    """A bug in minivm itself, such as a broken lock invariant. Stops the VM at once."""


class UsageError(MinivmError):
    """Bad command-line use (exit 2)."""


class ThreadAbort(BaseException):
    """Unwinds a guest thread's host thread when the VM is stopping (a deadlock, a failed main
    thread, Ctrl-C, a replay's divergence). Neither the guest's error nor a VM bug: a
    ``BaseException``, so that nothing on the way catches it, as ``SystemExit`` unwinds a
    CPython thread. Raised by the runtime and, while a thread waits for the GIL, by the GIL's
    ``raise_if_stopping``."""


def count_of(number: int, noun: str) -> str:
    """``1 call``, ``2 calls``: a count in a message, its noun singular for one."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def format_source_error(error: SourceError) -> str:
    """``file:line:col: syntax error: message``, the line, and a caret under the column
    (``minivm.source.render_location``)."""
    loc = error.location
    return render_location(loc.file, loc.line, loc.column, error.source_line, f"{error.kind}: {error.message}")


def format_guest_error(error: GuestError) -> str:
    """The runtime error, its thread, and the guest call chain (most recent call last), each
    entry with its line of source, read from the entry's ``SourceFile`` (an entry without
    one, such as a spawned builtin's, shows no line)."""
    message = displayable_text(error.message)
    if error.thread_id is None:  # not one thread's error: a deadlock of all of them
        head = f"error: {message}"
    else:
        head = f"error in thread {error.thread_id}: {message}"
    if not error.chain:
        return head
    lines = [head, "  call chain (most recent call last):"]
    for entry in elide_chain(error.chain):
        if isinstance(entry, LeftOut):
            lines.append(f"    {entry}")
            continue
        lines.append(f"    {entry.file}:{entry.line} in {entry.function}")
        text = _line_text(entry)
        if text:
            lines.append(f"      {text}")
    return "\n".join(lines)


# A run of identical call-chain entries (unbounded recursion) shows its first few and last
# few entries around one note, as Python's tracebacks do; so does a chain that is still
# over-long after that (mutual recursion), around its middle.
REPEAT_HEAD, REPEAT_TAIL = 3, 2
CHAIN_HEAD, CHAIN_TAIL = 20, 20


@dataclasses.dataclass(frozen=True)
class LeftOut:
    """A note standing for call-chain entries that are not shown."""

    calls: int
    repeats: bool  # the entries are all the same as the one shown before the note

    def __str__(self) -> str:
        if self.repeats:
            return f"[previous line repeated {self.calls} more times]"
        return f"[... {self.calls} more calls ...]"


def elide_chain(chain: tuple[CallSite, ...]) -> list[CallSite | LeftOut]:
    """The entries of a call chain to show, with a ``LeftOut`` note where entries are not
    shown: ``[previous line repeated 995 more times]`` inside a run of identical entries,
    ``[... 960 more calls ...]`` in the middle of a chain still longer than 41 entries."""
    shown: list[CallSite | LeftOut] = []
    i = 0
    while i < len(chain):
        j = i
        while j + 1 < len(chain) and chain[j + 1] == chain[i]:
            j += 1
        count = j - i + 1
        if count > REPEAT_HEAD + REPEAT_TAIL + 1:
            shown += [chain[i]] * REPEAT_HEAD
            shown.append(LeftOut(count - REPEAT_HEAD - REPEAT_TAIL, repeats=True))
            shown += [chain[i]] * REPEAT_TAIL
        else:
            shown += chain[i : j + 1]
        i = j + 1
    sites = [k for k, entry in enumerate(shown) if isinstance(entry, CallSite)]
    if len(sites) <= CHAIN_HEAD + CHAIN_TAIL + 1:
        return shown
    cut, resume = sites[CHAIN_HEAD], sites[-CHAIN_TAIL]
    hidden = sum(e.calls if isinstance(e, LeftOut) else 1 for e in shown[cut:resume])
    return [*shown[:cut], LeftOut(hidden, repeats=False), *shown[resume:]]


def _line_text(entry: CallSite) -> str:
    if entry.source is None:
        return ""
    return displayable_line(entry.source.line(entry.line).strip())


def format_internal_error(error: BaseException) -> str:
    """How a bug of minivm itself is shown: clearly not the guest program's fault."""
    return f"minivm internal error: {error}\n(this is a bug in minivm, not in your program)"


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether ``error`` came from a Ctrl-C: a ``KeyboardInterrupt`` that Python wrapped on its
    way out, as class creation does (a Ctrl-C inside ``__set_name__`` while an attrs class is
    built becomes ``RuntimeError: Error calling __set_name__``, its cause the interrupt)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False
