"""The host under the guest: keeping the host interpreter's own lock out of minivm's way.

Design note
-----------
minivm's guest threads are host threads. On a host CPython with a GIL, a guest thread that
wants to wake up (after ``sleep``, a hand-off, a ``timed`` wait that timed out) first needs the
*host's* lock, which a spinning guest thread gives up only every ``sys.getswitchinterval()``
seconds (5 ms by default; ``Python/ceval_gil.c``'s ``interval``). Left alone, every modelled
time — switch intervals, wake-ups, the ``ticks`` battle — would be rounded up to the host's
5 ms, and the figures a user reads would be the host's GIL at work, not minivm's.

So while two or more guest threads are alive, the host is told to switch far more often
(``HOST_SWITCH_INTERVAL_S``, measured in docs/gil.md: at 1e-5 s minivm's waits follow its own
switch interval within a few percent, at no measurable single-thread cost, since with one
thread alive the host's value is restored). Under ``none`` the interval is lower still, so
that the unguarded heap's races really happen. ``--host-switch-interval`` overrides both.

On a free-threaded host (``sys._is_gil_enabled()`` false) there is no host lock and the
setting changes nothing; it is still applied and restored, so the two hosts run one code path.
"""

from __future__ import annotations

import sys
import sysconfig

# Seconds between the host's forced switches while 2+ guest threads are alive.
HOST_SWITCH_INTERVAL_S = 1e-5
# Under ``none``: switch as often as the host allows, so unguarded races happen.
NO_GIL_HOST_SWITCH_INTERVAL_S = 1e-6


def host_has_gil() -> bool:
    """Whether the host CPython runs with its own GIL (False on a free-threaded build with
    the GIL disabled, e.g. ``python3.13t``)."""
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


def describe_host(switch_interval_s: float) -> dict:
    """The host as statistics report it: ``python`` (version), ``implementation``,
    ``free_threaded_build``, ``gil`` (whether the host lock is on) and
    ``switch_interval_s`` (the host interval in effect while threads ran, seconds)."""
    return {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gil": host_has_gil(),
        "switch_interval_s": switch_interval_s,
    }


class HostSwitching:
    """Sets the host's switch interval while 2+ guest threads are alive and restores the
    host's own value when one is left (and at the end of the run, whatever happened).

    ``interval_s`` is the interval to use (seconds); ``None`` picks the default for the
    policy (``uses_gil`` false: ``NO_GIL_HOST_SWITCH_INTERVAL_S``). Called by the scheduler
    with its mutex held, so the count of live threads and the setting change together.
    Raises ``ValueError`` for an interval that is not positive.
    """

    def __init__(self, interval_s: float | None, uses_gil: bool = True):
        if interval_s is None:
            interval_s = HOST_SWITCH_INTERVAL_S if uses_gil else NO_GIL_HOST_SWITCH_INTERVAL_S
        if not interval_s > 0:
            raise ValueError("the host switch interval must be a positive number of seconds")
        self.interval_s = interval_s
        self.saved_s: float | None = None
        # The interval in effect while guest threads shared the host (for statistics).
        self.in_effect_s = sys.getswitchinterval()

    @property
    def active(self) -> bool:
        """Whether minivm's interval is in force now."""
        return self.saved_s is not None

    def threads_alive(self, count: int) -> None:
        """The number of live guest threads changed to ``count``."""
        if count >= 2 and self.saved_s is None:
            self.saved_s = sys.getswitchinterval()
            sys.setswitchinterval(self.interval_s)
            self.in_effect_s = sys.getswitchinterval()
        elif count < 2:
            self.restore()

    def restore(self) -> None:
        """Put the host's own interval back (idempotent)."""
        if self.saved_s is not None:
            sys.setswitchinterval(self.saved_s)
            self.saved_s = None
