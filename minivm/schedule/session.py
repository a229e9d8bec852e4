"""``minivm run --record FILE`` and ``--replay FILE``: the command line's side of schedules.

The flags are defined in ``minivm.commands.run``; this module does the work, so a run that records
nothing never imports it. Errors a user can cause (an unreadable, corrupt or mismatched
schedule, an unwritable file) are ``ScheduleUsageError`` before the run, or a divergence
reported after it: both exit status 2, one sentence, no traceback.
"""

from __future__ import annotations

import argparse

from minivm.outputs import cannot_write, open_output
from minivm.schedule.control import Divergence
from minivm.schedule.model import COMPACT_TAG, Schedule, ScheduleFormatError, parse, program_hash
from minivm.schedule.record import Recorder
from minivm.schedule.replay import Replay


class ScheduleUsageError(Exception):
    """A schedule option that cannot be honoured; the message is ready to print."""


def load(spec: str) -> Schedule:
    """A schedule from a file (JSON or compact form) or from the compact line itself;
    raises ``ScheduleUsageError``."""
    if spec.startswith(COMPACT_TAG + "/"):
        text, where = spec, "the schedule given"
    else:
        try:
            with open(spec, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ScheduleUsageError(f"minivm: cannot read schedule '{spec}': {reason}") from None
        where = f"'{spec}'"
    try:
        return parse(text)
    except ScheduleFormatError as exc:
        raise ScheduleUsageError(f"minivm: {where} is not a valid schedule: {exc}") from None


def save(schedule: Schedule, path: str) -> None:
    """Write ``schedule`` to ``path`` as JSON (which carries the compact line too)."""
    with open_output(path) as handle:
        handle.write(schedule.to_json())


class ScheduleSession:
    """What ``--record``/``--replay`` asked for: the recorder or the replay, set up around one
    machine. ``policy`` is the policy to give the machine (None: the configured one)."""

    def __init__(self, args: argparse.Namespace, source_text: str):
        self.record_path: str | None = getattr(args, "record", None)
        self.replay_spec: str | None = getattr(args, "replay", None)
        self.program = program_hash(source_text)
        self.recorder: Recorder | None = None
        self.replay: Replay | None = None
        self.notes: list[str] = []
        if self.record_path:
            if getattr(args, "policy", "") == "none":
                raise ScheduleUsageError(
                    "minivm: --record needs a GIL: under the none policy threads run at once, with no turns to record"
                )
            _check_writable(self.record_path)
            self.recorder = Recorder()
        if self.replay_spec:
            schedule = load(self.replay_spec)
            if schedule.program != self.program:
                self.notes.append(
                    f"minivm: note: the schedule was recorded for another program text "
                    f"(hash {schedule.program}, this one {self.program}); replaying anyway"
                )
            # The recorded settings, so that the instruction trace (tick column too) is the same.
            args.check_interval = schedule.check_interval
            args.check_at = schedule.check_at
            self.replay = Replay(schedule)

    @property
    def policy(self):
        """The controlled policy of a replay, or None."""
        return self.replay.policy if self.replay else None

    def sinks(self) -> list:
        """Event sinks to add to the machine's event bus."""
        return [self.recorder] if self.recorder else []

    def attach(self, machine) -> None:
        """Hook into ``machine`` before it runs."""
        if self.recorder:
            self.recorder.attach(machine)
        if self.replay:
            self.replay.attach(machine)

    def finish(self) -> str | None:
        """After the run: write the recording; return the divergence message of a replay
        that left its schedule (to print, exit 2), else None."""
        if self.recorder:
            save(self.recorder.schedule(self.program), self.record_path)  # type: ignore[arg-type]
        if self.replay:
            divergence: Divergence | None = self.replay.divergence()
            if divergence is not None:
                return f"minivm: the schedule does not fit the program: {divergence}"
        return None


def _check_writable(path: str) -> None:
    problem = cannot_write(path)
    if problem:
        raise ScheduleUsageError(problem)
