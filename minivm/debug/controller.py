"""Where a debugged program stops, and how the person's commands let it go on.

Design note
-----------
* **Every instruction passes here.** The controller is the VM's event sink with
  ``wants_instructions`` set, so, as under ``--trace``, the machine gives every thread a tick
  budget of one and calls ``instr`` before each instruction — on the thread about to run it,
  which holds the GIL (pdb's ``sys.settrace`` hook, one level down). Nothing in the dispatch
  loop knows about debugging.
* **A stop holds the world.** To stop, the running thread parks in ``_halt`` *holding the GIL*:
  no other thread can execute an instruction until the person resumes it (threads asleep in
  ``sleep()`` may wake and queue for the GIL; they run only when it is handed to them). The
  stopped thread waits on the controller's own condition, never on the scheduler's mutex,
  and the command loop only reads VM state while the world is held, so inspecting cannot
  deadlock the VM.
* **Stops at a check** come from ``gil/manual.py``: with ``schedule manual`` the policy calls
  ``ask`` at each check where someone waits, and the check's thread halts there until the
  person names who runs next (``run T``). Only ``step`` asks at a check: ``next`` and
  ``continue`` let the holder run on (gdb's ``scheduler-locking step``), while a holder that
  blocks or ends always asks when two or more threads wait. The instruction shown at a check
  stop is not counted again by the ``step`` that follows it.
* **What is recorded.** ``slices`` is the schedule as it happened: ``[thread id, instructions]``
  for each stretch one thread held the GIL, in order. ``notes`` collects what happened while
  the program ran (spawns, blocks, ends, changes of GIL holder), shown at the next stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs

from minivm.errors import ThreadAbort
from minivm.runtime.threads import DONE, GuestThread
from minivm.schedule.record import Recorder


@attrs.define(eq=False)
class Stop:
    """One stop: ``kind`` (``start``, ``step``, ``next``, ``breakpoint``, ``check``,
    ``release``), the ``thread`` that halted, and at a check the ``candidates`` for the GIL
    (holder first); the person's ``answer`` is the thread chosen."""

    kind: str
    thread: GuestThread
    candidates: list[GuestThread] = attrs.Factory(list)
    answer: GuestThread | None = None


class Controller:
    """The debugger's side of the VM: event sink, stop points, and the schedule record."""

    wants_instructions = True

    def __init__(self, file: str):
        self.file = file
        self.cond = threading.Condition()
        self.stop: Stop | None = None
        self.finished = False
        self.quitting = False
        # What makes the next stop: "start" (the first instruction), "step", "next", "continue".
        self.mode = "start"
        self.step_tid = 0
        self.steps_left = 0
        self.next_from = (0, 0)  # (frame depth, line) where ``next`` began
        self.break_lines: set[int] = set()
        self.break_functions: set[str] = set()
        self.slices: list[list[int]] = []
        # The schedule as ``minivm run --record`` writes it (``record FILE``): fed the GIL events.
        self.recorder = Recorder()
        self.notes: list[str] = []
        # Where notes go as they happen, once the command loop has shown the first stop: live,
        # so that they fall in order among the program's own lines (which print as they run).
        self.write_note: Callable[[str], None] | None = None
        self._last: dict[int, tuple[int, int, int]] = {}
        # The thread whose next instruction was already shown at a check stop: not counted.
        self._shown_tid: int | None = None

    # -- the guest's side (called by running threads)
    def instr(self, thread: GuestThread, code, pc: int, opcode: int, arg: object) -> None:
        """Before ``thread`` runs instruction ``pc`` of ``code``: stop if a command says so."""
        tid = thread.tid
        if self.slices and self.slices[-1][0] == tid:
            self.slices[-1][1] += 1
        else:
            self.slices.append([tid, 1])
        line, depth = code.line_of(pc), len(thread.frames)
        place = (depth, line, id(code))
        new_line = self._last.get(tid) != place
        self._last[tid] = place
        if self._shown_tid == tid:
            self._shown_tid = None
            return
        kind = self._stop_kind(thread, depth, line)
        if kind is None and new_line and self._at_breakpoint(code, pc, line):
            kind = "breakpoint"
        if kind is not None:
            self._halt(Stop(kind, thread))

    def _stop_kind(self, thread: GuestThread, depth: int, line: int) -> str | None:
        mode = self.mode
        if mode == "start":
            return "start"
        if mode == "continue":
            return None
        stepped = self._stepped_thread(thread)
        if stepped is None:  # the stepped thread has ended: stop wherever the program goes on
            return mode
        if stepped is not thread:
            return None
        if mode == "step":
            self.steps_left -= 1
            return "step" if self.steps_left <= 0 else None
        start_depth, start_line = self.next_from
        if depth < start_depth or (depth == start_depth and line != start_line):
            return "next"
        return None

    def _stepped_thread(self, thread: GuestThread) -> GuestThread | None:
        if thread.tid == self.step_tid:
            return thread
        for other in thread.vm.scheduler.threads:
            if other.tid == self.step_tid:
                return None if other.state == DONE else other
        return None

    def _at_breakpoint(self, code, pc: int, line: int) -> bool:
        if pc == 0 and code.name in self.break_functions:
            return True
        return code.file == self.file and line in self.break_lines

    def ask(self, holder: GuestThread | None, candidates: list[GuestThread]) -> GuestThread:
        """``ManualPolicy``'s question: who holds the GIL next? The asking thread halts until
        the person answers; no answer keeps the holder (or, at a release, the first waiter)."""
        if holder is not None and self.mode != "step":
            return holder  # next and continue run on: only stepping asks at a check
        stop = Stop("check" if holder is not None else "release", holder or candidates[0], list(candidates))
        self._halt(stop)
        if stop.answer is not None:
            return stop.answer
        return holder if holder is not None else candidates[0]

    def _halt(self, stop: Stop) -> None:
        with self.cond:
            self.stop = stop
            self.cond.notify_all()
            while self.stop is stop and not self.quitting:
                self.cond.wait()
        if self.quitting:
            raise ThreadAbort

    def gil_event(self, kind: str, thread: GuestThread, **fields) -> None:
        """A GIL event: a change of holder becomes a note; the recorder sees every one."""
        self.recorder.receive({"event": kind, "thread": thread.tid, **fields})
        if kind == "gil_acquire" and (not self.slices or self.slices[-1][0] != thread.tid):
            self._note(f"thread {thread.tid} takes the GIL")

    def thread_event(self, kind: str, thread: GuestThread, **fields) -> None:
        """A thread event (spawn, block, wake, exit) becomes a note."""
        if kind == "spawn":
            self._note(f"thread {fields.get('parent', '?')} spawns thread {thread.tid}")
        elif kind == "block":
            self._note(f"thread {thread.tid} blocks: {fields.get('waiting_for', '')}")
        elif kind == "exit":
            self._note(f"thread {thread.tid} ends")

    def _note(self, text: str) -> None:
        if self.write_note is not None:
            self.write_note(text)
        else:
            self.notes.append(text)

    # -- the person's side (called by the command loop)
    def wait(self) -> Stop | None:
        """Wait until the program stops (the ``Stop``) or ends (``None``)."""
        with self.cond:
            while self.stop is None and not self.finished:
                self.cond.wait(0.1)
            return self.stop

    def resume(self, mode: str, step_tid: int = 0, steps: int = 1, next_from=(0, 0)) -> None:
        """Let the stopped thread go on, until what ``mode`` asks for."""
        with self.cond:
            stop = self.stop
            if stop is not None and stop.kind == "check" and stop.answer in (None, stop.thread):
                self._shown_tid = stop.thread.tid
            self.mode, self.step_tid, self.steps_left, self.next_from = mode, step_tid, steps, next_from
            self.stop = None
            self.cond.notify_all()

    def end(self) -> None:
        """The program has ended (the runner calls this)."""
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    def quit(self) -> None:
        """Release every halted thread so that it unwinds (the VM is being aborted)."""
        with self.cond:
            self.quitting = True
            self.stop = None
            self.cond.notify_all()

    def take_notes(self) -> list[str]:
        """The notes gathered since the last call."""
        notes, self.notes = self.notes, []
        return notes
