from __future__ import annotations

import pytest

from kptui.engine import ParseError
from kptui.engine.lexer import quote, tokenize


@pytest.mark.parametrize(
    ("line", "texts"),
    [
        ("-A X -j ACCEPT", ["-A", "X", "-j", "ACCEPT"]),
        ('-m comment --comment "a b"', ["-m", "comment", "--comment", "a b"]),
        (r'--comment "say \"hi\" \\ bye"', ["--comment", 'say "hi" \\ bye']),
        # iptables-restore (1.8.9, both backends, checked in a namespace): single quotes are ordinary
        # characters, a closing quote ends the token, a backslash outside quotes is literal
        ("--comment 'single quoted'", ["--comment", "'single", "quoted'"]),
        ('a"b c"d', ["ab c", "d"]),
        ("a\\ b", ["a\\", "b"]),
        ("  spaced\tout  ", ["spaced", "out"]),
        ('--comment ""', ["--comment", ""]),
    ],
)
def test_tokenize(line: str, texts: list[str]) -> None:
    assert [t.text for t in tokenize(line)] == texts


def test_tokens_know_their_column_and_quoting() -> None:
    toks = tokenize('-A X --comment "a b" -j Y')
    assert [(t.column, t.quoted) for t in toks] == [(0, False), (3, False), (5, False), (15, True),
                                                    (21, False), (24, False)]  # fmt: skip


def test_unterminated_quote_takes_the_rest_of_the_line_or_points_at_the_quote() -> None:
    assert tokenize('-A X --comment "never closed')[-1] == ("never closed", 15, True)
    with pytest.raises(ParseError) as info:
        tokenize('-A X --comment "never closed', lineno=7, strict=True)
    d = info.value.diagnostic
    assert (d.line, d.column) == (7, 15)
    assert "unterminated quote" in d.message


@pytest.mark.parametrize(
    ("arg", "string", "expected"),
    [
        ("KUBE-SVC-X", True, "KUBE-SVC-X"),
        ("ns/svc:http", True, '"ns/svc:http"'),  # iptables-save quotes free text with other characters
        ("10.0.0.1/32", False, "10.0.0.1/32"),  # but not addresses
        ('a "b" \\', True, r'"a \"b\" \\"'),
        ("", True, '""'),
        ("two words", False, '"two words"'),
    ],
)
def test_quote(arg: str, string: bool, expected: str) -> None:
    assert quote(arg, string=string) == expected
    assert [t.text for t in tokenize(quote(arg, string=string))] == [arg]
