"""Golden programs: every ``.mv`` file in ``programs/``, ``tests/programs/`` and
``tests/programs/regressions/`` (the crash corpus: one program per fixed VM bug) runs and
gives what its ``# expect`` lines say; threaded ones give it under every GIL policy."""

from __future__ import annotations

import pytest
from golden import GIL_POLICIES, check_golden, golden_files, read_expectation

FILES = golden_files("programs", "tests/programs", "tests/programs/regressions")


def _cases():
    for path in FILES:
        expect = read_expectation(path)
        if expect.threaded and not any(a == "--policy" for a in expect.args):
            for policy in GIL_POLICIES:
                yield pytest.param(path, ("--policy", policy), id=f"{path.parent.name}/{path.name}[{policy}]")
        else:
            yield pytest.param(path, (), id=f"{path.parent.name}/{path.name}")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("path", "extra"), list(_cases()))
def test_golden_program(path, extra):
    check_golden(path, extra)


def test_there_are_enough_example_programs():
    assert len(golden_files("programs")) >= 8
