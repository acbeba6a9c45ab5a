"""Validate a cartkg graph with pyshacl: per trial, in parallel processes, plus cross-trial SPARQL checks.

Input is a build folder (its Oxigraph store) or an RDF file.  Statements are partitioned by trial
(every trial-local IRI carries its trial id, see ``kg.iri.trial_of``); each trial graph is validated
together with the shared vocabulary graph as a plain in-memory rdflib graph (pyshacl over an
Oxigraph-backed rdflib graph gave false ``sh:in`` violations and was 12× slower).  The shared part is
validated once on its own.  Checks that span trials (unique NCT numbers, dangling references, one graph
per trial) are the ``cks:DatasetCheck`` queries of the shapes file, run with Oxigraph over the whole
dataset.  Nothing is fetched: ``owl:imports`` is never followed.
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
    path = Path(path)
    if path.is_dir():
        from kg.store import current_store_dir

        store_dir = current_store_dir(path)
        if store_dir is None:
            raise UsageError(f"{path}: not a build folder (no 'store' inside) and not an RDF file")
        store = ox.Store.read_only(str(store_dir))
    elif path.is_file():
        fmt = RDF_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise UsageError(
                f"{path}: unknown RDF file type {path.suffix!r}; use one of {', '.join(RDF_FORMATS)}"
            )
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
    else:
        raise UsageError(f"{path}: no such file or folder")
    return partition(store), store


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


# --------------------------------------------------------------------------- the whole run


def validate_path(
    path: Path,
    *,
    jobs: int | None = None,
    whole: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationOutcome:
    """Validate a build folder or RDF file; ``whole`` validates everything as one graph (for benchmarks)."""
    started = time.perf_counter()
    quiet_literal_warnings()
    parts, store = read_partitions(Path(path))
    shared = with_ontology(parts.pop(SHARED, b""))
    jobs = max(1, jobs or os.cpu_count() or 1)
    report = Graph()
    per_trial: dict[str, float] = {}
    if whole:
        _, results, _ = _run_whole(shared + b"".join(parts.values()))
        report += results
        mode = "whole graph"
    else:
        tasks = [(SHARED, b"")] + sorted(parts.items())
        for trial, nt, secs in _run_tasks(tasks, shared, jobs, progress):
            per_trial[trial] = secs
            if nt:
                report.parse(data=nt, format="nt")
        mode = "per trial"
    report += dataset_results(store, load_shapes())
    del store
    findings = collect_findings(report)
    conforms = not any(f.severity == "sh:Violation" for f in findings)
    finish_report(report, conforms)
    return ValidationOutcome(
        conforms=conforms,
        findings=findings,
        report=report,
        trials=len(parts),
        seconds=time.perf_counter() - started,
        mode=mode,
        jobs=1 if whole else jobs,
        per_trial_seconds=per_trial,
    )


def _run_whole(nt: bytes) -> tuple[bool, Graph, str]:
    import pyshacl

    cache_sparql_preparation()
    data = Graph().parse(data=nt, format="nt")
    conforms, results, text = pyshacl.validate(
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
    return bool(conforms), kept, text


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
