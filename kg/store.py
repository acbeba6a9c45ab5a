"""The embedded store (pyoxigraph on disk) and the files a build writes.

Layout of a build folder::

    OUT/store            symlink to the current store directory (swapped atomically)
    OUT/store.N/         an Oxigraph store: one named graph per trial + the vocabulary graph
    OUT/store.N/manifest.json   per trial: content digest, triple count, minted values, source file,
                                registry version (the record's last update) and build time
    OUT/graph.ttl        every statement, sorted Turtle (byte-identical on rebuild)
    OUT/build-report.json       counts that reconcile (read, failed, built, added, replaced, removed…)
    OUT/graph.trig | graph.nq | graph.jsonld   on request

A build never writes into the current store: it copies it into ``store.N+1`` (a RocksDB checkpoint),
spools the graphs of the trials that changed to ``OUT/.spool-PID.nq`` and bulk-loads them once, removes
withdrawn (and, with ``prune``, absent) trials, recomputes the vocabulary graph from the manifest, writes
graph.ttl from sorted runs, and only then repoints the ``store`` symlink (``os.replace`` of a symlink
is atomic).  A build killed half-way leaves the previous store in use.  Memory is bounded by a chunk of
trials, Oxigraph's bulk loader and one sorted run, not by the corpus.
"""

from __future__ import annotations

import gc
import heapq
import json
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Graph, URIRef

from kg.build import (
    PREFIXES,
    BuildFailure,
    BuildItem,
    TrialWithdrawn,
    build_vocabulary_graph,
    lines_digest,
    ntriples_lines,
)
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


MANIFEST_FORMAT = 2


def read_manifest(store_dir: Path | None) -> dict[str, dict[str, Any]]:
    """``{trial id: entry}`` of a store; an entry has ``digest`` and, when written by this version,
    ``triples``, ``minted``, ``source``, ``registry_version`` and ``built_at``."""
    if store_dir is None or not (store_dir / MANIFEST).exists():
        return {}
    data = json.loads((store_dir / MANIFEST).read_text(encoding="utf-8"))
    if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT:
        return {str(k): dict(v) for k, v in data["trials"].items()}
    return {str(k): {"digest": str(v)} for k, v in data.items()}  # first format: trial id -> digest


def write_manifest(store_dir: Path, manifest: dict[str, dict[str, Any]]) -> None:
    text = json.dumps({"format": MANIFEST_FORMAT, "trials": manifest}, indent=1, sort_keys=True)
    (store_dir / MANIFEST).write_text(text + "\n", encoding="utf-8")


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
    return lines_digest(sorted(line for line in nt.decode("utf-8").splitlines() if line.strip()))


SPOOL_PREFIX = ".spool-"  # OUT/.spool-PID.nq: the new trial graphs of a running build


def write_build(
    items: Iterable[BuildItem],
    out_dir: Path,
    *,
    fresh: bool = False,
    prune: bool = False,
    formats: Sequence[str] = (),
    read_failures: int = 0,
    records_read: int | None = None,
    studies_fetched: int | None = None,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write a new store (the previous one updated unless ``fresh``), files and report; swap it in.

    ``read_failures`` / ``records_read`` count records that never became items (kept for callers that
    read records themselves); failures of stage ``read`` in ``items`` are counted too.
    """
    unknown = sorted(set(formats) - set(EXTRA_FORMATS))
    if unknown:
        raise UsageError(
            f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(EXTRA_FORMATS)}"
        )
    built_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_stores(out_dir)
    previous = None if fresh else current_store_dir(out_dir)
    new_dir = out_dir / f"store.{next_store_number(out_dir)}"
    manifest: dict[str, dict[str, Any]] = {}
    if previous is not None:
        copy_store(previous, new_dir)
        store = ox.Store(str(new_dir))
        manifest = complete_manifest(store, read_manifest(previous))
    else:
        store = ox.Store(str(new_dir))
    spool = out_dir / f"{SPOOL_PREFIX}{os.getpid()}.nq"
    tally = fill_store(store, items, manifest, built_at, progress, spool)
    pruned = prune_absent(store, manifest, tally) if prune else []
    vocabulary = build_vocabulary_graph(URIRef(iri) for e in manifest.values() for iri in e["minted"])
    vocabulary_nt = "".join(line + "\n" for line in ntriples_lines(vocabulary)).encode("utf-8")
    replace_graph(store, ox.NamedNode(str(VOCABULARY_GRAPH)), vocabulary_nt)
    store.flush()
    write_manifest(new_dir, manifest)
    in_store = write_turtle_file(store, out_dir / "graph.ttl", jobs=jobs, store_dir=new_dir)
    for fmt in sorted(set(formats)):
        write_extra(store, fmt, out_dir / EXTRA_FORMATS[fmt])
    del store
    gc.collect()
    swap_store(out_dir, new_dir)
    report = build_report(
        tally, manifest, in_store, pruned, vocabulary_nt.count(b"\n"),
        read_failures=read_failures, records_read=records_read, studies_fetched=studies_fetched,
    )
    report["built_at"] = built_at
    if prune and tally.read_failures:
        report["prune_skipped"] = "records failed to read (they may be trials of the store): nothing pruned"
    write_atomic(out_dir / REPORT, json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return report


@dataclass
class Tally:
    """What ``fill_store`` did, per trial id (the last item of a trial id wins) and per item."""

    previous: dict[str, str]  # trial id -> digest before this build
    built: dict[str, str] = field(default_factory=dict)  # trial id -> digest built now
    withdrawn: dict[str, str] = field(default_factory=dict)  # trial id -> source
    failed_ids: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    read_failures: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    built_items: int = 0
    withdrawn_items: int = 0


def fill_store(
    store: ox.Store,
    items: Iterable[BuildItem],
    manifest: dict[str, dict[str, Any]],
    built_at: str,
    progress: Callable[[str], None] | None,
    spool: Path,
) -> Tally:
    """Put each built trial into ``store`` (a graph whose digest did not change is left alone), remove
    withdrawn trials, and keep ``manifest`` in step.  New graphs are spooled to ``spool`` (N-Quads) and
    bulk-loaded once at the end, so memory does not grow with the corpus."""
    tally = Tally(previous={tid: e["digest"] for tid, e in manifest.items()})
    seen: dict[str, str] = {}
    loader = SpooledLoad(store, spool)
    for item in items:
        if isinstance(item, BuildFailure):
            (tally.read_failures if item.stage == "read" else tally.failures).append(str(item))
            if item.stage != "read":
                tally.failed_ids.add(item.trial_id)
            if progress:
                progress(f"cartkg: {item}")
            continue
        if item.trial_id in seen:
            tally.duplicates.append(f"{item.trial_id}: {item.source} replaces {seen[item.trial_id]}")
        seen[item.trial_id] = item.source
        if isinstance(item, TrialWithdrawn):
            tally.withdrawn_items += 1
            tally.withdrawn[item.trial_id] = item.source
            tally.built.pop(item.trial_id, None)
            if manifest.pop(item.trial_id, None) is not None:
                loader.drop(item.trial_id)
            continue
        tally.built_items += 1
        tally.withdrawn.pop(item.trial_id, None)
        tally.built[item.trial_id] = item.digest
        entry = manifest.get(item.trial_id)
        if entry is not None and entry["digest"] == item.digest:
            continue  # same statements as the graph already there (or already spooled)
        loader.put(item.trial_id, item.nt)
        manifest[item.trial_id] = {
            "digest": item.digest,
            "triples": item.triples,
            "minted": list(item.minted),
            "source": item.source,
            "registry_version": item.registry_version,
            "built_at": built_at,
        }
    loader.finish()
    return tally


class SpooledLoad:
    """Trial graphs written to an N-Quads file as they come and bulk-loaded in one go by ``finish``.

    One bulk load of everything costs much less than a load per batch; a trial spooled twice in one
    build (a duplicate id, or built then withdrawn) is put right after the bulk load.
    """

    def __init__(self, store: ox.Store, path: Path) -> None:
        self.store, self.path = store, path
        self.out = path.open("wb")
        self.spooled: set[str] = set()
        self.fixes: dict[str, bytes | None] = {}

    def put(self, trial_id: str, nt: bytes) -> None:
        if trial_id in self.spooled:
            self.fixes[trial_id] = nt
            return
        name = remove_trial_graph(self.store, trial_id)  # the previous version of a replaced trial
        self.out.write(to_nquads(nt, name))
        self.spooled.add(trial_id)

    def drop(self, trial_id: str) -> None:
        if trial_id in self.spooled:
            self.fixes[trial_id] = None
        else:
            remove_trial_graph(self.store, trial_id)

    def finish(self) -> None:
        self.out.close()
        if self.spooled:
            self.store.bulk_load(path=str(self.path), format=ox.RdfFormat.N_QUADS)
        for trial_id, nt in sorted(self.fixes.items()):
            name = remove_trial_graph(self.store, trial_id)
            if nt is not None:
                self.store.load(to_nquads(nt, name), format=ox.RdfFormat.N_QUADS)
        self.path.unlink()


def remove_trial_graph(store: ox.Store, trial_id: str) -> ox.NamedNode:
    name = ox.NamedNode(str(graph_iri(trial_id)))
    if store.contains_named_graph(name):
        store.remove_graph(name)
    return name


def prune_absent(store: ox.Store, manifest: dict[str, dict[str, Any]], tally: Tally) -> list[str]:
    """Remove the trials that were in the store but not in this build's input (sorted ids).

    A trial whose record failed is kept (it is in the input); with read failures nothing is pruned,
    since an unreadable record may be a trial of the store (``prune_skipped`` in the report says so).
    """
    if tally.read_failures:
        return []
    absent = sorted(set(manifest) - set(tally.built) - tally.failed_ids)
    for trial_id in absent:
        remove_trial_graph(store, trial_id)
        del manifest[trial_id]
    return absent


def build_report(
    tally: Tally,
    manifest: dict[str, dict[str, Any]],
    in_store: dict[str, int],
    pruned: list[str],
    vocabulary_triples: int,
    *,
    read_failures: int,
    records_read: int | None,
    studies_fetched: int | None,
) -> dict[str, Any]:
    """Counts and lists of a build, with the checks that they add up (``reconciliation``)."""
    previous = tally.previous
    added = sorted(t for t in tally.built if t not in previous)
    replaced = sorted(t for t, d in tally.built.items() if t in previous and previous[t] != d)
    unchanged = sorted(t for t, d in tally.built.items() if previous.get(t) == d)
    removed_withdrawn = sorted(t for t in tally.withdrawn if t in previous)
    withdrawn_absent = sorted(t for t in tally.withdrawn if t not in previous)
    per_trial = {tid: int(e["triples"]) for tid, e in sorted(manifest.items())}
    n_read_failures = read_failures + len(tally.read_failures)
    items = tally.built_items + tally.withdrawn_items + len(tally.failures)
    read = records_read if records_read is not None else items
    report: dict[str, Any] = {
        "studies_fetched": studies_fetched,
        "records_read": read,
        "read_failures": n_read_failures,
        "trials_built": len(tally.built),
        "build_failures": len(tally.failures),
        "records_withdrawn": tally.withdrawn_items,
        "trials_previous": len(previous),
        "trials_added": len(added),
        "trials_replaced": len(replaced),
        "trials_unchanged": len(unchanged),
        "trials_removed": len(removed_withdrawn) + len(pruned),
        "trials_in_store": len(manifest),
        "records_failed": n_read_failures + len(tally.failures),
        "removed": {"withdrawn": removed_withdrawn, "pruned": pruned},
        "withdrawn_not_in_store": withdrawn_absent,
        "failures": tally.failures + tally.read_failures,
        "duplicates": tally.duplicates,
        "triples_per_trial": per_trial,
        "triples_vocabulary": vocabulary_triples,
        "triples_total": vocabulary_triples + sum(per_trial.values()),
    }
    checks = [
        ("records read = trial builds + withdrawn + build failures",
         read, tally.built_items + tally.withdrawn_items + len(tally.failures)),
        ("trials built = added + replaced + unchanged",
         len(tally.built), len(added) + len(replaced) + len(unchanged)),
        ("trials in store = previous + added - removed",
         len(manifest), len(previous) + len(added) - report["trials_removed"]),
        ("trial graphs in the store = trials in store", sum(map(is_trial_graph, in_store)), len(manifest)),
        ("triples in the store = triples counted per trial + vocabulary",
         sum(in_store.values()), report["triples_total"]),
    ]
    if studies_fetched is not None:
        checks.insert(0, ("studies fetched = records read + read failures",
                          studies_fetched, read + n_read_failures))
    mismatches = [f"{what}: {left} != {right}" for what, left, right in checks if left != right]
    report["reconciliation"] = {"ok": not mismatches, "checks": [c[0] for c in checks],
                                "mismatches": mismatches}
    return report


def is_trial_graph(name: str) -> bool:
    parsed = parse_minted(name)
    return parsed is not None and parsed[0] == "graph"


def to_nquads(nt: bytes, graph: ox.NamedNode) -> bytes:
    """N-Triples lines (each ending in `` .``) as N-Quads lines in ``graph``."""
    suffix = f" {graph} .\n".encode()
    return b"".join(line[:-2] + suffix for line in nt.splitlines() if line.endswith(b" ."))


def replace_graph(store: ox.Store, name: ox.NamedNode, nt: bytes) -> None:
    if store.contains_named_graph(name):
        store.remove_graph(name)
    store.load(nt, format=ox.RdfFormat.N_TRIPLES, to_graph=name)


def copy_store(source_dir: Path, target_dir: Path) -> None:
    """A copy of the store in ``source_dir`` at ``target_dir`` (a RocksDB checkpoint: hard links, fast)."""
    source = ox.Store.read_only(str(source_dir))
    source.backup(str(target_dir))
    del source


def complete_manifest(store: ox.Store, manifest: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fill in triple counts and minted values of entries from an older manifest (read from the store)."""
    prefix = ID + "vocab/"
    for trial_id, entry in manifest.items():
        if "triples" in entry and "minted" in entry:
            continue
        quads = list(store.quads_for_pattern(None, None, None, ox.NamedNode(str(graph_iri(trial_id)))))
        entry["triples"] = len(quads)
        objects = (q.object for q in quads if isinstance(q.object, ox.NamedNode))
        entry["minted"] = sorted({o.value for o in objects if o.value.startswith(prefix)})
    return manifest


def next_store_number(out_dir: Path) -> int:
    numbers = [int(m.group(1)) for p in out_dir.iterdir() if (m := _STORE_DIR.match(p.name))]
    return max(numbers, default=0) + 1


def remove_stale_stores(out_dir: Path) -> None:
    """Delete store directories the link does not point to (left by a killed or finished build)."""
    current = current_store_dir(out_dir)
    for p in out_dir.glob(f"{SPOOL_PREFIX}*.nq"):
        p.unlink(missing_ok=True)
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


RUN_TRIPLES = 300_000  # statements per sorted run of graph.ttl: bounds its memory


def write_turtle_file(
    store: ox.Store, path: Path, *, jobs: int = 1, store_dir: Path | None = None
) -> dict[str, int]:
    """All statements of the store (union of its graphs) as sorted Turtle; returns triples per graph.

    Graphs are read a few at a time into sorted runs of subjects (spilled to temporary files when there
    is more than one) that are merged, so memory is bounded by a run, not by the store.  With ``jobs`` > 1
    and the store's directory, ``jobs`` processes make the runs (each opens the store read-only).
    """
    prefixes, header = _prefix_lines()
    counts: dict[str, int] = {}
    graphs = all_graphs(store)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tempfile.TemporaryDirectory(prefix=".graph-runs-", dir=path.parent) as run_dir:
        if jobs > 1 and store_dir is not None and len(graphs) > jobs:
            spilled = parallel_runs(store_dir, graphs, jobs, Path(run_dir), counts)
            runs: list[Run] = [read_run(p) for p in spilled]
        else:
            runs = list(sorted_runs(store, graphs, prefixes, counts, Path(run_dir)))
        merged = runs[0] if len(runs) == 1 else heapq.merge(*runs, key=lambda rec: rec[0])
        with tmp.open("w", encoding="utf-8") as out:
            out.write(header + "\n")
            for subject_text, entries in merge_subjects(merged):
                out.write(render_block(subject_text, entries) + "\n")
    os.replace(tmp, path)
    return counts


def all_graphs(store: ox.Store) -> list[Any]:
    """The default graph and every named graph, sorted by name."""
    return [ox.DefaultGraph(), *sorted(store.named_graphs(), key=lambda g: g.value)]


def parallel_runs(
    store_dir: Path, graphs: list[Any], jobs: int, run_dir: Path, counts: dict[str, int]
) -> list[Path]:
    """Spilled sorted runs of ``graphs`` made by ``jobs`` forked processes (contiguous slices)."""
    import multiprocessing as mp

    names = ["" if isinstance(g, ox.DefaultGraph) else g.value for g in graphs]
    size = -(-len(names) // jobs)
    starts = range(0, len(names), size)
    tasks = [(str(store_dir), names[i : i + size], str(run_dir / f"p{i}-")) for i in starts]
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    paths: list[Path] = []
    with mp.get_context(method).Pool(jobs) as pool:
        for run_paths, run_counts in pool.map(_spill_slice, tasks, chunksize=1):
            paths += run_paths
            counts.update(run_counts)
    return paths


def _spill_slice(task: tuple[str, list[str], str]) -> tuple[list[Path], dict[str, int]]:
    store_dir, names, prefix = task
    store = ox.Store.read_only(store_dir)
    graphs = [ox.NamedNode(n) if n else ox.DefaultGraph() for n in names]
    counts: dict[str, int] = {}
    prefixes, _ = _prefix_lines()
    paths = list(spill_graphs(store, graphs, prefixes, counts, Path(prefix)))
    return paths, counts


Run = Iterable[tuple[tuple[Any, ...], str, list[tuple[Any, ...]]]]


def sorted_runs(
    store: ox.Store,
    graphs: list[Any],
    prefixes: list[tuple[str, str]],
    counts: dict[str, int],
    run_dir: Path,
) -> Iterator[Run]:
    """Sorted runs ``(subject key, subject text, entries)`` of ``graphs``; a lone run stays in memory,
    several are written to ``run_dir`` and read back lazily."""
    leftover: list[Run] = []
    paths = list(spill_graphs(store, graphs, prefixes, counts, run_dir / "run", leftover))
    if not paths:
        yield from leftover
        return
    for path in paths:
        yield read_run(path)


def spill_graphs(
    store: ox.Store,
    graphs: list[Any],
    prefixes: list[tuple[str, str]],
    counts: dict[str, int],
    prefix: Path,
    leftover: list[Run] | None = None,
) -> Iterator[Path]:
    """Runs of about ``RUN_TRIPLES`` statements written to ``prefix``N files; when ``leftover`` is given
    and everything fits one run, that run is put there instead of a file.

    Each graph is read as Oxigraph's N-Triples dump (terms as the store holds them) and split into
    terms here: far cheaper than a Python object per term."""
    spilled = 0
    subjects: dict[str, tuple[tuple[Any, ...], str, set[tuple[Any, ...]]]] = {}
    preds: dict[str, tuple[tuple[Any, ...], str]] = {}
    terms: dict[str, tuple[tuple[Any, ...], str]] = {}  # IRI and blank node objects
    size = 0
    for graph in graphs:
        data = (store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=graph) or b"").decode("utf-8")
        lines = data.split("\n")
        n = 0
        for line in lines:
            if not line:
                continue
            n += 1
            s_text, p_text, o_text = line[:-2].split(" ", 2)
            slot = subjects.get(s_text)
            if slot is None:
                key, text = _nt_sort_key(s_text, prefixes)
                slot = subjects[s_text] = (key, text, set())
            pred = preds.get(p_text)
            if pred is None:
                iri = p_text[1:-1]
                verb = "a" if iri == RDF_TYPE else _iri(iri, prefixes)
                pred = preds[p_text] = ((iri != RDF_TYPE, iri), verb)
            obj = terms.get(o_text)
            if obj is None:
                obj = _nt_sort_key(o_text, prefixes)
                if o_text[0] != '"':
                    terms[o_text] = obj
            slot[2].add((pred[0], obj[0], pred[1], obj[1]))
        if n or not isinstance(graph, ox.DefaultGraph):
            counts[graph.value if isinstance(graph, ox.NamedNode) else ""] = n
        size += n
        if size >= RUN_TRIPLES:
            yield spill_run(subjects, prefix.with_name(f"{prefix.name}{spilled}"))
            subjects, terms, size, spilled = {}, {}, 0, spilled + 1
    if not spilled and leftover is not None:
        leftover.append([(key, text, sorted(entries)) for key, text, entries in sorted(subjects.values())])
    elif subjects:
        yield spill_run(subjects, prefix.with_name(f"{prefix.name}{spilled}"))


_NT_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")
_NT_CHARS = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _nt_unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _NT_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)) if m.group(3) is None
                          else _NT_CHARS[m.group(3)], text)


def _nt_sort_key(term: str, prefixes: list[tuple[str, str]]) -> tuple[tuple[Any, ...], str]:
    """``(sort key, Turtle text)`` of one N-Triples term, as ``_sort_key`` and ``_term`` give them."""
    if term[0] == "<":
        iri = term[1:-1]
        return (0, iri, "", ""), _iri(iri, prefixes)
    if term[0] == "_":
        return (1, term[2:], "", ""), term
    end = term.rindex('"')
    value = _nt_unescape(term[1:end])
    rest = term[end + 1 :]
    text = _escape(value)
    if rest.startswith("@"):
        return (2, value, RDF_LANGSTRING, rest[1:]), f'"{text}"{rest}'
    datatype = rest[3:-1] if rest.startswith("^^") else XSD_STRING
    if datatype == XSD_STRING:
        return (2, value, datatype, ""), f'"{text}"'
    return (2, value, datatype, ""), f'"{text}"^^{_iri(datatype, prefixes)}'


def spill_run(subjects: dict[str, tuple[tuple[Any, ...], str, set[tuple[Any, ...]]]], path: Path) -> Path:
    """Write subjects sorted by key to ``path`` (pickled chunks) and return the path."""
    with path.open("wb") as fh:
        chunk = []
        for key, text, entries in sorted(subjects.values()):
            chunk.append((key, text, sorted(entries)))
            if len(chunk) == 4096:
                pickle.dump(chunk, fh, protocol=pickle.HIGHEST_PROTOCOL)
                chunk = []
        if chunk:
            pickle.dump(chunk, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def read_run(path: Path) -> Iterator[tuple[tuple[Any, ...], str, list[tuple[Any, ...]]]]:
    with path.open("rb") as fh:
        while True:
            try:
                chunk = pickle.load(fh)
            except EOFError:
                return
            yield from chunk


def merge_subjects(records: Run) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """``(subject text, sorted unique entries)`` per subject of key-sorted records (runs may share one)."""
    current_key: Any = None
    text, entries = "", []  # type: tuple[str, list[tuple[Any, ...]]]
    merged = False
    for key, subject_text, subject_entries in records:
        if key == current_key:
            entries = entries + subject_entries
            merged = True
            continue
        if current_key is not None:
            yield text, sorted(set(entries)) if merged else entries
        current_key, text, entries, merged = key, subject_text, subject_entries, False
    if current_key is not None:
        yield text, sorted(set(entries)) if merged else entries


def render_block(subject_text: str, entries: list[tuple[Any, ...]], indent: str = "") -> str:
    """One subject's Turtle statement from sorted ``(predicate key, object key, verb, object)`` entries."""
    parts: list[str] = []
    objects: list[str] = []
    last: Any = None
    verb = ""
    for pred_key, _, entry_verb, obj in entries:
        if pred_key != last:
            if objects:
                parts.append(f"{verb} {', '.join(objects)}")
            last, verb, objects = pred_key, entry_verb, []
        objects.append(obj)
    if objects:
        parts.append(f"{verb} {', '.join(objects)}")
    return f"{indent}{subject_text} " + f" ;\n{indent}    ".join(parts) + " .\n"


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
