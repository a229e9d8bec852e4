"""The schedule file that the debugger's ``record FILE`` writes.

Design note
-----------
A schedule is who held the GIL, in order, and for how many instructions each time: enough to
make the same interleaving happen again on the same program, since every switch under the
debugger's policy happens at a check or a block and every instruction is counted. The file is
one JSON object::

    {"format": "minivm-schedule", "version": 1, "program": "lost.mv",
     "check_interval": 1, "slices": [[0, 7], [1, 2], [2, 4], ...]}

``slices`` holds ``[thread id, instructions run]`` pairs, oldest first. Replaying belongs to
``minivm run --replay`` (the record/replay work on branch ``sched``); this module only writes
the debugger's record, so that the two can agree on one format when that lands.
"""

from __future__ import annotations

import json

SCHEDULE_FORMAT = "minivm-schedule"


def write_schedule(path: str, program: str, check_interval: int, slices: list[list[int]]) -> None:
    """Write the schedule ``slices`` (``[tid, instructions]`` pairs) of ``program`` to
    ``path`` as JSON; raises ``OSError`` if the file cannot be written."""
    data = {"format": SCHEDULE_FORMAT, "version": 1, "program": program,
            "check_interval": check_interval, "slices": slices}  # fmt: skip
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.write("\n")
