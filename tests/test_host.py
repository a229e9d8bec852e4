"""The host's own lock kept out of the way: while 2+ guest threads are alive the host switches
often (so minivm's GIL decides), and its own interval is restored afterwards."""

from __future__ import annotations

import io
import json
import sys
import threading

import pytest
from golden import ROOT, run_minivm

from minivm.frontend.compiler import compile_source
from minivm.runtime.host import HOST_SWITCH_INTERVAL_S, NO_GIL_HOST_SWITCH_INTERVAL_S, HostSwitching
from minivm.runtime.machine import Machine, VMConfig

PROGRAM = """
print("alone");
fn child() { print("with a child"); }
let t = spawn child();
join(t);
print("alone again");
"""


class IntervalRecorder(io.StringIO):
    """A stdout that notes the host's switch interval when each line is written."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, float]] = []

    def write(self, text: str) -> int:
        self.seen.append((text.strip(), sys.getswitchinterval()))
        return super().write(text)


def _run(policy: str, host_interval: float | None = None) -> list[tuple[str, float]]:
    code = compile_source(PROGRAM, "<test>")
    out = IntervalRecorder()
    config = VMConfig(policy=policy, host_switch_interval=host_interval)
    assert Machine(config, stdout=out, stderr=io.StringIO()).run(code) == 0
    return out.seen


@pytest.mark.timeout(30)
@pytest.mark.parametrize("policy", ["ticks", "fifo", "timed", "priority", "none"])
def test_interval_set_while_threads_run_and_restored_after(policy):
    before = sys.getswitchinterval()
    seen = dict(_run(policy))
    expected = HOST_SWITCH_INTERVAL_S if policy != "none" else NO_GIL_HOST_SWITCH_INTERVAL_S
    assert seen["alone"] == pytest.approx(before)
    assert seen["with a child"] == pytest.approx(expected)
    assert seen["alone again"] == pytest.approx(before)
    assert sys.getswitchinterval() == pytest.approx(before)


@pytest.mark.timeout(30)
def test_host_switch_interval_overrides_the_default():
    seen = dict(_run("ticks", host_interval=0.002))
    assert seen["with a child"] == pytest.approx(0.002)


@pytest.mark.timeout(30)
def test_interval_restored_after_a_failed_run():
    before = sys.getswitchinterval()
    code = compile_source("fn spin() { while true { } }\nlet t = spawn spin();\nassert(false);", "<test>")
    machine = Machine(VMConfig(policy="fifo"), stdout=io.StringIO(), stderr=io.StringIO())
    assert machine.run(code) == 1
    assert sys.getswitchinterval() == pytest.approx(before)


def test_host_switching_rejects_a_bad_interval():
    with pytest.raises(ValueError, match="positive"):
        HostSwitching(0.0)


def test_host_switching_is_idempotent():
    before = sys.getswitchinterval()
    host = HostSwitching(0.003)
    host.threads_alive(2)
    host.threads_alive(3)
    assert sys.getswitchinterval() == pytest.approx(0.003)
    host.threads_alive(1)
    host.restore()
    assert sys.getswitchinterval() == pytest.approx(before)
    assert threading.active_count() >= 1


@pytest.mark.timeout(60)
def test_stats_report_the_host(tmp_path):
    stats = tmp_path / "s.json"
    program = tmp_path / "p.mv"
    program.write_text(PROGRAM)
    result = run_minivm("run", "--host-switch-interval", "0.0005", "--stats-json", str(stats), "--stats", str(program))
    assert result.returncode == 0, result.stderr
    host = json.loads(stats.read_text())["host"]
    assert host["python"] == sys.version.split()[0]
    assert host["switch_interval_s"] == pytest.approx(0.0005)
    assert host["gil"] == getattr(sys, "_is_gil_enabled", lambda: True)()
    assert "host switch interval 0.0005 s while threads ran" in result.stderr


def test_host_switch_interval_must_be_positive():
    result = run_minivm("run", "--host-switch-interval", "0", "-c", "print(1);")
    assert result.returncode == 2
    assert "--host-switch-interval" in result.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("option", ["--switch-interval", "--host-switch-interval"])
@pytest.mark.parametrize("value", ["1e12", "1e300", "inf"])
def test_an_interval_too_long_for_the_host_is_a_usage_error(option, value):
    # --switch-interval 1e300 under timed used to end in "minivm internal error: cannot convert
    # float infinity to integer", and 1e12 in "timestamp out of range for platform time_t".
    result = run_minivm("run", "--policy", "timed", option, value, str(ROOT / "programs" / "race.mv"))
    assert (result.returncode, result.stdout) == (2, "")
    assert f"argument {option}: must be at most 1,000,000,000 seconds, got {value}" in result.stderr


@pytest.mark.parametrize("setting", ["switch_interval", "host_switch_interval"])
@pytest.mark.parametrize("value", [0.0, -1.0, 1e300, float("inf"), float("nan")])
def test_the_api_refuses_an_interval_that_is_no_usable_span(setting, value):
    import minivm

    with pytest.raises(ValueError, match="at most 1,000,000,000 seconds"):
        minivm.run("print(1);", policy="timed", **{setting: value})
