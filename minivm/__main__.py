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
        if not interrupted(error):
            raise
        print("minivm: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def interrupted(error: BaseException) -> bool:
    """Whether ``error`` came from a Ctrl-C: a ``KeyboardInterrupt`` that Python wrapped on its
    way out, as class creation does (a Ctrl-C inside ``__set_name__`` while a class of attrs
    is built becomes ``RuntimeError: Error calling __set_name__``, its cause the interrupt)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
