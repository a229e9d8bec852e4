"""``minivm debug FILE``: the command loop, in pdb's and gdb's words.

Design note
-----------
* **Two sides.** The program is one run of the front door (``minivm.api.prepare``, with the
  controller as its event sink and the manual policy as ``control=``), started and waited
  for on a thread of its own; the person's
  commands are read here, on the host's main thread, by the standard library's ``cmd`` (pdb is
  built on it too). A command that lets the program go on (``step``, ``next``, ``continue``,
  ``run T`` at a check) resumes the halted thread and waits for the next stop
  (``controller.py``); every other command only reads the held world (``inspect.py``)
  through ``Run.machine``: threads, frames and the heap are what a debugger shows.
* **The person is the scheduler.** The VM runs under ``gil/manual.py``'s policy: ``fifo``
  until ``run T`` names the next holder or ``schedule manual`` makes every check a question
  (gdb's scheduler-locking; The Deadlock Empire's game).
* **Scripts.** When standard input is not a terminal every command is echoed after its
  prompt, so a piped session reads like a typed one and tests compare whole transcripts.
  Unknown commands and bad arguments get a one-line answer, never a traceback.
"""

from __future__ import annotations

import cmd
import sys
import threading

from minivm import api
from minivm.debug import inspect
from minivm.debug.controller import Controller, Stop
from minivm.errors import format_internal_error
from minivm.gil.manual import ManualPolicy
from minivm.runtime.interpreter import FRAME_CODE, FRAME_PC
from minivm.runtime.threads import DONE
from minivm.runtime.values import to_repr
from minivm.schedule.model import program_hash
from minivm.source import SourceFile

PROMPT = "(mdb) "


class Debugger(cmd.Cmd):
    """The command loop over one debugged ``program`` (``minivm.api.Program``), its checks
    every ``check_interval`` ticks; the GIL follows ``fifo`` order until the person chooses.
    ``stdin``/``stdout``: where commands are read and answers (and the program's output) go
    (default: the process's own). Raises ``ValueError`` for a check interval below 1."""

    def __init__(self, program: api.Program, check_interval: int = 100, stdin=None, stdout=None):
        stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
        self.interactive = stdin.isatty() and stdout.isatty()
        super().__init__(stdin=stdin, stdout=stdout)
        self.use_rawinput = self.interactive
        self.prompt = PROMPT if self.interactive else ""
        code, file, text = program.code, program.filename, program.source
        self.code, self.file = code, file
        # The lines to list: the file the code was compiled from (split once, there).
        self.lines = (code.source or SourceFile(file, text)).lines
        self.program_hash = program_hash(text)
        self.controller = Controller(file)
        self.policy = ManualPolicy(self.controller.ask)
        self.run = api.prepare(
            program, policy="fifo", check_interval=check_interval, stdout=stdout, stderr=sys.stderr,
            events=self.controller, control=self.policy,
        )  # fmt: skip
        # The VM itself: the debugger shows its threads, frames and heap, and records its turns.
        self.machine = self.run.machine
        self.controller.recorder.attach(self.machine)
        self.status: int | None = None
        self.stop: Stop | None = None
        self.selected = 0

    # -- running the program
    def start(self) -> None:
        """Start the program; it halts before its first instruction."""

        def runner() -> None:
            try:
                self.status = self.run.start().wait().exit_status
            except Exception as bug:  # a bug of minivm itself: say so, as minivm run does
                self.machine.errors.write_line(format_internal_error(bug))
                self.status = self.run.result.exit_status
            finally:
                self.controller.end()

        threading.Thread(target=runner, name="minivm-debuggee", daemon=True).start()
        self._await_stop()
        self.controller.take_notes()  # the start-up's own (thread 0 takes the GIL)
        self.controller.write_note = lambda note: self.say(f"  -- {note}")

    def _await_stop(self) -> None:
        self.stop = self.controller.wait()
        self.machine.output.flush()
        if self.stop is None:
            self._ended()
            return
        self.selected = self.stop.thread.tid

    def _ended(self) -> None:
        while self.status is None:
            threading.Event().wait(0.01)
        for note in self.controller.take_notes():
            self.say(f"  -- {note}")
        self.say(f"the program ended (exit status {self.status})")

    def _resume(self, mode: str, steps: int = 1) -> None:
        if self.stop is None:
            self.say("the program has ended (quit to leave)")
            return
        if self.stop.kind == "release":  # the releaser is blocked: follow the next holder
            self.selected = (self.stop.answer or self.stop.candidates[0]).tid
        thread = self._thread(self.selected)
        frame = thread.frames[-1] if thread is not None and thread.frames else None
        next_from = (len(thread.frames), frame[FRAME_CODE].line_of(frame[FRAME_PC])) if frame else (0, 0)
        self.controller.resume(mode, self.selected, steps, next_from)
        self._await_stop()
        if self.stop is not None:
            self._show_stop()

    def _show_stop(self) -> None:
        stop = self.stop
        assert stop is not None
        for note in self.controller.take_notes():
            self.say(f"  -- {note}")
        if stop.kind == "release":
            names = ", ".join(f"thread {t.tid}" for t in stop.candidates)
            self.say(f"the GIL is free: who runs next? waiting: {names} (run T; step takes the first)")
            return
        self.say(f"thread {stop.thread.tid} {self._where_line(stop.thread)}")
        if stop.kind == "check":
            names = ", ".join(f"thread {t.tid}" for t in stop.candidates[1:])
            self.say(f"check: thread {stop.thread.tid} holds the GIL, waiting: {names} "
                     f"(step keeps thread {stop.thread.tid}, run T switches)")  # fmt: skip

    def _where_line(self, thread) -> str:
        frame = thread.frames[-1]
        code, pc = frame[FRAME_CODE], frame[FRAME_PC]
        line = code.line_of(pc)
        text = self.lines[line - 1].strip() if code.file == self.file and 0 < line <= len(self.lines) else ""
        return f"at {code.file}:{line} in {code.display_name}, {inspect.instruction_text(code, pc)}\n    {text}"

    # -- helpers
    def say(self, text: str) -> None:
        """One answer line (or several), in order with the program's own output."""
        self.machine.output.write_line(text)
        self.machine.output.flush()

    def _thread(self, tid: int):
        return next((t for t in self.machine.scheduler.threads if t.tid == tid), None)

    def _selected_frame(self):
        thread = self._thread(self.selected)
        if thread is None or not thread.frames:
            return None
        return thread.frames[-1]

    @staticmethod
    def _count(arg: str, default: int | None = None) -> int | None:
        if not arg.strip() and default is not None:
            return default
        try:
            value = int(arg.strip().replace("_", ""))
        except ValueError:
            return None
        return value if value >= 0 else None

    # -- cmd's hooks
    def precmd(self, line: str) -> str:
        if not self.interactive and line != "EOF":
            self.say((PROMPT + line).rstrip())
        return line

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except Exception as error:  # a bug of the debugger must not end the session
            self.say(f"error: {error}")
            return False

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> bool:
        self.say(f"unknown command '{line.split()[0]}' (try help)")
        return False

    # -- going on
    def do_step(self, arg: str) -> bool:
        """step [N]: run N instructions (default 1) of the selected thread, then stop."""
        steps = self._count(arg, 1)
        if not steps:
            self.say(f"usage: step [N] (N a whole number, at least 1), not {arg.strip()!r}")
            return False
        self._resume("step", steps)
        return False

    def do_next(self, arg: str) -> bool:
        """next: run the selected thread to its next line (over calls), then stop."""
        if arg.strip():
            self.say("usage: next (no arguments)")
            return False
        self._resume("next")
        return False

    def do_continue(self, arg: str) -> bool:
        """continue: run until a breakpoint, a question of schedule manual, or the end."""
        if arg.strip():
            self.say("usage: continue (no arguments)")
            return False
        self._resume("continue")
        return False

    do_s, do_n, do_c = do_step, do_next, do_continue

    # -- breakpoints
    def _function_names(self) -> set[str]:
        names, todo = set(), [self.code]
        while todo:
            code = todo.pop()
            names.add(code.name)
            todo.extend(code.nested())
        return names

    def do_break(self, arg: str) -> bool:
        """break LINE | break FUNC: stop when any thread reaches that line or enters that
        function; break alone lists the breakpoints."""
        where = arg.strip()
        control = self.controller
        if not where:
            shown = [f"line {n}" for n in sorted(control.break_lines)] + sorted(control.break_functions)
            self.say("breakpoints: " + (", ".join(shown) if shown else "none"))
        elif where.isdigit():
            line = int(where)
            if not 1 <= line <= len(self.lines):
                self.say(f"no line {line} in {self.file} (it has {len(self.lines)} lines)")
            else:
                control.break_lines.add(line)
                self.say(f"breakpoint at {self.file}:{line}")
        elif where in self._function_names() and where != "<main>":
            control.break_functions.add(where)
            self.say(f"breakpoint at function {where}")
        else:
            self.say(f"usage: break LINE or break FUNC (no function named {where!r})")
        return False

    def do_clear(self, arg: str) -> bool:
        """clear [LINE | FUNC]: remove one breakpoint, or all of them."""
        where = arg.strip()
        control = self.controller
        if not where:
            control.break_lines.clear()
            control.break_functions.clear()
            self.say("all breakpoints cleared")
        elif where.isdigit() and int(where) in control.break_lines:
            control.break_lines.discard(int(where))
            self.say(f"breakpoint at line {where} cleared")
        elif where in control.break_functions:
            control.break_functions.discard(where)
            self.say(f"breakpoint at function {where} cleared")
        else:
            self.say(f"no breakpoint at {where!r}")
        return False

    do_b = do_break

    # -- looking
    def do_threads(self, arg: str) -> bool:
        """threads: every thread: id, state, locks held, function and line (* selected)."""
        for line in inspect.threads_text(self.machine, self.selected):
            self.say(line)
        return False

    def do_thread(self, arg: str) -> bool:
        """thread N: select thread N for where, locals, print, list, dis and step."""
        tid = self._count(arg)
        if tid is None or self._thread(tid) is None:
            self.say(f"usage: thread N (one of: {', '.join(str(t.tid) for t in self.machine.scheduler.threads)})")
            return False
        self.selected = tid
        thread = self._thread(tid)
        where = inspect.place(thread) if thread.state != DONE else ""
        self.say(f"thread {tid}: {inspect.state(thread)}  {where}".rstrip())
        return False

    def do_where(self, arg: str) -> bool:
        """where: the selected thread's call chain, outermost first."""
        thread = self._thread(self.selected)
        if thread is None or not thread.frames:
            self.say(f"thread {self.selected} has no frames")
            return False
        for depth, frame in enumerate(thread.frames):
            code, pc = frame[FRAME_CODE], frame[FRAME_PC]
            mark = ">" if depth == len(thread.frames) - 1 else " "
            self.say(f"{mark} {code.file}:{code.line_of(pc)} in {code.display_name}")
        return False

    do_bt = do_backtrace = do_where

    def do_locals(self, arg: str) -> bool:
        """locals: the selected frame's variables (captured ones too) and its value stack."""
        frame = self._selected_frame()
        if frame is None:
            self.say(f"thread {self.selected} has no frames")
            return False
        variables = inspect.frame_variables(frame)
        for name, value in variables:
            self.say(f"{name} = {to_repr(value)}")
        if not variables:
            self.say("no variables set")
        self.say(f"stack: {inspect.stack_text(frame)}")
        return False

    def do_print(self, arg: str) -> bool:
        """print EXPR: the value of a minivm expression in the selected frame (it only looks)."""
        if not arg.strip():
            self.say("usage: print EXPR")
            return False
        try:
            self.say(to_repr(inspect.evaluate(arg, self._selected_frame(), self.machine)))
        except ValueError as error:
            self.say(f"cannot print: {error}")
        return False

    do_p = do_print

    def do_list(self, arg: str) -> bool:
        """list: the source around the selected thread's line."""
        frame = self._selected_frame()
        if frame is None or frame[FRAME_CODE].file != self.file:
            self.say(f"no source to show for thread {self.selected}")
            return False
        line = frame[FRAME_CODE].line_of(frame[FRAME_PC])
        for number in range(max(1, line - 5), min(len(self.lines), line + 5) + 1):
            mark = "->" if number == line else "  "
            self.say(f"{number:4d} {mark} {self.lines[number - 1]}".rstrip())
        return False

    do_l = do_list

    def do_dis(self, arg: str) -> bool:
        """dis: the bytecode around the selected thread's next instruction."""
        frame = self._selected_frame()
        if frame is None:
            self.say(f"thread {self.selected} has no frames")
            return False
        code, pc = frame[FRAME_CODE], frame[FRAME_PC]
        for offset in range(max(0, pc - 5), min(len(code.instructions), pc + 6)):
            mark = "-->" if offset == pc else "   "
            self.say(f"{mark} {code.line_of(offset):4d}  {inspect.instruction_text(code, offset)}")
        return False

    def do_heap(self, arg: str) -> bool:
        """heap: every live object: id, kind, reference count, value."""
        for line in inspect.heap_text(self.machine):
            self.say(line)
        return False

    def do_gil(self, arg: str) -> bool:
        """gil: holder, waiters in order, ticks left until the check, the policy."""
        for line in inspect.gil_text(self.machine, self.policy):
            self.say(line)
        return False

    # -- scheduling
    def do_run(self, arg: str) -> bool:
        """run T: hand the GIL to thread T at the next check (at a check: now)."""
        tid = self._count(arg)
        thread = self._thread(tid) if tid is not None else None
        if thread is None or thread.state == DONE:
            live = [str(t.tid) for t in self.machine.scheduler.threads if t.state != DONE]
            self.say(f"usage: run T (a thread that has not ended: {', '.join(live) or 'none'})")
            return False
        stop = self.stop
        if stop is not None and stop.kind in ("check", "release"):
            if thread not in stop.candidates:
                self.say(f"thread {tid} cannot run now: it is {inspect.state(thread)}")
                return False
            stop.answer = thread
            self.selected = tid
            self._resume("step", 1)
            return False
        self.policy.run_next(tid)
        self.say(f"at the next check the GIL goes to thread {tid}")
        return False

    def do_schedule(self, arg: str) -> bool:
        """schedule manual | schedule fifo: ask who runs next at every check, or stop asking."""
        mode = arg.strip()
        if mode not in ("manual", "fifo"):
            self.say(f"usage: schedule manual|fifo (now: {'manual' if self.policy.asking else 'fifo'})")
            return False
        self.policy.asking = mode == "manual"
        self.say("every check asks who runs next" if mode == "manual" else "checks follow fifo order")
        return False

    def do_record(self, arg: str) -> bool:
        """record FILE: save the schedule so far (who held the GIL for how many instructions)."""
        path = arg.strip()
        if not path:
            self.say("usage: record FILE")
            return False
        paused = self.stop is not None and not self.controller.finished
        schedule = self.controller.recorder.schedule(self.program_hash, stopped=paused)
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(schedule.to_json())
        except OSError as error:
            self.say(f"cannot write {path}: {error.strerror}")
            return False
        self.say(f"schedule recorded to {path}: {len(schedule.turns)} turns, {schedule.instructions} instructions"
                 f"{' (up to this stop)' if paused else ''}; replay: minivm run --replay {path} {self.file}")
        return False

    def do_quit(self, arg: str) -> bool:
        """quit: stop the program and leave."""
        self.controller.quit()
        self.machine.abort(None)
        return True

    do_q = do_quit

    def do_EOF(self, arg: str) -> bool:
        """Ctrl-D: leave, as quit does."""
        return self.do_quit(arg)


def run_debugger(program: api.Program, check_interval: int = 100) -> int:
    """``minivm debug FILE``: debug ``program`` (``minivm.api.compile``'s), its checks every
    ``check_interval`` ticks; returns exit status 0. Ctrl-C stops the program and raises
    ``KeyboardInterrupt`` (the command line says ``minivm: interrupted``, status 130)."""
    debugger = Debugger(program, check_interval)
    debugger.start()
    if debugger.stop is not None:
        debugger.say(f"thread 0 stopped before the first instruction {debugger._where_line(debugger.stop.thread)}")
    try:
        debugger.cmdloop()
    except KeyboardInterrupt:  # a step or continue that does not come back (a long sleep, a join)
        debugger.machine.abort(None)
        raise
    finally:
        debugger.machine.output.flush()
    return 0
