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
docs/api.md walks through it.
"""

from __future__ import annotations

import io
from typing import TextIO

import attrs

from minivm.bytecode.code import CodeObject
from minivm.errors import GuestError, MinivmError, split_source_lines


@attrs.frozen
class Program:
    """A compiled program: its code object (``code``), ``filename`` and ``source`` text.
    Made by ``compile``; run it any number of times with ``run``."""

    code: CodeObject
    filename: str
    source: str

    @property
    def source_lines(self) -> dict[str, list[str]]:
        """``{filename: lines}``, for error messages that quote the source."""
        return {self.filename: split_source_lines(self.source)}


@attrs.frozen
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
    * ``events`` — every trace event as a dict when ``run(..., events=True)``, else ``None``.
    """

    output: str
    error_output: str
    exit_status: int
    errors: tuple[GuestError, ...]
    stats: dict
    events: list[dict] | None = None

    @property
    def error(self) -> GuestError | None:
        """The first guest error of the run, or ``None``."""
        return self.errors[0] if self.errors else None


def compile(source: str, filename: str = "<string>") -> Program:
    """Compile minivm ``source`` into a ``Program``.

    Raises ``minivm.errors.SourceError`` (with ``location``: file, line, column) for a syntax
    or compile error; ``str(error)`` is the message, ``minivm.errors.format_source_error``
    gives the file:line:col, the line and a caret as the command line prints them.
    Deeply nested sources compile on a thread with a large stack, as on the command line.
    """
    from minivm.frontend.room import compile_with_room

    code = compile_with_room(source, filename)
    return Program(code=code, filename=filename, source=source)


def _program(source_or_program: str | Program, filename: str) -> Program:
    if isinstance(source_or_program, Program):
        return source_or_program
    if isinstance(source_or_program, str):
        return compile(source_or_program, filename)
    raise TypeError(f"run() wants source text or a Program, got {type(source_or_program).__name__}")


def run(
    source_or_program: str | Program,
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
    events: bool = False,
    filename: str = "<string>",
    **options: object,
) -> Result:
    """Run a program once in a fresh VM and return its ``Result``.

    Settings mean what the ``minivm run`` options of the same name mean (intervals in ticks
    and seconds). ``stdout``: a text stream to print to instead of capturing. ``events``:
    collect every trace event (one per instruction too: slow, for small programs).
    ``options``: further ``VMConfig`` fields (``engine`` where the build has one).
    Raises ``SourceError`` for bad source, ``ValueError`` for a bad setting (unknown policy,
    interval below 1), ``KeyboardInterrupt`` if interrupted (every guest thread told to stop).
    """
    from minivm.observe.stats import collect
    from minivm.runtime.machine import Machine, VMConfig

    program = _program(source_or_program, filename)
    config = VMConfig(
        policy=policy, check_interval=check_interval, switch_interval=switch_interval, check_at=check_at,
        recursion_limit=recursion_limit, max_steps=max_steps, max_threads=max_threads,
        heap_check=heap_check, host_switch_interval=host_switch_interval, **options,
    )  # fmt: skip
    bus, collector = None, None
    if events:
        from minivm.observe.events import Collector, EventBus

        collector = Collector()
        collector.wants_instructions = True
        bus = EventBus([collector])
        bus.check_interval = check_interval
    captured = io.StringIO() if stdout is None else None
    error_stream = io.StringIO()
    machine = Machine(
        config, stdout=stdout or captured, stderr=error_stream, events=bus, source_lines=program.source_lines
    )
    status = machine.run(program.code)
    if bus is not None:
        bus.close()
    failed = [t.error for t in machine.scheduler.threads if t.error is not None]
    if isinstance(machine.abort_error, GuestError) and machine.abort_error not in failed:
        failed.append(machine.abort_error)
    elif machine.abort_error is not None and not isinstance(machine.abort_error, MinivmError):
        raise machine.abort_error  # a bug of the VM itself: not a result
    return Result(
        output=captured.getvalue() if captured is not None else "",
        error_output=error_stream.getvalue(),
        exit_status=status,
        errors=tuple(failed),
        stats=collect(machine),
        events=collector.events if collector is not None else None,
    )


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
    Raises what ``run`` raises.
    """
    from minivm.observe.experiment import summarize

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
