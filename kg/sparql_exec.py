"""Run read-only SPARQL queries under a hard deadline and a row cap, in killable worker processes.

Each worker opens the Oxigraph store read-only and answers one query at a time.  The parent
waits at most ``timeout`` seconds for the answer; past that it kills the worker (the only way to
stop a running query) and starts a fresh one, so a slow query never holds the endpoint and the
client gets a clear error, never a truncated body.  Queries are checked by
:mod:`kg.sparql_guard` before they reach a worker.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from kg.sparql_guard import QueryCheck, UnsafeQuery, check_query

# media type -> format key understood by the worker
SELECT_TYPES = {
    "application/sparql-results+json": "json",
    "application/json": "json",
    "application/sparql-results+xml": "xml",
    "application/xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
GRAPH_TYPES = {
    "text/turtle": "turtle",
    "application/n-triples": "ntriples",
    "application/ld+json": "jsonld",
    "application/rdf+xml": "rdfxml",
}
FORMAT_MEDIA = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "turtle": "text/turtle; charset=utf-8",
    "ntriples": "application/n-triples",
    "jsonld": "application/ld+json",
    "rdfxml": "application/rdf+xml",
}


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    rows: int | None = None
    error: str | None = None


def error_answer(status: int, message: str, **extra: Any) -> Answer:
    import json

    body = json.dumps({"error": message, "status": status, **extra}).encode()
    return Answer(status, "application/json", body, None, message)


class QueryExecutor:
    """A small pool of worker processes over one read-only store."""

    def __init__(
        self, store_path: Path, workers: int = 2, timeout: float = 10.0, max_rows: int = 10_000
    ) -> None:
        self.store_path = Path(store_path)
        self.timeout = timeout
        self.max_rows = max_rows
        self._ctx = mp.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._graphs = _named_graphs(self.store_path)
        for _ in range(max(1, workers)):
            self._idle.put(self._spawn())

    @property
    def named_graphs(self) -> frozenset[str]:
        return self._graphs

    def execute(self, query: str, accept: str | None = None) -> Answer:
        """Check, run and serialize ``query``; every outcome is an :class:`Answer` (never raises)."""
        try:
            check = check_query(query)
        except UnsafeQuery as exc:
            return error_answer(exc.status, exc.message)
        unknown = [g for g in (*check.from_graphs, *check.from_named_graphs) if g not in self._graphs]
        if unknown:
            return error_answer(400, f"FROM names a graph that is not in the store: {unknown[0]}")
        fmt = negotiate(check.form, accept)
        if fmt is None:
            return error_answer(406, f"cannot answer a {check.form} query as {accept!r}")
        deadline = time.monotonic() + self.timeout
        try:
            worker = self._idle.get(timeout=self.timeout)
        except queue.Empty:
            return error_answer(503, "all query workers are busy; try again shortly", timeout_s=self.timeout)
        remaining = max(0.05, deadline - time.monotonic())
        try:
            worker.conn.send((query, fmt, self.max_rows, uses_union_default(check)))
            if not worker.conn.poll(remaining):
                self._replace(worker)
                worker = None
                return error_answer(
                    504, f"query exceeded the time limit of {self.timeout:g} s", timeout_s=self.timeout
                )
            status, content_type, body, rows, message = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._replace(worker)
            worker = None
            return error_answer(500, "the query worker stopped unexpectedly")
        finally:
            if worker is not None:
                self._idle.put(worker)
        return Answer(status, content_type, body, rows, message)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                break
            worker.stop()

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(str(self.store_path), child), daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        if not self._closed:
            self._idle.put(self._spawn())


@dataclass
class _Worker:
    proc: Any
    conn: Connection

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(2)
        if self.proc.is_alive():
            self.proc.kill()
        self.conn.close()


def negotiate(form: str, accept: str | None) -> str | None:
    """Pick a result format for ``form`` from an Accept header (q-values honoured; default JSON/Turtle)."""
    table = SELECT_TYPES if form in ("SELECT", "ASK") else GRAPH_TYPES
    default = "json" if form in ("SELECT", "ASK") else "turtle"
    if not accept:
        return default
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        choices.append((-q, i, media.lower()))
    for neg_q, _, media in sorted(choices):
        if neg_q == 0:
            continue
        if media in table:
            return table[media]
        if media in ("*/*", "application/*", "text/*"):
            return default
    return None


def uses_union_default(check: QueryCheck) -> bool:
    """The default graph is the union of all graphs, unless the query names its dataset with FROM."""
    return not (check.from_graphs or check.from_named_graphs)


def _named_graphs(store_path: Path) -> frozenset[str]:
    import pyoxigraph as ox

    store = ox.Store.read_only(str(store_path))
    return frozenset(g.value for g in store.named_graphs() if isinstance(g, ox.NamedNode))


# --------------------------------------------------------------------------- worker process


def _worker_main(store_path: str, conn: Connection) -> None:
    import pyoxigraph as ox

    store = ox.Store.read_only(store_path)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        query, fmt, max_rows, union = job
        conn.send(run_serialized(store, query, fmt, max_rows, union))


def run_serialized(
    store: Any, query: str, fmt: str, max_rows: int | None, union: bool = True
) -> tuple[int, str, bytes, int | None, str | None]:
    """Evaluate ``query`` on ``store`` and serialize it as ``fmt``: (status, type, body, rows, error)."""
    import json

    import pyoxigraph as ox

    from kg import results as R

    try:
        answer = store.query(query, use_default_graph_as_union=union)
        if isinstance(answer, ox.QueryBoolean):
            body = R.ask_to_sparql_xml(bool(answer)) if fmt == "xml" else R.ask_to_sparql_json(bool(answer))
            media = FORMAT_MEDIA["xml" if fmt == "xml" else "json"]
            return 200, media, body.encode(), 1, None
        if isinstance(answer, ox.QuerySolutions):
            result = R.collect_select(answer, max_rows)
            text = {
                "json": R.to_sparql_json,
                "xml": R.to_sparql_xml,
                "csv": R.to_csv,
                "tsv": R.to_sparql_tsv,
            }[fmt](result)
            return 200, FORMAT_MEDIA[fmt], text.encode(), len(result.rows), None
        triples = R.collect_triples(answer, max_rows)
        body_bytes = _serialize_triples(triples, fmt)
        return 200, FORMAT_MEDIA[fmt], body_bytes, len(triples), None
    except R.RowLimitExceeded as exc:
        message = str(exc)
        return (
            503,
            "application/json",
            json.dumps({"error": message, "status": 503, "max_rows": max_rows}).encode(),
            None,
            message,
        )
    except SyntaxError as exc:
        message = f"SPARQL syntax error: {exc}"
        return 400, "application/json", json.dumps({"error": message, "status": 400}).encode(), None, message
    except Exception as exc:  # evaluation errors are reported to the client, never crash the worker
        message = f"query failed: {type(exc).__name__}: {exc}"
        return 500, "application/json", json.dumps({"error": message, "status": 500}).encode(), None, message


def _serialize_triples(triples: list[Any], fmt: str) -> bytes:
    import pyoxigraph as ox

    rdf_format = {
        "turtle": ox.RdfFormat.TURTLE,
        "ntriples": ox.RdfFormat.N_TRIPLES,
        "jsonld": ox.RdfFormat.JSON_LD,
        "rdfxml": ox.RdfFormat.RDF_XML,
    }[fmt]
    out = ox.serialize(triples, format=rdf_format)
    return out if isinstance(out, bytes) else bytes(out or b"")
