"""Source text → syntax tree. The only module that knows where the grammar lives.

The LALR parser runs with the tree builder attached (``transformer=``), so nodes are built
as rules are reduced: no intermediate parse tree and no recursion, which is what lets
3000-deep nesting parse. Every lark error is turned into a ``SourceError`` that names the
position and says in words what was expected (the wording: ``syntax_errors.py``).
"""

from __future__ import annotations

import codecs
from functools import lru_cache
from typing import cast

from minivm.errors import Location, SourceError
from minivm.frontend import lark_standalone as lark
from minivm.frontend import nodes as n
from minivm.frontend.lark_standalone import (
    Token,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
    v_args,
)
from minivm.frontend.syntax_errors import KEYWORDS, SyntaxErrorTranslator
from minivm.source import SourceFile

# lark 1.3's standalone output calls typing.cast in Transformer_NonRecursive.transform
# without importing it; give the module the name it expects.
if not hasattr(lark, "cast"):
    lark.cast = cast

MAX_INT_LITERAL_DIGITS = 100_000
# How deep the syntax tree may be. The compiler walks it recursively (about two host frames
# per level, within the host recursion limit the command line sets); each operator of a
# chain like `1 + 1 + ... + 1` is one level, as in Python's own compiler.
MAX_NESTING = 20_000
# Host frames the compiler may spend per level at most (measured: 2 for brackets and operator
# chains, 2.3 for nested function literals), with room to spare: a stack that affords fewer
# frames than MAX_NESTING levels need lowers the limit (``nesting_limit``).
FRAMES_PER_LEVEL = 4

_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}


def grammar_text() -> str:
    """The grammar. An installed wheel carries it as ``minivm/grammar/minivm.lark``; an
    editable install reads it from the checkout's top-level ``grammar/`` folder."""
    from importlib import resources
    from pathlib import Path

    try:
        packaged = resources.files("minivm.grammar").joinpath("minivm.lark")
        return packaged.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        checkout = Path(__file__).resolve().parents[2] / "grammar" / "minivm.lark"
        return checkout.read_text(encoding="utf-8")


class _TreeBuilder(lark.Transformer_NonRecursive):
    """One method per grammar rule, each building one frozen node with its position."""

    def __init__(self, source: SourceFile):
        super().__init__()
        self.source = source

    def _error(self, message: str, line: int, column: int) -> SourceError:
        return SourceError.at("syntax error", message, self.source, line, column)

    @staticmethod
    def _pos(meta_or_token) -> dict[str, int]:
        return {"line": meta_or_token.line, "column": meta_or_token.column}

    # -- statements
    @v_args(meta=True)
    def start(self, meta, children):
        return n.Program(tuple(children), self.source.name, line=1, column=1)

    @v_args(meta=True)
    def let_stmt(self, meta, children):
        name, value = children
        self._check_name(name)
        return n.Let(str(name), value, **self._pos(meta))

    @v_args(meta=True)
    def assign_stmt(self, meta, children):
        target, value = children
        self._check_target(target)
        return n.Assign(target, value, None, **self._pos(meta))

    @v_args(meta=True)
    def aug_assign_stmt(self, meta, children):
        target, op, value = children
        self._check_target(target)
        return n.Assign(target, value, str(op)[:-1], **self._pos(meta))

    def aug_op(self, children):
        return children[0]

    def _check_target(self, target) -> None:
        if not isinstance(target, n.Name | n.Index):
            raise self._error(
                "can only assign to a name or an index like a[i]", target.line, target.column
            )

    def _check_name(self, token: Token) -> None:
        # Keywords never reach here (the lexer reserves them); this keeps the check explicit.
        if str(token) in KEYWORDS:
            raise self._error(f"'{token}' is a keyword", token.line, token.column)

    @v_args(meta=True)
    def if_stmt(self, meta, children):
        cond, then, *rest = children
        return n.If(cond, then, rest[0] if rest else None, **self._pos(meta))

    def else_clause(self, children):
        return children[0]

    @v_args(meta=True)
    def while_stmt(self, meta, children):
        cond, body = children
        return n.While(cond, body, **self._pos(meta))

    @v_args(meta=True)
    def for_stmt(self, meta, children):
        var, iterable, body = children
        return n.For(str(var), iterable, body, **self._pos(meta))

    @v_args(meta=True)
    def break_stmt(self, meta, children):
        return n.Break(**self._pos(meta))

    @v_args(meta=True)
    def continue_stmt(self, meta, children):
        return n.Continue(**self._pos(meta))

    @v_args(meta=True)
    def fn_stmt(self, meta, children):
        name, params, body = children
        function = n.FnExpr(str(name), params, body, **self._pos(meta))
        return n.FnDecl(function, **self._pos(meta))

    @v_args(meta=True)
    def return_stmt(self, meta, children):
        return n.Return(children[0] if children else None, **self._pos(meta))

    @v_args(meta=True)
    def expr_stmt(self, meta, children):
        return n.ExprStmt(children[0], **self._pos(meta))

    @v_args(meta=True)
    def block(self, meta, children):
        return n.Block(tuple(children), **self._pos(meta))

    def params(self, children):
        names = tuple(str(c) for c in children)
        seen: set[str] = set()
        for token in children:
            if str(token) in seen:
                raise self._error(f"duplicate parameter '{token}'", token.line, token.column)
            seen.add(str(token))
        return names

    # -- expressions
    @v_args(meta=True)
    def or_op(self, meta, children):
        return n.Logical("or", children[0], children[1], **self._pos(meta))

    @v_args(meta=True)
    def and_op(self, meta, children):
        return n.Logical("and", children[0], children[1], **self._pos(meta))

    @v_args(meta=True)
    def not_op(self, meta, children):
        return n.Unary("not", children[0], **self._pos(meta))

    def compare(self, children):
        left, op, right = children
        return n.Binary(str(op), left, right, line=op.line, column=op.column)

    binary = compare

    def comp_op(self, children):
        return children[0]

    add_op = mul_op = comp_op

    @v_args(meta=True)
    def neg(self, meta, children):
        operand = children[0]
        if isinstance(operand, n.Literal) and type(operand.value) in (int, float):
            return n.Literal(-operand.value, **self._pos(meta))
        return n.Unary("-", operand, **self._pos(meta))

    @v_args(meta=True)
    def call(self, meta, children):
        callee, args = children
        # The position of a call is its '(' so that errors point at the call itself.
        return n.Call(callee, args, **self._pos(meta))

    def args(self, children):
        return tuple(children)

    @v_args(meta=True)
    def index(self, meta, children):
        target, index = children
        return n.Index(target, index, **self._pos(meta))

    def int_lit(self, children):
        token = children[0]
        digits = str(token).replace("_", "")
        if len(digits) > MAX_INT_LITERAL_DIGITS:
            raise self._error(
                f"integer literal too long ({len(digits)} digits; the limit is "
                f"{MAX_INT_LITERAL_DIGITS})",
                token.line,
                token.column,
            )
        return n.Literal(int(digits), **self._pos(token))

    def float_lit(self, children):
        token = children[0]
        value = float(str(token).replace("_", ""))
        if value == float("inf"):
            raise self._error("number too large for a float", token.line, token.column)
        return n.Literal(value, **self._pos(token))

    def string_lit(self, children):
        token = children[0]
        return n.Literal(self._unescape(token), **self._pos(token))

    def _unescape(self, token: Token) -> str:
        body = str(token)[1:-1]
        if "\\" not in body:
            return body
        out: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\":
                code = body[i + 1]
                if code not in _ESCAPES:
                    raise self._error(
                        f"unknown escape '\\{code}' in string (use \\n \\t \\\\ or \\\")",
                        token.line,
                        token.column + 1 + i,
                    )
                out.append(_ESCAPES[code])
                i += 2
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    def true_lit(self, children):
        return n.Literal(True, **self._pos(children[0]))

    def false_lit(self, children):
        return n.Literal(False, **self._pos(children[0]))

    def nil_lit(self, children):
        return n.Literal(None, **self._pos(children[0]))

    def name(self, children):
        token = children[0]
        return n.Name(str(token), **self._pos(token))

    @v_args(meta=True)
    def list_lit(self, meta, children):
        return n.ListLit(tuple(c for c in children if c is not None), **self._pos(meta))

    @v_args(meta=True)
    def map_lit(self, meta, children):
        return n.MapLit(tuple(c for c in children if c is not None), **self._pos(meta))

    def pair(self, children):
        return (children[0], children[1])

    @v_args(meta=True)
    def fn_expr(self, meta, children):
        params, body = children
        return n.FnExpr("", params, body, **self._pos(meta))

    @v_args(meta=True)
    def spawn_expr(self, meta, children):
        call = children[0]
        if not isinstance(call, n.Call):
            raise self._error("spawn takes a call, like spawn f(x)", meta.line, meta.column)
        return n.Spawn(call, **self._pos(meta))



@lru_cache(maxsize=1)
def _lark_parser() -> lark.Lark:
    # The LALR tables of grammar/minivm.lark, generated ahead of time into lark_standalone.py
    # (with lark's runtime, so `import lark` and the grammar analysis are not paid at start-up).
    # How to regenerate it: docs/performance.md; tests/test_startup.py fails when it is stale.
    return lark.Lark_StandAlone()


@lru_cache(maxsize=1)
def _translator() -> SyntaxErrorTranslator:
    return SyntaxErrorTranslator(_lark_parser().terminals)


def parse(source: str | SourceFile, file: str = "<input>", max_nesting: int = MAX_NESTING) -> n.Program:
    """Parse ``source`` (a ``SourceFile``, or text named ``file``) into a ``Program``; raise
    ``SourceError`` with a position on bad input, including a tree more than ``max_nesting``
    levels deep (``MAX_NESTING`` unless the caller's host stack affords less)."""
    if not isinstance(source, SourceFile):
        source = SourceFile(file, source)
    try:
        tree = _lark_parser().parse(source.text)
    except UnexpectedInput as exc:
        raise _translator().translate(exc, source) from None
    # The tree builder works without recursion, so 3000-deep nesting builds too.
    try:
        program = _TreeBuilder(source).transform(tree)
    except VisitError as exc:  # lark wraps what a rule method raised
        raise exc.orig_exc from None
    _check_nesting(program, source, max_nesting)
    return program


def nesting_limit(recursion_limit: int) -> int:
    """The deepest tree (levels) the compiler can walk within ``recursion_limit`` host frames:
    ``MAX_NESTING``, or less on a small stack (a process under ``ulimit -v`` compiles on one,
    see ``frontend/room.py``), so that a deep program is a syntax error, not a host crash."""
    return max(1, min(MAX_NESTING, recursion_limit // FRAMES_PER_LEVEL))


def is_incomplete(source: str) -> bool:
    """Whether ``source`` is a good start that ended too soon: the parser met the end of
    the input where it wanted more (an open block, a missing ``;``). A REPL then reads
    another line, as Python's ``codeop`` does; any other error, or none, is ``False``."""
    try:
        _lark_parser().parse(source)
    except UnexpectedEOF:
        return True
    except UnexpectedToken as exc:
        return exc.token.type == "$END"
    except UnexpectedInput:
        return False
    return False


def _check_nesting(program: n.Program, source: SourceFile, limit: int) -> None:
    """Reject a tree deeper than ``limit`` levels (walked without recursion) with a syntax
    error at the first node, in source order, that is too deep."""
    stack: list[tuple[n.Node, int]] = [(program, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise SourceError.at(
                "syntax error",
                f"nesting too deep (more than {limit} levels of nested expressions "
                "and blocks)",
                source,
                node.line,
                node.column,
            )
        children = list(n.children(node))
        stack.extend((child, depth + 1) for child in reversed(children))


def decode_source(data: bytes, file: str) -> str:
    """Bytes of a source file → text; bytes that are not UTF-8 are a syntax error with a place.

    A leading UTF-8 byte order mark is dropped, as Python reads its own source files: editors
    on Windows write one, and it is no character of the program."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column = exc.start - line_start + 1
        text = data[line_start:].split(b"\n", 1)[0].decode("utf-8", errors="replace")
        raise SourceError(
            "syntax error",
            f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            Location(file, line, column),
            text,
        ) from None


