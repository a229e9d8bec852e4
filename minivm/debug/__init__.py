"""The stepping debugger: stop points (``controller``), what it shows (``inspect``), commands."""

from minivm.debug.commands import Debugger, run_debugger
from minivm.debug.controller import Controller, Stop

__all__ = ["Controller", "Debugger", "Stop", "run_debugger"]
