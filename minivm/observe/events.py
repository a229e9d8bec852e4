"""Trace events and the sinks that receive them.

Tracing is data: the VM hands small records to an ``EventBus``, which passes each to its
sinks — a text trace, JSON Lines, an in-memory collector for timelines and plots. The VM
never formats anything itself, and with no bus attached it sends nothing at all.

Every event has ``event``, ``thread`` and ``ts_ns`` (``time.perf_counter_ns``). Instruction
events (``instr``) add ``op``, ``arg``, ``line``, ``func``, ``pc`` and ``tick`` (the tick
within the current check period); GIL events are ``gil_wait``, ``gil_acquire``,
``gil_release`` (with ``reason``: tick, blocking, forced, handoff, exit) and
``drop_request``; thread events are ``spawn``, ``block``, ``wake`` and ``exit``.
"""

from __future__ import annotations

import json
import time
from typing import TextIO

from minivm.bytecode import opcodes as op
from minivm.bytecode.disasm import MEANING

GIL_EVENTS = ("gil_wait", "gil_acquire", "gil_release", "drop_request")
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
    """What the VM talks to: turns VM callbacks into event dicts for every sink."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks
        self.wants_instructions = any(s.wants_instructions for s in sinks)
        self._instruction_sinks = [s for s in sinks if s.wants_instructions]
        self.started_ns = time.perf_counter_ns()
        self.check_interval = 100

    def _send(self, event: dict, sinks: list[Sink] | None = None) -> None:
        for sink in self.sinks if sinks is None else sinks:
            sink.receive(event)

    def instr(self, thread, code, pc: int, opcode: int, arg: int) -> None:
        """The instruction at ``pc`` in ``code`` is about to execute on ``thread``."""
        info = op.OPCODES[opcode]
        self._send(
            {
                "event": "instr",
                "thread": thread.tid,
                "ts_ns": time.perf_counter_ns(),
                "op": info.name,
                "arg": arg,
                "meaning": MEANING[info.operand](code, arg),
                "line": code.line_of(pc),
                "func": code.display_name,
                "pc": pc,
                "tick": self.check_interval - thread.until_check + 1,
            },
            self._instruction_sinks,
        )

    def gil_event(self, kind: str, thread, ts_ns: int, **fields) -> None:
        """A GIL event (the GIL calls this with its mutex held)."""
        self._send({"event": kind, "thread": thread.tid, "ts_ns": ts_ns, **fields})

    def thread_event(self, kind: str, thread, ts_ns: int, **fields) -> None:
        """A thread event: spawn, block, wake or exit."""
        self._send({"event": kind, "thread": thread.tid, "ts_ns": ts_ns, **fields})

    def close(self) -> None:
        """Tell every sink the run is over."""
        for sink in self.sinks:
            sink.close()


class TextTraceSink(Sink):
    """A readable trace: one line per instruction (if asked) and one per GIL/thread event."""

    def __init__(self, stream: TextIO, instructions: bool, started_ns: int):
        self.stream = stream
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
        self.stream.write(text.rstrip() + "\n")


class JsonLinesSink(Sink):
    """JSON Lines: one event object per line, instructions included."""

    wants_instructions = True

    def __init__(self, stream: TextIO):
        self.stream = stream

    def receive(self, event: dict) -> None:
        self.stream.write(json.dumps(event) + "\n")

    def close(self) -> None:
        self.stream.close()


class Collector(Sink):
    """Keeps every GIL and thread event in memory, for timelines, plots and statistics."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def receive(self, event: dict) -> None:
        self.events.append(event)
