"""Benchmark: does minivm's own lock decide, or the host's? (docs/gil.md, "The host").

Measures, from one run of this script, with the host's 5 ms switch interval left in force
(``--host-switch-interval 0.005``, minivm's behaviour before it managed the host) and with
minivm's setting (the default):

* ``timed`` waits (``wait_p50_s`` of ``--stats-json``) for switch intervals of 1, 2, 5, 20 ms,
  two threads spinning — the wait should follow the switch interval;
* the wake-up of a thread sleeping 1 ms beside a spinning thread, under every GIL policy
  (median lateness over 40 sleeps) — it should be near 0, not the host's 5 ms.

Usage: ``python benchmarks/host_switching.py [--quick]``. Prints a table; no assertion.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SPIN_TWO = """
fn spin(n) { let s = 0; for i in range(n) { s += 1; } return s; }
let a = spawn spin({n}); let b = spawn spin({n});
join(a); join(b);
"""

SLEEP_BESIDE_SPIN = """
let done = false;
fn spin() { let s = 0; while not done { s += 1; } return s; }
fn sleeper() {
    let late = [];
    for i in range({sleeps}) {
        let t0 = time();
        sleep(0.001);
        push(late, time() - t0 - 0.001);
    }
    done = true;
    return late;
}
let a = spawn spin(); let b = spawn sleeper();
let late = join(b); join(a);
print(late);
"""

HOST_DEFAULT = "0.005"


def minivm(*args: str) -> subprocess.CompletedProcess:
    """Run the minivm command line of this interpreter."""
    return subprocess.run([sys.executable, "-m", "minivm", *args], capture_output=True, text=True, check=True)


def timed_wait(folder: Path, switch: float, host: str | None, n: int) -> float:
    """Median GIL wait (seconds) of two spinning threads under ``timed``."""
    program = folder / "spin.mv"
    program.write_text(SPIN_TWO.replace("{n}", str(n)))
    stats = folder / "s.json"
    host_args = ["--host-switch-interval", host] if host else []
    minivm("run", "--policy", "timed", "--switch-interval", str(switch), *host_args,
           "--stats-json", str(stats), str(program))  # fmt: skip
    return json.loads(stats.read_text())["wait_p50_s"]


def sleep_lateness(folder: Path, policy: str, host: str | None, sleeps: int) -> float:
    """Median lateness (seconds) of a 1 ms sleep beside a spinning thread."""
    program = folder / "sleep.mv"
    program.write_text(SLEEP_BESIDE_SPIN.replace("{sleeps}", str(sleeps)))
    host_args = ["--host-switch-interval", host] if host else []
    out = minivm("run", "--policy", policy, *host_args, str(program)).stdout
    return statistics.median(float(x) for x in out.strip()[1:-1].split(","))


def main() -> None:
    """Print both tables."""
    quick = "--quick" in sys.argv
    n = 100_000 if quick else 300_000
    sleeps = 10 if quick else 40
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"host: Python {sys.version.split()[0]}, host GIL {'on' if gil else 'off'}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print("\ntimed: median wait vs --switch-interval (2 spinning threads)")
        print(f"{'switch interval':>16} {'host 5 ms':>12} {'minivm':>12} {'minivm/interval':>16}")
        for switch in (0.001, 0.002, 0.005, 0.020):
            before = timed_wait(folder, switch, HOST_DEFAULT, n)
            after = timed_wait(folder, switch, None, n)
            print(f"{switch * 1e3:>13.0f} ms {before * 1e3:>9.2f} ms {after * 1e3:>9.2f} ms {after / switch:>15.2f}x")
        print("\nsleep(0.001) beside a spinning thread: median lateness")
        print(f"{'policy':>10} {'host 5 ms':>12} {'minivm':>12}")
        for policy in ("ticks", "fifo", "timed", "priority", "none"):
            before = sleep_lateness(folder, policy, HOST_DEFAULT, sleeps)
            after = sleep_lateness(folder, policy, None, sleeps)
            print(f"{policy:>10} {before * 1e3:>9.2f} ms {after * 1e3:>9.2f} ms")


if __name__ == "__main__":
    main()
