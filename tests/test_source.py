"""The source file (``minivm/source.py``): lines split once, as the parser counts them, and
the one rendering of a place in the source that every error is built from."""

from __future__ import annotations

import io

from minivm.errors import GuestError, SourceError, format_guest_error, format_source_error
from minivm.frontend.compiler import compile_source
from minivm.runtime.machine import Machine, VMConfig
from minivm.source import SourceFile, render_location, split_lines


def test_lines_break_at_newline_only():
    source = SourceFile("t.mv", "a\r\nb\x0cc\u2028d\n\ne\n")
    assert source.lines == ("a", "b\x0cc\u2028d", "", "e")
    assert split_lines("") == ()
    assert split_lines("x") == ("x",)


def test_line_is_empty_past_either_end():
    source = SourceFile("t.mv", "one\ntwo")
    assert [source.line(n) for n in (0, 1, 2, 3, -1)] == ["", "one", "two", "", ""]


def test_end_is_just_past_the_last_character():
    assert SourceFile("t.mv", "ab\ncde\n").end() == (2, 4)
    assert SourceFile("t.mv", "").end() == (1, 1)


def test_render_location_puts_the_caret_under_the_column():
    text = render_location("f.mv", 2, 5, "let\tx = ;", "syntax error: expected an expression")
    assert text == "f.mv:2:5: syntax error: expected an expression\n    let x = ;\n        ^"
    assert render_location("f.mv", 9, 1, "", "syntax error: x") == "f.mv:9:1: syntax error: x"


def test_the_caret_counts_terminal_columns_of_wide_and_combining_characters():
    # Each CJK character takes two columns and a combining accent none: counting characters
    # put the caret under the wrong character (Python's tracebacks count columns, 3.13+).
    cases = [
        ('print("日本語" +);', 14, 16),  # under the ')'
        ('let s = "🎉e\u0301"; x $;', 18, 17),  # under the '$'
        ("let s = 'é' $;", 13, 12),  # a precomposed letter takes one column
    ]
    for text, column, spaces in cases:
        caret = render_location("f.mv", 1, column, text, "syntax error: x").split("\n")[2]
        assert caret == "    " + " " * spaces + "^", (text, caret)


def test_a_runtime_error_message_shows_control_characters_as_pictures():
    # A map key holding an escape sequence went raw into the message and acted on the
    # terminal (ESC [2J clears it); the message's own line breaks and tabs stay.
    error = GuestError('key not found: "\x1b[2J\u202e"')
    error.thread_id = 0
    assert format_guest_error(error) == 'error in thread 0: key not found: "\u241b[2J\ufffd"'
    error = GuestError("assertion failed: a\n\tb\x07")
    error.thread_id = 0
    assert format_guest_error(error) == "error in thread 0: assertion failed: a\n\tb\u2407"


def test_source_error_at_takes_the_line_from_the_file():
    source = SourceFile("f.mv", "let a = 1;\nbreak;\n")
    error = SourceError.at("compile error", "'break' outside a loop", source, 2, 1)
    assert (error.location.file, error.location.line, error.source_line) == ("f.mv", 2, "break;")
    assert format_source_error(error) == "f.mv:2:1: compile error: 'break' outside a loop\n    break;\n    ^"


def test_code_objects_refer_to_the_file_they_came_from():
    code = compile_source("fn f() { return 1; }\nprint(f());\n", "c.mv")
    assert code.source is not None and code.source.name == "c.mv"
    assert all(inner.source is code.source for inner in code.nested())
    assert code.source.line(2) == "print(f());"


def test_a_runtime_error_shows_its_lines_with_no_table_of_lines():
    program = "fn g(x) {\n    return x // 0;\n}\nprint(g(1));\n"
    err = io.StringIO()
    status = Machine(VMConfig(), stdout=io.StringIO(), stderr=err).run(compile_source(program, "z.mv"))
    assert status == 1
    assert err.getvalue().splitlines()[-4:] == [
        "    z.mv:4 in <main>",
        "      print(g(1));",
        "    z.mv:2 in g",
        "      return x // 0;",
    ]


def test_call_chain_entries_compare_without_their_source():
    one = compile_source("print(1);", "a.mv").call_site(0)
    other = compile_source("print(1);", "a.mv").call_site(0)
    assert one == other and one.source is not other.source
    error = GuestError("boom")
    error.chain = (one,)
    assert format_guest_error(error).endswith("a.mv:1 in <main>\n      print(1);")
