"""Decide, before any evaluation, whether a SPARQL request is safe to run on a read-only endpoint.

The check is lexical: the request is split into SPARQL tokens (strings, IRIs, comments,
variables and prefixed names are recognised so a keyword inside them does not count), then

- the query form must be SELECT, ASK, CONSTRUCT or DESCRIBE (updates and LOAD → forbidden);
- no ``SERVICE`` keyword may appear anywhere, nested or not (no outbound request is ever made);
- ``FROM`` / ``FROM NAMED`` IRIs are returned so the caller can check they name graphs in the store.

A lexical check fails closed: a ``SERVICE`` keyword that a parser would reject anyway is refused too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QUERY_FORMS = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
UPDATE_KEYWORDS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH", "USING"}
)

# SPARQL 1.1 terminals (simplified where it cannot change what counts as a keyword).
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n\r]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
               |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][A-Za-z0-9_\u00B7-\uFFFF]+)
  | (?P<pname>(?:[A-Za-z\u00C0-\uFFFF][\w.\-\u00B7-\uFFFF]*)?:(?:[\w\-:%.\u00B7-\uFFFF\\]*[\w\-:%\u00B7-\uFFFF])?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class UnsafeQuery(Exception):
    """A request the endpoint refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class QueryCheck:
    form: str  # SELECT | ASK | CONSTRUCT | DESCRIBE
    from_graphs: tuple[str, ...]
    from_named_graphs: tuple[str, ...]


def tokenize_with_offsets(query: str) -> list[tuple[str, str, int]]:
    """Split ``query`` into ``(kind, text, offset)`` tokens, dropping white space and comments."""
    tokens: list[tuple[str, str, int]] = []
    for m in _TOKEN.finditer(query):
        kind = m.lastgroup or "other"
        if kind not in ("ws", "comment"):
            tokens.append((kind, m.group(), m.start()))
    return tokens


def tokenize(query: str) -> list[tuple[str, str]]:
    """Split ``query`` into ``(kind, text)`` tokens, dropping white space and comments."""
    return [(kind, text) for kind, text, _ in tokenize_with_offsets(query)]


def check_query(query: str) -> QueryCheck:
    """Return the query's form and dataset clauses, or raise :class:`UnsafeQuery`."""
    tokens = tokenize(query)
    words = [(i, text.upper()) for i, (kind, text) in enumerate(tokens) if kind == "word"]
    if any(word == "SERVICE" for _, word in words):
        raise UnsafeQuery(403, "SERVICE is not allowed: this endpoint never queries other endpoints")
    form = _query_form(words)
    if form is None:
        updates = sorted({w for _, w in words if w in UPDATE_KEYWORDS})
        if updates:
            raise UnsafeQuery(403, f"only queries are accepted (found update keyword {updates[0]})")
        raise UnsafeQuery(400, "not a SPARQL query: expected SELECT, ASK, CONSTRUCT or DESCRIBE")
    from_graphs, from_named = _dataset_clauses(tokens)
    return QueryCheck(form=form, from_graphs=tuple(from_graphs), from_named_graphs=tuple(from_named))


def _query_form(words: list[tuple[int, str]]) -> str | None:
    """The first query-form keyword, after the prologue (BASE/PREFIX); None if an update comes first."""
    for _, word in words:
        if word in ("BASE", "PREFIX"):
            continue
        if word in QUERY_FORMS:
            return word
        if word in UPDATE_KEYWORDS:
            return None
    return None


def _prefixes(tokens: list[tuple[str, str]]) -> dict[str, str]:
    """The PREFIX declarations of the prologue: ``{"ex": "http://example.org/"}``."""
    prefixes: dict[str, str] = {}
    for i in range(len(tokens) - 2):
        (k0, t0), (k1, t1), (k2, t2) = tokens[i : i + 3]
        if k0 == "word" and t0.upper() == "PREFIX" and k1 == "pname" and t1.endswith(":") and k2 == "iri":
            prefixes[t1[:-1]] = t2[1:-1]
    return prefixes


def _dataset_clauses(tokens: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """IRIs named by FROM and FROM NAMED (prefixed names expanded; unknown prefixes kept as written)."""
    prefixes = _prefixes(tokens)
    from_graphs: list[str] = []
    from_named: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "word" and text.upper() == "FROM":
            named = i + 1 < len(tokens) and tokens[i + 1][0] == "word" and tokens[i + 1][1].upper() == "NAMED"
            j = i + 2 if named else i + 1
            if j < len(tokens) and tokens[j][0] in ("iri", "pname"):
                (from_named if named else from_graphs).append(_expand(tokens[j][1], prefixes))
            i = j
        i += 1
    return from_graphs, from_named


def _expand(term: str, prefixes: dict[str, str]) -> str:
    if term.startswith("<"):
        return term[1:-1]
    prefix, _, local = term.partition(":")
    return prefixes[prefix] + local if prefix in prefixes else term
