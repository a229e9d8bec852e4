"""What every command that takes a program shares: reading it from ``FILE`` or ``-c``, and
the usage error that ends the command with exit status 2."""

from __future__ import annotations

import argparse
import os
import sys

# Exit status, as ``minivm/cli.py`` documents it.
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def glue_code_argument(words: list[str]) -> list[str]:
    """``words`` (a command line after ``minivm``) with ``-c CODE`` written ``-c=CODE`` when
    CODE starts with ``-``: argparse would take ``-c '-x;'`` for two options and refuse it,
    while ``python -c`` always takes the next word as the code. Only the first ``-c``."""
    if "-c" not in words:
        return words
    at = words.index("-c")
    if at + 1 < len(words) and words[at + 1].startswith("-"):
        return [*words[:at], "-c=" + words[at + 1], *words[at + 2 :]]
    return words


class UsageError(Exception):
    """Bad input that is no program's fault (a missing file, options that cannot go
    together): the command line prints the message and exits with status 2."""


def read_source(args: argparse.Namespace) -> tuple[str, str]:
    """(file name, text) from ``FILE`` (``args.file``; ``-`` is standard input, called
    ``<stdin>`` in messages) or ``-c`` (``args.code``); raises
    ``SourceError`` for text that is not UTF-8, ``UsageError`` for a file that cannot be read."""
    from minivm.frontend.parser import decode_source

    if args.code is not None:
        try:
            args.code.encode("utf-8")
        except UnicodeEncodeError:
            # Bytes of the command line that are not UTF-8 reach Python as lone surrogates
            # (surrogateescape): the same syntax error as such bytes in a file.
            return "<string>", decode_source(os.fsencode(args.code), "<string>")
        return "<string>", args.code
    path = args.file
    if path == "-":
        # As `python -`: the program comes from standard input, named as Python names it.
        stdin = getattr(sys.stdin, "buffer", None)
        data = stdin.read() if stdin is not None else sys.stdin.read().encode("utf-8")
        return "<stdin>", decode_source(data, "<stdin>")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise UsageError(f"minivm: cannot open '{path}': no such file") from None
    except IsADirectoryError:
        raise UsageError(f"minivm: cannot open '{path}': it is a directory") from None
    except OSError as exc:
        raise UsageError(f"minivm: cannot open '{path}': {exc.strerror}") from None
    return path, decode_source(data, path)
