"""SPARQL results as plain data, and their serializations (SPARQL 1.1 JSON/XML/CSV/TSV, tables).

Solutions are materialised (up to a cap) before anything is written, so a query over the
row cap is refused whole instead of being sent truncated.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
XSD_NUMERIC = {
    "http://www.w3.org/2001/XMLSchema#integer",
    "http://www.w3.org/2001/XMLSchema#decimal",
    "http://www.w3.org/2001/XMLSchema#double",
}


@dataclass(frozen=True)
class Term:
    """An RDF term as plain data: ``kind`` is uri, bnode or literal."""

    kind: str
    value: str
    datatype: str | None = None
    language: str | None = None

    def n3(self) -> str:
        if self.kind == "uri":
            return f"<{self.value}>"
        if self.kind == "bnode":
            return f"_:{self.value}"
        lexical = json.dumps(self.value, ensure_ascii=False)
        if self.language:
            return f"{lexical}@{self.language}"
        if self.datatype and self.datatype != XSD_STRING:
            return f"{lexical}^^<{self.datatype}>"
        return lexical


@dataclass(frozen=True)
class SelectResult:
    variables: tuple[str, ...]
    rows: tuple[tuple[Term | None, ...], ...]


class RowLimitExceeded(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the result has more than {limit} rows; add a LIMIT or narrow the query")
        self.limit = limit


def term_from_ox(term: Any) -> Term:
    if isinstance(term, ox.NamedNode):
        return Term("uri", term.value)
    if isinstance(term, ox.BlankNode):
        return Term("bnode", term.value)
    if isinstance(term, ox.Literal):
        return Term("literal", term.value, term.datatype.value, term.language)
    return Term("literal", str(term))  # RDF-star triple terms: shown as text


def collect_select(solutions: ox.QuerySolutions, max_rows: int | None) -> SelectResult:
    """Materialise SELECT solutions, refusing more than ``max_rows``."""
    variables = tuple(v.value for v in solutions.variables)
    rows: list[tuple[Term | None, ...]] = []
    for solution in solutions:
        if max_rows is not None and len(rows) >= max_rows:
            raise RowLimitExceeded(max_rows)
        rows.append(tuple(None if solution[v] is None else term_from_ox(solution[v]) for v in variables))
    return SelectResult(variables, tuple(rows))


def collect_triples(triples: Iterable[ox.Triple], max_rows: int | None) -> list[ox.Triple]:
    out: list[ox.Triple] = []
    for triple in triples:
        if max_rows is not None and len(out) >= max_rows:
            raise RowLimitExceeded(max_rows)
        out.append(triple)
    return out


# --------------------------------------------------------------------------- SPARQL result formats


def to_sparql_json(result: SelectResult) -> str:
    bindings = []
    for row in result.rows:
        b: dict[str, Any] = {}
        for var, term in zip(result.variables, row, strict=True):
            if term is None:
                continue
            if term.kind == "literal":
                entry: dict[str, str] = {"type": "literal", "value": term.value}
                if term.language:
                    entry["xml:lang"] = term.language
                elif term.datatype and term.datatype != XSD_STRING:
                    entry["datatype"] = term.datatype
            else:
                entry = {"type": term.kind, "value": term.value}
            b[var] = entry
        bindings.append(b)
    doc = {"head": {"vars": list(result.variables)}, "results": {"bindings": bindings}}
    return json.dumps(doc, ensure_ascii=False, indent=1)


def ask_to_sparql_json(value: bool) -> str:
    return json.dumps({"head": {}, "boolean": value})


def to_sparql_xml(result: SelectResult) -> str:
    out = ['<?xml version="1.0"?>', '<sparql xmlns="http://www.w3.org/2005/sparql-results#">', "<head>"]
    out += [f"<variable name={quoteattr(v)}/>" for v in result.variables]
    out += ["</head>", "<results>"]
    for row in result.rows:
        out.append("<result>")
        for var, term in zip(result.variables, row, strict=True):
            if term is None:
                continue
            out.append(f"<binding name={quoteattr(var)}>{_xml_term(term)}</binding>")
        out.append("</result>")
    out += ["</results>", "</sparql>"]
    return "\n".join(out) + "\n"


def ask_to_sparql_xml(value: bool) -> str:
    return (
        '<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head/>'
        f"<boolean>{'true' if value else 'false'}</boolean></sparql>\n"
    )


def _xml_term(term: Term) -> str:
    if term.kind == "uri":
        return f"<uri>{escape(term.value)}</uri>"
    if term.kind == "bnode":
        return f"<bnode>{escape(term.value)}</bnode>"
    if term.language:
        return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
    if term.datatype and term.datatype != XSD_STRING:
        return f"<literal datatype={quoteattr(term.datatype)}>{escape(term.value)}</literal>"
    return f"<literal>{escape(term.value)}</literal>"


def to_csv(result: SelectResult, delimiter: str = ",") -> str:
    """SPARQL 1.1 CSV (plain values); with ``delimiter="\\t"`` a plain TSV for spreadsheets."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(result.variables)
    for row in result.rows:
        writer.writerow(["" if t is None else t.value for t in row])
    return buf.getvalue()


def to_sparql_tsv(result: SelectResult) -> str:
    """SPARQL 1.1 TSV: terms in their N-Triples/Turtle form, variables with '?'."""
    lines = ["\t".join("?" + v for v in result.variables)]
    for row in result.rows:
        lines.append("\t".join("" if t is None else _tsv_term(t) for t in row))
    return "\n".join(lines) + "\n"


def _tsv_term(term: Term) -> str:
    if term.kind == "literal" and term.datatype in XSD_NUMERIC and not term.language:
        return term.value
    return term.n3().replace("\t", "\\t").replace("\n", "\\n")


# --------------------------------------------------------------------------- human-facing formats


def display_value(term: Term | None) -> str:
    return "" if term is None else term.value


def to_table(result: SelectResult, max_width: int = 60) -> str:
    """A fixed-width text table with a row count, for terminals."""
    cells = [[_clip(display_value(t), max_width) for t in row] for row in result.rows]
    widths = [len(v) for v in result.variables]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    header = "  ".join(v.ljust(w) for v, w in zip(result.variables, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    n = len(result.rows)
    return "\n".join([header.rstrip(), rule, *body, f"({n} row{'s' if n != 1 else ''})"]) + "\n"


def to_markdown(result: SelectResult) -> str:
    def cell(t: Term | None) -> str:
        return display_value(t).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(result.variables) + " |", "|" + "---|" * len(result.variables)]
    lines += ["| " + " | ".join(cell(t) for t in row) + " |" for row in result.rows]
    return "\n".join(lines) + "\n"


def to_plain_json(result: SelectResult) -> str:
    """A list of objects, one per row, values as plain strings (for scripts that do not speak SPARQL JSON)."""
    rows = [
        {v: display_value(t) for v, t in zip(result.variables, row, strict=True) if t is not None}
        for row in result.rows
    ]
    return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
