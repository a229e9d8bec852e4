"""lark's parse errors → a ``SourceError`` that names the place and says in words what is wrong.

lark reports what it met and the terminals it would have taken; this module turns that into
a sentence: ``expected ';' after the statement, found a name 'print'``. A few mistakes get
a sentence of their own because the general one would mislead: chained comparisons, a
missing ``{``, and a number glued to what cannot continue it (``5.x``, ``1..2``, ``1_``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from minivm.errors import Location, SourceError
from minivm.frontend.lark_standalone import (
    PatternStr,
    TerminalDef,
    Token,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from minivm.source import SourceFile

KEYWORDS = frozenset(
    ["let", "fn", "return", "if", "else", "while", "for", "in", "break", "continue", "spawn",
     "true", "false", "nil", "and", "or", "not"]
)  # fmt: skip
_COMPARISONS = frozenset(["==", "!=", "<", "<=", ">", ">="])
_OPERATORS = _COMPARISONS | {"+", "-", "*", "/", "//", "%", "and", "or"}
# Terminals that can start an expression; an "expected" list holding them says "an expression".
_EXPRESSION_STARTERS = frozenset(
    ["NAME", "INT", "FLOAT", "STRING", "LPAR", "LSQB", "LBRACE", "MINUS", "NOT", "FN", "SPAWN",
     "TRUE", "FALSE", "NIL"]
)  # fmt: skip
_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a float",
    "STRING": "a string",
    "$END": "end of file",
}
# Characters of names and numbers: a run of them with no space inside is read as one word.
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
# What may stand right before a '.' that a user meant as attribute access: `x.y`, `f().y`.
_OPERAND_ENDS = _WORD_CHARS | frozenset(')]}"')


class SyntaxErrorTranslator:
    """Builds the message of a syntax error from what lark reports, using the grammar's
    own terminals (their literal text, and the number and name patterns)."""

    def __init__(self, terminals: Iterable[TerminalDef]):
        terminals = list(terminals)
        self._literals = {t.name: t.pattern.value for t in terminals if isinstance(t.pattern, PatternStr)}
        patterns = {t.name: re.compile(t.pattern.to_regexp()) for t in terminals}
        # In the lexer's order: a float is tried before an int, and both before a name.
        self._word_patterns = [(patterns["FLOAT"], True), (patterns["INT"], True), (patterns["NAME"], False)]

    # -- naming terminals and tokens
    def describe_terminal(self, name: str) -> str:
        """A terminal's name in words: ``';'``, ``a name``, ``end of file``."""
        if name in _TERMINAL_WORDS:
            return _TERMINAL_WORDS[name]
        literal = self._literals.get(name)
        if literal is None:
            return name.lower()
        return f"'{literal}'"

    @staticmethod
    def _describe_token(token: Token) -> str:
        if token.type == "$END":
            return "end of file"
        if token.type in _TERMINAL_WORDS:
            return f"{_TERMINAL_WORDS[token.type]} '{token}'"
        if str(token) in KEYWORDS:
            return f"keyword '{token}'"
        return f"'{token}'"

    def _describe_expected(self, expected: set[str]) -> str:
        expected = {e for e in expected if not e.startswith("__") or e in self._literals}
        words: list[str] = []
        if len(expected & _EXPRESSION_STARTERS) >= 4:
            words.append("an expression")
            expected -= _EXPRESSION_STARTERS
        operators = {e for e in expected if self._literals.get(e) in _OPERATORS}
        if len(operators) >= 3:
            # After a complete operand: any operator (or a call's '(' or an index's '[') could
            # continue it; naming them all would hide what is really missing.
            words.append("an operator")
            expected -= operators | {"LPAR", "LSQB"}
        words += sorted(self.describe_terminal(e) for e in expected)
        if not words:
            return "something else"
        if len(words) == 1:
            return words[0]
        return ", ".join(words[:-1]) + " or " + words[-1]

    # -- the translation
    def translate(self, exc: UnexpectedInput, source_file: SourceFile) -> SourceError:
        """The ``SourceError`` for one lark error, at the line and column of the offending text
        (1-based; "end of file" is just past the last character)."""
        source = source_file.text
        line = getattr(exc, "line", None) or 0
        column = getattr(exc, "column", None) or 0
        if isinstance(exc, UnexpectedCharacters):
            message = self._glued_message(source, exc.pos_in_stream) or _unexpected_character(
                source, exc.pos_in_stream
            )
        elif isinstance(exc, UnexpectedToken):
            token = exc.token
            if token.type == "$END":
                line, column = source_file.end()
            glued = token.type != "$END" and token.start_pos is not None
            message = self._glued_message(source, token.start_pos) if glued else None
            if message is None:
                message = self._unexpected_token_message(exc)
        elif isinstance(exc, UnexpectedEOF):
            line, column = source_file.end()
            message = f"unexpected end of file, expected {self._describe_expected(set(exc.expected))}"
        else:  # pragma: no cover - lark has no other kinds today
            message = str(exc)
        # With no line from lark the error stands on line 1, but shows no line of source.
        where = Location(source_file.name, max(line, 1), max(column, 1))
        return SourceError("syntax error", message, where, source_file.line(line))

    def _unexpected_token_message(self, exc: UnexpectedToken) -> str:
        token = exc.token
        # ``accepts`` holds what the parser would really take here; ``expected`` is wider
        # (everything its state has an action for, before reductions are checked).
        accepts = set(exc.accepts or exc.expected)
        if str(token) in _COMPARISONS and _after_comparison(exc):
            message = (
                f"comparisons do not chain: found {self._describe_token(token)} after a comparison "
                "(write a < b and b < c)"
            )
        elif "SEMICOLON" in accepts and token.type != "SEMICOLON":
            # After a complete expression almost anything could continue it; the useful
            # word is the one that ends the statement.
            message = f"expected ';' after the statement, found {self._describe_token(token)}"
        elif "LBRACE" in accepts and "NAME" not in accepts:
            # After the condition of if/while, a for's iterable or a function's parameters:
            # '{' here can only open a block (a name would be allowed if it could start a map).
            message = f"expected '{{' to open a block, found {self._describe_token(token)}"
        else:
            message = f"expected {self._describe_expected(accepts)}, found {self._describe_token(token)}"
        if str(token) in KEYWORDS and "NAME" in accepts and len(accepts & _EXPRESSION_STARTERS) < 4:
            # Only where a name is what must come (`let for = 1`), not where any expression
            # could (`1 == not x`): there the keyword is simply in the wrong place.
            message += " (keywords cannot be used as names)"
        return message

    # -- numbers glued to what cannot continue them
    def _glued_message(self, source: str, pos: int) -> str | None:
        """The message when the text at ``pos`` runs straight on from the number before it
        (``5.x``, ``1..2``, ``1_``, ``1.5e``) or, for a '.', from another operand (``x.5``);
        ``None`` when it does not touch what comes before."""
        if pos <= 0 or pos >= len(source) or source[pos] not in _WORD_CHARS:
            return None
        number = self._number_ending_at(source, pos)
        if number is None:
            if source[pos] == "." and source[pos - 1] in _OPERAND_ENDS:
                return "unexpected character '.' (minivm has no attribute access)"
            return None
        end = pos
        while end < len(source) and (
            source[end] in _WORD_CHARS or (source[end] in "+-" and source[end - 1] in "eE")
        ):
            end += 1
        return f"invalid number '{number + source[pos:end]}': {_why_not_a_number(number, source, pos)}"

    def _number_ending_at(self, source: str, pos: int) -> str | None:
        """The number token that ends exactly at ``pos``, read the way the lexer reads the
        run of name and number characters it belongs to; ``None`` if none does."""
        start = pos
        while start > 0 and (
            source[start - 1] in _WORD_CHARS
            or (source[start - 1] in "+-" and start > 1 and source[start - 2] in "eE")  # 1e+5
        ):
            start -= 1
        i, last = start, None
        while i < pos:
            for pattern, is_number in self._word_patterns:
                match = pattern.match(source, i, pos)
                if match:
                    last = source[i : match.end()] if is_number else None
                    i = match.end()
                    break
            else:  # a '.' that starts no number, or a sign that is not an exponent's
                last, i = None, i + 1
        return last


def _why_not_a_number(number: str, source: str, pos: int) -> str:
    bad = source[pos]
    after = source[pos + 1 : pos + 2]
    if bad == ".":
        if "." in number:
            return "a number has only one '.'"
        return "a '.' cannot follow the exponent of a number"
    if bad == "_":
        return "'_' may only stand between two digits"
    if bad in "eE" and (after == "" or after not in _WORD_CHARS or after in "_"):
        return f"'{bad}' must be followed by the digits of an exponent, like 1.5{bad}3 or 2{bad}-4"
    if number.endswith("."):
        return "a name cannot follow a number's '.' (minivm has no attribute access)"
    return "a name cannot follow a number (put an operator between them)"


def _unexpected_character(source: str, pos: int) -> str:
    char = source[pos] if pos < len(source) else ""
    if char == '"':
        return "unterminated string (a string must close with \" on the same line)"
    if char == "\\":
        return "unexpected '\\' outside a string"
    if char.isprintable() and char not in " \t":
        return f"unexpected character '{char}'"
    return f"unexpected character {char!r}"


def _after_comparison(exc: UnexpectedToken) -> bool:
    """Whether the parser had just read ``a < b`` (a comparison operator and its right side)."""
    parser = getattr(exc, "interactive_parser", None)
    values = parser.parser_state.value_stack if parser is not None else []
    return len(values) >= 2 and getattr(values[-2], "data", None) == "comp_op"

