"""``python -m minivm``: the same as the ``minivm`` command."""

import sys

from minivm.cli import main

sys.exit(main())
