"""The ``cartkg`` command line: argument parsing and output only, no pipeline logic.

Each subcommand has an ``_add_<name>(subparsers)`` that declares its arguments and a
``_run_<name>(args) -> int`` that calls the stage functions and prints.  Exit codes:
0 success, 1 the command ran but found failures (unreadable records, invalid graph),
2 usage or environment error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from kg import __version__
from kg.errors import CartkgError
from kg.records import ReadFailure, TrialExtraction, TrialRecord
from kg.text import undo_escapes


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except CartkgError as exc:
        print(f"cartkg: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `cartkg records … | head`
        sys.stderr.close()
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cartkg",
        description="A knowledge graph of CAR-T cell-therapy clinical trials: read ClinicalTrials.gov records, "
        "extract trial design and outcomes with evidence, build and validate an RDF graph, query it.",
        epilog="Exit codes: 0 success, 1 failures found (unreadable records, invalid graph), 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"cartkg {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_records(sub)
    _add_extract(sub)
    _add_bench(sub)
    _add_fetch(sub)
    _add_query(sub)
    _add_serve(sub)
    _add_timeframes(sub)
    _add_build(sub)
    _add_validate(sub)
    _add_export(sub)
    _add_report(sub)
    _add_bench_queries(sub)
    return parser


# --------------------------------------------------------------------------- shared helpers


def _add_input_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files or folders (read recursively) of seven-line text, CSV download, API v2 JSON/JSONL or "
        "legacy XML; '-' reads standard input. The format is detected from the content.",
    )


def _read_all(paths: list[str]) -> Iterator[TrialRecord | ReadFailure]:
    from kg.ingest import read_paths

    return read_paths(paths)


class FailureCounter:
    """Passes records through, reports each failure on stderr at once, and counts both."""

    def __init__(self, items: Iterable[TrialRecord | ReadFailure], err: TextIO | None = None) -> None:
        self._items = items
        self._err = err if err is not None else sys.stderr  # looked up now: stderr may be redirected
        self.read = 0
        self.failed = 0

    def __iter__(self) -> Iterator[TrialRecord]:
        for item in self._items:
            if isinstance(item, ReadFailure):
                self.failed += 1
                print(f"cartkg: {item}", file=self._err, flush=True)
            else:
                self.read += 1
                yield item

    def summary(self) -> str:
        return f"{self.read} records read, {self.failed} failed"


def _display(value: Any) -> Any:
    """Undo Markdown escapes in every string of a JSON-ready value (the original stays in the record)."""
    if isinstance(value, str):
        return undo_escapes(value)
    if isinstance(value, (list, tuple)):  # asdict() keeps the records' tuples
        return [_display(v) for v in value]
    if isinstance(value, dict):
        return {k: _display(v) for k, v in value.items()}
    return value


def _dump_json_line(obj: Any, out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")


# --------------------------------------------------------------------------- records


def _add_records(sub: Any) -> None:
    p = sub.add_parser("records", help="read records in any supported format and print them")
    _add_input_paths(p)
    p.add_argument(
        "--format", choices=["jsonl", "table"], default="jsonl", help="output format (default jsonl)"
    )
    p.add_argument("--raw", action="store_true", help="print text exactly as read (Markdown escapes kept)")
    p.set_defaults(run=_run_records)


def _run_records(args: argparse.Namespace) -> int:
    counter = FailureCounter(_read_all(args.paths))
    out = sys.stdout
    if args.format == "table":
        out.write(f"{'trial_id':<24} {'format':<8} {'outcomes':>8}  title\n")
    for rec in counter:
        if args.format == "jsonl":
            d = rec.to_dict()
            _dump_json_line(d if args.raw else _display(d), out)
        else:
            title = (rec.brief_title or rec.official_title or "").replace("\n", " ")
            if not args.raw:
                title = undo_escapes(title)
            out.write(f"{rec.trial_id:<24} {rec.source.format:<8} {len(rec.outcomes):>8}  {title[:80]}\n")
    out.flush()
    print(counter.summary(), file=sys.stderr)
    return 1 if counter.failed else 0


# --------------------------------------------------------------------------- extract


def _add_extract(sub: Any) -> None:
    p = sub.add_parser(
        "extract",
        help="extract antigens, targeting strategy, CAR construct, cell source, diseases, design, dose and "
        "outcomes from records, with evidence",
        description="Read records (any supported format) and print one extraction per trial: the gold-contract "
        "fields plus products, source and evidence (each value's field, offsets into the ORIGINAL text, quoted "
        "text and rule id). Failures go to stderr; exit 1 if any record failed.",
    )
    _add_input_paths(p)
    p.add_argument("--format", choices=["jsonl", "table"], default="jsonl",
                   help="output format (default jsonl)")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="spaCy worker processes (default 1; records are batched through nlp.pipe)")
    p.add_argument("--batch-size", type=int, default=128, metavar="N",
                   help="record field texts per nlp.pipe batch (default 128)")
    p.set_defaults(run=_run_extract)


EXTRACT_TABLE = (("trial_id", 24), ("antigens", 22), ("strategy", 13), ("costim", 14), ("vector", 11),
                 ("source", 11), ("diseases", 24), ("phase", 13))


def _run_extract(args: argparse.Namespace) -> int:
    from kg.errors import UsageError
    from kg.extract import ExtractionFailure, extract_each

    if args.processes < 1 or args.batch_size < 1:
        raise UsageError("--processes and --batch-size must be at least 1")
    counter = FailureCounter(_read_all(args.paths))
    out = sys.stdout
    extracted = failed = 0
    if args.format == "table":
        out.write(" ".join(f"{name:<{width}}" for name, width in EXTRACT_TABLE).rstrip() + "\n")
    for item in extract_each(counter, n_process=args.processes, batch_size=args.batch_size):
        if isinstance(item, ExtractionFailure):
            failed += 1
            print(f"cartkg: {item}", file=sys.stderr, flush=True)
            continue
        extracted += 1
        if args.format == "jsonl":
            _dump_json_line(item.to_json(), out)
        else:
            cells = (item.trial_id, ",".join(item.antigens), item.targeting_strategy or "-",
                     ",".join(item.costimulatory_domains) or "-", item.vector or "-", item.cell_source or "-",
                     ",".join(item.diseases) or "-", item.phase or "-")
            row = " ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, EXTRACT_TABLE, strict=True))
            out.write(row.rstrip() + "\n")
    out.flush()
    print(f"{counter.summary()}; {extracted} extracted, {failed} failed extraction", file=sys.stderr)
    return 1 if counter.failed or failed else 0


# --------------------------------------------------------------------------- bench


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmarks (medians of repeated runs beside a baseline run alongside)")
    p.add_argument("what", nargs="?", choices=["extract", "pipeline"], default="pipeline",
                   help="pipeline (default): the whole pipeline on --trials synthetic trials (kg.synth: "
                   "bundled records recombined, ids NCT9…) — extraction vs a pure-re baseline, build time "
                   "and peak RSS, validation per trial and as one graph, every queries/*.rq on the store "
                   "and in rdflib, serialization; extract: the extractor vs the baseline on PATHs")
    p.add_argument("paths", nargs="*", metavar="PATH", help="records to use (default: the bundled examples)")
    p.add_argument("--runs", type=int, default=None, metavar="N",
                   help="timed runs per contender (default 5 for extract, 3 for pipeline)")
    p.add_argument("--processes", type=int, default=1, metavar="N", help="extractor processes (default 1)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format (default table)")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--trials", type=int, default=1000, metavar="N",
                   help="pipeline: synthetic trials (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="pipeline: corpus seed (default 0)")
    p.add_argument("--extract-runs", type=int, default=1, metavar="N",
                   help="pipeline: extraction runs (default 1)")
    p.add_argument("--whole-timeout", type=float, default=600.0, metavar="S",
                   help="pipeline: stop whole-graph pyshacl after S seconds, reported as '> S s' "
                   "(default 600)")
    p.add_argument("--validate-timeout", type=float, default=1800.0, metavar="S",
                   help="pipeline: the same for per-trial validation (default 1800)")
    p.add_argument("--rdflib-timeout", type=float, default=900.0, metavar="S",
                   help="pipeline: stop the rdflib query runs after S seconds (default 900)")
    p.add_argument("--query-timeout", type=float, default=120.0, metavar="S",
                   help="pipeline: stop one rdflib query after S seconds (default 120)")
    p.add_argument("--work-dir", metavar="DIR", default=None,
                   help="pipeline: where the temporary build goes")
    p.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from kg.bench import bench_extract, format_bench

    if args.what == "pipeline":
        return _run_bench_pipeline(args)
    result = bench_extract(args.paths or None, runs=args.runs or 5, n_process=args.processes)
    if args.format == "json" or args.json:
        _dump_json_line(result, sys.stdout)
    else:
        sys.stdout.write(format_bench(result))
    return 0


def _run_bench_pipeline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kg.bench import bench_pipeline, format_pipeline_markdown
    from kg.errors import UsageError

    if args.paths:
        raise UsageError("bench pipeline uses a synthetic corpus (--trials N); PATHs are for `bench extract`")
    result = bench_pipeline(
        args.trials, seed=args.seed, processes=args.processes, runs=args.runs or 3,
        extract_runs=args.extract_runs,
        work_dir=Path(args.work_dir) if args.work_dir else None, validate_timeout=args.validate_timeout,
        whole_timeout=args.whole_timeout, rdflib_timeout=args.rdflib_timeout,
        query_timeout=args.query_timeout,
        progress=lambda msg: print(f"cartkg bench: {msg}", file=sys.stderr, flush=True),
    )
    if args.format == "json" or args.json:
        _dump_json_line(result, sys.stdout)
    else:
        sys.stdout.write(format_pipeline_markdown([result]))
    return 0


# --------------------------------------------------------------------------- fetch


def _add_fetch(sub: Any) -> None:
    from kg import fetch

    p = sub.add_parser(
        "fetch",
        help="download studies from the ClinicalTrials.gov API v2 into a folder (resumable, incremental)",
        description="Download every study matching a query from the ClinicalTrials.gov API v2 into "
        "DIR/studies/NCT….json (one API v2 study per file, readable by `cartkg records DIR`). A killed fetch "
        "continues from its last completed page when run again; a study whose saved version date "
        "(lastUpdatePostDate) equals the fetched one is not rewritten.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument(
        "--query",
        default=fetch.DEFAULT_QUERY,
        help=f"query.term, in Essie syntax (default {fetch.DEFAULT_QUERY!r}; '' for none)",
    )
    p.add_argument("--intr", default=None, metavar="QUERY", help="query.intr: intervention / treatment query")
    p.add_argument(
        "--since",
        default=None,
        metavar="DATE",
        help="only studies whose last update was posted on or after DATE (YYYY-MM-DD); 'last' = the day "
        "the last complete fetch of the same query into DIR started",
    )
    p.add_argument(
        "--fields",
        default=None,
        help="comma-separated API fields to keep (default: whole studies; NCTId and LastUpdatePostDate "
        "are always added)",
    )
    p.add_argument("--base-url", default=fetch.DEFAULT_BASE_URL, help="API root (default %(default)s)")
    p.add_argument("--page-size", type=int, default=fetch.DEFAULT_PAGE_SIZE, help="studies per page (1-1000)")
    p.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="requests per second, retries counted (default 1; 0: no limit)",
    )
    p.add_argument("--max-pages", type=int, default=None, help="stop after N pages (run again to continue)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for an answer (default 60)")
    p.add_argument("--retries", type=int, default=5, help="retries per page after the first try (default 5)")
    p.add_argument(
        "--backoff",
        type=float,
        default=1.0,
        help="first retry wait in seconds, doubled at each retry (default 1)",
    )
    p.add_argument("--restart", action="store_true", help="ignore an unfinished fetch in DIR and start over")
    p.add_argument("--json", action="store_true", help="print the run summary as one JSON object")
    p.set_defaults(run=_run_fetch)


def _run_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kg import fetch

    fields = tuple(f.strip() for f in (args.fields or "").split(",") if f.strip())
    options = fetch.FetchOptions(
        out=Path(args.out),
        query=fetch.FetchQuery(term=args.query or None, intr=args.intr or None, fields=fields),
        since=args.since,
        base_url=args.base_url,
        page_size=args.page_size,
        rate=args.rate,
        max_pages=args.max_pages,
        restart=args.restart,
        policy=fetch.RetryPolicy(attempts=args.retries + 1, backoff=args.backoff, timeout=args.timeout),
    )
    summary = fetch.run_fetch(options)
    if args.json:
        _dump_json_line(summary.to_dict(), sys.stdout)
    else:
        print(summary.describe())
    return 1 if summary.counts.failed else 0


# --------------------------------------------------------------------------- query


QUERY_FORMATS = ("table", "csv", "tsv", "json", "md", "sparql-json")


def _add_query(sub: Any) -> None:
    p = sub.add_parser(
        "query",
        help="run a named competency query (queries/*.rq), a .rq file, or -e 'SPARQL' on a graph",
    )
    p.add_argument("name", nargs="?", help="query name (cq01_… or just cq01) or a .rq file")
    p.add_argument("-e", "--expr", metavar="SPARQL", help="run this SPARQL text instead of a named query")
    p.add_argument("--graph", metavar="PATH", help="a build folder or an RDF file (.ttl .nt .nq .trig .jsonld)")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="bind a declared query parameter"
    )
    p.add_argument("--format", choices=QUERY_FORMATS, default="table", help="output format (default table)")
    p.add_argument("--list", action="store_true", help="list the named queries with their summaries")
    p.add_argument("--show", action="store_true", help="print the query text (parameters bound) and exit")
    p.set_defaults(run=_run_query)


def _run_query(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kg import query as Q
    from kg import results as R
    from kg.errors import UsageError
    from kg.resources import queries_dir

    if args.list:
        for q in Q.load_queries(queries_dir()):
            params = " ".join(f"{p.name}={p.type}" + (f":{p.default}" if p.default else "") for p in q.params)
            sys.stdout.write(f"{q.name:<40} {q.summary}" + (f"  [params: {params}]" if params else "") + "\n")
        return 0
    if bool(args.name) == bool(args.expr):
        raise UsageError("give a query name or file, or -e 'SPARQL' (exactly one)")
    values = dict(_split_param(p) for p in args.param)
    if args.expr:
        text = args.expr
        if values:
            raise UsageError("--param needs a named query (its header declares the parameters)")
    else:
        text = Q.bind_params(Q.find_query(args.name, queries_dir()), values)
    if args.show:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    if not args.graph:
        raise UsageError("--graph PATH is required (a build folder or an RDF file)")
    answer = Q.run_query(Q.open_store(Path(args.graph)), text)
    if isinstance(answer, bool):
        sys.stdout.write(("true" if answer else "false") + "\n")
        return 0
    if isinstance(answer, list):
        import pyoxigraph as ox

        sys.stdout.write(ox.serialize(answer, format=ox.RdfFormat.TURTLE).decode("utf-8"))
        return 0
    writers = {
        "table": R.to_table,
        "csv": R.to_csv,
        "tsv": lambda r: R.to_csv(r, delimiter="\t"),
        "json": R.to_plain_json,
        "md": R.to_markdown,
        "sparql-json": R.to_sparql_json,
    }
    sys.stdout.write(writers[args.format](answer))
    return 0


def _split_param(text: str) -> tuple[str, str]:
    from kg.errors import UsageError

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--param {text!r}: expected KEY=VALUE")
    return key.strip(), value


# --------------------------------------------------------------------------- bench-queries


def _add_bench_queries(sub: Any) -> None:
    p = sub.add_parser(
        "bench-queries",
        help="median latency of each competency query on the embedded store vs rdflib's SPARQL engine",
        description="Run every queries/*.rq (default parameters) RUNS times on the store of a build folder "
        "(or an RDF file) and on the same statements in rdflib (graph.ttl in a Dataset with a union default "
        "graph); print the median milliseconds per query, the rdflib/store ratio and the row counts.",
    )
    p.add_argument("--graph", required=True, metavar="PATH", help="a build folder or an RDF file")
    p.add_argument("--runs", type=int, default=5, metavar="N", help="timed runs per query and engine (default 5)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S",
                   help="stop rdflib on one query after S seconds (default 300)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=_run_bench_queries)


def _run_bench_queries(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kg.bench_queries import bench_queries, format_table, summarize

    results = bench_queries(
        Path(args.graph), runs=args.runs, timeout_s=args.timeout,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    if args.json:
        payload = {"graph": args.graph, "runs": args.runs, "summary": summarize(results), "queries": results}
        sys.stdout.write(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_table(results))
    return 0


# --------------------------------------------------------------------------- serve


def _add_serve(sub: Any) -> None:
    from kg.serve import ServeSettings

    d = ServeSettings()
    p = sub.add_parser("serve", help="serve a read-only SPARQL 1.1 endpoint with a YASGUI page")
    p.add_argument("--graph", required=True, metavar="PATH", help="a build folder or an RDF file")
    p.add_argument("--host", default=d.host, help=f"address to bind (default {d.host}: this machine only)")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port}; 0 picks a free one)")
    p.add_argument("--timeout", type=float, default=d.timeout, help=f"seconds per query (default {d.timeout:g})")
    p.add_argument("--max-rows", type=int, default=d.max_rows, help=f"rows per answer (default {d.max_rows})")
    p.add_argument(
        "--max-body", type=int, default=d.max_body, help=f"bytes per request body (default {d.max_body})"
    )
    p.add_argument("--workers", type=int, default=d.workers, help=f"query processes (default {d.workers})")
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kg.query import load_queries, materialize_store
    from kg.resources import queries_dir
    from kg.serve import ServeSettings, serve

    settings = ServeSettings(
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        max_rows=args.max_rows,
        max_body=args.max_body,
        workers=args.workers,
    )
    store_path, tmp = materialize_store(Path(args.graph))
    examples = [{"name": q.name, "summary": q.summary, "query": q.text} for q in load_queries(queries_dir())]
    try:
        serve(store_path, settings, examples)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


# --------------------------------------------------------------------------- timeframes


def _add_timeframes(sub: Any) -> None:
    p = sub.add_parser(
        "timeframes",
        help="corpus report: share of outcome time frames with a parsed ISO 8601 max_duration, and the rest",
        description="Parse every outcome time frame of the records and report the share with a parsed "
        "max_duration, the reasons for the rest (most frequent first) and each unparsed time frame.",
    )
    _add_input_paths(p)
    p.add_argument(
        "--format", choices=["table", "json"], default="table", help="output format (default table)"
    )
    p.add_argument(
        "--all", action="store_true", help="list every time frame with its parse, not only the unparsed"
    )
    p.set_defaults(run=_run_timeframes)


def _run_timeframes(args: argparse.Namespace) -> int:
    from kg.extract.timeframe import report_time_frames

    counter = FailureCounter(_read_all(args.paths))
    report = report_time_frames(counter)
    out = sys.stdout
    if args.format == "json":
        data = report.to_json()
        if args.all:
            data["all"] = [
                {"trial_id": r.trial_id, "outcome": r.outcome, "time_frame": r.time_frame,
                 "max_duration": r.timeframe.max_duration, "window_start": r.timeframe.window_start,
                 "timepoints": list(r.timeframe.timepoints), "anchor": r.timeframe.anchor}
                for r in report.rows
            ]
        _dump_json_line(data, out)
    else:
        out.write(
            f"time frames: {report.total}  with max_duration: {report.parsed}  share: {report.share:.1%}\n"
        )
        distinct, parsed = report.distinct()
        out.write(f"distinct texts: {distinct}  with max_duration: {parsed}\n")
        for reason, count in report.reasons():
            out.write(f"  {count:>4}  {reason}\n")
        rows = report.rows if args.all else report.unparsed
        if rows:
            out.write(f"\n{'trial_id':<24} {'#':>3} {'max_duration':<12} time frame  [reason]\n")
        for r in rows:
            text = " ".join(r.time_frame.split())
            why = f"  [{r.timeframe.unparsed}]" if r.timeframe.unparsed else ""
            end = r.timeframe.max_duration or "-"
            out.write(f"{r.trial_id:<24} {r.outcome:>3} {end:<12} {text[:90]}{why}\n")
    out.flush()
    print(counter.summary(), file=sys.stderr)
    return 1 if counter.failed else 0


# --------------------------------------------------------------------------- build


def _add_build(sub: Any) -> None:
    p = sub.add_parser(
        "build",
        help="read → extract → build the RDF graph into a store folder (+ graph.ttl and a build report)",
        description="Build the knowledge graph: read records (any supported format), extract, and write "
        "OUT/store (Oxigraph, one named graph per trial plus the vocabulary graph), OUT/graph.ttl (sorted, "
        "byte-identical on rebuild) and OUT/build-report.json. Without --fresh a build UPDATES the existing "
        "store (--update says so explicitly): only trials whose graph changed are replaced, trials whose "
        "record is WITHDRAWN are removed, and with --prune trials absent from the inputs are removed too. "
        "The report reconciles the counts (studies fetched, records read, failed, built, added, replaced, "
        "unchanged, removed, in store); exit 1 when a record failed or the counts do not add up. "
        "A build killed half-way leaves the previous store in use.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="record files or folders (as for `cartkg records`)"
    )
    p.add_argument(
        "--extractions", metavar="FILE", action="append", default=[],
        help="JSON Lines (or a JSON list) of extraction objects from `cartkg extract`, built without "
        "their records (repeatable)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="build folder (created if missing)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--fresh", action="store_true", help="start from an empty store instead of updating")
    mode.add_argument(
        "--update", action="store_true",
        help="update the existing store (the default): replace changed trials, remove withdrawn ones",
    )
    p.add_argument(
        "--prune", action="store_true",
        help="with an update: also remove trials of the store that are not in the inputs (a full refresh "
        "from a fetch folder); listed in the report under removed.pruned. Skipped when a record failed "
        "to read.",
    )
    p.add_argument(
        "--format", dest="formats", action="append", default=[], choices=["trig", "nquads", "jsonld"],
        help="also write graph.trig / graph.nq / graph.jsonld (repeatable)",
    )
    p.add_argument(
        "--docs", action="store_true", help="also write the ontology documentation (pyLODE) to OUT/ontology.html"
    )
    p.add_argument(
        "--jobs", type=int, default=1, metavar="N",
        help="worker processes that extract and build trials and write graph.ttl (default 1)",
    )
    p.set_defaults(run=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kg.build import build
    from kg.errors import UsageError

    if not args.paths and not args.extractions:
        raise UsageError("give record PATHs or --extractions FILE")
    if args.prune and args.fresh:
        raise UsageError("--prune removes trials from an existing store: it cannot be used with --fresh")
    source = BuildInputs(args.paths, args.extractions, args.jobs)
    report = build(
        None, Path(args.out), fresh=args.fresh, prune=args.prune, formats=args.formats,
        items=source.items(), studies_fetched=studies_fetched(args.paths) if not args.extractions else None,
        jobs=args.jobs,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    if args.docs:
        from kg.docs import write_ontology_docs

        write_ontology_docs(Path(args.out) / "ontology.html")
    for line in build_summary(report, args.out):
        print(line, file=sys.stderr)
    return 1 if report["records_failed"] or not report["reconciliation"]["ok"] else 0


def build_summary(report: dict[str, Any], out: str) -> list[str]:
    """The lines ``cartkg build`` prints: the reconciled counts, removals and any mismatch."""
    fetched = report.get("studies_fetched")
    lines = [
        (f"{fetched} studies fetched; " if fetched is not None else "")
        + f"{report['records_read']} records read, {report['read_failures']} failed to read; "
        f"{report['trials_built']} trials built, {report['build_failures']} failed, "
        f"{report['records_withdrawn']} withdrawn",
        f"{report['trials_in_store']} trials in store = {report['trials_previous']} before "
        f"+ {report['trials_added']} added - {report['trials_removed']} removed "
        f"({report['trials_replaced']} replaced, {report['trials_unchanged']} unchanged); "
        f"{report['triples_total']} triples → {out}",
    ]
    for why, ids in sorted(report["removed"].items()):
        if ids:
            lines.append(f"removed ({why}): {' '.join(ids)}")
    if report.get("prune_skipped"):
        lines.append(f"prune skipped: {report['prune_skipped']}")
    if report["duplicates"]:
        n = len(report["duplicates"])
        lines.append(f"{n} duplicate trial ids (the last record wins; see the report)")
    recon = report["reconciliation"]
    mismatches = "; ".join(recon["mismatches"])
    lines.append("counts reconcile" if recon["ok"] else f"COUNTS DO NOT RECONCILE: {mismatches}")
    return lines


def studies_fetched(paths: list[str]) -> int | None:
    """Number of study files saved by `cartkg fetch` when every PATH is a fetch folder (or its studies/)."""
    from pathlib import Path

    from kg.fetch import STATE_NAME, STUDIES_DIR

    total = 0
    for path in map(Path, paths):
        if (path / STATE_NAME).is_file() and (path / STUDIES_DIR).is_dir():
            folder = path / STUDIES_DIR
        elif path.name == STUDIES_DIR and (path.parent / STATE_NAME).is_file():
            folder = path
        else:
            return None
        total += sum(1 for f in folder.iterdir() if f.suffix == ".json" and not f.name.startswith("."))
    return total if paths else None


class BuildInputs:
    """Build items from record files (read → extract → build, over ``jobs`` processes) and saved
    extractions (built without records); read failures become items of stage ``read``."""

    def __init__(self, paths: list[str], extraction_files: list[str], jobs: int) -> None:
        self.paths, self.extraction_files, self.jobs = paths, extraction_files, jobs

    def items(self) -> Iterator[Any]:
        from kg.build import BuildFailure, build_item, build_records

        if self.paths:
            failures: list[ReadFailure] = []

            def records() -> Iterator[TrialRecord]:
                for item in _read_all(self.paths):
                    if isinstance(item, ReadFailure):
                        failures.append(item)  # handed on by the consumer (this runs in a pool thread)
                    else:
                        yield item

            def drain() -> Iterator[Any]:
                while failures:
                    f = failures.pop(0)
                    yield BuildFailure(str(f.record), f.path, _read_problem(f), "read")

            for built in build_records(records(), self.jobs):
                yield from drain()
                yield built
            yield from drain()
        for path in self.extraction_files:
            bad: list[str] = []
            for where, obj in _read_extraction_objects(path, bad.append):
                yield from (BuildFailure("?", path, msg.removeprefix(f"{path}: "), "read") for msg in bad)
                bad.clear()
                try:
                    extraction = TrialExtraction.from_json(obj)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    yield BuildFailure("?", path, f"{where}: not an extraction object: {exc!r}", "read")
                    continue
                yield build_item(extraction, None)
            yield from (BuildFailure("?", path, msg.removeprefix(f"{path}: "), "read") for msg in bad)


def _read_problem(failure: ReadFailure) -> str:
    return f"field {failure.field!r}: {failure.message}" if failure.field else failure.message


def _read_extraction_objects(path: str, fail: Any) -> Iterator[tuple[str, Any]]:
    """``(where, object)`` for each object of a JSON Lines file or a JSON list."""
    from kg.errors import UsageError

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read extractions: {exc}") from exc
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: invalid JSON: {exc}") from exc
        for i, obj in enumerate(items):
            yield f"item {i}", obj
        return
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield f"line {i}", json.loads(line)
            except json.JSONDecodeError as exc:
                fail(f"{path}: line {i}: invalid JSON: {exc}")


# --------------------------------------------------------------------------- validate


def _add_validate(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="validate a build folder or RDF file against the SHACL shapes (exit 0 conforms, 1 not, 2 error)",
        description="Validate with the SHACL shapes: a few trials at a time plus the shared vocabulary, in "
        "parallel processes, with pyshacl-turbo (Rust; default) or pyshacl (the reference), and cross-trial "
        "SPARQL checks (unique NCT numbers, dangling references) on the store. If pyshacl-turbo cannot run "
        "the shapes, pyshacl validates instead and a note says so. "
        "Prints violations grouped by trial and shape. Exit 0 conforms, 1 does not conform, 2 error. "
        "Never fetches anything (owl:imports are not followed).",
    )
    p.add_argument(
        "path", metavar="PATH",
        help="a build folder (from `cartkg build`) or an RDF file (.ttl .nt .nq .trig .jsonld)",
    )
    p.add_argument("--report", metavar="FILE", help="write the sh:ValidationReport as Turtle to FILE")
    p.add_argument(
        "--jobs", type=int, default=None, metavar="N", help="validation processes (default: CPU count)"
    )
    p.add_argument(
        "--engine", choices=["turbo", "pyshacl"], default=None,
        help="SHACL engine: turbo (pyshacl-turbo, default) or pyshacl (reference; default with --whole)",
    )
    p.add_argument(
        "--whole", action="store_true",
        help="validate everything as one graph, with pyshacl unless --engine turbo (slow; for comparison)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text", help="report format on stdout")
    p.add_argument(
        "--limit", type=int, default=20, metavar="N", help="results listed per trial and shape (text)"
    )
    p.set_defaults(run=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from dataclasses import asdict
    from pathlib import Path

    from kg.validate import format_report, validate_path

    outcome = validate_path(Path(args.path), jobs=args.jobs, whole=args.whole, engine=args.engine)
    for note in outcome.notes:
        sys.stderr.write(f"cartkg validate: {note}\n")
    if args.report:
        outcome.report.serialize(destination=args.report, format="turtle")
    if args.format == "json":
        _dump_json_line(
            {
                "conforms": outcome.conforms,
                "trials": outcome.trials,
                "violations": len(outcome.findings),
                "seconds": round(outcome.seconds, 3),
                "mode": outcome.mode,
                "engine": outcome.engine,
                "notes": outcome.notes,
                "findings": [asdict(f) for f in outcome.findings],
            },
            sys.stdout,
        )
    else:
        sys.stdout.write(format_report(outcome, limit=args.limit))
    sys.stdout.flush()
    return 0 if outcome.conforms else 1


# --------------------------------------------------------------------------- export


def _add_export(sub: Any) -> None:
    from kg.export import FORMATS
    from kg.views import DEFAULT_TOP_K, VIEWS

    formats = "; ".join(f"{name}: {f.description}" for name, f in FORMATS.items())
    p = sub.add_parser(
        "export",
        help="write the graph for Gephi, Cytoscape, yEd, Graphviz, Neo4j or as RDF (ttl nt nq trig jsonld)",
        description="Write a graph (a build folder or an RDF file) in another format. Graph formats project "
        "the RDF onto nodes and edges through a view; RDF formats write the whole graph. Formats: " + formats,
    )
    p.add_argument("--graph", metavar="PATH", help="a build folder or an RDF file (.ttl .nt .nq .trig …)")
    p.add_argument("--format", "-f", choices=list(FORMATS), help="output format")
    p.add_argument(
        "--view",
        choices=list(VIEWS),
        default="full",
        help="what to draw (graph formats only; default full): " + ", ".join(VIEWS),
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        metavar="K",
        help=f"trial-similarity: links each trial keeps (default {DEFAULT_TOP_K})",
    )
    p.add_argument("-o", "--out", metavar="OUT", help="output file (a folder for neo4j)")
    p.add_argument("--list", action="store_true", help="list the formats and views and exit")
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kg.errors import UsageError
    from kg.export import FORMATS, export
    from kg.query import open_store
    from kg.views import VIEWS

    if args.list:
        for name, f in FORMATS.items():
            sys.stdout.write(f"format {name:<8} {f.description}\n")
        for name, fn in VIEWS.items():
            doc = (fn.__doc__ or "").strip().splitlines()
            sys.stdout.write(f"view   {name:<20} {doc[0] if doc else ''}\n")
        return 0
    given = (("--graph", args.graph), ("--format", args.format), ("-o", args.out))
    missing = [flag for flag, value in given if not value]
    if missing:
        raise UsageError(f"export needs {', '.join(missing)}")
    if args.top_k is not None and args.view != "trial-similarity":
        raise UsageError("--top-k applies to --view trial-similarity")
    store = open_store(Path(args.graph))
    result = export(store, args.format, Path(args.out), view=args.view, top_k=args.top_k)
    print(f"cartkg: {result.describe()}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- report


def _add_report(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML page of the design landscape (figures as inline SVG, no network)",
    )
    p.add_argument("--graph", required=True, metavar="PATH", help="a build folder or an RDF file")
    p.add_argument("-o", "--out", required=True, metavar="HTML", help="output file, e.g. report.html")
    p.add_argument("--title", default=None, help="page title (default: cartkg design landscape)")
    p.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kg.query import open_store
    from kg.report import DEFAULT_TITLE, write_report

    summary = write_report(open_store(Path(args.graph)), Path(args.out), title=args.title or DEFAULT_TITLE)
    print(f"cartkg: wrote {args.out} ({summary})", file=sys.stderr)
    return 0
