"""The Python API: the front door that the command line, ``experiment`` and notebooks share.

``import minivm`` gives three functions::

    program = minivm.compile(source, filename="race.mv")     # raises minivm.errors.SourceError
    result = minivm.run(program, policy="fifo", check_interval=5)
    rows = minivm.experiment(program, policies=["ticks", "timed"], check_intervals=[10, 100])

A run is built and driven without the command line: ``run`` makes one ``Machine`` from a
``VMConfig``, captures the program's output (unless a stream is given), and hands back a
``Result`` with the exit status, the guest errors and the statistics that ``--stats-json``
writes. Guest errors are *results*, not exceptions (a program that fails is a normal outcome
of an experiment); bad input (``SourceError``) and bad settings (``ValueError``) raise.
``prepare`` builds the same run without starting it, for tools that hook into the VM first
(``minivm run --record``/``--replay``); ``minivm run``, ``experiment`` and ``bench`` all go
through this module. docs/api.md walks through it.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import sys
from typing import TYPE_CHECKING, TextIO

from minivm.bytecode.code import CodeObject
from minivm.errors import GuestError, MinivmError

if TYPE_CHECKING:
    from minivm.observe.events import EventBus
    from minivm.runtime.figures import RunFigures
    from minivm.runtime.heap import AuditReport
    from minivm.runtime.machine import Machine


@dataclasses.dataclass(frozen=True)
class Program:
    """A compiled program: its code object (``code``), ``filename`` and ``source`` text.
    Made by ``compile``; run it any number of times with ``run``."""

    code: CodeObject
    filename: str
    source: str


@dataclasses.dataclass(frozen=True)
class Result:
    """What one run gave.

    * ``output`` — everything the program printed (``""`` when a ``stdout`` was passed to
      ``run``: then it went there);
    * ``error_output`` — what a terminal would show on standard error: runtime errors with
      their thread and call chain, the heap audit;
    * ``exit_status`` — 0 success, 1 a runtime error in any thread (or a failed audit);
    * ``errors`` — the ``GuestError`` of every failed thread, and of a deadlock, in order;
      ``error`` is the first of them (``None`` when the run succeeded);
    * ``stats`` — the ``--stats-json`` object (counts exact; times in seconds);
    * ``events`` — every trace event as a dict when ``run(..., events=True)``, else ``None``;
    * ``audit`` — the ``heap_check`` report (``minivm.runtime.heap.AuditReport``), else ``None``;
    * ``figures`` — the counts ``stats`` is made of, as a frozen snapshot
      (``minivm.runtime.figures.RunFigures``: ``started_ns``/``ended_ns`` on the clock the
      events are stamped with, ``uses_gil``, per-thread records).
    """

    output: str
    error_output: str
    exit_status: int
    errors: tuple[GuestError, ...]
    figures: RunFigures
    events: list[dict] | None = None
    audit: AuditReport | None = None

    @functools.cached_property
    def stats(self) -> dict:
        """The ``--stats-json`` object, computed from ``figures`` on first use (a plain run
        never imports the statistics module)."""
        from minivm.observe.stats import collect

        return collect(self.figures)

    @property
    def error(self) -> GuestError | None:
        """The first guest error of the run, or ``None``."""
        return self.errors[0] if self.errors else None


def ints_in_full() -> None:
    """Lift the host's limit on converting ints to and from decimal text (Python 3.11+,
    4,300 digits by default: ``sys.set_int_max_str_digits``) for this process. The language
    reads int literals of up to 100,000 digits and prints ints of any size in full; under the
    limit a program that printed a 5,000-digit int ended in the host's ``ValueError``, a
    minivm bug to the caller. Every front door (``compile``, ``prepare``, the command line)
    calls this first."""
    if getattr(sys, "get_int_max_str_digits", lambda: 0)():
        sys.set_int_max_str_digits(0)


def compile(source: str, filename: str = "<string>", *, interactive: bool = False) -> Program:
    """Compile minivm ``source`` into a ``Program``.

    ``interactive``: compile it as one input at a prompt (the REPL's): a final expression
    statement leaves its value as the code's result instead of dropping it, as Python's
    ``compile(..., "single")`` does.

    Raises ``minivm.errors.SourceError`` (with ``location``: file, line, column) for a syntax
    or compile error; ``str(error)`` is the message, ``minivm.errors.format_source_error``
    gives the file:line:col, the line and a caret as the command line prints them.
    Deeply nested sources compile on a thread with a large stack, as on the command line.
    """
    from minivm.frontend.room import compile_with_room

    ints_in_full()
    code = compile_with_room(source, filename, interactive)
    return Program(code=code, filename=filename, source=source)


def _program(source_or_program: str | Program, filename: str) -> Program:
    if isinstance(source_or_program, Program):
        return source_or_program
    if isinstance(source_or_program, str):
        return compile(source_or_program, filename)
    raise TypeError(f"run() wants source text or a Program, got {type(source_or_program).__name__}")


class Run:
    """One run built by ``prepare`` and not yet started: ``start()``, then ``wait()`` for its
    ``Result`` (``abort()`` in between stops it). ``result`` is set by ``wait``, also when the
    run ends by Ctrl-C (``exit_status`` 130) or by a bug of minivm itself.

    ``machine`` (``minivm.runtime.machine.Machine``) is the VM itself, the one accessor for
    the tools that need more than a result: a schedule's recorder or replay wraps its clock
    before it starts, the debugger (``minivm/debug/``) shows its threads, frames and heap, and
    the REPL's session (``minivm/repl/``), prepared with no program, runs its inputs one at a
    time on its main thread.
    """

    def __init__(self, machine: Machine, program: Program | None, captured, error_stream, collector, bus):
        self.machine = machine
        self.program = program
        self.result: Result | None = None
        self._captured = captured
        self._error_stream = error_stream
        self._collector = collector
        self._own_bus = bus  # the bus ``events=True`` made: closed here, when the run ends

    def start(self) -> Run:
        """Start the main thread; returns ``self``. Raises ``ValueError`` for a run prepared
        with no program (its caller drives the main thread itself)."""
        if self.program is None:
            raise ValueError("a run prepared with no program has nothing to start")
        self.machine.start(self.program.code)
        return self

    def abort(self) -> None:
        """Stop every guest thread at its next check (``Machine.abort``), as a closed standard
        output does; ``wait`` then returns what the run did so far. Safe from any thread."""
        self.machine.abort(None)

    def wait(self) -> Result:
        """Wait for the end of the run and return its ``Result`` (also kept as ``result``).

        Prints what is said of the run as a whole (a deadlock, the heap audit) on the run's
        error stream, as ``minivm run`` does. Raises ``KeyboardInterrupt`` if interrupted
        (every guest thread told to stop), and the exception of a bug of minivm itself (not
        a result: the caller reports it, as ``minivm run`` does with exit status 1).
        """
        from minivm.runtime.outcome import render_outcome

        machine = self.machine
        try:
            machine.wait()
        except KeyboardInterrupt:
            self.result = self._result(machine.interrupted_outcome())
            raise
        finally:
            if self._own_bus is not None:
                self._own_bus.close()
        outcome = machine.finish()
        bug = outcome.vm_bug
        if bug is not None and not isinstance(bug, MinivmError):
            self.result = self._result(outcome)
            raise bug
        render_outcome(outcome, machine.errors)
        self.result = self._result(outcome)
        return self.result

    def _result(self, outcome) -> Result:
        return Result(
            output=self._captured.getvalue() if self._captured is not None else "",
            error_output=self._error_stream.getvalue() if self._error_stream is not None else "",
            exit_status=outcome.exit_status,
            errors=outcome.errors,
            events=self._collector.events if self._collector is not None else None,
            audit=outcome.audit,
            figures=outcome.figures,
        )


def prepare(
    source_or_program: str | Program | None,
    *,
    policy: str = "ticks",
    check_interval: int = 100,
    switch_interval: float = 0.005,
    check_at: str = "every",
    recursion_limit: int = 1000,
    max_steps: int | None = None,
    max_threads: int = 10_000,
    heap_check: bool = False,
    host_switch_interval: float | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    events: bool | EventBus = False,
    control: object = None,
    filename: str = "<string>",
    **options: object,
) -> Run:
    """Build one run of a program in a fresh VM, without starting it (``Run.start``, then
    ``Run.wait`` for the ``Result``).

    ``source_or_program``: source text, a ``Program``, or ``None`` for a VM whose main thread
    its caller drives itself through ``Run.machine`` (the REPL's session; ``start`` refuses).
    Settings mean what the ``minivm run`` options of the same name mean (intervals in ticks
    and seconds). ``stdout``/``stderr``: text streams to print to instead of capturing (then
    runtime errors appear there as they happen, and ``error_output`` is ``""``). ``events``:
    ``True`` collects every trace event (one per instruction too: slow, for small programs);
    an ``minivm.observe.events.EventBus`` sends them to its own sinks instead (text trace,
    JSON Lines, a recorder; the caller closes it). ``control``: a policy object that decides
    every turn in place of the named one (a replay's, ``minivm/schedule/``); ``policy`` still
    names the run in its statistics. ``options``: further ``VMConfig`` fields (``engine``).
    Raises ``SourceError`` for bad source and ``ValueError`` for a bad setting (unknown
    policy, interval below 1), before anything runs.
    """
    from minivm.runtime.machine import Machine, VMConfig

    ints_in_full()
    program = None if source_or_program is None else _program(source_or_program, filename)
    config = VMConfig(
        policy=policy, check_interval=check_interval, switch_interval=switch_interval, check_at=check_at,
        recursion_limit=recursion_limit, max_steps=max_steps, max_threads=max_threads,
        heap_check=heap_check, host_switch_interval=host_switch_interval, **options,
    )  # fmt: skip
    bus, collector, own_bus = None, None, None
    if events is True:
        from minivm.observe.events import Collector, EventBus

        collector = Collector()
        collector.wants_instructions = True
        bus = own_bus = EventBus([collector])
        bus.check_interval = check_interval
    elif events is not False:
        bus = events
    captured = io.StringIO() if stdout is None else None
    error_stream = io.StringIO() if stderr is None else None
    machine = Machine(
        config, stdout=stdout or captured, stderr=stderr or error_stream, events=bus,
        policy=control,
    )  # fmt: skip
    return Run(machine, program, captured, error_stream, collector, own_bus)


def run(source_or_program: str | Program, **settings: object) -> Result:
    """Run a program once in a fresh VM and return its ``Result``: ``prepare`` with the same
    keyword settings (policy, intervals, streams, events, ...), started and waited for.

    Raises what ``prepare`` raises, ``KeyboardInterrupt`` if interrupted (every guest thread
    told to stop), and the exception of a bug of minivm itself.
    """
    return prepare(source_or_program, **settings).start().wait()


class Rows(list):
    """The rows of an experiment: a list of dicts, one per combination of settings (medians
    over the repeats), with ``dataframe()`` for pandas users."""

    def dataframe(self):
        """The rows as a ``pandas.DataFrame``. Raises ``ImportError`` without pandas (an
        optional extra, not a dependency)."""
        import pandas

        return pandas.DataFrame(list(self))


def experiment(
    source_or_program: str | Program,
    *,
    policies: list[str] | tuple[str, ...] = ("ticks", "fifo", "timed"),
    check_intervals: list[int] | tuple[int, ...] = (100,),
    switch_intervals: list[float] | tuple[float, ...] = (0.005,),
    repeat: int = 1,
    filename: str = "<string>",
    progress=None,
) -> Rows:
    """Run a program under every combination of policy, check interval and (for ``timed``)
    switch interval, ``repeat`` times each; one row per combination, as ``minivm experiment``
    prints them (wall seconds, instructions/s, switches, releaser-reacquired %, wait
    percentiles in seconds, each spawned thread's share of GIL time, exit status).
    ``progress``: called with ``(done, total, policy, check, switch)`` before each run.
    Raises what ``run`` raises, and ``ValueError`` for ``repeat`` below 1.
    """
    from minivm.observe.experiment import summarize

    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    program = _program(source_or_program, filename)
    combos = []
    for policy in policies:
        for check in check_intervals:
            for switch in switch_intervals if policy == "timed" else switch_intervals[:1]:
                combos.append((policy, check, switch))
    rows = Rows()
    total, done = len(combos) * repeat, 0
    for policy, check, switch in combos:
        runs = []
        for _ in range(repeat):
            done += 1
            if progress is not None:
                progress(done, total, policy, check, switch)
            result = run(program, policy=policy, check_interval=check, switch_interval=switch)
            runs.append({**result.stats, "status": result.exit_status})
        rows.append(summarize(runs))
    return rows
