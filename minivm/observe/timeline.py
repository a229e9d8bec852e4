"""Timelines: who held the GIL, who waited and who was blocked, over time.

``slices`` turns the collected GIL and thread events into intervals per thread; the Chrome
Trace Event format (opened by Perfetto and chrome://tracing) and the plot are both drawn
from them.
"""

from __future__ import annotations

import json

import attrs

from minivm.outputs import open_output

HOLDING, WAITING, BLOCKED, RUNNING = "holding", "waiting", "blocked", "running"
# Runnable, but its host thread has not run yet: woken (or handed the GIL) and waiting for the
# host OS — or the host Python's own lock — to schedule it.
HOST = "host"


@attrs.frozen
class Slice:
    """One interval in a thread's life: ``state`` from ``start_ns`` to ``end_ns``."""

    thread: int
    state: str
    start_ns: int
    end_ns: int
    label: str = ""


def slices(events: list[dict], end_ns: int, uses_gil: bool = True) -> list[Slice]:
    """Holding, waiting and blocked intervals from a run's GIL and thread events.

    Without a GIL (policy ``none``) a thread is simply running from start to exit, apart
    from the times it is blocked.
    """
    out: list[Slice] = []
    open_state: dict[int, tuple[str, int, str]] = {}

    def close(thread: int, ts: int) -> None:
        if thread in open_state:
            state, start, label = open_state.pop(thread)
            if ts > start:
                out.append(Slice(thread, state, start, ts, label))

    def begin(thread: int, state: str, ts: int, label: str = "") -> None:
        close(thread, ts)
        open_state[thread] = (state, ts, label)

    for e in sorted(events, key=lambda e: e["ts_ns"]):
        kind, tid, ts = e["event"], e["thread"], e["ts_ns"]
        if kind == "gil_wait":
            begin(tid, WAITING, ts)
        elif kind == "gil_acquire":
            begin(tid, HOST if e.get("handoff") else HOLDING, ts)
        elif kind == "resume":
            begin(tid, HOLDING, ts)
        elif kind == "gil_release" and open_state.get(tid, ("",))[0] == HOLDING:
            close(tid, ts)
        elif kind == "block":
            begin(tid, BLOCKED, ts, e.get("waiting_for", ""))
        elif kind == "wake":
            begin(tid, HOST if uses_gil else RUNNING, ts)
        elif kind == "spawn" and not uses_gil:
            begin(tid, RUNNING, ts)
        elif kind == "exit":
            close(tid, ts)
    for tid in list(open_state):
        close(tid, end_ns)
    return out


def chrome_trace(events: list[dict], start_ns: int, end_ns: int, title: str, uses_gil: bool) -> dict:
    """A Chrome Trace Event document: a lane per thread, a complete event per slice,
    drop requests as instant events."""
    threads = sorted({e["thread"] for e in events} | {0})
    trace: list[dict] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": title}}
    ]
    for tid in threads:
        trace.append(
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
             "args": {"name": "main thread 0" if tid == 0 else f"thread {tid}"}}
        )  # fmt: skip
        trace.append(
            {"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid,
             "args": {"sort_index": tid}}
        )  # fmt: skip
    names = {HOLDING: "gil held", WAITING: "waiting for gil", BLOCKED: "blocked",
             RUNNING: "running (no gil)", HOST: "runnable, waiting for the host"}  # fmt: skip
    for s in slices(events, end_ns, uses_gil):
        event = {
            "name": names[s.state] + (f": {s.label}" if s.label else ""),
            "cat": "gil" if s.state in (HOLDING, WAITING) else "thread",
            "ph": "X",
            "ts": (s.start_ns - start_ns) / 1000,
            "dur": (s.end_ns - s.start_ns) / 1000,
            "pid": 1,
            "tid": s.thread,
        }
        trace.append(event)
    for e in events:
        if e["event"] == "drop_request":
            trace.append(
                {"name": "drop_request", "cat": "gil", "ph": "i", "s": "t", "pid": 1,
                 "tid": e["thread"], "ts": (e["ts_ns"] - start_ns) / 1000}
            )  # fmt: skip
    return {"traceEvents": trace, "displayTimeUnit": "ms"}


def write_chrome_trace(path: str, document: dict) -> None:
    """Write a Chrome Trace Event document to ``path``."""
    with open_output(path) as handle:
        json.dump(document, handle)
        handle.write("\n")
