"""Named competency queries (``queries/*.rq``), safe parameter binding, and running them on a graph.

Each ``.rq`` file starts with a grlc-style header::

    #+ summary: Trials that target an antigen, with their strategy
    #+ cq: Which trials target CD22, and how?
    #+ tags: antigen, strategy
    #+ params: antigen=literal:CD22
    #+ returns: trial, title, strategy

``params`` lists ``name=type[:default]`` (type ``literal``, ``iri``, ``integer``); a parameter is bound
by inserting ``VALUES ?name { term }`` at the start of the query's WHERE block — the term is built
from an escaped RDF term, never by pasting the user's text into the query.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kg.errors import UsageError
from kg.rdfio import RDF_FORMATS
from kg.results import SelectResult, collect_select, collect_triples
from kg.sparql_exec import uses_union_default
from kg.sparql_guard import UnsafeQuery, check_query, tokenize_with_offsets

HEADER = re.compile(r"^#\+\s*(\w+)\s*:\s*(.*)$")
PARAM = re.compile(r"^(?P<name>[A-Za-z_]\w*)=(?P<type>literal|iri|integer)(?::(?P<default>.*))?$")
IRI_FORBIDDEN = re.compile(r'[<>"{}|^`\\\x00-\x20]')
RDF_SUFFIXES = RDF_FORMATS  # one table of RDF file types, kept in kg.rdfio


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None = None


@dataclass(frozen=True)
class NamedQuery:
    name: str  # file stem, e.g. cq01_trials_by_antigen
    path: Path
    text: str
    summary: str = ""
    cq: str = ""
    tags: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    returns: tuple[str, ...] = ()
    header: dict[str, str] = field(default_factory=dict)


def parse_query_file(path: Path) -> NamedQuery:
    """Read one ``.rq`` file and its header."""
    text = path.read_text(encoding="utf-8")
    header: dict[str, str] = {}
    for line in text.splitlines():
        m = HEADER.match(line.strip())
        if m:
            header[m.group(1)] = m.group(2).strip()
    params = tuple(parse_param(p, path) for p in header.get("params", "").split() if p)
    return NamedQuery(
        name=path.stem,
        path=path,
        text=text,
        summary=header.get("summary", ""),
        cq=header.get("cq", ""),
        tags=tuple(t.strip() for t in header.get("tags", "").split(",") if t.strip()),
        params=params,
        returns=tuple(r.strip() for r in header.get("returns", "").split(",") if r.strip()),
        header=header,
    )


def parse_param(spec: str, path: Path) -> Param:
    m = PARAM.match(spec)
    if not m:
        raise UsageError(
            f"{path.name}: bad '#+ params:' entry {spec!r}; expected name=literal|iri|integer[:default]"
        )
    return Param(m.group("name"), m.group("type"), m.group("default"))


def load_queries(folder: Path) -> list[NamedQuery]:
    return [parse_query_file(p) for p in sorted(folder.glob("*.rq"))]


def find_query(name_or_file: str, folder: Path) -> NamedQuery:
    """A query by file path, full name (``cq01_trials_by_antigen``) or number prefix (``cq01``)."""
    path = Path(name_or_file)
    if path.suffix == ".rq" and path.is_file():
        return parse_query_file(path)
    queries = load_queries(folder)
    exact = [q for q in queries if q.name == name_or_file]
    if exact:
        return exact[0]
    prefixed = [q for q in queries if q.name.startswith(name_or_file + "_")]
    if len(prefixed) == 1:
        return prefixed[0]
    known = ", ".join(q.name for q in queries)
    raise UsageError(f"no query named {name_or_file!r}; known: {known}")


# --------------------------------------------------------------------------- parameter binding


def rdf_term(value: str, kind: str) -> str:
    """An escaped SPARQL term for ``value``: a literal, an integer or an IRI (validated)."""
    if kind == "literal":
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        return f'"{escaped}"'
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", value):
            raise UsageError(f"parameter value {value!r} is not an integer")
        return f'"{int(value)}"^^<http://www.w3.org/2001/XMLSchema#integer>'
    if kind == "iri":
        if IRI_FORBIDDEN.search(value) or ":" not in value:
            raise UsageError(f"parameter value {value!r} is not an absolute IRI")
        return f"<{value}>"
    raise UsageError(f"unknown parameter type {kind!r}")


def bind_params(query: NamedQuery, values: Mapping[str, str]) -> str:
    """The query text with its parameters bound by a VALUES block (defaults used where not given)."""
    declared = {p.name: p for p in query.params}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        names = ", ".join(declared) or "none"
        raise UsageError(f"{query.name} has no parameter {unknown[0]!r} (parameters: {names})")
    bindings = []
    for name, param in declared.items():
        value = values.get(name, param.default)
        if value is not None and value != "":
            bindings.append(f"VALUES ?{name} {{ {rdf_term(value, param.type)} }}")
    if not bindings:
        return query.text
    return insert_into_where(query.text, " ".join(bindings))


def insert_into_where(text: str, clause: str) -> str:
    """Insert ``clause`` right after the opening brace of the query's WHERE block."""
    offset = _where_brace_offset(text)
    if offset is None:
        raise UsageError("cannot find the WHERE block of the query to bind parameters")
    return text[: offset + 1] + " " + clause + " " + text[offset + 1 :]


def _where_brace_offset(text: str) -> int | None:
    """Offset of the ``{`` that opens the WHERE block (after a CONSTRUCT template, if any)."""
    form = check_query(text).form
    seen_form = after_where = False
    template_done = form != "CONSTRUCT"
    depth = 0
    for kind, token, offset in tokenize_with_offsets(text):
        if kind == "word" and token.upper() == form:
            seen_form = True
        elif not seen_form:
            continue
        elif kind == "word" and token.upper() == "WHERE":
            after_where = True
        elif token == "{":
            if depth == 0 and (template_done or after_where):
                return offset
            depth += 1
        elif token == "}":
            depth -= 1
            template_done = template_done or depth == 0
    return None


# --------------------------------------------------------------------------- graphs and running


def open_store(path: Path) -> ox.Store:
    """A store for ``path``: a build folder (its ``store/``), an Oxigraph store folder, or an RDF file."""
    path = Path(path)
    if path.is_dir():
        store_dir = path / "store" if (path / "store").is_dir() else path
        try:
            return ox.Store.read_only(str(store_dir))
        except OSError as exc:
            raise UsageError(f"{path}: not a cartkg build folder or Oxigraph store ({exc})") from exc
    if path.is_file():
        from kg.rdfio import load_rdf  # refuses DOCTYPE/ENTITY RDF/XML and remote JSON-LD contexts

        return load_rdf(path)
    raise UsageError(f"{path}: no such graph (give a build folder or an RDF file)")


def materialize_store(path: Path) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """An on-disk store folder for ``path`` (an RDF file is loaded into a temporary store)."""
    path = Path(path)
    if path.is_dir():
        return (path / "store" if (path / "store").is_dir() else path), None
    tmp = tempfile.TemporaryDirectory(prefix="cartkg-serve-")
    store = ox.Store(tmp.name)
    source = open_store(path)
    store.bulk_extend(source.quads_for_pattern(None, None, None, None))
    store.flush()
    del store
    return Path(tmp.name), tmp


def run_query(store: ox.Store, text: str, max_rows: int | None = None) -> SelectResult | bool | list[Any]:
    """Run a checked query (SERVICE and updates refused) with the union of all graphs as default graph."""
    try:
        check = check_query(text)
    except UnsafeQuery as exc:
        raise UsageError(exc.message) from exc
    try:
        answer = store.query(text, use_default_graph_as_union=uses_union_default(check))
    except SyntaxError as exc:
        raise UsageError(f"SPARQL syntax error: {exc}") from exc
    if isinstance(answer, ox.QueryBoolean):
        return bool(answer)
    if isinstance(answer, ox.QuerySolutions):
        return collect_select(answer, max_rows)
    return collect_triples(answer, max_rows)


__all__ = [
    "NamedQuery",
    "Param",
    "bind_params",
    "find_query",
    "load_queries",
    "open_store",
    "parse_query_file",
    "run_query",
]
