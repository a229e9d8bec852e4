"""How a run ended, and how that is shown at the edge.

``Machine.finish`` hands back a ``RunOutcome``: the exit status, the error that stopped the
run (if any), every guest thread's runtime error, the heap audit, the timing and the
figures. The VM itself prints only what happens *during* a run (a guest thread's runtime
error, as it happens, like CPython's default ``threading.excepthook``); what is said about
the run as a whole — a VM bug, a deadlock, the audit — is the caller's to print, with
``render_outcome`` (the command line and ``minivm.api`` both do, so the text is the same).

Exit status, as ``Py_RunMain`` reports it: 0 success, 1 a runtime error in any thread, a
deadlock, a failed audit or a VM bug, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import dataclasses

from minivm.errors import GuestError, InternalError, format_guest_error, format_internal_error
from minivm.runtime.figures import RunFigures
from minivm.runtime.heap import AuditReport
from minivm.runtime.output import Output

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def is_vm_bug(error: BaseException | None) -> bool:
    """Whether ``error`` (what stopped a run) is a bug of minivm itself rather than a guest
    error: an ``InternalError``, a failed assertion, or any host exception."""
    return isinstance(error, InternalError | AssertionError) or (
        error is not None and not isinstance(error, GuestError)
    )


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """One finished (or interrupted) run.

    * ``exit_status`` — 0, 1 or 130 (see the module's docstring);
    * ``stop_error`` — what stopped every thread: a deadlock or the main thread's runtime
      error (``GuestError``), a VM bug (any other exception), or ``None``;
    * ``errors`` — the ``GuestError`` of every failed thread, in thread order, then a deadlock;
    * ``audit`` — the ``--heap-check`` report, ``None`` when not asked or not reached;
    * ``interrupted`` — the run was stopped by Ctrl-C;
    * ``figures`` — every count, and when the run started and ended (ns).
    """

    exit_status: int
    stop_error: BaseException | None
    errors: tuple[GuestError, ...]
    audit: AuditReport | None
    interrupted: bool
    figures: RunFigures

    @property
    def vm_bug(self) -> BaseException | None:
        """The exception of a bug of minivm itself that stopped the run, or ``None``."""
        return self.stop_error if is_vm_bug(self.stop_error) else None

    @property
    def deadlock(self) -> GuestError | None:
        """The deadlock error that stopped the run, or ``None``."""
        error = self.stop_error
        if isinstance(error, GuestError) and error.message.startswith("deadlock"):
            return error
        return None

    @property
    def wall_s(self) -> float:
        """Seconds from the first instruction's thread start to the end of the last thread."""
        return self.figures.wall_ns / 1e9


def render_outcome(outcome: RunOutcome, errors: Output) -> None:
    """Print what is said about a run as a whole on ``errors``, as ``minivm run`` prints it:
    a VM bug (and nothing else), or a deadlock (with its threads' call chains and their
    lines) and then the heap audit's line. Runtime errors of guest threads were
    printed while the run went on and are not repeated."""
    bug = outcome.vm_bug
    if bug is not None:
        errors.write_line(format_internal_error(bug))
        errors.flush()
        return
    if outcome.deadlock is not None:
        errors.write_line(format_guest_error(outcome.deadlock))
    if outcome.audit is not None:
        errors.write_line(outcome.audit.describe())
    errors.flush()
