"""Golden programs: every ``.mv`` file in ``programs/``, ``tests/programs/`` and
``tests/programs/regressions/`` (the crash corpus: one program per fixed VM bug) runs and
gives what its ``# expect`` lines say, on both engines; threaded ones give it under every GIL
policy."""

from __future__ import annotations

import pytest
from golden import GIL_POLICIES, check_golden, check_golden_on_both_engines, golden_files, read_expectation

FILES = golden_files("programs", "tests/programs", "tests/programs/regressions")


def _cases():
    # Each program on both engines (threaded ones under fifo, the deterministic policy), and
    # threaded ones also under the other policies on the default engine.
    for path in FILES:
        expect = read_expectation(path)
        if expect.threaded and not any(a == "--policy" for a in expect.args):
            for policy in GIL_POLICIES:
                both = policy == "fifo"
                yield pytest.param(path, ("--policy", policy), both, id=f"{path.parent.name}/{path.name}[{policy}]")
        else:
            yield pytest.param(path, (), True, id=f"{path.parent.name}/{path.name}")


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("path", "extra", "both_engines"), list(_cases()))
def test_golden_program(path, extra, both_engines):
    if both_engines:
        check_golden_on_both_engines(path, extra)
    else:
        check_golden(path, extra)


def test_there_are_enough_example_programs():
    assert len(golden_files("programs")) >= 8


@pytest.mark.timeout(120)
def test_the_deadlock_demo_deadlocks_whatever_the_timing(tmp_path):
    # Its threads used to sleep 50 ms and hope the other had taken its first lock by then: on
    # a busy machine one could take both locks first, and the golden run (expecting the
    # deadlock) failed now and then. Explored schedules stand in for the busy machine.
    from golden import ROOT, run_minivm

    result = run_minivm("explore", str(ROOT / "programs" / "deadlock.mv"), "--strategy", "random", "--runs", "20",
                        "--max-steps", "3000", "--save", str(tmp_path / "s"))  # fmt: skip
    outcomes = [line for line in result.stdout.splitlines() if line.lstrip().startswith("#")]
    assert len(outcomes) == 1 and "error: deadlock" in outcomes[0], result.stdout
