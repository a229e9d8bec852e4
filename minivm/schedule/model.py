"""A schedule as data: who held the GIL for how many instructions, in order, and what
``time()`` returned — in a documented JSON form and a compact one-line form.

Design note
-----------
* **What a schedule is.** Under a GIL exactly one guest thread executes instructions at a
  time, so a run is fully described by the sequence of *turns* — (thread id, instructions
  run, how the turn ended) — plus the values of the one nondeterministic builtin, ``time()``,
  in the order they were returned. Everything else a thread sees (spawn order, thread ids,
  which waiter a lock or a join wakes, in what order sleepers came back) follows from the
  turns, because every wake-up is made by a running thread and a sleeper must hold the GIL
  to do anything after it wakes. This is rr's idea (record only the nondeterministic
  inputs and the points where the scheduler switched) made simple by owning the scheduler.
* **How a turn ends.** ``p`` preempted (the policy switched at a check, or the controlled
  scheduler chose another thread), ``b`` the thread blocked (``join``, a contended
  ``acquire``, ``sleep``), ``x`` it exited, ``e`` the run ended while it held the GIL (an
  error in the main thread, the step limit), ``s`` the recording stopped there with the run
  still going (the debugger's ``record`` mid-run): replay follows the turns up to that point
  and then lets the run go on, deterministically, as the ``fifo`` hand-off would. Replay
  checks every end: a thread that blocks where the recording has it run on is a divergence.
* **Two forms.** JSON (``to_json`` / ``from_json``) for tools, and a compact line
  (``to_compact`` / ``from_compact``) to paste into an issue, in the spirit of Shuttle's
  schedule strings::

      mvs1/ticks/100/every/3fa2c1d09b7e4a11/0.12p,1.30b,0.5x/812.25,812.5

  fields: format and version, recorded policy, check interval, check placement, program
  hash (16 hex digits of SHA-256 of the source text), turns ``THREAD.COUNT END`` and the
  ``time()`` values (``repr`` of each float, so they round-trip exactly). ``parse`` accepts
  either form.
* **Errors.** Anything malformed raises ``ScheduleFormatError`` with a sentence saying what
  is wrong; the command line turns it into exit status 2.
"""

from __future__ import annotations

import hashlib
import json
import math

import attrs

FORMAT = "minivm-schedule"
VERSION = 1
COMPACT_TAG = "mvs1"
ENDS = ("p", "b", "x", "e", "s")
# How each end reads after a thread ("thread 1 ... there", "it ran 5 and ..."): verb phrases.
END_NAMES = {"p": "preempted", "b": "blocked", "x": "exited", "e": "was stopped (the run ended)",
             "s": "was stopped (the recording ended)"}  # fmt: skip


class ScheduleFormatError(ValueError):
    """A schedule file or string that cannot be read (bad JSON, missing fields, bad values)."""


@attrs.frozen
class Turn:
    """One turn: ``thread`` (guest thread id) held the GIL for ``count`` instructions (ticks:
    a fused instruction counts as the plain instructions it stands for), then ``end``
    (``p``, ``b``, ``x`` or ``e``: see the module's note)."""

    thread: int
    count: int
    end: str

    def describe(self) -> str:
        """``thread 1 ran 30 instructions and blocked``."""
        return f"thread {self.thread} ran {self.count} instructions and {END_NAMES[self.end]}"


@attrs.frozen
class Schedule:
    """A whole run's schedule.

    ``program``: 16 hex digits of the SHA-256 of the program's source text (a changed program
    is reported, but the real test of fit is divergence during replay); ``policy``: the policy
    it was recorded under (``explore`` for a schedule found by ``minivm explore``);
    ``check_interval`` and ``check_at``: the recorded run's settings, which replay reuses so
    that the instruction trace (its ``tick`` column included) is the same; ``turns``; ``times``:
    what ``time()`` returned, in order (seconds).
    """

    program: str
    policy: str
    check_interval: int
    check_at: str
    turns: tuple[Turn, ...]
    times: tuple[float, ...] = ()

    @property
    def preemptions(self) -> int:
        """How many turns ended by preemption with another thread next (a context switch the
        program did not ask for): the measure of ``minivm explore``'s bound."""
        return sum(
            1
            for a, b in zip(self.turns, self.turns[1:], strict=False)
            if a.end == "p" and a.thread != b.thread
        )

    @property
    def instructions(self) -> int:
        """Instructions run in all."""
        return sum(t.count for t in self.turns)

    # -- JSON
    def to_dict(self) -> dict:
        """The JSON object (see docs/schedules.md)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "program": self.program,
            "policy": self.policy,
            "check_interval": self.check_interval,
            "check_at": self.check_at,
            "turns": [[t.thread, t.count, t.end] for t in self.turns],
            "times": list(self.times),
            "compact": self.to_compact(),
        }

    def to_json(self) -> str:
        """The JSON document, one turn per line, ending in a newline."""
        data = self.to_dict()
        turns = data.pop("turns")
        head = json.dumps(data, indent=2)[:-2]
        body = ",\n".join("    " + json.dumps(t) for t in turns)
        return head + ',\n  "turns": [\n' + body + ("\n  ]\n}\n" if turns else "  ]\n}\n")

    # -- the compact line
    def to_compact(self) -> str:
        """The one-line form: ``mvs1/POLICY/INTERVAL/AT/HASH/TURNS/TIMES``."""
        turns = ",".join(f"{t.thread}.{t.count}{t.end}" for t in self.turns)
        times = ",".join(repr(float(v)) for v in self.times)
        fields = (COMPACT_TAG, self.policy, str(self.check_interval), self.check_at, self.program, turns, times)
        return "/".join(fields)


def program_hash(text: str) -> str:
    """16 hex digits of the SHA-256 of a program's source text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse(text: str) -> Schedule:
    """A schedule from either form (JSON object, or the compact line); raises
    ``ScheduleFormatError``."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ScheduleFormatError(f"not valid JSON: {exc}") from None
        return from_dict(data)
    if stripped.startswith(COMPACT_TAG + "/"):
        return from_compact(stripped)
    raise ScheduleFormatError(
        f"not a schedule: expected a JSON object or a line starting with '{COMPACT_TAG}/'"
    )


def from_dict(data: object) -> Schedule:
    """A schedule from its JSON object; raises ``ScheduleFormatError``."""
    if not isinstance(data, dict):
        raise ScheduleFormatError("a schedule must be a JSON object")
    if data.get("format") != FORMAT:
        raise ScheduleFormatError(f"'format' must be \"{FORMAT}\"")
    if data.get("version") != VERSION:
        raise ScheduleFormatError(f"unsupported version {data.get('version')!r} (this minivm reads {VERSION})")
    for key in ("program", "policy", "check_at"):
        if not isinstance(data.get(key), str):
            raise ScheduleFormatError(f"'{key}' must be a string")
    turns = data.get("turns")
    if not isinstance(turns, list):
        raise ScheduleFormatError("'turns' must be a list")
    parsed = []
    for i, item in enumerate(turns):
        if not (isinstance(item, list) and len(item) == 3):
            raise ScheduleFormatError(f"turn {i} must be [thread, count, end]")
        parsed.append(_turn(item[0], item[1], item[2], i))
    times = data.get("times", [])
    if not isinstance(times, list):
        raise ScheduleFormatError("'times' must be a list")
    return _checked(
        data["program"], data["policy"], data.get("check_interval"), data["check_at"],
        tuple(parsed), tuple(_time(v, i) for i, v in enumerate(times)),
    )  # fmt: skip


def from_compact(line: str) -> Schedule:
    """A schedule from its compact line; raises ``ScheduleFormatError``."""
    fields = line.strip().split("/")
    if len(fields) != 7 or fields[0] != COMPACT_TAG:
        raise ScheduleFormatError(
            f"a compact schedule has 7 fields separated by '/' ({COMPACT_TAG}/POLICY/INTERVAL/AT/HASH/TURNS/TIMES)"
        )
    _, policy, interval, at, program, turns_text, times_text = fields
    try:
        check_interval = int(interval)
    except ValueError:
        raise ScheduleFormatError(f"bad check interval {interval!r}") from None
    turns = []
    for i, item in enumerate(turns_text.split(",") if turns_text else []):
        thread, _, rest = item.partition(".")
        if not rest or rest[-1] not in ENDS:
            raise ScheduleFormatError(f"turn {i} ({item!r}) must be THREAD.COUNT followed by one of {', '.join(ENDS)}")
        try:
            turns.append(_turn(int(thread), int(rest[:-1]), rest[-1], i))
        except ValueError:
            raise ScheduleFormatError(f"turn {i} ({item!r}) must be THREAD.COUNT followed by an end") from None
    times = []
    for i, item in enumerate(times_text.split(",") if times_text else []):
        try:
            times.append(_time(float(item), i))
        except ValueError:
            raise ScheduleFormatError(f"time value {i} ({item!r}) is not a number") from None
    return _checked(program, policy, check_interval, at, tuple(turns), tuple(times))


def _turn(thread: object, count: object, end: object, i: int) -> Turn:
    if not (isinstance(thread, int) and not isinstance(thread, bool) and thread >= 0):
        raise ScheduleFormatError(f"turn {i}: the thread must be an id >= 0, got {thread!r}")
    if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
        raise ScheduleFormatError(f"turn {i}: the count must be a whole number >= 0, got {count!r}")
    if end not in ENDS:
        raise ScheduleFormatError(f"turn {i}: the end must be one of {', '.join(ENDS)}, got {end!r}")
    return Turn(thread, count, end)  # type: ignore[arg-type]


def _time(value: object, i: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScheduleFormatError(f"time value {i} must be a finite number, got {value!r}")
    return float(value)


def _checked(program, policy, check_interval, check_at, turns, times) -> Schedule:
    if not (isinstance(check_interval, int) and not isinstance(check_interval, bool) and check_interval >= 1):
        raise ScheduleFormatError(f"'check_interval' must be a whole number >= 1, got {check_interval!r}")
    if check_at not in ("every", "backedge"):
        raise ScheduleFormatError(f"'check_at' must be every or backedge, got {check_at!r}")
    if "/" in policy or "/" in program or not policy:
        raise ScheduleFormatError("'policy' and 'program' must be non-empty and contain no '/'")
    if not turns:
        raise ScheduleFormatError("a schedule needs at least one turn")
    if turns[0].thread != 0:
        raise ScheduleFormatError(f"the first turn must be the main thread's (0), not thread {turns[0].thread}'s")
    return Schedule(program, policy, check_interval, check_at, turns, times)
