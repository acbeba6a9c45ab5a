"""Validate a cartkg graph against the SHACL shapes, plus cross-trial SPARQL checks.

Two engines read the same shapes file and give the same report vocabulary:

* ``turbo`` (default): pyshacl-turbo, a Rust SHACL engine with pySHACL's semantics.  Trials are
  validated in chunks of a few trials, each chunk together with the whole shared vocabulary graph,
  in parallel processes; a result seen in several chunks (one about the vocabulary) is kept once.
  Chunks, not the whole graph: the engine's cost per triple grows with the size of its input (the
  1,000-trial graph in one run took 60× longer than in chunks).  N-Triples go straight into the
  engine (no rdflib parse); worker processes read their trial graphs from the build's store.
* ``pyshacl``: the reference implementation.  Statements are partitioned by trial (every
  trial-local IRI carries its trial id, see ``kg.iri.trial_of``); each trial graph is validated
  with the skeleton of the vocabulary graph as a plain in-memory rdflib graph (pyshacl over an
  Oxigraph-backed rdflib graph gave false ``sh:in`` violations and was 12× slower).  The shared
  part is validated once on its own.  ``whole`` validates everything as one graph (the benchmark's
  baseline).

If turbo cannot run the shapes (a SHACL term it has not been checked against, or an engine error),
validation falls back to pyshacl and says so in ``ValidationOutcome.notes``: it never validates less
silently.  Checks that span trials (unique NCT numbers, dangling references, one graph per trial) are
the ``cks:DatasetCheck`` queries of the shapes file, run with Oxigraph over the whole dataset.  Nothing
is fetched: ``owl:imports`` is never followed.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.namespace import SH

from kg.errors import UsageError
from kg.iri import VOCABULARY_GRAPH, parse_minted, trial_of
from kg.resources import shapes_path

CKS = "https://w3id.org/cartkg/shapes/"
DATASET_CHECK = URIRef(CKS + "DatasetCheck")
SHARED = ""  # the group key of statements that belong to no trial (the vocabulary)
RDF_FORMATS = {
    ".ttl": ("turtle", ox.RdfFormat.TURTLE),
    ".nt": ("nt", ox.RdfFormat.N_TRIPLES),
    ".nq": ("nquads", ox.RdfFormat.N_QUADS),
    ".trig": ("trig", ox.RdfFormat.TRIG),
    ".jsonld": ("json-ld", ox.RdfFormat.JSON_LD),
    ".rdf": ("xml", ox.RdfFormat.RDF_XML),
    ".owl": ("xml", ox.RdfFormat.RDF_XML),
}


@dataclass(frozen=True)
class Finding:
    """One validation result, flattened for the readable report."""

    trial: str  # trial id, or "" for the shared vocabulary
    shape: str
    component: str
    severity: str
    focus: str
    path: str
    value: str
    message: str


@dataclass
class ValidationOutcome:
    conforms: bool
    findings: list[Finding]
    report: Graph
    trials: int
    seconds: float
    mode: str
    jobs: int
    per_trial_seconds: dict[str, float] = field(default_factory=dict)
    engine: str = "pyshacl"
    notes: list[str] = field(default_factory=list)  # e.g. why turbo fell back to pyshacl


# --------------------------------------------------------------------------- shapes


@lru_cache(maxsize=1)
def load_shapes() -> Graph:
    """The shapes graph (package data, parsed once per process), anonymous property shapes named."""
    return name_property_shapes(Graph().parse(shapes_path(), format="turtle"))


def name_property_shapes(shapes: Graph) -> Graph:
    """Give each anonymous property shape of a named node shape the IRI ``<NodeShape>-<path>``.

    A report can then say *which* property shape fired (``cks:OutcomeShape-measure``), and the name is
    the same in every worker process (blank node labels are not).
    """
    renames: dict[BNode, URIRef] = {}
    for node_shape, prop in sorted(shapes.subject_objects(SH.property)):
        if not isinstance(node_shape, URIRef) or not isinstance(prop, BNode):
            continue
        path = shapes.value(prop, SH.path)
        local = _local(path) if isinstance(path, URIRef) else "path"
        qualified = shapes.value(shapes.value(prop, SH.qualifiedValueShape), SH["class"])
        if isinstance(qualified, URIRef):
            local += "-" + _local(qualified)
        name, n = URIRef(f"{node_shape}-{local}"), 2
        while name in renames.values():
            name, n = URIRef(f"{node_shape}-{local}-{n}"), n + 1
        renames[prop] = name
    out = Graph()
    for prefix, ns in shapes.namespaces():
        out.bind(prefix, ns)
    for s, p, o in shapes:
        out.add((renames.get(s, s), p, renames.get(o, o)))  # type: ignore[arg-type]
    return out


def _local(iri: URIRef) -> str:
    text = str(iri)
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def dataset_checks(shapes: Graph) -> list[tuple[URIRef, str, str]]:
    """``[(check IRI, message, SPARQL select)]`` of the cross-trial checks, sorted by IRI."""
    out = []
    for check in sorted(shapes.subjects(RDF.type, DATASET_CHECK)):
        out.append((URIRef(check), str(shapes.value(check, SH.message)), str(shapes.value(check, SH.select))))
    return out


# --------------------------------------------------------------------------- reading input


def read_partitions(path: Path) -> tuple[dict[str, bytes], ox.Store]:
    """``({trial id or SHARED: N-Triples}, store)`` for a build folder or an RDF file."""
    store, _ = read_store(path)
    return partition(store), store


def read_store(path: Path) -> tuple[ox.Store, Path | None]:
    """``(store, its folder)`` for a build folder; ``(in-memory store, None)`` for an RDF file."""
    path = Path(path)
    if path.is_dir():
        from kg.store import current_store_dir

        store_dir = current_store_dir(path)
        if store_dir is None:
            raise UsageError(f"{path}: not a build folder (no 'store' inside) and not an RDF file")
        return ox.Store.read_only(str(store_dir)), store_dir
    if not path.is_file():
        raise UsageError(f"{path}: no such file or folder")
    fmt = RDF_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(RDF_FORMATS)
        raise UsageError(f"{path}: unknown RDF file type {path.suffix!r}; use one of {known}")
    from kg.rdfio import check_rdf  # refuses DOCTYPE/ENTITY RDF/XML and referenced JSON-LD contexts

    check_rdf(path)
    store = ox.Store()
    try:
        if fmt[1] in (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG):
            store.load(path=str(path), format=fmt[1])
        else:
            store.load(path=str(path), format=fmt[1], to_graph=ox.NamedNode(str(VOCABULARY_GRAPH)))
    except (SyntaxError, ValueError, OSError) as exc:
        raise UsageError(f"{path}: cannot parse as {fmt[0]}: {exc}") from exc
    from kg.vocab import load_ontology  # a file may not carry the ontology: its terms are not dangling

    ontology = load_ontology().serialize(format="nt", encoding="utf-8")
    store.load(ontology, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(str(VOCABULARY_GRAPH)))
    return store, None


def partition(store: ox.Store) -> dict[str, bytes]:
    """Split all statements by the trial their subject belongs to (shared statements under SHARED)."""
    lines: dict[str, list[str]] = defaultdict(list)
    for q in store.quads_for_pattern(None, None, None, None):
        subject = q.subject
        key = trial_of(subject.value) if isinstance(subject, ox.NamedNode) else None
        if key is None and isinstance(q.graph_name, ox.NamedNode):
            parsed = parse_minted(q.graph_name.value)
            if parsed is not None and parsed[0] == "graph":
                key = parsed[1][0]  # a blank node or foreign IRI inside a trial graph belongs to that trial
        lines[key or SHARED].append(f"{subject} {q.predicate} {q.object} .\n")
    return {k: "".join(sorted(set(v))).encode("utf-8") for k, v in sorted(lines.items())}


def with_ontology(shared: bytes) -> bytes:
    """The shared statements plus the packaged ontology (its classes and vocabulary individuals), so a
    file that does not carry the ontology is validated against the same vocabulary a build has."""
    from kg.vocab import load_ontology

    lines = set(shared.decode("utf-8").splitlines())
    lines.update(load_ontology().serialize(format="nt").splitlines())
    return "".join(line + "\n" for line in sorted(lines) if line.strip()).encode("utf-8")


# --------------------------------------------------------------------------- pyshacl runs

_WORKER: dict[str, Any] = {}


def cache_sparql_preparation() -> None:
    """Parse each SPARQL text once per process.

    pyshacl hands rdflib the same ``sh:select`` text once per focus node and rdflib re-parses it
    every time (~60 ms a parse, the bulk of a per-trial run).  rdflib prepared queries are reusable
    with different initial bindings, so the parsed and translated query is cached by its text.
    """
    from rdflib.plugins.sparql import processor

    if getattr(processor.SPARQLProcessor.query, "_cartkg_cached", False):
        return
    original = processor.SPARQLProcessor.query

    @lru_cache(maxsize=256)
    def prepared(text: str, base: str | None, namespaces: tuple[tuple[str, str], ...]) -> Any:
        return processor.translateQuery(processor.parseQuery(text), base, dict(namespaces) or None)

    def query(
        self: Any,
        strOrQuery: Any,
        initBindings: Any = None,
        initNs: Any = None,  # noqa: N803
        base: str | None = None,
        DEBUG: bool = False,
    ) -> Any:  # noqa: N803
        if isinstance(strOrQuery, str):
            key = tuple(sorted((str(k), str(v)) for k, v in (initNs or {}).items()))
            strOrQuery = prepared(strOrQuery, base, key)
        return original(self, strOrQuery, initBindings, initNs, base, DEBUG)

    query._cartkg_cached = True  # type: ignore[attr-defined]
    processor.SPARQLProcessor.query = query  # type: ignore[method-assign]


def quiet_literal_warnings() -> None:
    """rdflib logs a traceback for every ill-typed literal it parses; the shapes report those properly."""
    logging.getLogger("rdflib.term").setLevel(logging.ERROR)


def _init_worker(shared_nt: bytes) -> None:
    quiet_literal_warnings()
    cache_sparql_preparation()
    shared = Graph().parse(data=shared_nt, format="nt") if shared_nt else Graph()
    _WORKER["shared"] = shared
    _WORKER["skeleton"] = vocabulary_skeleton(shared)
    _WORKER["shapes"] = load_shapes()


def vocabulary_skeleton(shared: Graph) -> Graph:
    """What a trial's validation needs from the shared graph: types and the class hierarchy.

    ``sh:class`` reads ``rdf:type`` / ``rdfs:subClassOf``; ``sh:in`` and ``sh:targetNode`` need nothing
    else.  Labels, comments and alignments (most of the vocabulary graph) are validated once, in the
    SHARED run, instead of once per trial.
    """
    skeleton = Graph()
    for prop in (RDF.type, RDFS.subClassOf):
        for triple in shared.triples((None, prop, None)):
            skeleton.add(triple)
    return skeleton


def _validate_one(task: tuple[str, bytes]) -> tuple[str, bool, bytes, float]:
    """Validate one trial graph plus the shared graph; return its results as N-Triples."""
    import pyshacl

    trial, nt = task
    started = time.perf_counter()
    data = Graph()
    for triple in _WORKER["shared" if trial == SHARED else "skeleton"]:
        data.add(triple)
    if trial != SHARED:
        data.parse(data=nt, format="nt")
    conforms, results, _ = pyshacl.validate(
        data,
        shacl_graph=_WORKER["shapes"],
        inference="none",
        abort_on_first=False,
        allow_infos=True,
        allow_warnings=True,
        meta_shacl=False,
        advanced=False,
        do_owl_imports=False,
    )
    kept = keep_own_results(results, trial)
    return (
        trial,
        not any(kept.triples((None, SH.resultSeverity, SH.Violation))),
        kept.serialize(format="nt", encoding="utf-8"),
        time.perf_counter() - started,
    )


def keep_own_results(results: Graph, trial: str) -> Graph:
    """Results about ``trial`` only (the shared vocabulary's own results are reported once, by SHARED)."""
    out = Graph()
    for result in results.subjects(RDF.type, SH.ValidationResult):
        if result_trial(results, result) != trial:
            continue
        for triple in _closure(results, result):
            out.add(triple)
    return out


def result_trial(results: Graph, result: Any) -> str:
    """The trial a result is about: the focus node's trial, else the value node's (strategy shapes)."""
    for prop in (SH.focusNode, SH.value):
        node = results.value(result, prop)
        if isinstance(node, URIRef):
            tid = trial_of(str(node))
            if tid is not None:
                return tid
    return SHARED


def _closure(g: Graph, node: Any) -> Iterable[tuple[Any, Any, Any]]:
    seen, todo = set(), [node]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for s, p, o in g.triples((n, None, None)):
            yield s, p, o
            if isinstance(o, BNode) and p != SH.sourceShape:
                todo.append(o)


# --------------------------------------------------------------------------- pyshacl-turbo runs

ENGINES = ("turbo", "pyshacl")
TURBO_CHUNK = 8  # trials per turbo run: 5–10 measured fastest per trial on the 1,000-trial build

# The SHACL terms (Core and SHACL-SPARQL) on which pyshacl-turbo has been checked against pyshacl by
# tests/test_validate_engines.py.  A shapes file that uses any other sh: term is validated with pyshacl.
TURBO_CHECKED_TERMS = frozenset(
    SH[name]
    for name in (
        "NodeShape PropertyShape SPARQLConstraint ValidationResult Violation Warning Info IRI "
        "BlankNode Literal BlankNodeOrIRI IRIOrLiteral BlankNodeOrLiteral "
        "targetClass targetNode targetSubjectsOf targetObjectsOf property path inversePath "
        "alternativePath zeroOrMorePath oneOrMorePath zeroOrOnePath "
        "class datatype nodeKind minCount maxCount minInclusive maxInclusive minExclusive maxExclusive "
        "minLength maxLength pattern flags languageIn uniqueLang in hasValue node not and or xone "
        "qualifiedValueShape qualifiedMinCount qualifiedMaxCount qualifiedValueShapesDisjoint "
        "equals disjoint lessThan lessThanOrEquals closed ignoredProperties "
        "message severity deactivated name description order group defaultValue "
        "sparql select prefixes declare prefix namespace"
    ).split()
)


class TurboUnavailable(Exception):
    """pyshacl-turbo cannot validate these shapes or this data; the caller falls back to pyshacl."""


def unchecked_shacl_terms(shapes: Graph) -> list[str]:
    """The sh: terms of ``shapes`` that pyshacl-turbo has not been checked on, sorted."""
    used = {t for triple in shapes for t in triple if isinstance(t, URIRef) and t.startswith(str(SH))}
    return sorted(str(t) for t in used - TURBO_CHECKED_TERMS)


@lru_cache(maxsize=1)
def turbo_program() -> Any:
    """The shapes compiled by pyshacl-turbo (once per process); TurboUnavailable when it cannot."""
    shapes = load_shapes()
    unchecked = unchecked_shacl_terms(shapes)
    if unchecked:
        terms = ", ".join(unchecked)
        raise TurboUnavailable(f"the shapes use SHACL terms not checked with pyshacl-turbo: {terms}")
    try:
        import pyshacl_turbo

        return pyshacl_turbo.compile_shapes(shapes)
    except Exception as exc:  # any failure to compile means turbo would validate less
        raise TurboUnavailable(f"pyshacl-turbo cannot compile the shapes: {exc}") from exc


def turbo_validate(nt: bytes) -> Graph:
    """Validate N-Triples with pyshacl-turbo; the results (each with its description) as a graph.

    The text goes straight to the engine's own parser (``pyshacl_turbo.rdf.Input``): building an
    rdflib graph first would cost more than the validation.
    """
    from pyshacl_turbo.rdf import Input

    program = turbo_program()
    try:
        _, results, _ = program.validate(
            Input(nt.decode("utf-8"), "nt", None, {}),
            allow_infos=True,
            allow_warnings=True,
            _normalize_report_literals=True,  # what pyshacl_turbo.validate does, as pyshacl
        )
    except Exception as exc:  # an engine error must not pass as "no results"
        raise TurboUnavailable(f"pyshacl-turbo failed: {exc}") from exc
    kept = Graph()
    for result in results.subjects(RDF.type, SH.ValidationResult):
        for triple in _closure(results, result):
            kept.add(triple)
    return kept


def turbo_units(store: ox.Store, store_dir: Path | None) -> tuple[bytes, list[tuple[str, str | bytes]]]:
    """``(shared N-Triples with the ontology, [(trial id, its graph IRI or its N-Triples)])``.

    In a build folder each trial is one named graph (the workers read it from the store); everything
    else (the vocabulary graph, the default graph, other graphs) is shared.  An RDF file is split by
    the trial of each statement's subject, as for pyshacl.
    """
    if store_dir is None:
        parts = partition(store)
        return with_ontology(parts.pop(SHARED, b"")), sorted(parts.items())
    units: list[tuple[str, str | bytes]] = []
    shared = [store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph())]
    for graph in sorted(store.named_graphs(), key=lambda g: g.value):
        parsed = parse_minted(graph.value) if isinstance(graph, ox.NamedNode) else None
        if parsed is not None and parsed[0] == "graph":
            units.append((parsed[1][0], graph.value))
        else:
            shared.append(store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=graph))
    return with_ontology(b"".join(shared)), units


def _init_turbo_worker(shared_nt: bytes, store_dir: str | None) -> None:
    quiet_literal_warnings()
    _WORKER["shared"] = shared_nt
    _WORKER["store"] = ox.Store.read_only(store_dir) if store_dir else None
    try:
        turbo_program()
    except TurboUnavailable:
        pass  # reported by the chunk that needs it


def _turbo_chunk(units: list[tuple[str, str | bytes]]) -> tuple[list[str], bytes, float, str]:
    """Validate the shared graph plus a few trials; ``(trial ids, results N-Triples, seconds, error)``."""
    started = time.perf_counter()
    texts = [_WORKER["shared"]]
    for _, unit in units:
        if isinstance(unit, bytes):
            texts.append(unit)
        else:
            texts.append(_dump_graph(_WORKER["store"], unit))
    try:
        results = turbo_validate(b"".join(texts)).serialize(format="nt", encoding="utf-8")
    except TurboUnavailable as exc:
        return [t for t, _ in units], b"", 0.0, str(exc)
    return [t for t, _ in units], results, time.perf_counter() - started, ""


def run_turbo_chunks(
    shared: bytes,
    units: list[tuple[str, str | bytes]],
    store_dir: Path | None,
    jobs: int,
    chunk: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[Graph, dict[str, float]]:
    """All chunks' results merged (a result found by several chunks once) and seconds per trial."""
    chunks = [units[i : i + chunk] for i in range(0, len(units), chunk)] or [[]]
    report, seen, per_trial = Graph(), set(), {}
    for i, (trials, nt, secs, error) in enumerate(_map_chunks(chunks, shared, store_dir, jobs), 1):
        if error:
            raise TurboUnavailable(error)
        for trial in trials:
            per_trial[trial] = secs / len(trials)
        add_new_results(report, parse_results(nt), seen)
        if progress:
            progress(i, len(chunks))
    return report, per_trial


def _map_chunks(
    chunks: list[list[tuple[str, str | bytes]]], shared: bytes, store_dir: Path | None, jobs: int
) -> Iterable[tuple[list[str], bytes, float, str]]:
    initargs = (shared, str(store_dir) if store_dir else None)
    if jobs == 1 or len(chunks) <= 2:
        _init_turbo_worker(*initargs)
        yield from map(_turbo_chunk, chunks)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_turbo_worker, initargs=initargs) as pool:
        yield from pool.map(_turbo_chunk, chunks)


def parse_results(nt: bytes) -> Graph:
    """A worker's results as a graph, literals as written (``"P4W"`` stays, rdflib would show P28D)."""
    import rdflib

    results, normalize = Graph(), rdflib.NORMALIZE_LITERALS
    rdflib.NORMALIZE_LITERALS = False
    try:
        return results.parse(data=nt, format="nt") if nt else results
    finally:
        rdflib.NORMALIZE_LITERALS = normalize


def add_new_results(report: Graph, results: Graph, seen: set[Any]) -> None:
    """Copy into ``report`` each result of ``results`` whose description is not in ``seen`` yet."""
    for result in sorted(results.subjects(RDF.type, SH.ValidationResult)):
        key = description_key(results, result)
        if key in seen:
            continue
        seen.add(key)
        for triple in _closure(results, result):
            report.add(triple)


def description_key(g: Graph, node: Any, path: frozenset[Any] = frozenset()) -> Any:
    """A hashable description of ``node`` with blank nodes replaced by their own descriptions."""
    if not isinstance(node, BNode):
        return node
    if node in path:
        return "(cycle)"
    inner = path | {node}
    return tuple(sorted((str(p), repr(description_key(g, o, inner))) for p, o in g.predicate_objects(node)))


# --------------------------------------------------------------------------- the whole run


def validate_path(
    path: Path,
    *,
    jobs: int | None = None,
    whole: bool = False,
    engine: str | None = None,
    chunk: int = TURBO_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationOutcome:
    """Validate a build folder or RDF file.

    ``engine`` is ``turbo`` or ``pyshacl`` (default: turbo, or pyshacl with ``whole``); ``whole``
    validates everything as one graph (the benchmark's baseline); ``chunk`` is trials per turbo run.
    """
    started = time.perf_counter()
    engine = engine or ("pyshacl" if whole else "turbo")
    if engine not in ENGINES:
        raise UsageError(f"unknown validation engine {engine!r}; use one of {', '.join(ENGINES)}")
    quiet_literal_warnings()
    jobs = max(1, jobs or os.cpu_count() or 1)
    store, store_dir = read_store(Path(path))
    notes: list[str] = []
    run: tuple[Graph, int, dict[str, float], str] | None = None
    if engine == "turbo":
        try:
            run = _turbo_run(store, store_dir, jobs=jobs, whole=whole, chunk=chunk, progress=progress)
        except TurboUnavailable as exc:
            notes.append(f"{exc}; validated with pyshacl instead")
            engine = "pyshacl"
    if run is None:
        run = _pyshacl_run(store, jobs=jobs, whole=whole, progress=progress)
    report, trials, per_trial, mode = run
    report += dataset_results(store, load_shapes())
    del store
    findings = collect_findings(report)
    conforms = not any(f.severity == "sh:Violation" for f in findings)
    finish_report(report, conforms)
    return ValidationOutcome(
        conforms=conforms,
        findings=findings,
        report=report,
        trials=trials,
        seconds=time.perf_counter() - started,
        mode=mode,
        jobs=1 if whole else jobs,
        per_trial_seconds=per_trial,
        engine=engine,
        notes=notes,
    )


def _turbo_run(
    store: ox.Store,
    store_dir: Path | None,
    *,
    jobs: int,
    whole: bool,
    chunk: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[Graph, int, dict[str, float], str]:
    turbo_program()  # shapes turbo cannot run fall back to pyshacl before any worker starts
    shared, units = turbo_units(store, store_dir)
    if whole:
        dumps = [u if isinstance(u, bytes) else _dump_graph(store, u) for _, u in units]
        return turbo_validate(shared + b"".join(dumps)), len(units), {}, "pyshacl-turbo, whole graph"
    report, per_trial = run_turbo_chunks(shared, units, store_dir, jobs, max(1, chunk), progress)
    return report, len(units), per_trial, f"pyshacl-turbo, {max(1, chunk)} trials a run"


def _dump_graph(store: ox.Store, graph: str) -> bytes:
    return store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.NamedNode(graph))


def _pyshacl_run(
    store: ox.Store, *, jobs: int, whole: bool, progress: Callable[[int, int], None] | None
) -> tuple[Graph, int, dict[str, float], str]:
    parts = partition(store)
    shared = with_ontology(parts.pop(SHARED, b""))
    if whole:
        return pyshacl_validate(shared + b"".join(parts.values())), len(parts), {}, "pyshacl, whole graph"
    report, per_trial = Graph(), {}
    tasks = [(SHARED, b"")] + sorted(parts.items())
    for trial, nt, secs in _run_tasks(tasks, shared, jobs, progress):
        per_trial[trial] = secs
        if nt:
            report.parse(data=nt, format="nt")
    return report, len(parts), per_trial, "pyshacl, per trial"


def pyshacl_validate(nt: bytes) -> Graph:
    """Validate N-Triples with pyshacl as one graph; the results (each with its description)."""
    import pyshacl

    cache_sparql_preparation()
    data = Graph().parse(data=nt, format="nt")
    _, results, _ = pyshacl.validate(
        data,
        shacl_graph=load_shapes(),
        inference="none",
        allow_warnings=True,
        allow_infos=True,
        meta_shacl=False,
        advanced=False,
        do_owl_imports=False,
    )
    kept = Graph()
    for result in results.subjects(RDF.type, SH.ValidationResult):
        for triple in _closure(results, result):
            kept.add(triple)
    return kept


def _run_tasks(
    tasks: list[tuple[str, bytes]], shared: bytes, jobs: int, progress: Callable[[int, int], None] | None
) -> Iterable[tuple[str, bytes, float]]:
    total = len(tasks)
    if jobs == 1 or total <= 2:
        _init_worker(shared)
        for i, task in enumerate(tasks, 1):
            trial, _, nt, secs = _validate_one(task)
            if progress:
                progress(i, total)
            yield trial, nt, secs
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(shared,)) as pool:
        for i, (trial, _, nt, secs) in enumerate(pool.map(_validate_one, tasks, chunksize=4), 1):
            if progress:
                progress(i, total)
            yield trial, nt, secs


def dataset_results(store: ox.Store, shapes: Graph) -> Graph:
    """Run the cross-trial SPARQL checks on the store; each row becomes an sh:ValidationResult."""
    out = Graph()
    for check, message, query in dataset_checks(shapes):
        for row in store.query(query):
            this, value = row["this"], row["value"]
            result = BNode()
            out.add((result, RDF.type, SH.ValidationResult))
            out.add((result, SH.resultSeverity, SH.Violation))
            out.add((result, SH.sourceShape, check))
            out.add((result, SH.sourceConstraintComponent, SH.SPARQLConstraintComponent))
            focus = URIRef(this.value) if isinstance(this, ox.NamedNode) else Literal(str(this))
            out.add((result, SH.focusNode, focus))
            shown = _to_rdflib(value)
            out.add((result, SH.value, shown))
            text = message.replace("{?value}", str(value.value if value is not None else ""))
            out.add((result, SH.resultMessage, Literal(text)))
    return out


def _to_rdflib(term: Any) -> Any:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.Literal):
        return Literal(term.value, datatype=URIRef(term.datatype.value) if term.datatype else None)
    return Literal(str(term))


def finish_report(report: Graph, conforms: bool) -> None:
    """Add the one sh:ValidationReport node that holds every result."""
    node = BNode()
    report.add((node, RDF.type, SH.ValidationReport))
    report.add((node, SH.conforms, Literal(conforms)))
    for result in sorted(report.subjects(RDF.type, SH.ValidationResult)):
        report.add((node, SH.result, result))
    report.bind("sh", SH)
    report.bind("cks", CKS)
    report.bind("cartkg", "https://w3id.org/cartkg/")


def collect_findings(report: Graph) -> list[Finding]:
    findings = []
    details = set(report.objects(None, SH.detail))
    for result in report.subjects(RDF.type, SH.ValidationResult):
        if result in details:
            continue  # a nested result is shown through the result that holds it
        shape = report.value(result, SH.sourceShape)
        constraint = report.value(result, SH.sourceConstraint)
        if isinstance(constraint, URIRef):
            shape = constraint  # a named SPARQL constraint says more than its node shape
        focus = report.value(result, SH.focusNode)
        value = report.value(result, SH.value)
        path = report.value(result, SH.resultPath)
        trial = result_trial(report, result)
        findings.append(
            Finding(
                trial=trial,
                shape=_short(shape),
                component=_short(report.value(result, SH.sourceConstraintComponent)),
                severity=_short(report.value(result, SH.resultSeverity)),
                focus=str(focus) if focus is not None else "",
                path=_short(path) if isinstance(path, URIRef) else ("(path)" if path is not None else ""),
                value=str(value) if value is not None else "",
                message=str(report.value(result, SH.resultMessage) or ""),
            )
        )
    return sorted(findings, key=lambda f: (f.trial, f.shape, f.focus, f.value, f.message))


def _count_text(items: list[Finding]) -> str:
    v = sum(1 for f in items if f.severity == "sh:Violation")
    w = len(items) - v
    parts = [f"{v} violation{'s' if v != 1 else ''}"] if v else []
    parts += [f"{w} warning{'s' if w != 1 else ''}"] if w else []
    return ", ".join(parts)


def _short(term: Any) -> str:
    if term is None:
        return ""
    if isinstance(term, BNode):
        return "(anonymous shape)"
    text = str(term)
    for prefix, ns in (("cks", CKS), ("sh", str(SH)), ("cartkg", "https://w3id.org/cartkg/")):
        if text.startswith(ns):
            return f"{prefix}:{text[len(ns) :]}"
    return text


# --------------------------------------------------------------------------- readable report


def format_report(outcome: ValidationOutcome, limit: int = 20) -> str:
    """Findings grouped by trial, then by shape, with counts; a summary line last."""
    lines: list[str] = []
    by_trial: dict[str, list[Finding]] = defaultdict(list)
    for f in outcome.findings:
        by_trial[f.trial].append(f)
    for trial in sorted(by_trial):
        items = by_trial[trial]
        lines.append(f"{trial or '(shared vocabulary)'}: " + _count_text(items))
        by_shape: dict[tuple[str, str], list[Finding]] = defaultdict(list)
        for f in items:
            by_shape[(f.shape, f.component)].append(f)
        for (shape, component), group in sorted(by_shape.items()):
            level = "" if group[0].severity == "sh:Violation" else f" ({group[0].severity[3:].lower()})"
            lines.append(f"  {shape} [{component}]{level} ×{len(group)}: {group[0].message}")
            for f in group[:limit]:
                where = f.focus + (f" {f.path}" if f.path else "")
                lines.append(f"    {where}" + (f" = {f.value}" if f.value else ""))
            if len(group) > limit:
                lines.append(f"    … {len(group) - limit} more")
    lines += [f"note: {note}" for note in outcome.notes]
    violations = [f for f in outcome.findings if f.severity == "sh:Violation"]
    bad = len({f.trial for f in violations if f.trial})
    verdict = "conforms" if outcome.conforms else "does NOT conform"
    lines.append(
        f"{outcome.trials} trials validated ({outcome.mode}, {outcome.jobs} process"
        f"{'es' if outcome.jobs != 1 else ''}) in {outcome.seconds:.2f} s: {verdict}; "
        f"{len(violations)} violations in {bad} trials"
        + (" and the shared vocabulary" if any(not f.trial for f in violations) else "")
        + f", {len(outcome.findings) - len(violations)} warnings"
    )
    return "\n".join(lines) + "\n"
