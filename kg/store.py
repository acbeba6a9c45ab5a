"""The embedded store (pyoxigraph on disk) and the files a build writes.

Layout of a build folder::

    OUT/store            symlink to the current store directory (swapped atomically)
    OUT/store.N/         an Oxigraph store: one named graph per trial + the vocabulary graph
    OUT/store.N/manifest.json   trial id -> content digest of its graph (for incremental builds)
    OUT/graph.ttl        every statement, sorted Turtle (byte-identical on rebuild)
    OUT/build-report.json
    OUT/graph.trig | graph.nq | graph.jsonld   on request

A build never writes into the current store: it copies it into ``store.N+1``, replaces the graphs of
the trials it rebuilt, recomputes the vocabulary graph, and only then repoints the ``store`` symlink
(``os.replace`` of a symlink is atomic).  A build killed half-way leaves the previous store in use.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Graph

from kg.build import PREFIXES, BuildFailure, TrialBuild, build_vocabulary_graph
from kg.errors import UsageError
from kg.iri import ID, VOCABULARY_GRAPH, graph_iri, parse_minted

STORE_LINK = "store"
MANIFEST = "manifest.json"
REPORT = "build-report.json"
EXTRA_FORMATS = {"trig": "graph.trig", "nquads": "graph.nq", "jsonld": "graph.jsonld"}
_STORE_DIR = re.compile(r"^store\.(\d+)$")
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


# --------------------------------------------------------------------------- opening stores


def current_store_dir(out_dir: Path) -> Path | None:
    """The directory the ``store`` link points to, or None when there is no complete store yet."""
    link = Path(out_dir) / STORE_LINK
    if not link.exists():
        return None
    return link.resolve()


def open_store(out_dir: Path) -> ox.Store:
    """Open a build folder's current store read-only (readers never block a running build)."""
    target = current_store_dir(Path(out_dir))
    if target is None:
        raise UsageError(f"{out_dir}: no store found (run `cartkg build … --out {out_dir}` first)")
    return ox.Store.read_only(str(target))


def read_manifest(store_dir: Path | None) -> dict[str, str]:
    if store_dir is None or not (store_dir / MANIFEST).exists():
        return {}
    return dict(json.loads((store_dir / MANIFEST).read_text(encoding="utf-8")))


def trial_graphs(store: ox.Store) -> list[tuple[str, ox.NamedNode]]:
    """``[(trial_id, graph name)]`` of the store's trial graphs, sorted by trial id."""
    out = []
    for name in store.named_graphs():
        if isinstance(name, ox.NamedNode):
            parsed = parse_minted(name.value)
            if parsed is not None and parsed[0] == "graph":
                out.append((parsed[1][0], name))
    return sorted(out, key=lambda pair: pair[0])


def graph_ntriples(store: ox.Store, name: ox.NamedNode | None) -> bytes:
    """One named graph (or the vocabulary graph) as N-Triples bytes."""
    graph = name if name is not None else ox.NamedNode(str(VOCABULARY_GRAPH))
    return store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=graph) or b""


# --------------------------------------------------------------------------- writing a build


def graph_digest(nt: bytes) -> str:
    """Content digest of a graph given as N-Triples (lines sorted, so insertion order does not matter)."""
    lines = sorted(line for line in nt.decode("utf-8").splitlines() if line.strip())
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def write_build(
    items: Iterable[TrialBuild | BuildFailure],
    out_dir: Path,
    *,
    fresh: bool = False,
    formats: Sequence[str] = (),
    read_failures: int = 0,
    records_read: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write a new store (copy of the previous one unless ``fresh``), files and report; swap it in."""
    unknown = sorted(set(formats) - set(EXTRA_FORMATS))
    if unknown:
        raise UsageError(
            f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(EXTRA_FORMATS)}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_stores(out_dir)
    previous = None if fresh else current_store_dir(out_dir)
    new_dir = out_dir / f"store.{next_store_number(out_dir)}"
    store = ox.Store(str(new_dir))
    manifest: dict[str, str] = {}
    if previous is not None:
        copy_store(previous, store)
        manifest = read_manifest(previous)
    report = fill_store(store, items, manifest, progress)
    vocabulary = build_vocabulary_graph(minted_in_store(store))
    replace_graph(store, ox.NamedNode(str(VOCABULARY_GRAPH)), vocabulary.serialize(format="nt").encode())
    store.flush()
    (new_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    report.update(count_triples(store))
    write_turtle_file(store, out_dir / "graph.ttl")
    for fmt in sorted(set(formats)):
        write_extra(store, fmt, out_dir / EXTRA_FORMATS[fmt])
    del store
    gc.collect()
    swap_store(out_dir, new_dir)
    report["records_read"] = records_read if records_read is not None else report["trials_built"]
    report["records_failed"] = read_failures + report["build_failures"]
    write_atomic(out_dir / REPORT, json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return report


def fill_store(
    store: ox.Store,
    items: Iterable[TrialBuild | BuildFailure],
    manifest: dict[str, str],
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Put each built trial into ``store``, replacing its previous graph only when it changed.

    Changed graphs are removed one by one and the new statements loaded in one transaction at the
    end (a load per trial was the slowest part of a build).
    """
    added, replaced, unchanged, failures, duplicates = [], [], [], [], []
    seen: dict[str, str] = {}
    pending: dict[str, bytes] = {}
    for item in items:
        if isinstance(item, BuildFailure):
            failures.append(str(item))
            if progress:
                progress(f"cartkg: {item}")
            continue
        nt = item.graph.serialize(format="nt", encoding="utf-8")
        digest = graph_digest(nt)
        if item.trial_id in seen:
            duplicates.append(f"{item.trial_id}: {item.source} replaces {seen[item.trial_id]}")
        seen[item.trial_id] = item.source
        old = manifest.get(item.trial_id)
        if old == digest and item.trial_id not in pending:
            unchanged.append(item.trial_id)
            continue
        pending[item.trial_id] = nt
        (replaced if old is not None else added).append(item.trial_id)
        manifest[item.trial_id] = digest
    quads = []
    for trial_id, nt in sorted(pending.items()):
        name = ox.NamedNode(str(graph_iri(trial_id)))
        if store.contains_named_graph(name):
            store.remove_graph(name)
        quads.append(to_nquads(nt, name))
    if quads:
        store.bulk_load(b"".join(quads), format=ox.RdfFormat.N_QUADS)
    return {
        "trials_built": len(seen),
        "trials_added": len(set(added) - set(replaced)),
        "trials_replaced": len(set(replaced)),
        "trials_unchanged": len(set(unchanged) - set(pending)),
        "trials_in_store": len(manifest),
        "build_failures": len(failures),
        "failures": failures,
        "duplicates": duplicates,
    }


def to_nquads(nt: bytes, graph: ox.NamedNode) -> bytes:
    """N-Triples lines (each ending in `` .``) as N-Quads lines in ``graph``."""
    suffix = f" {graph} .\n".encode()
    return b"".join(line[:-2] + suffix for line in nt.splitlines() if line.endswith(b" ."))


def replace_graph(store: ox.Store, name: ox.NamedNode, nt: bytes) -> None:
    if store.contains_named_graph(name):
        store.remove_graph(name)
    store.load(nt, format=ox.RdfFormat.N_TRIPLES, to_graph=name)


def copy_store(source_dir: Path, target: ox.Store) -> None:
    source = ox.Store.read_only(str(source_dir))
    target.bulk_extend(source.quads_for_pattern(None, None, None, None))
    del source


def minted_in_store(store: ox.Store) -> list:
    """Minted vocabulary IRIs used in any trial graph, as rdflib URIRefs."""
    from rdflib import URIRef

    query = (
        "SELECT DISTINCT ?o WHERE { GRAPH ?g { ?s ?p ?o } "
        f'FILTER(isIRI(?o) && STRSTARTS(STR(?o), "{ID}vocab/")) }}'
    )
    return sorted(URIRef(row["o"].value) for row in store.query(query))


def count_triples(store: ox.Store) -> dict[str, Any]:
    query = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"
    counts = {row["g"].value: int(row["n"].value) for row in store.query(query)}
    per_trial = {tid: counts.get(name.value, 0) for tid, name in trial_graphs(store)}
    vocabulary = counts.get(str(VOCABULARY_GRAPH), 0)
    return {
        "triples_per_trial": dict(sorted(per_trial.items())),
        "triples_vocabulary": vocabulary,
        "triples_total": vocabulary + sum(per_trial.values()),
    }


def next_store_number(out_dir: Path) -> int:
    numbers = [int(m.group(1)) for p in out_dir.iterdir() if (m := _STORE_DIR.match(p.name))]
    return max(numbers, default=0) + 1


def remove_stale_stores(out_dir: Path) -> None:
    """Delete store directories the link does not point to (left by a killed or finished build)."""
    current = current_store_dir(out_dir)
    for p in out_dir.iterdir():
        if _STORE_DIR.match(p.name) and p.is_dir() and not p.is_symlink() and p.resolve() != current:
            shutil.rmtree(p, ignore_errors=True)


def swap_store(out_dir: Path, new_dir: Path) -> None:
    """Point ``OUT/store`` at ``new_dir`` atomically, then delete the previous store directory."""
    previous = current_store_dir(out_dir)
    tmp_link = out_dir / f".{STORE_LINK}.link-{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(new_dir.name, tmp_link)
    os.replace(tmp_link, out_dir / STORE_LINK)
    if previous is not None and previous != new_dir.resolve():
        shutil.rmtree(previous, ignore_errors=True)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- deterministic serializations


def _term(term: Any, prefixes: list[tuple[str, str]]) -> str:
    if isinstance(term, ox.NamedNode):
        return _iri(term.value, prefixes)
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Literal):
        text = _escape(term.value)
        if term.language:
            return f'"{text}"@{term.language}'
        datatype = term.datatype.value
        if datatype == XSD_STRING:
            return f'"{text}"'
        return f'"{text}"^^{_iri(datatype, prefixes)}'
    raise TypeError(f"unexpected RDF term {term!r}")


_LOCAL = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _iri(iri: str, prefixes: list[tuple[str, str]]) -> str:
    return _compact(iri, tuple(prefixes))


@lru_cache(maxsize=65536)
def _compact(iri: str, prefixes: tuple[tuple[str, str], ...]) -> str:
    for prefix, ns in prefixes:
        if iri.startswith(ns) and _LOCAL.match(iri[len(ns) :]):
            return f"{prefix}:{iri[len(ns) :]}"
    return f"<{iri}>"


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )


def _sort_key(term: Any) -> tuple[int, str, str, str]:
    if isinstance(term, ox.NamedNode):
        return (0, term.value, "", "")
    if isinstance(term, ox.BlankNode):
        return (1, term.value, "", "")
    return (2, term.value, term.datatype.value if term.datatype else "", term.language or "")


def turtle_blocks(triples: Iterable[Any], prefixes: list[tuple[str, str]], indent: str = "") -> Iterator[str]:
    """Sorted Turtle statements: one block per subject, predicates and objects sorted."""
    by_subject: dict[Any, dict[Any, list[Any]]] = {}
    for t in triples:
        by_subject.setdefault(t.subject, {}).setdefault(t.predicate, []).append(t.object)
    for subject in sorted(by_subject, key=_sort_key):
        preds = by_subject[subject]
        parts = []
        for pred in sorted(preds, key=lambda p: (p.value != RDF_TYPE, p.value)):
            objects = ", ".join(_term(o, prefixes) for o in sorted(set(preds[pred]), key=_sort_key))
            verb = "a" if pred.value == RDF_TYPE else _term(pred, prefixes)
            parts.append(f"{verb} {objects}")
        yield f"{indent}{_term(subject, prefixes)} " + f" ;\n{indent}    ".join(parts) + " .\n"


def _prefix_lines() -> tuple[list[tuple[str, str]], str]:
    ordered = sorted(PREFIXES.items(), key=lambda kv: -len(kv[1]))  # longest namespace wins
    header = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in sorted(PREFIXES.items()))
    return ordered, header


def write_turtle_file(store: ox.Store, path: Path) -> None:
    """All statements of the store (union of its graphs) as sorted Turtle."""
    prefixes, header = _prefix_lines()
    triples = {
        ox.Triple(q.subject, q.predicate, q.object) for q in store.quads_for_pattern(None, None, None, None)
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(header + "\n")
        for block in turtle_blocks(triples, prefixes):
            out.write(block + "\n")
    os.replace(tmp, path)


def write_extra(store: ox.Store, fmt: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    prefixes, header = _prefix_lines()
    if fmt == "nquads":
        data = store.dump(format=ox.RdfFormat.N_QUADS) or b""
        lines = sorted(set(data.decode("utf-8").splitlines()))
        tmp.write_text("".join(line + "\n" for line in lines if line.strip()), encoding="utf-8")
    elif fmt == "trig":
        with tmp.open("w", encoding="utf-8") as out:
            out.write(header)
            names = [ox.NamedNode(str(VOCABULARY_GRAPH))] + [n for _, n in trial_graphs(store)]
            for name in names:
                out.write(f"\n{_term(name, prefixes)} {{\n")
                quads = store.quads_for_pattern(None, None, None, name)
                for block in turtle_blocks(
                    (ox.Triple(q.subject, q.predicate, q.object) for q in quads), prefixes, "  "
                ):
                    out.write(block)
                out.write("}\n")
    elif fmt == "jsonld":
        g = Graph()
        g.parse(
            data=store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph()) or b"", format="nt"
        )
        for _, name in [("", ox.NamedNode(str(VOCABULARY_GRAPH)))] + trial_graphs(store):
            g.parse(data=store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=name) or b"", format="nt")
        context = {p: ns for p, ns in sorted(PREFIXES.items())}
        tmp.write_text(g.serialize(format="json-ld", context=context, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
