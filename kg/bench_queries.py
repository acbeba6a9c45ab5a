"""Query latency: each competency query on the embedded store (Oxigraph) beside rdflib's own SPARQL engine.

Both engines answer the same query text (parameters at their defaults) over the same statements: the
store of a build folder (or an RDF file loaded into an in-memory store) and the build's ``graph.ttl``
(or the same file) parsed into an rdflib ``Dataset`` whose default graph is the union of its graphs.
Timings include materialising every row or triple.  Medians over ``runs``; measured in one process in
one run, so the ratio is meaningful on a noisy machine even when the absolute numbers are not.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rdflib import Dataset

from kg.errors import UsageError
from kg.query import RDF_SUFFIXES, NamedQuery, bind_params, load_queries, open_store, run_query
from kg.resources import queries_dir
from kg.results import SelectResult

RDFLIB_FORMATS = {".ttl": "turtle", ".nt": "nt", ".nq": "nquads", ".trig": "trig", ".jsonld": "json-ld",
                  ".rdf": "xml", ".owl": "xml"}


def rdf_file_of(graph_path: Path) -> Path:
    """The RDF file rdflib reads for ``graph_path``: the file itself or a build folder's ``graph.ttl``."""
    graph_path = Path(graph_path)
    if graph_path.is_dir():
        ttl = graph_path / "graph.ttl"
        if not ttl.is_file():
            raise UsageError(f"{graph_path}: no graph.ttl in this build folder (run `cartkg build` first)")
        return ttl
    if graph_path.suffix.lower() not in RDF_SUFFIXES:
        raise UsageError(f"{graph_path}: not a build folder or an RDF file")
    return graph_path


def load_rdflib(path: Path) -> Dataset:
    """``path`` parsed into an rdflib Dataset whose default graph is the union of all its graphs."""
    from kg.rdfio import check_rdf  # rdflib expands XML entities and fetches remote JSON-LD contexts

    check_rdf(path)
    dataset = Dataset(default_union=True)
    with path.open("rb") as fh, quiet_rdflib():  # a file rdflib opens itself is left unclosed
        dataset.parse(file=fh, format=RDFLIB_FORMATS[path.suffix.lower()])
    return dataset


@contextmanager
def quiet_rdflib() -> Iterator[None]:
    """rdflib 7's Dataset calls its own deprecated ``default_context`` on every parse and triple lookup."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Dataset.default_context is deprecated", DeprecationWarning)
        yield


def run_store(store: Any, text: str) -> int:
    answer = run_query(store, text)
    if isinstance(answer, SelectResult):
        return len(answer.rows)
    return 1 if answer is True else 0 if answer is False else len(answer)


def run_rdflib(dataset: Dataset, text: str) -> int:
    with quiet_rdflib():
        result = dataset.query(text)
        if result.type == "ASK":
            return int(bool(result.askAnswer))
        if result.type in ("CONSTRUCT", "DESCRIBE"):
            return len(result.graph)  # type: ignore[arg-type]
        return sum(1 for _ in result)


def time_runs(fn: Callable[[], int], runs: int, budget_s: float) -> tuple[list[float], int]:
    """Milliseconds of up to ``runs`` calls (fewer once ``budget_s`` is spent; at least one), and the rows."""
    times: list[float] = []
    rows = 0
    spent = 0.0
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        rows = fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed * 1000)
        spent += elapsed
        if spent > budget_s:
            break
    return times, rows


def time_rdflib_forked(
    dataset: Dataset, text: str, runs: int, budget_s: float, timeout_s: float
) -> tuple[list[float], int] | None:
    """``time_runs`` of rdflib in a forked child (it shares the parsed dataset), killed after ``timeout_s``.

    rdflib cannot be interrupted inside a query, so a query it cannot answer in time would otherwise
    stall the whole benchmark; None means the child was stopped.
    """
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)

    def child() -> None:
        run_rdflib(dataset, text)  # warm-up as for the store; also takes the copy-on-write faults of the fork
        sender.send(time_runs(lambda: run_rdflib(dataset, text), runs, budget_s))

    process = ctx.Process(target=child, daemon=True)
    process.start()
    sender.close()
    try:
        if receiver.poll(timeout_s):
            times, rows = receiver.recv()
            return times, rows
        return None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join()


def bench_queries(
    graph_path: Path,
    runs: int = 5,
    queries: list[NamedQuery] | None = None,
    budget_s: float = 60.0,
    timeout_s: float = 300.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Median latency (ms) per query: ``{name: {store_ms, rdflib_ms, ratio, rows_store, rows_rdflib, …}}``.

    ``ratio`` is rdflib_ms / store_ms.  A query whose runs exceed ``budget_s`` on one engine is timed
    fewer times there (``runs_rdflib`` says how many); rdflib is stopped after ``timeout_s`` seconds
    for one query (then ``rdflib_ms`` is None and ``rdflib_timeout_s`` says the limit).
    """
    graph_path = Path(graph_path)
    queries = load_queries(queries_dir()) if queries is None else queries
    store = open_store(graph_path)
    dataset = load_rdflib(rdf_file_of(graph_path))
    out: dict[str, dict[str, Any]] = {}
    for query in queries:
        text = bind_params(query, {})
        run_store(store, text)  # warm caches once, for both engines alike
        store_times, store_rows = time_runs(lambda t=text: run_store(store, t), runs, budget_s)  # type: ignore[misc]
        store_ms = statistics.median(store_times)
        timed = time_rdflib_forked(dataset, text, runs, budget_s, timeout_s)
        entry: dict[str, Any] = {"store_ms": round(store_ms, 3), "rows_store": store_rows,
                                 "runs_store": len(store_times)}
        if timed is None:
            entry.update(rdflib_ms=None, ratio=None, rows_rdflib=None, runs_rdflib=0,
                         rdflib_timeout_s=timeout_s)
        else:
            rdflib_ms = statistics.median(timed[0])
            ratio = round(rdflib_ms / store_ms, 1) if store_ms else None
            entry.update(rdflib_ms=round(rdflib_ms, 3), ratio=ratio,
                         rows_rdflib=timed[1], runs_rdflib=len(timed[0]))
        out[query.name] = entry
        if progress:
            shown = f"stopped after {timeout_s:.0f} s" if timed is None else f"{entry['rdflib_ms']:.1f} ms"
            progress(f"{query.name}: store {store_ms:.1f} ms, rdflib {shown}")
    return out


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Medians over the queries (store, rdflib, ratio) and their totals."""
    store = [r["store_ms"] for r in results.values()]
    rdflib = [r["rdflib_ms"] for r in results.values() if r["rdflib_ms"] is not None]
    ratios = [r["ratio"] for r in results.values() if r["ratio"] is not None]
    return {
        "queries": len(results),
        "median_store_ms": round(statistics.median(store), 3) if store else 0.0,
        "median_rdflib_ms": round(statistics.median(rdflib), 3) if rdflib else 0.0,
        "median_ratio": round(statistics.median(ratios), 1) if ratios else 0.0,
        "total_store_ms": round(sum(store), 1),
        "total_rdflib_ms": round(sum(rdflib), 1),
        "rdflib_stopped": sum(1 for r in results.values() if r["rdflib_ms"] is None),
    }


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """A text table of the results plus the summary line."""
    header = f"{'query':<40} {'store ms':>10} {'rdflib ms':>11} {'ratio':>7} {'rows':>7} {'rdflib rows':>11}"
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.1f}x"
        if r["rdflib_ms"] is None:
            rdflib_ms, rdflib_rows = "stopped", ""
            mark = f"  (rdflib stopped after {r['rdflib_timeout_s']:.0f} s)"
        else:
            rdflib_ms, rdflib_rows = f"{r['rdflib_ms']:.1f}", str(r["rows_rdflib"])
            mark = "" if r["rows_store"] == r["rows_rdflib"] else "  (row counts differ)"
        lines.append(f"{name:<40} {r['store_ms']:>10.1f} {rdflib_ms:>11} {ratio:>7} "
                     f"{r['rows_store']:>7} {rdflib_rows:>11}{mark}")
    s = summarize(results)
    lines.append("-" * len(header))
    lines.append(f"median over {s['queries']} queries: store {s['median_store_ms']:.1f} ms, rdflib "
                 f"{s['median_rdflib_ms']:.1f} ms, median ratio {s['median_ratio']:.1f}x; total store "
                 f"{s['total_store_ms']:.0f} ms, rdflib {s['total_rdflib_ms']:.0f} ms"
                 + (f" ({s['rdflib_stopped']} stopped, not counted)" if s["rdflib_stopped"] else ""))
    return "\n".join(lines) + "\n"


__all__ = ["bench_queries", "format_table", "load_rdflib", "rdf_file_of", "summarize"]
