"""The tick clock: one per guest thread, the single home of its tick budget.

Design note
-----------
* **What it counts.** Every instruction a thread executes is one *tick* (CPython up to 3.1
  counted them in ``_Py_Ticker``; ``sys.setcheckinterval`` set how many ran between two
  checks). A thread's clock holds everything about its ticks: the live countdown the
  engines decrement (``ticks``), the budget it was last given (``budget``), the ticks left
  in the current check period (``until_check``), the instructions run so far
  (``instructions``) and the checks reached (``checks``).
* **Who touches it.** Only the thread itself, while it runs (under a GIL policy: while it
  holds the GIL). The engines keep ``ticks`` in a host local on their hot path and store it
  back here before anything else may read it (a call, a blocking builtin, the check, an
  error); the check (``runtime/check.py``) settles the account and sets the next budget.
  The GIL never calls the clock: a thread refills its own budget once it holds the GIL
  again, as Wren's fiber keeps its own state and only the loop running it touches it.
* **Why a budget and a check period are two numbers.** The budget is how far the loop may
  run before the slow path (the check period, the step limit, a controlled policy's turn,
  or 1 while tracing); the check period is the policy's ``check_interval``. The slow path
  is entered when the budget is spent, and the policy's check runs only when the period is.
"""

from __future__ import annotations


class TickClock:
    """A guest thread's tick accounting (see the module's note).

    Fields, all in ticks (one tick = one executed plain instruction): ``ticks`` the budget
    left (the engines' countdown; may be stored stale while the thread runs), ``budget`` the
    value ``ticks`` had when last accounted, ``until_check`` ticks left in the check period,
    ``instructions`` executed so far, ``checks`` policy checks reached. ``fast_code``: whether
    the interpreter may run fused instructions in this budget (False while tracing, or when
    a check falls inside one).
    """

    __slots__ = (
        "budget", "checks", "fast_code", "fused", "instructions", "period", "thread", "ticks", "until_check",
    )  # fmt: skip

    def __init__(self, thread=None) -> None:
        # The thread this clock belongs to: the compiled tier passes the clock along its guest
        # calls and reaches the thread through it on the rarer paths (the check, builtins).
        self.thread = thread
        self.ticks = 0
        self.budget = 0
        self.until_check = 0
        self.instructions = 0
        self.checks = 0
        self.fast_code = True
        # The check period and whether fused code may run, as of the last ``start_period``:
        # the check under ``none`` reads them here rather than from the machine's shared
        # config (``check.unlocked_check``).
        self.period = 0
        self.fused = True

    def account(self) -> int:
        """Count the ticks spent since the budget was last set or accounted; returns them.
        The engine must have stored its countdown in ``ticks`` first."""
        spent = self.budget - self.ticks
        self.budget = self.ticks
        self.instructions += spent
        self.until_check -= spent
        return spent

    def unaccounted(self) -> int:
        """Ticks spent since the last ``account`` (read without changing anything, e.g. by a
        schedule recorder looking at a paused thread)."""
        return self.budget - self.ticks

    def start_period(self, check_interval: int, fused: bool = True) -> None:
        """A new check period of ``check_interval`` ticks starts now (a fresh holder of the
        GIL, or a check just made, whether or not the GIL changed hands); ``fused``: whether
        the interpreter may run fused instructions in it."""
        self.until_check = self.period = check_interval
        self.fused = fused

    def give(self, budget: int, fast_code: bool) -> None:
        """Set the next budget: the loop may run ``budget`` ticks before the slow path (0: it
        enters the slow path before its next instruction, as a traced thread does)."""
        self.budget = self.ticks = budget
        self.fast_code = fast_code

    def __repr__(self) -> str:
        return f"<clock {self.ticks}/{self.budget} ticks, {self.until_check} to the check>"
