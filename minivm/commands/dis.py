"""``minivm dis``: a program's bytecode (``minivm/bytecode/disasm.py``), or the host source
the compiled engine generates for it (``--compiled``)."""

from __future__ import annotations

import argparse
import sys

from minivm.commands.source import EXIT_OK, read_source


def add_dis_parser(sub) -> argparse.ArgumentParser:
    """Register ``minivm dis`` on the command line's sub-parsers."""
    dis = sub.add_parser("dis", help="show a program's bytecode", description="Disassemble every code object.")
    dis_source = dis.add_mutually_exclusive_group(required=True)
    dis_source.add_argument("file", nargs="?", help="the .mv file to disassemble (- reads standard input)")
    dis_source.add_argument("-c", dest="code", metavar="CODE", help="disassemble CODE")
    dis.add_argument(
        "--compiled", action="store_true", help="show the host source the compiled engine generates"
    )
    dis.set_defaults(handler=cmd_dis)
    return dis


def cmd_dis(args: argparse.Namespace) -> int:
    """``minivm dis``: print the listing on standard output; exit status 0. Raises
    ``SourceError`` for a program that does not compile, ``UsageError`` for a missing file."""
    from minivm import api

    name, text = read_source(args)
    code = api.compile(text, filename=name).code
    if args.compiled:
        from minivm.runtime.compiled.listing import compiled_listing

        sys.stdout.write(compiled_listing(code))
    else:
        from minivm.bytecode.disasm import disassemble

        sys.stdout.write(disassemble(code))
    return EXIT_OK
