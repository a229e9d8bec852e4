"""The options that configure a VM (``--policy``, ``--check-interval``, ...), shared by
``minivm run`` and ``minivm repl``, and the ``minivm.api`` settings they stand for."""

from __future__ import annotations

import argparse

from minivm.arguments import engine_name, policy_name, positive_float, positive_int
from minivm.gil.policies import POLICY_NAMES
from minivm.runtime.engine import ENGINE_NAMES


def add_vm_options(parser: argparse.ArgumentParser) -> None:
    """The options that configure a VM, shared by ``run`` and ``repl`` (``experiment`` takes
    lists of the same settings, ``minivm/observe/experiment.py``)."""
    parser.add_argument(
        "--policy", type=policy_name, default="ticks", metavar="NAME",
        help=f"lock policy: {', '.join(POLICY_NAMES)} (default: ticks)",
    )
    parser.add_argument(
        "--check-interval", type=positive_int, default=100, metavar="N",
        help="ticks (instructions) between checks (default: 100)",
    )
    parser.add_argument(
        "--switch-interval", type=positive_float, default=0.005, metavar="SECONDS",
        help="how long a waiter waits before a drop request, for the timed policy (default: 0.005)",
    )
    parser.add_argument(
        "--check-at", choices=("every", "backedge"), default="every",
        help="where the check may fall: after any instruction (every, CPython 2 and 3.2-3.9) "
        "or only at a function's entry and backward jumps (backedge, CPython 3.10+); default: every",
    )
    parser.add_argument(
        "--host-switch-interval", type=positive_float, default=None, metavar="SECONDS",
        help="the host Python's own switch interval while 2+ guest threads are alive "
        "(default: 1e-05, or 1e-06 under --policy none; see docs/gil.md)",
    )
    parser.add_argument(
        "--recursion-limit", type=positive_int, default=1000, metavar="N",
        help="maximum depth of guest calls (default: 1000)",
    )
    parser.add_argument(
        "--max-steps", type=positive_int, default=None, metavar="N",
        help="stop with an error after N instructions in all (default: no limit)",
    )
    parser.add_argument(
        "--max-threads", type=positive_int, default=10_000, metavar="N",
        help="refuse to spawn more than N threads in a run (default: 10000)",
    )
    parser.add_argument(
        "--heap-check", action="store_true",
        help="audit every reference count at exit (exit 1 on a mismatch)",
    )
    parser.add_argument(
        "--engine", type=engine_name, default="auto", metavar="NAME",
        help=f"{', '.join(ENGINE_NAMES)}: the interpreter, or guest functions compiled to host "
        "functions (default: auto, the compiled one unless tracing instructions)",
    )  # fmt: skip


def vm_settings(args: argparse.Namespace) -> dict:
    """The ``minivm.api.prepare`` keyword settings (``VMConfig``'s fields, intervals in ticks
    and seconds) from options parsed by ``add_vm_options``."""
    return {
        "policy": args.policy,
        "check_interval": args.check_interval,
        "switch_interval": args.switch_interval,
        "host_switch_interval": args.host_switch_interval,
        "check_at": args.check_at,
        "recursion_limit": args.recursion_limit,
        "max_steps": args.max_steps,
        "max_threads": args.max_threads,
        "heap_check": args.heap_check,
        "engine": args.engine,
    }
