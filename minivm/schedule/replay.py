"""Replay: follow a recorded schedule turn by turn, and say exactly where a run leaves it.

Design note
-----------
* **How.** ``ReplayDirector`` drives a ``ControlledPolicy`` (``control.py``): the thread of
  the current turn gets a budget of exactly the instructions left in its turn; at the
  boundary, the next turn's thread gets the GIL. Turns that ended by blocking or exiting are
  not forced: the thread must block (or end) by itself after exactly that many
  instructions. ``time()`` returns the recorded values in order (``clock``). The policy
  named on the command line plays no part: replay is its own hand-off policy (rr replays a
  recording the same way whatever the kernel scheduler would have done).
* **Divergence** is checked at every step, and the first one is reported (``Divergence``):
  the scheduled thread cannot run (blocked, ended, never spawned); a thread blocks or ends
  at another instruction than in the recording; the program runs past the last turn, or ends
  before it; ``time()`` is called more or fewer times than recorded. Nothing waits for an
  event that cannot come, so a schedule that does not fit never hangs the VM.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from minivm.errors import ThreadAbort
from minivm.runtime.threads import BLOCKED, DONE
from minivm.schedule.control import ControlledPolicy, Director, Divergence
from minivm.schedule.model import END_NAMES, Schedule

if TYPE_CHECKING:
    from minivm.runtime.machine import Machine
    from minivm.runtime.threads import GuestThread

_REASON_END = {"blocking": "b", "exit": "x"}


class ReplayDirector(Director):
    """Follows ``schedule``'s turns; ``index`` is the current turn, ``start`` the holder's
    instruction count when that turn began."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        self.turns = schedule.turns
        self.index = 0
        self.start = 0
        self.times_used = 0
        # Past the stop of a schedule that ends in ``s``: the run goes on undirected.
        self.free = False

    def _go_free(self) -> None:
        self.free = True
        self.index = len(self.turns)

    def _where(self) -> str:
        return f"turn {self.index + 1} of {len(self.turns)}"

    def budget(self, thread: GuestThread) -> int:
        if self.free:
            return 1 << 62
        left = self.start + self.turns[self.index].count - thread.clock.instructions
        return max(1, left)

    def due(self, thread: GuestThread) -> bool:
        if self.free:
            return False
        return thread.clock.instructions - self.start >= self.turns[self.index].count

    def started(self, thread: GuestThread) -> None:
        if self.free:
            return
        turn = self.turns[self.index]
        if thread.tid != turn.thread:  # a bug of the policy, not of the schedule
            raise Divergence(f"{self._where()}: thread {thread.tid} got the GIL, the schedule has thread {turn.thread}")
        self.start = thread.clock.instructions

    def at_boundary(self, thread: GuestThread, candidates: list[GuestThread]) -> GuestThread:
        turn = self.turns[self.index]
        if turn.end == "s":
            self._go_free()
            return thread
        if turn.end != "p":
            raise Divergence(
                f"{self._where()}: thread {thread.tid} ran on past instruction {turn.count} of its "
                f"turn; in the recording it {END_NAMES[turn.end]} there"
            )
        return self._next(thread, candidates)

    def after_release(self, thread: GuestThread, reason: str, candidates: list[GuestThread]) -> GuestThread | None:
        if self.free:
            return candidates[0] if candidates else None
        turn = self.turns[self.index]
        ran = thread.clock.instructions - self.start
        end = _REASON_END.get(reason, "p")
        if turn.end == "s" and ran == turn.count:
            self._go_free()
            return candidates[0] if candidates else None
        if ran != turn.count or end != turn.end:
            raise Divergence(
                f"{self._where()}: thread {thread.tid} {END_NAMES[end]} after {ran} instructions; "
                f"in the recording it ran {turn.count} and {END_NAMES[turn.end]}"
            )
        if self.index + 1 == len(self.turns) and not candidates:
            self.index += 1
            return None
        return self._next(thread, candidates)

    def _next(self, thread: GuestThread, candidates: list[GuestThread]) -> GuestThread:
        if self.index + 1 >= len(self.turns):
            raise Divergence(
                f"the program runs past the end of the schedule (after {len(self.turns)} turns, "
                f"{self.schedule.instructions} instructions): thread {thread.tid} wants to run on"
            )
        self.index += 1
        turn = self.turns[self.index]
        for candidate in candidates:
            if candidate.tid == turn.thread:
                if candidate is thread:
                    self.start = thread.clock.instructions  # the same thread goes on with a new turn
                return candidate
        threads = self.threads
        if turn.thread >= len(threads):
            why = "it was never spawned"
        else:
            target = threads[turn.thread]
            why = {DONE: "it has ended", BLOCKED: f"it {target.waiting_for}"}.get(target.state, target.state)
        raise Divergence(f"{self._where()}: the schedule runs thread {turn.thread}, which cannot run ({why})")

    def clock(self, vm: Machine) -> float:
        """The next recorded ``time()`` value; a divergence if there is none left."""
        if self.times_used >= len(self.schedule.times):
            if self.free or (self.turns and self.turns[-1].end == "s"):
                return time.monotonic()  # past the recording's stop: the real clock
            raise Divergence(
                f"time() was called {self.times_used + 1} times; the recording has {len(self.schedule.times)}"
            )
        value = self.schedule.times[self.times_used]
        self.times_used += 1
        return value

    def finish(self) -> Divergence | None:
        """After the run: a divergence if the program ended before the schedule did."""
        if self.free:
            return None
        last = len(self.turns) - 1
        if self.index < last:
            return Divergence(
                f"the program ended during {self._where()}; the schedule has "
                f"{last - self.index} turn(s) more (next: {self.turns[self.index + 1].describe()})"
            )
        if self.times_used < len(self.schedule.times):
            return Divergence(
                f"time() was called {self.times_used} times; the recording has {len(self.schedule.times)}"
            )
        return None


class Replay:
    """Everything a replayed run needs: the policy to give the machine, and the checks after.

    Use: ``replay = Replay(schedule)``; ``run = minivm.api.prepare(program,
    control=replay.policy, ...)``; ``replay.attach(run.machine)``; ``run.start().wait()``;
    ``replay.divergence()`` is the first divergence or None.
    """

    def __init__(self, schedule: Schedule):
        self.director = ReplayDirector(schedule)
        self.policy = ControlledPolicy(self.director)
        self.policy.name = "replay"

    def attach(self, machine: Machine) -> None:
        """Give ``machine`` the recorded clock (before ``run``)."""

        def clock() -> float:
            try:
                return self.director.clock(machine)
            except Divergence as exc:
                if self.policy.divergence is None:
                    self.policy.divergence = exc
                machine.abort(None)
                raise ThreadAbort from None

        machine.time_source = clock

    def divergence(self) -> Divergence | None:
        """The first point where the run left the schedule, or None if it followed it all."""
        return self.policy.divergence or self.director.finish()
