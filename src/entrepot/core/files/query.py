"""Keboola's ``q`` search over file tags: ``tags:"a" AND (tags:"b" OR tags:c)``.

Only ``tags:`` terms joined by AND/OR (AND binds tighter) and parentheses are understood;
anything else is ``InvalidInput``, so a query is never silently read as something else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Set

from entrepot.core.errors import InvalidInput

TagPredicate = Callable[[Set[str]], bool]

_Q_TOKEN = re.compile(
    r'\s*(?:(\()|(\))|(AND|OR)(?=[\s()]|$)|tags:"((?:[^"\\]|\\.)*)"|tags:([^\s()"]+))', re.I
)


def parse_query(q: str) -> TagPredicate:
    """Compile ``q`` to a predicate over a file's tag set."""
    tokens = _tokens(q)
    idx = 0

    def fail(what: str) -> InvalidInput:
        return InvalidInput(f"invalid q query {q!r}: {what}", code="files.invalidQuery")

    def parse_or() -> TagPredicate:
        nonlocal idx
        parts = [parse_and()]
        while idx < len(tokens) and tokens[idx][0] == "OR":
            idx += 1
            parts.append(parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda t: any(p(t) for p in parts)

    def parse_and() -> TagPredicate:
        nonlocal idx
        parts = [parse_atom()]
        while idx < len(tokens) and tokens[idx][0] == "AND":
            idx += 1
            parts.append(parse_atom())
        if len(parts) == 1:
            return parts[0]
        return lambda t: all(p(t) for p in parts)

    def parse_atom() -> TagPredicate:
        nonlocal idx
        if idx >= len(tokens):
            raise fail('it ends where a tags:"..." term was expected')
        kind, value = tokens[idx]
        idx += 1
        if kind == "TAG":
            return lambda t: value in t
        if kind == "(":
            inner = parse_or()
            if idx >= len(tokens) or tokens[idx][0] != ")":
                raise fail("a '(' is not closed")
            idx += 1
            return inner
        raise fail(f"unexpected {kind!r}")

    if not tokens:
        raise fail("it is empty")
    predicate = parse_or()
    if idx != len(tokens):
        raise fail(f"unexpected {tokens[idx][0]!r}")
    return predicate


def _tokens(q: str) -> list[tuple[str, str]]:
    """``(`` ``)`` ``AND`` ``OR`` and ``TAG`` tokens (a tag with its backslash escapes removed)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = q.strip()
    while pos < len(text):
        m = _Q_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInput(
                f'unsupported q query {q!r} at {text[pos : pos + 20]!r}: only tags:"..." terms joined by '
                "AND/OR are supported",
                code="files.invalidQuery",
            )
        pos = m.end()
        if m.group(1):
            tokens.append(("(", ""))
        elif m.group(2):
            tokens.append((")", ""))
        elif m.group(3):
            tokens.append((m.group(3).upper(), ""))
        else:
            value = m.group(4) if m.group(4) is not None else m.group(5)
            tokens.append(("TAG", re.sub(r"\\(.)", r"\1", value)))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens
