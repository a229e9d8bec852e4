"""Trace events and the sinks that receive them.

Tracing is data: the VM hands small records to an ``EventBus``, which passes each to its
sinks — a text trace, JSON Lines, an in-memory collector for timelines and plots. The VM
never formats anything itself, and with no bus attached it sends nothing at all.

Every event has ``event``, ``thread`` and ``ts_ns`` (``time.perf_counter_ns``). Instruction
events (``instr``) add ``op``, ``arg``, ``line``, ``func``, ``pc`` and ``tick`` (the tick
within the current check period); GIL events are ``gil_wait``, ``gil_acquire``,
``gil_release`` (with ``reason``: tick, blocking, forced, handoff, exit), ``drop_request``
and ``resume`` (a thread handed the GIL by another, ``gil_acquire`` with ``handoff: true``,
runs again on its host thread); thread events are ``spawn``, ``block``, ``wake`` and ``exit``.

Events come from several OS threads at once: the GIL holder's instructions, and the GIL and
thread events of threads that wait, wake or block (under ``none``, every thread's
instructions). The bus therefore delivers them one at a time under its own lock, and stamps
``ts_ns`` inside that lock: every sink sees the same total order, consistent with each
thread's own order, with timestamps that never go backwards — nothing torn, nothing lost,
whatever the sink.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TextIO

from minivm.bytecode import opcodes as op
from minivm.bytecode.disasm import MEANING
from minivm.runtime.output import Output

GIL_EVENTS = ("gil_wait", "gil_acquire", "resume", "gil_release", "drop_request")
THREAD_EVENTS = ("spawn", "block", "wake", "exit")


class Sink:
    """Receives events as dicts. ``wants_instructions`` asks for one per instruction."""

    wants_instructions = False

    def receive(self, event: dict) -> None:
        """Take one event."""
        raise NotImplementedError

    def close(self) -> None:
        """The run is over."""


class EventBus:
    """What the VM talks to: turns VM callbacks into event dicts for every sink.

    Thread-safe: any OS thread may call it. Each event is stamped (``time.perf_counter_ns``)
    and handed to every sink while the bus lock is held, so sinks need no locking of their
    own and receive events strictly one at a time.
    """

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks
        self.wants_instructions = any(s.wants_instructions for s in sinks)
        self._instruction_sinks = [s for s in sinks if s.wants_instructions]
        self._lock = threading.Lock()
        self.started_ns = time.perf_counter_ns()
        self.check_interval = 100

    def _send(self, event: dict, sinks: list[Sink]) -> None:
        with self._lock:
            event["ts_ns"] = time.perf_counter_ns()
            for sink in sinks:
                sink.receive(event)

    def instr(self, thread, code, pc: int, opcode: int, arg: int) -> None:
        """The instruction at ``pc`` in ``code`` is about to execute on ``thread``."""
        info = op.OPCODES[opcode]
        self._send(
            {
                "event": "instr",
                "thread": thread.tid,
                "ts_ns": 0,
                "op": info.name,
                "arg": arg,
                "meaning": MEANING[info.operand](code, arg),
                "line": code.line_of(pc),
                "func": code.display_name,
                "pc": pc,
                "tick": self.check_interval - thread.clock.until_check + 1,
            },
            self._instruction_sinks,
        )

    def gil_event(self, kind: str, thread, **fields) -> None:
        """A GIL event (the GIL calls this with its mutex held, after the state change)."""
        self._send({"event": kind, "thread": thread.tid, "ts_ns": 0, **fields}, self.sinks)

    def thread_event(self, kind: str, thread, **fields) -> None:
        """A thread event: spawn, block, wake or exit."""
        self._send({"event": kind, "thread": thread.tid, "ts_ns": 0, **fields}, self.sinks)

    def close(self) -> None:
        """Tell every sink the run is over."""
        with self._lock:
            for sink in self.sinks:
                sink.close()


class TextTraceSink(Sink):
    """A readable trace: one line per instruction (if asked) and one per GIL/thread event."""

    def __init__(self, stream: TextIO, instructions: bool, started_ns: int):
        # Through the stream's line writer: trace lines share standard error with runtime
        # errors, and neither may tear the other.
        self.out = Output(stream)
        self.wants_instructions = instructions
        self.started_ns = started_ns

    def receive(self, event: dict) -> None:
        ms = (event["ts_ns"] - self.started_ns) / 1e6
        kind = event["event"]
        if kind == "instr":
            arg = "" if event["meaning"] == "" and event["arg"] == 0 else str(event["arg"])
            text = (
                f"{ms:10.3f} ms  thread {event['thread']:<3} tick {event['tick']:<5} "
                f"{event['func']}:{event['line']:<4} @{event['pc']:<4} {event['op']:<20} "
                f"{arg:>4} {event['meaning']}"
            )
        else:
            extra = " ".join(
                f"{k}={v}" for k, v in event.items() if k not in ("event", "thread", "ts_ns")
            )
            text = f"{ms:10.3f} ms  thread {event['thread']:<3} {kind:<12} {extra}"
        self.out.write_line(text.rstrip())


class JsonLinesSink(Sink):
    """JSON Lines: one event object per line, instructions included."""

    wants_instructions = True

    def __init__(self, stream: TextIO):
        self.stream = stream
        # The first write the device refused (a full disk): later events are not written,
        # and the run goes on; whoever opened the file reports it when the run ends.
        self.failure: OSError | None = None

    def receive(self, event: dict) -> None:
        if self.failure is None:
            try:
                self.stream.write(json.dumps(event) + "\n")
            except OSError as exc:
                self.failure = exc

    def close(self) -> None:
        try:
            self.stream.close()
        except OSError as exc:
            self.failure = self.failure or exc


class Collector(Sink):
    """Keeps every GIL and thread event in memory, for timelines, plots and statistics."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def receive(self, event: dict) -> None:
        self.events.append(event)
