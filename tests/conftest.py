"""Shared test set-up: the tests folder is importable (for ``golden``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The compiled engine needs one host frame per guest call and raises the host's recursion
# limit to fit the default guest limit (1000 calls); raise it once here, before any test,
# so that hypothesis does not see it change during one.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 2000))
