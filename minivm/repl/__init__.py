"""The REPL: a long-lived VM (``session``) and the prompt that feeds it (``console``)."""

from minivm.repl.console import Console, run_repl
from minivm.repl.session import Outcome, Session

__all__ = ["Console", "Outcome", "Session", "run_repl"]
