"""``python -m minivm`` and the ``minivm`` command.

Importing the command line (lark, attrs, the VM) takes a noticeable moment. A Ctrl-C in that
moment ends minivm like a Ctrl-C at any other time — ``minivm: interrupted`` and exit status
130, no Python traceback — so the real command line is imported inside the ``try`` below.
"""

import sys

EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``minivm`` command: import the command line and run it."""
    try:
        from minivm.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:
        print("minivm: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        from minivm.errors import caused_by_interrupt

        if not caused_by_interrupt(error):
            raise
        print("minivm: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
