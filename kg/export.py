"""Exports for visualization tools and RDF consumers: one projection, a registry of writers.

RDF → networkx: :func:`to_networkx` projects a graph (an Oxigraph store, or quads) onto a
``MultiDiGraph`` that every graph format shares.  Resources become nodes with a ``label``, a ``type`` (their
class) and scalar attributes (literals folded in; several values joined; dates as ISO strings; one type per
attribute name across all nodes); object properties become edges labelled by the property.  The ontology
itself (classes, properties) is not drawn: ``rdf:type`` becomes the ``type`` attribute, and vocabulary
individuals appear only where the data reaches them.  A *view* (:mod:`kg.views`) then narrows or derives
the graph.

:data:`FORMATS` maps a format name to its writer: ``graphml``, ``gexf``, ``cyjs``, ``dot``, ``neo4j`` (graph
formats, any view) and ``ttl``, ``nt``, ``nq``, ``trig``, ``jsonld`` (RDF, the whole graph).  Every writer is
deterministic: the same graph gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import networkx as nx
import pyoxigraph as ox

from kg.errors import UsageError
from kg.iri import ID, parse_minted, trial_of
from kg.resources import package_file

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
CARTKG = "https://w3id.org/cartkg/"
RDF_TYPE = RDF + "type"
SUBCLASS_OF = RDFS + "subClassOf"
NAMED_INDIVIDUAL = OWL + "NamedIndividual"
SCHEMA_TYPES = frozenset(
    {
        OWL + "Class",
        RDFS + "Class",
        OWL + "ObjectProperty",
        OWL + "DatatypeProperty",
        OWL + "AnnotationProperty",
        RDF + "Property",
        OWL + "Ontology",
        OWL + "Restriction",
        OWL + "TransitiveProperty",
        OWL + "FunctionalProperty",
        OWL + "InverseFunctionalProperty",
        OWL + "SymmetricProperty",
        OWL + "AllDisjointClasses",
        OWL + "AllDifferent",
    }
)
# the short name a node is shown with: the first of these properties it has, else a name made from its IRI
LABEL_PROPERTIES = (
    SKOS + "notation",
    CARTKG + "trialId",
    CARTKG + "productName",
    RDFS + "label",
    CARTKG + "interventionName",
    CARTKG + "measure",
    CARTKG + "isoDuration",
    CARTKG + "fieldPath",
    CARTKG + "slot",
)
# attribute names the projection or a file format gives a meaning of its own
RESERVED = frozenset(
    {
        "id",
        "label",
        "type",
        "types",
        "trial",
        "name",
        "key",
        "source",
        "target",
        "weight",
        "start",
        "end",
        "pid",
        "viz",
        "interaction",
    }
)
INTEGER_TYPES = frozenset(
    XSD + t
    for t in (
        "integer",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "unsignedInt",
        "unsignedLong",
        "unsignedShort",
        "unsignedByte",
    )
)
FLOAT_TYPES = frozenset({XSD + "decimal", XSD + "double", XSD + "float"})
LIST_SEPARATOR = "; "
TRIAL_CLASSES = (CARTKG + "ClinicalTrial", CARTKG + "InterventionalTrial")

Scalar = str | int | float | bool


# --------------------------------------------------------------------------- prefixes and names


@lru_cache(maxsize=1)
def load_context() -> dict[str, Any]:
    """The packaged JSON-LD ``@context`` (``kg/context.jsonld``; read from the package, never fetched)."""
    with package_file("context.jsonld").open(encoding="utf-8") as fh:
        data = json.load(fh)
    return dict(data["@context"])


@lru_cache(maxsize=1)
def prefixes() -> dict[str, str]:
    """Prefix → namespace, from the packaged context (the terms that are plain namespace strings)."""
    return {k: v for k, v in load_context().items() if isinstance(v, str) and v.endswith(("/", "#"))}


def local_name(iri: str) -> str:
    """The part of an IRI after its last ``#`` or ``/``."""
    cut = max(iri.rfind("#"), iri.rfind("/"))
    return iri[cut + 1 :] or iri


@lru_cache(maxsize=65536)
def compact(iri: str) -> str:
    """``prefix:local`` with the longest matching packaged prefix, when the local part is a plain name."""
    best = ""
    for prefix, ns in prefixes().items():
        if iri.startswith(ns) and len(ns) > len(prefixes().get(best, "")):
            local = iri[len(ns) :]
            if re.fullmatch(r"[A-Za-z_][\w.-]*", local) and not local.endswith("."):
                best = prefix
    return f"{best}:{iri[len(prefixes()[best]) :]}" if best else iri


def prefix_of(iri: str) -> str:
    name = compact(iri)
    return name.split(":", 1)[0] if name != iri else ""


# --------------------------------------------------------------------------- reading RDF


def memory_store(quads: Iterable[ox.Quad]) -> ox.Store:
    store = ox.Store()
    store.extend(quads)
    return store


def all_quads(graph: ox.Store | Iterable[ox.Quad]) -> Iterable[ox.Quad]:
    return graph.quads_for_pattern(None, None, None, None) if isinstance(graph, ox.Store) else graph


def read_quads(graph: ox.Store | Iterable[ox.Quad]) -> list[ox.Quad]:
    """All quads of a store (or an iterable of quads), distinct, sorted by graph then N-Quads text."""
    return sorted(set(all_quads(graph)), key=lambda q: (str(q.graph_name), str(q)))


def union_triples(quads: Iterable[ox.Quad]) -> list[ox.Triple]:
    """The merge of every graph: distinct triples sorted by their N-Triples text."""
    return sorted({q.triple for q in quads}, key=str)


def node_id(term: Any) -> str:
    return term.value if isinstance(term, ox.NamedNode) else f"_:{term.value}"


def literal_value(lit: ox.Literal) -> Scalar:
    """A literal as a Python scalar: numbers and booleans typed, everything else (dates too) its ISO text."""
    dt = lit.datatype.value
    try:
        if dt in INTEGER_TYPES:
            return int(lit.value)
        if dt in FLOAT_TYPES:
            value = float(Decimal(lit.value)) if dt == XSD + "decimal" else float(lit.value)
            return value if math.isfinite(value) else lit.value
        if dt == XSD + "boolean":
            if lit.value in ("true", "1"):
                return True
            if lit.value in ("false", "0"):
                return False
    except (ValueError, InvalidOperation):
        pass  # an ill-typed literal keeps its text
    return lit.value


# --------------------------------------------------------------------------- the projection


@dataclass
class Collected:
    """What the projection needs from the triples, grouped by subject."""

    types: dict[str, set[str]]
    literals: dict[str, dict[str, list[Scalar]]]
    links: set[tuple[str, str, str]]
    described: set[str]  # nodes that are the subject of some triple
    superclasses: dict[str, set[str]]


def collect(triples: Iterable[ox.Triple]) -> Collected:
    types: dict[str, set[str]] = defaultdict(set)
    literals: dict[str, dict[str, list[Scalar]]] = defaultdict(lambda: defaultdict(list))
    links: set[tuple[str, str, str]] = set()
    described: set[str] = set()
    superclasses: dict[str, set[str]] = defaultdict(set)
    for t in triples:
        s, p, o = node_id(t.subject), t.predicate.value, t.object
        described.add(s)
        if isinstance(o, ox.Literal):
            literals[s][p].append(literal_value(o))
        elif p == RDF_TYPE and isinstance(o, ox.NamedNode):
            types[s].add(o.value)
        elif isinstance(o, ox.NamedNode | ox.BlankNode):
            if p == SUBCLASS_OF and isinstance(o, ox.NamedNode):
                superclasses[s].add(o.value)
            links.add((s, p, node_id(o)))
    return Collected(
        dict(types), {k: dict(v) for k, v in literals.items()}, links, described, dict(superclasses)
    )


def ancestors(cls: str, superclasses: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [cls]
    while todo:
        for sup in superclasses.get(todo.pop(), ()):
            if sup not in seen:
                seen.add(sup)
                todo.append(sup)
    return seen


def main_type(asserted: set[str], superclasses: Mapping[str, set[str]]) -> str:
    """The class a node is shown as: among its own classes (ours first), the most general one."""
    classes = sorted(c for c in asserted if c != NAMED_INDIVIDUAL) or sorted(asserted)
    if not classes:
        return ""
    ours = [c for c in classes if c.startswith(CARTKG)] or classes
    general = [c for c in ours if not (ancestors(c, superclasses) & set(ours))]
    return local_name((general or ours)[0])


def is_vocabulary(node: str, types: set[str]) -> bool:
    """A shared vocabulary value: an ontology individual or a value minted for one."""
    return NAMED_INDIVIDUAL in types or node.startswith(ID + "vocab/") or node.startswith(ID + "agent/")


def fallback_label(node: str) -> str:
    """A readable name from the IRI: ``outcome 000_4cde…/3`` for minted IRIs, else the compact IRI."""
    parsed = parse_minted(node)
    if parsed is not None and parsed[0] != "trial":
        return f"{parsed[0]} {'/'.join(parsed[1])}"
    if parsed is not None:
        return parsed[1][0]
    name = compact(node)
    return name if name != node else local_name(node)


def attribute_names(predicates: Iterable[str]) -> dict[str, str]:
    """Predicate IRI → attribute name: its local name, prefixed where two predicates share one."""
    by_local: dict[str, list[str]] = defaultdict(list)
    for p in sorted(set(predicates)):
        by_local[local_name(p)].append(p)
    names: dict[str, str] = {}
    for local, preds in by_local.items():
        for p in preds:
            if len(preds) == 1 and local not in RESERVED:
                names[p] = local
            else:
                prefix = prefix_of(p) or f"ns{sorted(preds).index(p)}"
                names[p] = f"{prefix}_{local}"
    if len(set(names.values())) != len(names):  # two namespaces without a known prefix: fall back to the IRI
        counts: dict[str, int] = defaultdict(int)
        for name in names.values():
            counts[name] += 1
        names = {p: (n if counts[n] == 1 else re.sub(r"\W+", "_", p)) for p, n in names.items()}
    return names


def focused_triples(store: ox.Store, predicates: Iterable[str]) -> set[ox.Triple]:
    """The triples a view needs, read through the store's indexes instead of a full scan: every triple
    of ``predicates``, then every statement about the trials and the nodes those triples touch (their
    types and literals, and IRIs they point to that the graph does not describe)."""
    wanted = {ox.NamedNode(p) for p in predicates}
    triples: set[ox.Triple] = set()
    for p in sorted(wanted, key=str):
        triples.update(q.triple for q in store.quads_for_pattern(None, p, None, None))
    rdf_type = ox.NamedNode(RDF_TYPE)
    for cls in TRIAL_CLASSES:
        triples.update(q.triple for q in store.quads_for_pattern(None, rdf_type, ox.NamedNode(cls), None))
    touched = {t.subject for t in triples} | {
        t.object for t in triples if not isinstance(t.object, ox.Literal)
    }
    described: dict[Any, bool] = {}

    def is_described(term: Any) -> bool:
        if term not in described:
            described[term] = next(iter(store.quads_for_pattern(term, None, None, None)), None) is not None
        return described[term]

    for node in touched:
        for q in store.quads_for_pattern(node, None, None, None):
            o = q.object
            if (
                isinstance(o, ox.Literal)
                or q.predicate in wanted
                or q.predicate == rdf_type
                or not is_described(o)
            ):
                triples.add(q.triple)
    return triples


def project_rdf(
    graph: ox.Store | Iterable[ox.Quad], predicates: Iterable[str] | None = None
) -> nx.MultiDiGraph:
    """The projection with raw values: every attribute a list of scalars (see :func:`finalize`).

    With ``predicates`` (what a view traverses), only the trials and what those properties reach are
    read (:func:`focused_triples`); the nodes and their attributes are the same as in the full projection.
    """
    from kg.vocab import load_ontology

    if predicates is None:
        c = collect({q.triple for q in all_quads(graph)})
    else:
        store = graph if isinstance(graph, ox.Store) else memory_store(graph)
        c = collect(focused_triples(store, predicates))
    for s, o in load_ontology().subject_objects(_rdflib_subclass()):
        c.superclasses.setdefault(str(s), set()).add(str(o))
    schema = {n for n, ts in c.types.items() if ts & SCHEMA_TYPES}
    candidates = (c.described | {o for _, _, o in c.links}) - schema
    nodes = {n for n in candidates if n in c.described or n in c.types}
    edges = sorted((s, p, o) for s, p, o in c.links if s in nodes and o in nodes)
    nodes = reachable_from_data(nodes, edges, c.types)
    # IRIs that name nothing in the graph (units, external matches) become attributes of their subject
    folded = [
        (s, p, o) for s, p, o in sorted(c.links) if s in nodes and o not in nodes and not o.startswith("_:")
    ]
    names = attribute_names({p for n in nodes for p in c.literals.get(n, {})} | {p for _, p, _ in folded})
    g = nx.MultiDiGraph()
    for n in sorted(nodes):
        lits = c.literals.get(n, {})
        attrs: dict[str, Any] = {
            "label": node_label(n, lits),
            "type": main_type(c.types.get(n, set()), c.superclasses),
        }
        attrs["types"] = sorted(compact(t) for t in c.types.get(n, set()))
        trial = trial_of(n)
        if trial is not None:
            attrs["trial"] = [trial]
        for p, values in sorted(lits.items()):
            attrs[names[p]] = sorted(values, key=_value_key)
        g.add_node(n, **attrs)
    for subject, pred, obj in folded:
        g.nodes[subject].setdefault(names[pred], []).append(compact(obj))
    for subject, pred, obj in edges:
        if subject in nodes and obj in nodes:
            g.add_edge(subject, obj, key=compact(pred), label=local_name(pred), predicate=pred)
    return g


def _rdflib_subclass() -> Any:
    from rdflib import RDFS as R

    return R.subClassOf


def _value_key(v: Scalar) -> tuple[str, str]:
    return (type(v).__name__, repr(v))


def node_label(node: str, literals: Mapping[str, list[Scalar]]) -> str:
    for p in LABEL_PROPERTIES:
        values = literals.get(p)
        if values:
            return str(sorted(values, key=_value_key)[0])
    return fallback_label(node)


def reachable_from_data(
    nodes: set[str], edges: list[tuple[str, str, str]], types: Mapping[str, set[str]]
) -> set[str]:
    """Drop vocabulary values the data never reaches (the ontology lists many more than a graph uses)."""
    roots = {n for n in nodes if not is_vocabulary(n, types.get(n, set()))}
    if not roots:
        return nodes
    out: dict[str, list[str]] = defaultdict(list)
    for s, _, o in edges:
        out[s].append(o)
    seen = set(roots)
    todo = list(roots)
    while todo:
        for o in out.get(todo.pop(), ()):
            if o not in seen:
                seen.add(o)
                todo.append(o)
    return seen


# --------------------------------------------------------------------------- finalization


def finalize(g: nx.MultiDiGraph, lists: str = "join") -> nx.MultiDiGraph:
    """A copy with writer-safe attributes, nodes and edges in sorted order.

    Each attribute has one type across all nodes (or edges): bool, int, float or str.  An attribute that
    holds several values anywhere is a string of the values joined by ``"; "`` (``lists="join"``) or a
    list everywhere (``lists="keep"``, for JSON and Neo4j).  Empty values are dropped.
    """
    if lists not in ("join", "keep"):
        raise ValueError(f"lists must be 'join' or 'keep', not {lists!r}")
    node_attrs = {n: d for n, d in g.nodes(data=True)}
    edge_attrs = {(u, v, k): d for u, v, k, d in g.edges(keys=True, data=True)}
    node_plan = attribute_plan(node_attrs.values())
    edge_plan = attribute_plan(edge_attrs.values())
    out = nx.MultiDiGraph()
    out.graph.update({k: v for k, v in g.graph.items() if isinstance(v, str | int | float | bool)})
    for n in sorted(node_attrs):
        out.add_node(n, **convert_attrs(node_attrs[n], node_plan, lists))
    for u, v, k in sorted(edge_attrs):
        out.add_edge(u, v, key=k, **convert_attrs(edge_attrs[(u, v, k)], edge_plan, lists))
    out.graph["list_attributes"] = LIST_SEPARATOR.join(
        sorted(a for a, (_, many) in {**node_plan, **edge_plan}.items() if many)
    )
    return out


def attribute_plan(dicts: Iterable[Mapping[str, Any]]) -> dict[str, tuple[type, bool]]:
    """Attribute name → (its one Python type, whether it is list-valued anywhere)."""
    kinds: dict[str, set[type]] = defaultdict(set)
    many: dict[str, bool] = defaultdict(bool)
    for d in dicts:
        for name, value in d.items():
            values = _as_list(value)
            if not values:
                continue
            many[name] = many[name] or isinstance(value, list | tuple) and len(values) > 1
            kinds[name].update(_kind(v) for v in values)
    plan: dict[str, tuple[type, bool]] = {}
    for name, ks in kinds.items():
        if ks == {bool}:
            t: type = bool
        elif ks == {int}:
            t = int
        elif ks <= {int, float}:
            t = float
        else:
            t = str
        plan[name] = (t, many[name])
    return plan


def _kind(v: Any) -> type:
    if isinstance(v, bool):
        return bool
    if isinstance(v, int):
        return int
    if isinstance(v, float | Decimal):
        return float
    return str


def _as_list(value: Any) -> list[Any]:
    items = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
    return [v for v in items if v is not None and v != ""]


def convert_attrs(d: Mapping[str, Any], plan: Mapping[str, tuple[type, bool]], lists: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(d, key=lambda k: (k not in ("label", "type"), k != "label", k)):
        values = _as_list(d[name])
        if not values:
            continue
        t, many = plan[name]
        converted = [convert_scalar(v, t) for v in values]
        if many and lists == "keep":
            out[name] = converted
        elif many:
            out[name] = LIST_SEPARATOR.join(str(v) for v in converted)
        else:
            out[name] = converted[0]
    return out


def convert_scalar(v: Any, t: type) -> Scalar:
    if isinstance(v, datetime | date):
        v = v.isoformat()
    if t is bool:
        return bool(v)
    if t is int:
        return int(v)
    if t is float:
        return float(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def to_networkx(
    graph: ox.Store | Iterable[ox.Quad], view: str = "full", *, lists: str = "join", **options: Any
) -> nx.MultiDiGraph:
    """Project RDF onto a networkx ``MultiDiGraph`` through ``view`` (see :data:`kg.views.VIEWS`)."""
    from kg.views import VIEW_PREDICATES, apply_view

    projected = apply_view(project_rdf(graph, VIEW_PREDICATES.get(view)), view, **options)
    projected.graph["view"] = view
    return finalize(projected, lists=lists)


# --------------------------------------------------------------------------- graph writers


XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: Any) -> Any:
    """Characters XML 1.0 cannot hold (control characters) become U+FFFD, so the file stays parseable."""
    return XML_ILLEGAL.sub("\ufffd", value) if isinstance(value, str) else value


def xml_ready(g: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy for the XML writers: text made XML-safe, edge keys ``e0…`` (unique ids) in sorted order."""
    h = nx.MultiDiGraph()
    h.graph.update({k: xml_text(v) for k, v in g.graph.items()})
    for n, d in g.nodes(data=True):
        h.add_node(xml_text(n), **{k: xml_text(v) for k, v in d.items()})
    for i, (u, v, d) in enumerate(g.edges(data=True)):
        h.add_edge(xml_text(u), xml_text(v), key=f"e{i}", **{k: xml_text(x) for k, x in d.items()})
    return h


def write_graphml(g: nx.MultiDiGraph, out: Path) -> None:
    """GraphML (Gephi, Cytoscape, yEd); edge ids ``e0…`` in sorted order."""
    buffer = io.BytesIO()
    nx.write_graphml_xml(xml_ready(g), buffer, encoding="utf-8", prettyprint=True, named_key_ids=True)
    out.write_bytes(buffer.getvalue())


def write_gexf(g: nx.MultiDiGraph, out: Path) -> None:
    """GEXF 1.2 (Gephi), without the writer's date stamp so the file is reproducible."""
    from networkx.readwrite.gexf import GEXFWriter

    writer = GEXFWriter(encoding="utf-8", prettyprint=True, version="1.2draft")
    writer.add_graph(xml_ready(g))
    meta = writer.xml.find("meta")
    if meta is not None:
        meta.attrib.pop("lastmodifieddate", None)
    buffer = io.BytesIO()
    writer.write(buffer)
    out.write_bytes(buffer.getvalue())


def cytoscape_json(g: nx.MultiDiGraph) -> dict[str, Any]:
    """Cytoscape.js JSON (Cytoscape desktop reads it too): ``elements.nodes`` / ``elements.edges``."""
    nodes = []
    for n, d in g.nodes(data=True):
        nodes.append({"data": {"id": n, "name": d.get("label", n), **d}})
    edges = []
    for i, (u, v, d) in enumerate(g.edges(data=True)):
        data = {"id": f"e{i}", "source": u, "target": v, "interaction": d.get("label", ""), **d}
        edges.append({"data": data})
    meta = {k: v for k, v in g.graph.items() if k != "list_attributes"}
    return {
        "format_version": "1.0",
        "generated_by": "cartkg",
        "target_cytoscapejs_version": "~3.0",
        "data": {"name": f"cartkg {meta.get('view', 'full')}", **meta},
        "elements": {"nodes": nodes, "edges": edges},
    }


def write_cyjs(g: nx.MultiDiGraph, out: Path) -> None:
    text = json.dumps(cytoscape_json(g), ensure_ascii=False, indent=1)
    out.write_text(text + "\n", encoding="utf-8")


PALETTE = (
    "#8dd3c7",
    "#ffffb3",
    "#bebada",
    "#fb8072",
    "#80b1d3",
    "#fdb462",
    "#b3de69",
    "#fccde5",
    "#d9d9d9",
    "#bc80bd",
    "#ccebc5",
    "#ffed6f",
)


def dot_quote(value: Any) -> str:
    """A DOT double-quoted string (so IRIs with ``:`` are never read as node:port)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")
    return f'"{text}"'


def dot_name(name: str) -> str:
    """A DOT attribute name: letters, digits and ``_`` only."""
    return re.sub(r"\W", "_", name)


def write_dot(g: nx.MultiDiGraph, out: Path) -> None:
    """Graphviz DOT via pydot: nodes filled by type, edge width by weight, every attribute kept."""
    import pydot

    dot = pydot.Dot(dot_quote(f"cartkg {g.graph.get('view', 'full')}"), graph_type="digraph", strict=False)
    dot.set("rankdir", "LR")
    dot.set_node_defaults(shape="box", style='"rounded,filled"', fontname="Helvetica", fontsize="10")
    dot.set_edge_defaults(fontname="Helvetica", fontsize="8")
    types = sorted({str(d.get("type", "")) for _, d in g.nodes(data=True)})
    colour = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(types)}
    for n, d in g.nodes(data=True):
        attrs: dict[str, Any] = {dot_name(k): dot_quote(v) for k, v in d.items()}
        attrs["fillcolor"] = dot_quote(colour[str(d.get("type", ""))])
        attrs["tooltip"] = dot_quote(n)
        dot.add_node(pydot.Node(dot_quote(n), **attrs))
    weights = [float(d["weight"]) for _, _, d in g.edges(data=True) if "weight" in d]
    top = max(weights) if weights else 1.0
    for u, v, d in g.edges(data=True):
        edge_attrs: dict[str, Any] = {dot_name(k): dot_quote(val) for k, val in d.items()}
        if "weight" in d and top > 0:
            edge_attrs["penwidth"] = dot_quote(f"{0.5 + 4.5 * float(d['weight']) / top:.2f}")
        dot.add_edge(pydot.Edge(dot_quote(u), dot_quote(v), **edge_attrs))
    out.write_text(dot.to_string(), encoding="utf-8")


# --------------------------------------------------------------------------- Neo4j bulk import

NEO4J_TYPES = {bool: "boolean", int: "long", float: "double", str: "string"}
ARRAY_DELIMITERS = (";", "|", "\u00a6", "\u001f")


def write_neo4j(g: nx.MultiDiGraph, out: Path) -> None:
    """CSV files for ``neo4j-admin database import full``: one node file per type, one relationship file
    per property, headers in the import tool's grammar (``iri:ID``, ``:LABEL``, ``name:string[]`` …), and
    ``import.sh`` with the exact command (array delimiter chosen so no value contains it)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in sorted(out.glob("*.csv")):
        old.unlink()
    delimiter = array_delimiter(g)
    node_files = write_neo4j_nodes(g, out, delimiter)
    rel_files = write_neo4j_relationships(g, out, delimiter)
    args = [
        "neo4j-admin database import full",
        f"--array-delimiter={shell_quote(delimiter)}",
        "--multiline-fields=true",
    ]
    args += [f"--nodes={name}" for name in node_files] + [f"--relationships={name}" for name in rel_files]
    script = (
        "#!/bin/sh\n# Import into an empty database (default name neo4j); run from this folder.\n"
        '# Written by cartkg export --format neo4j.\nset -e\ncd "$(dirname "$0")"\n'
        + " \\\n  ".join(args)
        + ' \\\n  "${1:-neo4j}"\n'
    )
    (out / "import.sh").write_text(script, encoding="utf-8")


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def array_delimiter(g: nx.MultiDiGraph) -> str:
    """The first candidate delimiter that no list element contains."""
    texts = [str(x) for _, d in g.nodes(data=True) for v in d.values() if isinstance(v, list) for x in v]
    texts += [str(x) for _, _, d in g.edges(data=True) for v in d.values() if isinstance(v, list) for x in v]
    texts += [t for _, d in g.nodes(data=True) for t in d.get("types", [])]
    for candidate in ARRAY_DELIMITERS:
        if not any(candidate in t for t in texts):
            return candidate
    raise UsageError("every Neo4j array delimiter candidate occurs in the data; cannot write arrays")


def neo4j_column(name: str, values: Iterable[Any]) -> str:
    vs = [v for v in values if v is not None]
    is_list = any(isinstance(v, list) for v in vs)
    flat = [x for v in vs for x in (v if isinstance(v, list) else [v])]
    kinds = {_kind(x) for x in flat}
    t = bool if kinds == {bool} else int if kinds == {int} else float if kinds <= {int, float} else str
    return f"{neo4j_property(name)}:{NEO4J_TYPES[t]}" + ("[]" if is_list else "")


def neo4j_property(name: str) -> str:
    return re.sub(r"\W", "_", name)


def neo4j_cell(value: Any, delimiter: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return delimiter.join(neo4j_cell(v, delimiter) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def neo4j_label(name: str) -> str:
    return re.sub(r"\W", "_", name) or "Resource"


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(header)
        w.writerows(rows)


def write_neo4j_nodes(g: nx.MultiDiGraph, out: Path, delimiter: str) -> list[str]:
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for n, d in g.nodes(data=True):
        by_type[neo4j_label(str(d.get("type", "")))].append((n, d))
    files = []
    for label, members in sorted(by_type.items()):
        names = sorted(
            {k for _, d in members for k in d if k not in ("type", "types")}, key=lambda k: (k != "label", k)
        )
        header = ["iri:ID", ":LABEL"] + [neo4j_column(k, [d.get(k) for _, d in members]) for k in names]
        rows = []
        for n, d in members:
            labels = sorted({label} | {neo4j_label(t.split(":")[-1]) for t in _as_list(d.get("types", []))})
            rows.append([n, delimiter.join(labels)] + [neo4j_cell(d.get(k), delimiter) for k in names])
        name = f"nodes_{label}.csv"
        write_csv(out / name, header, rows)
        files.append(name)
    return files


def write_neo4j_relationships(g: nx.MultiDiGraph, out: Path, delimiter: str) -> list[str]:
    by_type: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
    for u, v, d in g.edges(data=True):
        by_type[neo4j_label(str(d.get("label", "relatedTo")))].append((u, v, d))
    files = []
    for rel, members in sorted(by_type.items()):
        names = sorted({k for _, _, d in members for k in d if k != "label"})
        header = [":START_ID", ":END_ID", ":TYPE"] + [
            neo4j_column(k, [d.get(k) for _, _, d in members]) for k in names
        ]
        rows = [[u, v, rel] + [neo4j_cell(d.get(k), delimiter) for k in names] for u, v, d in members]
        name = f"relationships_{rel}.csv"
        write_csv(out / name, header, rows)
        files.append(name)
    return files


# --------------------------------------------------------------------------- RDF writers


def rdf_writer(fmt: ox.RdfFormat, *, merge: bool) -> Callable[[list[ox.Quad], Path], None]:
    """A writer of ``fmt``: the merge of all graphs (``merge``) or the quads with their graph names."""

    def write(quads: list[ox.Quad], out: Path) -> None:
        items: list[Any] = union_triples(quads) if merge else quads
        with_prefixes = fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG)
        data = ox.serialize(items, format=fmt, prefixes=rdf_prefixes() if with_prefixes else None)
        assert data is not None  # no output file given: serialize returns the bytes
        out.write_bytes(sort_prefix_lines(data) if with_prefixes else data)

    return write


def sort_prefix_lines(data: bytes) -> bytes:
    """The serializer's leading ``@prefix`` lines in alphabetical order (its own order is a hash map's)."""
    lines = data.split(b"\n")
    n = 0
    while n < len(lines) and lines[n].startswith(b"@prefix "):
        n += 1
    return b"\n".join(sorted(lines[:n]) + lines[n:])


def rdf_prefixes() -> dict[str, str]:
    return dict(sorted(prefixes().items()))


def write_jsonld(quads: list[ox.Quad], out: Path) -> None:
    """JSON-LD compacted with the packaged ``@context`` (inlined, so no reader fetches anything)."""
    from rdflib import Dataset

    ds = Dataset()
    for q in quads:
        s, p, o = (to_rdflib(t) for t in (q.subject, q.predicate, q.object))
        if isinstance(q.graph_name, ox.DefaultGraph):
            ds.default_graph.add((s, p, o))
        else:
            ds.graph(to_rdflib(q.graph_name)).add((s, p, o))
    with warnings.catch_warnings():  # rdflib 7.6's JSON-LD serializer calls its own deprecated Dataset API
        warnings.filterwarnings("ignore", r"(Dataset|ConjunctiveGraph)\b.* is deprecated", DeprecationWarning)
        text = ds.serialize(
            format="json-ld", context=load_context(), auto_compact=True, sort_keys=True, indent=1
        )
    doc = sort_jsonld(json.loads(text))
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def sort_jsonld(value: Any, key: str = "") -> Any:
    """Every JSON-LD array in a stable order (node objects by ``@id``); ``@list`` arrays keep theirs."""
    if isinstance(value, dict):
        return {k: (v if k == "@context" else sort_jsonld(v, k)) for k, v in value.items()}
    if isinstance(value, list):
        items = [sort_jsonld(v) for v in value]
        if key == "@list":
            return items
        return sorted(
            items,
            key=lambda v: (
                str(v.get("@id", "")) if isinstance(v, dict) else "",
                json.dumps(v, sort_keys=True, ensure_ascii=False),
            ),
        )
    return value


def to_rdflib(term: Any) -> Any:
    from rdflib import BNode, Literal, URIRef

    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        if term.datatype.value == XSD + "string":
            return Literal(term.value)
        return Literal(term.value, datatype=URIRef(term.datatype.value), normalize=False)
    raise UsageError(f"cannot export the RDF term {term!r} to JSON-LD")


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ExportFormat:
    name: str
    kind: str  # "graph" (networkx projection, any view) or "rdf" (the graph itself)
    suffix: str  # "" for a folder
    description: str
    writer: Callable[..., None]
    lists: str = "join"


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("graphml", "graph", ".graphml", "GraphML for Gephi, Cytoscape and yEd", write_graphml),
        ExportFormat("gexf", "graph", ".gexf", "GEXF 1.2 for Gephi", write_gexf),
        ExportFormat("cyjs", "graph", ".cyjs", "Cytoscape.js / Cytoscape desktop JSON", write_cyjs, "keep"),
        ExportFormat("dot", "graph", ".dot", "Graphviz DOT", write_dot),
        ExportFormat(
            "neo4j", "graph", "", "a folder of neo4j-admin import CSVs and import.sh", write_neo4j, "keep"
        ),
        ExportFormat(
            "ttl", "rdf", ".ttl", "Turtle (all graphs merged)", rdf_writer(ox.RdfFormat.TURTLE, merge=True)
        ),
        ExportFormat(
            "nt",
            "rdf",
            ".nt",
            "N-Triples (all graphs merged)",
            rdf_writer(ox.RdfFormat.N_TRIPLES, merge=True),
        ),
        ExportFormat(
            "nq", "rdf", ".nq", "N-Quads (named graphs kept)", rdf_writer(ox.RdfFormat.N_QUADS, merge=False)
        ),
        ExportFormat(
            "trig", "rdf", ".trig", "TriG (named graphs kept)", rdf_writer(ox.RdfFormat.TRIG, merge=False)
        ),
        ExportFormat(
            "jsonld", "rdf", ".jsonld", "JSON-LD with the packaged @context (named graphs kept)", write_jsonld
        ),
    )
}


@dataclass(frozen=True)
class ExportResult:
    format: str
    view: str
    path: Path
    nodes: int | None = None
    edges: int | None = None
    triples: int | None = None

    def describe(self) -> str:
        if self.triples is not None:
            return f"wrote {self.path} ({self.format}: {self.triples} statements)"
        return f"wrote {self.path} ({self.format}, view {self.view}: {self.nodes} nodes, {self.edges} edges)"


def export(
    graph: ox.Store | Iterable[ox.Quad], fmt: str, out: Path, view: str = "full", **options: Any
) -> ExportResult:
    """Write ``graph`` to ``out`` in format ``fmt`` (a graph format through ``view``, or RDF)."""
    from kg.views import VIEWS

    spec = FORMATS.get(fmt)
    if spec is None:
        raise UsageError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    if view not in VIEWS:
        raise UsageError(f"unknown view {view!r}; known: {', '.join(VIEWS)}")
    out = Path(out)
    if spec.kind == "rdf":
        if view != "full":
            raise UsageError(
                f"--view {view} applies to graph formats ({', '.join(graph_formats())}); "
                f"{fmt} writes the whole RDF graph"
            )
        quads = read_quads(graph)
        _prepare(out, folder=False)
        spec.writer(quads, out)
        return ExportResult(fmt, view, out, triples=len(quads))
    g = to_networkx(graph, view, lists=spec.lists, **options)
    _prepare(out, folder=spec.suffix == "")
    spec.writer(g, out)
    return ExportResult(fmt, view, out, nodes=g.number_of_nodes(), edges=g.number_of_edges())


def graph_formats() -> list[str]:
    return [name for name, f in FORMATS.items() if f.kind == "graph"]


def _prepare(out: Path, *, folder: bool) -> None:
    if folder:
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out}: the neo4j export writes a folder, and a file of that name exists")
        return
    if out.is_dir():
        raise UsageError(f"{out}: is a folder; give a file name for this format")
    out.parent.mkdir(parents=True, exist_ok=True)


def iter_formats() -> Iterator[ExportFormat]:
    return iter(FORMATS.values())


def generate_context() -> dict[str, Any]:
    """The JSON-LD context that ``kg/context.jsonld`` must hold: the build's prefixes plus one term per
    ontology property (object properties typed ``@id``).  Regenerate with ``python -m kg.export``."""
    from rdflib import OWL as O
    from rdflib import RDF as R

    from kg.build import PREFIXES
    from kg.vocab import load_ontology

    onto = load_ontology()
    context: dict[str, Any] = dict(sorted(PREFIXES.items()))
    terms: dict[str, Any] = {}
    for kind, typed in ((O.ObjectProperty, True), (O.DatatypeProperty, False)):
        for iri in sorted(str(prop) for prop in onto.subjects(R.type, kind)):
            if not iri.startswith(CARTKG):
                continue
            name = iri[len(CARTKG) :]
            terms[name] = {"@id": f"cartkg:{name}", "@type": "@id"} if typed else f"cartkg:{name}"
    clash = sorted(set(terms) & set(context))
    if clash:
        raise ValueError(f"ontology terms clash with prefixes in the JSON-LD context: {clash}")
    context.update(sorted(terms.items()))
    return {"@context": context}


if __name__ == "__main__":
    print(json.dumps(generate_context(), ensure_ascii=False, indent=1))


__all__ = [
    "FORMATS",
    "ExportFormat",
    "ExportResult",
    "export",
    "finalize",
    "project_rdf",
    "read_quads",
    "to_networkx",
]
