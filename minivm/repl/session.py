"""A VM that lives across inputs: the REPL's machine, whose main thread runs one input at a time.

Design note
-----------
* **One VM for the whole session.** A run of the front door (``minivm.api``) runs one
  program and waits for every thread; a session instead keeps one VM — its globals, heap,
  GIL and spawned threads — for as long as the prompt is open. It is built by
  ``minivm.api.prepare`` with no program, as every run is built, and driven here through
  ``Run.machine``, input by input. Each input is compiled on its own (a top-level ``let``
  or ``fn`` compiles to ``DEFINE_GLOBAL``, so it defines or *redefines* a global, as a rebinding
  at Python's prompt does) and run by the main thread, thread 0.
* **The main thread at the prompt is asleep, not blocked.** Between inputs thread 0 gives the
  GIL up exactly as ``sleep()`` does: state ``sleeping``, the policy's ``release``. So threads
  spawned at the prompt run under the GIL while the person types, under every policy, and the
  deadlock detector (which fires only when *every* live thread is blocked) never counts the
  prompt as a block: the person may still release a lock or end a wait with the next input.
  For the same reason a deadlock that includes an input's ``join`` or ``acquire`` fails that
  input only (``Scheduler.prompt_thread``): the other threads stay blocked, not stopped.
  When an input arrives thread 0 wakes as a sleeper does: ``running``, then ``GIL.acquire``,
  waiting its turn like anyone else.
* **Each input runs on a fresh host thread** (as ``Run.start`` runs the main thread), so
  the host's own main thread stays free to read Ctrl-C: an interrupt sets
  ``GuestThread.interrupt`` and the running input stops at its next check with the guest error
  ``interrupted (Ctrl-C)``, its call chain showing where it was. A thread blocked in ``join``
  or ``acquire`` reaches no check; a second Ctrl-C then ends the session (``abort``).
* **Leaving** ends thread 0 (``Scheduler.finish``): as at the end of a program, the session
  then waits for the threads still running, and the deadlock detector watches them. A
  thread that fails during that wait, or a deadlock, makes the session's exit status 1, as
  it would a run's; errors shown at the prompt before leaving do not (as at Python's).
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import attrs

from minivm import api
from minivm.bytecode.code import CodeObject
from minivm.errors import GuestError, ThreadAbort, format_guest_error
from minivm.runtime.interpreter import execute, make_frame
from minivm.runtime.threads import DONE, RUNNING, SLEEPING
from minivm.runtime.values import UNSET


@attrs.define
class Outcome:
    """What one input did: its ``value`` (the final expression's, or nil), or the guest
    ``error`` it stopped with; ``aborted`` when the whole VM was stopped meanwhile."""

    value: object = None
    error: GuestError | None = None
    aborted: bool = False


class Session:
    """One long-lived VM whose main thread runs inputs one at a time.

    ``settings`` configure the VM as ``minivm run``'s options do (the keyword settings of
    ``minivm.api.prepare``: policy, intervals, ...); ``stdout``/``stderr`` receive the guest's
    output and the errors of spawned threads (default: the process's own). Raises
    ``ValueError`` for a bad setting (as ``prepare`` does).
    """

    def __init__(self, settings: dict | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None):  # fmt: skip
        prepared = api.prepare(None, stdout=stdout or sys.stdout, stderr=stderr or sys.stderr, **(settings or {}))
        self.machine = prepared.machine
        self.main = self.machine.scheduler.new_main([])  # takes the GIL, as at any start
        self.machine.main = self.main
        self.machine.scheduler.prompt_thread = self.main
        self._to_prompt()
        self.inputs = 0

    # -- the main thread between inputs
    def _to_prompt(self) -> None:
        """Thread 0 leaves the GIL and sleeps at the prompt (see the design note)."""
        machine, main = self.machine, self.main
        with machine.gil.mutex:
            main.state = SLEEPING
            main.frames = []
            machine.check.account(main)
            if machine.gil.holder is main or not machine.policy.uses_gil:
                machine.policy.release(machine.gil, main, "blocking")

    def _from_prompt(self) -> None:
        """Thread 0 wakes for an input and waits for the GIL like any other thread."""
        machine = self.machine
        with machine.gil.mutex:
            self.main.state = RUNNING
        machine.gil.acquire(self.main)
        machine.check.refill(self.main)

    # -- running inputs
    def name_input(self) -> str:
        """The file name of the next input, as errors and call chains show it: ``<input-N>``."""
        return f"<input-{self.inputs + 1}>"

    def count_input(self) -> None:
        """Count an input (named by ``name_input``). Its code objects keep its source, so
        call chains through its functions quote their lines with no table kept here."""
        self.inputs += 1

    def run(self, code: CodeObject) -> Outcome:
        """Run ``code`` on the main thread and return its ``Outcome``. A first Ctrl-C
        (``KeyboardInterrupt`` on the host's main thread) interrupts the input at its next
        check; a second one, if the input has not stopped, stops the whole VM."""
        outcome = Outcome()
        done = threading.Event()
        self.main.interrupt = False

        def body() -> None:
            try:
                self._from_prompt()
                self.main.frames = [make_frame(code, None, [UNSET] * len(code.local_names))]
                outcome.value = execute(self.machine, self.main)
            except GuestError as error:
                outcome.error = error
            except ThreadAbort:
                outcome.aborted = True
            except BaseException as error:  # a bug of minivm: stop the VM, say so
                outcome.aborted = True
                self.machine.abort(error)
            finally:
                try:
                    if not self.machine.aborting:
                        self._to_prompt()
                finally:
                    done.set()

        # The host's default stack, as for every guest thread (runtime/machine.py): nothing
        # the VM does on a guest thread recurses on the host.
        host = threading.Thread(target=body, name="minivm-0", daemon=True)
        host.start()
        self.main.host_ident = host.ident
        interrupts = 0
        while True:
            try:
                while not done.wait(0.05):
                    pass
                return outcome
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    self.interrupt()
                else:
                    self.abort()

    def interrupt(self) -> None:
        """Ask the running input to stop at its next check (Ctrl-C)."""
        self.main.interrupt = True

    # -- the end
    def close(self) -> bool:
        """End thread 0 and wait for the threads still running; True if that wait ended in a
        runtime error (a deadlock, an error in a thread), which is then written to standard
        error. ``KeyboardInterrupt``, from Ctrl-C during the wait, stops them all and is
        passed on."""
        machine = self.machine
        failed_before = self._failed_threads()
        if not machine.aborting and self.main.state != DONE:
            machine.scheduler.finish(self.main)
        try:
            while not machine.finished.wait(0.05):
                pass
        except KeyboardInterrupt:
            machine.abort(None)
            raise
        finally:
            with machine.gil.mutex:
                machine.host.restore()
            machine.output.flush()
            error = machine.abort_error
            if isinstance(error, GuestError):
                machine.errors.write_line(format_guest_error(error))
            machine.errors.flush()
        return isinstance(error, GuestError) or self._failed_threads() > failed_before

    def _failed_threads(self) -> int:
        return sum(1 for thread in self.machine.scheduler.threads if thread.error is not None)

    def abort(self) -> None:
        """Stop every thread at once (a second Ctrl-C while an input cannot be interrupted)."""
        self.machine.abort(None)
