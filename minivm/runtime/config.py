"""A run's configuration: every setting the command line's VM options give, validated once.

``VMConfig`` is plain data (the ``minivm run`` options of the same names, in ticks and
seconds); ``validate`` is where a bad setting is refused, before anything is built, so the
rest of the VM can trust the fields. The settings mirror CPython's own knobs:
``check_interval`` is ``sys.setcheckinterval`` (CPython 2, 3.0-3.1), ``switch_interval``
``sys.setswitchinterval`` (3.2+, the ``timed`` policy), ``recursion_limit``
``sys.setrecursionlimit``.
"""

from __future__ import annotations

import dataclasses

# Where the check may fall: after any instruction, or only at a function's entry and backward
# jumps (CPython 3.10+'s eval breaker placement).
CHECK_PLACEMENTS = ("every", "backedge")


# The longest span, in seconds, a setting may name: as ``sleep()``'s limit (about 31 years), and
# well inside what the host's timed waits accept (``threading.TIMEOUT_MAX``, 2**63 ns on Linux).
MAX_SECONDS = 1_000_000_000


def seconds_value(name: str, seconds: float) -> float:
    """``seconds`` if it is a usable span for setting ``name``; ``ValueError`` unless it is
    greater than 0 and at most ``MAX_SECONDS`` (nan and infinity are neither)."""
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"the {name} must be greater than 0 and at most {MAX_SECONDS:,} seconds, got {seconds}")
    return seconds


def check_interval_value(interval: int) -> int:
    """``interval`` (ticks) if it is a valid check interval; ``ValueError`` below 1."""
    if interval < 1:
        raise ValueError("the check interval must be at least 1")
    return interval


@dataclasses.dataclass(slots=True)
class VMConfig:
    """Everything a run can be configured with (the command line's options).

    Intervals: ``check_interval`` in ticks (instructions), ``switch_interval`` and
    ``host_switch_interval`` in seconds. ``validate`` raises ``ValueError`` for a setting no
    VM can run with; ``Machine`` calls it once, at construction.
    """

    policy: str = "ticks"
    check_interval: int = 100
    switch_interval: float = 0.005
    recursion_limit: int = 1000
    max_steps: int | None = None
    max_threads: int = 10_000
    heap_check: bool = False
    # Where the check may fall: "every" instruction (the contract's tick), or only at a
    # function's entry and backward jumps ("backedge", CPython 3.10+'s eval breaker).
    check_at: str = "every"
    # Seconds between the host's own thread switches while 2+ guest threads are alive
    # (None: minivm's default for the policy; see runtime/host.py).
    host_switch_interval: float | None = None
    # Run on the plain instructions even where fused ones exist (tracing always does).
    fused: bool = True
    # auto, interp or compiled (see runtime/engine.py).
    engine: str = "auto"

    def validate(self) -> VMConfig:
        """Check the settings that the option parser does not (callers of the Python API and
        tests build configs directly); returns ``self``. Raises ``ValueError`` for a check
        interval below 1, a switch interval that is not a usable span (``seconds_value``), a
        recursion, step or thread limit below 1 (a run could not even start: the command
        line's ``positive_int`` refuses them too) or an unknown check placement. The policy
        and engine names are checked where they are looked up (``make_policy``,
        ``choose_engine``)."""
        check_interval_value(self.check_interval)
        for name, limit in (("recursion limit", self.recursion_limit), ("step limit", self.max_steps),
                            ("thread limit", self.max_threads)):  # fmt: skip
            if limit is not None and limit < 1:
                raise ValueError(f"the {name} must be at least 1, got {limit}")
        seconds_value("switch interval", self.switch_interval)
        if self.host_switch_interval is not None:
            seconds_value("host switch interval", self.host_switch_interval)
        if self.check_at not in CHECK_PLACEMENTS:
            raise ValueError(f"unknown check placement '{self.check_at}' (choose from: every, backedge)")
        return self
