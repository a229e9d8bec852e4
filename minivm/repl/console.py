"""The REPL's prompt: read an input, run it in the session, print its value or its error.

Design note
-----------
* **Like Python's prompt.** ``>>>`` asks for an input, ``...`` for more of an unfinished one.
  "Unfinished" is decided by the parser itself (``frontend.parser.is_incomplete``): an input
  that ran out where the grammar wanted more (an open ``{``, a missing ``;``) continues; any
  other mistake is reported at once, as Python's ``codeop`` tells "incomplete" from "wrong".
  An empty line inside an unfinished input gives up and shows the error, so nobody is stuck.
* **Values** of a final expression statement are printed as a value inside a list is
  (strings quoted: ``"a"``), nothing for ``nil``, as Python's REPL prints ``repr``.
* **Errors** go to standard error: syntax errors with ``<input-N>:line:col``, the line and a
  caret; runtime errors with their thread and call chain. The session goes on.
* **Colon commands** (``:dis``, ``:policy``, ``:check-interval``, ``:help``, ``:quit``) cannot
  be minivm code, since no statement starts with ``:``.
* **Scripts.** When standard input is not a terminal, lines are read one by one and every
  prompt is echoed with its line on standard output, so a session piped in reads like one
  typed. On a terminal the standard library's ``readline`` (if present) gives line editing
  and history for the session.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TextIO

from minivm import api
from minivm.bytecode.code import CodeObject
from minivm.bytecode.disasm import disassemble
from minivm.errors import GuestError, SourceError, format_guest_error, format_internal_error, format_source_error
from minivm.frontend.parser import is_incomplete
from minivm.gil.policies import check_policy_name
from minivm.repl.session import Session
from minivm.runtime.values import to_repr

PROMPT, MORE = ">>> ", "... "
EXIT_OK, EXIT_RUNTIME, EXIT_INTERRUPTED = 0, 1, 130
HELP = """\
Type statements and expressions; a block may go on over several lines.
  :dis                 the bytecode of the last input
  :policy [NAME]       show or change the lock policy (ticks, fifo, timed, priority, none)
  :check-interval [N]  show or change the ticks between checks
  :help                this text
  :quit                leave (or Ctrl-D); Ctrl-C cancels an input or interrupts a running one"""


class Console:
    """The read-run-print loop over one ``Session``.

    ``interactive``: read with ``input()`` (a terminal, readline history); otherwise read
    ``stdin`` line by line and echo each prompt and line on ``stdout``.
    """

    def __init__(self, session: Session, stdin: TextIO, stdout: TextIO, stderr: TextIO,
                 interactive: bool):  # fmt: skip
        self.session = session
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.interactive = interactive
        self.last_code: CodeObject | None = None
        if interactive:
            with contextlib.suppress(ImportError):  # platforms without readline
                import readline  # noqa: F401  (installs line editing and history for input())

    # -- reading
    def read_line(self, prompt: str) -> str | None:
        """One line without its line break, or ``None`` at the end of input (Ctrl-D)."""
        if self.interactive:
            try:
                return input(prompt)
            except EOFError:
                self.say("")
                return None
        line = self.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\n").rstrip("\r")
        self.say((prompt + line).rstrip(" "))
        return line

    def say(self, text: str) -> None:
        """A line of the REPL's own on standard output, in order with the guest's lines."""
        self.session.machine.output.write_line(text)
        self.session.machine.output.flush()

    def complain(self, text: str) -> None:
        """An error on standard error, after everything already printed."""
        self.session.machine.output.flush()
        self.session.machine.errors.write_line(text)
        self.session.machine.errors.flush()

    # -- the loop
    def loop(self) -> int:
        """Read, run and print until ``:quit`` or the end of input; returns the exit status
        (0, or 130 when Ctrl-C stopped the whole VM)."""
        buffer: list[str] = []
        while True:
            try:
                line = self.read_line(MORE if buffer else PROMPT)
            except KeyboardInterrupt:
                self.say("\nKeyboardInterrupt" if self.interactive else "KeyboardInterrupt")
                buffer = []
                continue
            if line is None:
                if buffer:  # the input ended unfinished: show what is missing
                    self.run_input("\n".join(buffer) + "\n")
                break
            if not buffer and line.strip().startswith(":"):
                if self.command(line.strip()) == "quit":
                    break
                continue
            buffer.append(line)
            source = "\n".join(buffer) + "\n"
            if not source.strip():
                buffer = []
                continue
            if is_incomplete(source) and not (len(buffer) > 1 and not line.strip()):
                continue
            buffer = []
            if self.run_input(source) == "aborted":
                return self.stopped()
        try:
            failed = self.session.close()
        except KeyboardInterrupt:
            self.complain("minivm: interrupted")
            return EXIT_INTERRUPTED
        # Threads left running that then fail or deadlock end the session as they end a run.
        return EXIT_RUNTIME if failed else EXIT_OK

    def stopped(self) -> int:
        """Say why the whole VM was stopped during an input, as ``minivm run`` would, and
        return the session's exit status: the reader of standard output went away (``| head``:
        quietly, 0), a bug of minivm (1), or a second Ctrl-C (130)."""
        machine = self.session.machine
        if machine.output.closed:
            return EXIT_OK
        error = machine.abort_error
        if isinstance(error, GuestError):
            self.complain(format_guest_error(error))
            return EXIT_RUNTIME
        if error is not None:
            self.complain(format_internal_error(error))
            return EXIT_RUNTIME
        self.complain("minivm: interrupted")
        return EXIT_INTERRUPTED

    def run_input(self, source: str) -> str:
        """Compile and run one whole input; returns ``"ok"``, ``"error"`` or ``"aborted"``."""
        session = self.session
        name = session.name_input()
        session.count_input()
        try:
            code = api.compile(source, name, interactive=True).code
        except SourceError as error:
            self.complain(format_source_error(error))
            return "error"
        self.last_code = code
        outcome = session.run(code)
        if outcome.aborted:
            return "aborted"
        if outcome.error is not None:
            self.complain(format_guest_error(outcome.error))
            return "error"
        if outcome.value is not None:
            self.say(to_repr(outcome.value))
        return "ok"

    # -- colon commands
    def command(self, line: str) -> str:
        """Do one colon command; every mistake is a one-line answer. Returns ``"quit"`` to
        leave, else ``""``."""
        word, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        machine = self.session.machine
        if word in ("quit", "q", "exit"):
            return "quit"
        if word == "help":
            self.say(HELP)
        elif word == "dis":
            if rest:
                self.say("usage: :dis (the bytecode of the last input)")
            elif self.last_code is None:
                self.say("nothing to show yet: no input has compiled")
            else:
                self.say(disassemble(self.last_code).rstrip("\n"))
        elif word == "policy":
            if not rest:
                self.say(f"policy: {machine.config.policy}")
                return ""
            try:
                machine.reconfigure(policy=check_policy_name(rest))
            except ValueError as exc:
                self.say(f"cannot change the policy: {exc}")
            else:
                self.say(f"policy: {rest}")
        elif word == "check-interval":
            if not rest:
                self.say(f"check interval: {machine.config.check_interval}")
                return ""
            try:
                machine.reconfigure(check_interval=int(rest.replace("_", "")))
            except ValueError:
                self.say(f"usage: :check-interval N (a whole number, at least 1), not {rest!r}")
            else:
                self.say(f"check interval: {machine.config.check_interval}")
        else:
            self.say(f"unknown command ':{word}' (try :help)")
        return ""


def run_repl(settings: dict | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None,
             stderr: TextIO | None = None) -> int:  # fmt: skip
    """``minivm repl``: a session with ``settings`` (``minivm.api.prepare``'s keyword
    settings) on the given streams (the process's own by default); returns the exit status."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    interactive = stdin.isatty() and stdout.isatty()
    session = Session(settings, stdout, stderr)
    return Console(session, stdin, stdout, stderr, interactive).loop()
