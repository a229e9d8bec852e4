"""Reading golden programs: ``.mv`` files whose comments say what running them must give.

Directives (comment lines anywhere in the file):

* ``# expect: TEXT`` — the next line of standard output (all of stdout must match);
* ``# expect error: TEXT`` — the run fails and standard error contains TEXT;
* ``# exit: N`` — the exit status (default 0, or 1 with ``expect error``);
* ``# args: ...`` — extra command-line options;
* ``# nondeterministic`` — output varies by design: only the exit status is checked.

Programs that use ``spawn`` are run under every GIL policy and must give the same result.
Every program also runs on both engines (the interpreter and the compiled tier), which must
give exactly the same output, error text and exit status (threaded programs: under ``fifo``).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
GIL_POLICIES = ("ticks", "fifo", "timed", "priority")
_DIRECTIVE = re.compile(r"^\s*#\s*(expect error|expect|exit|args|nondeterministic)\s*(:\s?(.*))?$")


@attrs.frozen
class Expectation:
    """What a golden program promises."""

    stdout: tuple[str, ...]
    errors: tuple[str, ...]
    exit_status: int
    args: tuple[str, ...]
    deterministic: bool
    threaded: bool


def read_expectation(path: Path) -> Expectation:
    """Parse the directives of one golden program."""
    stdout: list[str] = []
    errors: list[str] = []
    exit_status: int | None = None
    args: list[str] = []
    deterministic = True
    text = path.read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        kind, value = match.group(1), match.group(3) or ""
        if kind == "expect":
            stdout.append(value)
        elif kind == "expect error":
            errors.append(value.strip())
        elif kind == "exit":
            exit_status = int(value.strip())
        elif kind == "args":
            args.extend(shlex.split(value))
        elif kind == "nondeterministic":
            deterministic = False
    if exit_status is None:
        exit_status = 1 if errors else 0
    threaded = re.search(r"\bspawn\b", text) is not None
    return Expectation(tuple(stdout), tuple(errors), exit_status, tuple(args), deterministic, threaded)


def run_minivm(*args: str, timeout: float = 60, input_text: str | None = None):
    """Run the ``minivm`` command line in a fresh interpreter; returns CompletedProcess."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "minivm", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=input_text,
        cwd=ROOT,
    )


def popen_interruptible(command: list[str], **options) -> subprocess.Popen:
    """``subprocess.Popen(command, **options)`` whose process starts with SIGINT at its default,
    so that Python installs its handler there and a test's ``send_signal(SIGINT)`` is a Ctrl-C.

    A process started in the background by a non-interactive shell (``cmd &``, ``nohup``, a CI
    runner that does so) has SIGINT ignored, and an ignored signal stays ignored across
    ``exec``: the child then installs no handler, drops the test's SIGINT, and the Ctrl-C test
    hangs (every one of them did, run that way, on both hosts). A signal with a handler is
    reset to its default across ``exec``, so while the child starts this process handles
    SIGINT (from the main thread, where Python allows it)."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if not ignored or threading.current_thread() is not threading.main_thread():
        return subprocess.Popen(command, **options)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, **options)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_cli_without_polls(monkeypatch, *argv: str) -> tuple[int, str, str]:
    """``minivm run ARGV`` in this process, with every GIL wait's abort poll at ten minutes:
    status, stdout, stderr. A run that ends does so because the VM acted at once (a deadlock
    found as the last thread blocked, an abort waking every waiter), not because a poll came
    round; one that needed a poll hangs until the test's timeout. Tests of "reported at once,
    never waited out" use it instead of a bound on the wall time of a fresh process, which
    measured the host: on the loaded 2-core machine a low-priority process took up to 25 s
    just to start."""
    import contextlib
    import io

    from minivm.cli import build_parser
    from minivm.gil.policies import TicksPolicy, TimedPolicy

    monkeypatch.setattr(TicksPolicy, "ABORT_POLL_S", 600.0)
    monkeypatch.setattr(TimedPolicy, "ABORT_POLL_S", 600.0)
    args = build_parser("run").parse_args(["run", *argv])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = args.handler(args)
    return status, out.getvalue(), err.getvalue()


def check_golden(path: Path, extra_args: tuple[str, ...] = ()):
    """Run ``path`` and assert everything its directives promise; returns the run."""
    expect = read_expectation(path)
    result = run_minivm("run", *expect.args, *extra_args, str(path))
    where = f"{path.name} {' '.join(extra_args)}".strip()
    assert "Traceback (most recent call last)" not in result.stderr, (where, result.stderr)
    assert result.returncode == expect.exit_status, (
        f"{where}: exit {result.returncode}, expected {expect.exit_status}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    if expect.deterministic:
        assert result.stdout.splitlines() == list(expect.stdout), (
            f"{where}: stdout differs\nstderr:\n{result.stderr}"
        )
    for fragment in expect.errors:
        assert fragment in result.stderr, f"{where}: {fragment!r} not in stderr:\n{result.stderr}"
    return result


ENGINES = ("interp", "compiled")


def check_golden_on_both_engines(path: Path, extra_args: tuple[str, ...] = ()) -> None:
    """``check_golden`` on the interpreter and on the compiled engine; a deterministic program
    must also give both exactly the same output, error text and exit status."""
    interp, compiled = (check_golden(path, (*extra_args, "--engine", engine)) for engine in ENGINES)
    if read_expectation(path).deterministic:
        where = f"{path.name} {' '.join(extra_args)}".strip()
        assert compiled.returncode == interp.returncode, where
        assert compiled.stdout == interp.stdout, where
        assert compiled.stderr == interp.stderr, f"{where}\ninterp:\n{interp.stderr}\ncompiled:\n{compiled.stderr}"


def golden_files(*folders: str) -> list[Path]:
    """Every ``.mv`` file in the given folders (relative to the repository)."""
    files: list[Path] = []
    for folder in folders:
        files.extend(sorted((ROOT / folder).glob("*.mv")))
    return files
