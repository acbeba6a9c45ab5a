"""Benchmarks: the extractor's throughput beside a baseline measured in the same run.

``bench_extract`` times :func:`kg.extract.extract_records` over a corpus (default: every bundled example
record) ``runs`` times after one warm-up run, and in the same process a pure-``re`` dictionary matcher
built from the same vocabularies (one alternation of every surface form of the concept rules, matched
over the same normalized texts; no context, no evidence mapping).  It reports medians, records/s,
words/s and the ratio, so figures from a noisy machine stay comparable within one run.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kg.errors import CartkgError
from kg.records import TrialRecord

BASELINE_LABELS = ("ANTIGEN", "COSTIM", "SIGNAL", "DISEASE", "VECTOR", "SOURCE", "PRODUCT")


def load_corpus(paths: Sequence[str] | None) -> list[TrialRecord]:
    """Records from ``paths`` (default: the bundled examples folder)."""
    from kg.ingest import read_paths
    from kg.resources import examples_dir

    items = read_paths(list(paths) if paths else [str(examples_dir())])
    return [r for r in items if isinstance(r, TrialRecord)]


def count_words(records: Sequence[TrialRecord]) -> int:
    return sum(len(text.split()) for r in records for _, text in r.text_fields())


def build_baseline() -> Callable[[Sequence[TrialRecord]], Counter[str]]:
    """A dictionary matcher in plain ``re`` over the extractor's own vocabularies (surface forms).

    The surface forms are compiled into one case-insensitive alternation factored as a word trie (the
    usual way to make a large ``re`` dictionary fast); each match is looked up to its concept.
    """
    from kg.extract.vocab import compile_pattern, load_vocabulary, phrase_forms

    lookup: dict[tuple[str, ...], str] = {}
    for rule in sorted(load_vocabulary().rules.values(), key=lambda r: r.id):
        if rule.label not in BASELINE_LABELS:
            continue
        found = phrase_forms(compile_pattern(rule.pattern))
        if found is None:
            continue
        for words in found[1]:
            lookup.setdefault(tuple(w.lower() for w in words), rule.concepts[0])
    regex = re.compile(r"(?<!\w)(?:" + trie_regex(sorted(lookup)) + r")(?!\w)", re.IGNORECASE)
    splitter = re.compile(r"\w+|[^\w\s]")

    def match(records: Sequence[TrialRecord]) -> Counter[str]:
        from kg.text import normalize_text

        counts: Counter[str] = Counter()
        for r in records:
            for _, text in r.text_fields():
                for m in regex.finditer(normalize_text(text)):
                    key = tuple(splitter.findall(m.group(0).lower()))
                    counts[lookup.get(key, "?")] += 1
        return counts

    return match


def trie_regex(sequences: Sequence[tuple[str, ...]]) -> str:
    """An alternation of word sequences factored on shared leading words (longest alternatives first)."""
    trie: dict[str, Any] = {}
    for seq in sequences:
        node = trie
        for word in seq:
            node = node.setdefault(word, {})
        node[""] = {}
    return _trie_to_regex(trie)


def _trie_to_regex(node: dict[str, Any]) -> str:
    branches = []
    for word in sorted(node, key=lambda w: (-len(w), w)):
        if word == "":
            continue
        child = node[word]
        rest = _trie_to_regex(child) if set(child) != {""} else ""
        branches.append(
            re.escape(word) + (r"\s*(?:" + rest + ")" + ("?" if "" in child else "") if rest else "")
        )
    if not branches:
        return ""
    body = "|".join(branches)
    return f"(?:{body})"


def time_runs(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm-up: builds pipelines, fills caches
    return _timed_calls(fn, runs)


def bench_extract(paths: Sequence[str] | None = None, runs: int = 5, n_process: int = 1) -> dict[str, Any]:
    """Median seconds, records/s and words/s of the extractor and of the ``re`` baseline (same run)."""
    from kg.extract import extract_records

    if runs < 1:
        raise ValueError("runs must be at least 1")
    records = load_corpus(paths)
    words = count_words(records)
    baseline = build_baseline()
    extractor_times = time_runs(lambda: list(extract_records(records, n_process=n_process)), runs)
    baseline_times = time_runs(lambda: baseline(records), runs)
    result: dict[str, Any] = {"records": len(records), "words": words, "runs": runs, "processes": n_process}
    for name, times in (("extractor", extractor_times), ("baseline_re", baseline_times)):
        median = statistics.median(times)
        result[name] = {
            "median_s": round(median, 4),
            "records_per_s": round(len(records) / median, 1) if median else None,
            "words_per_s": round(words / median, 1) if median else None,
            "runs_s": [round(t, 4) for t in times],
        }
    ext, base = result["extractor"]["median_s"], result["baseline_re"]["median_s"]
    result["ratio_extractor_to_baseline_time"] = round(ext / base, 2) if base else None
    return result


def format_bench(result: dict[str, Any]) -> str:
    lines = [
        f"corpus: {result['records']} records, {result['words']} words; median of {result['runs']} runs "
        f"(after one warm-up); extractor processes: {result['processes']}",
        f"{'contender':<14} {'median s':>10} {'records/s':>11} {'words/s':>11}",
    ]
    for name in ("extractor", "baseline_re"):
        r = result[name]
        lines.append(
            f"{name:<14} {r['median_s']:>10.3f} {r['records_per_s']:>11.1f} {r['words_per_s']:>11.0f}"
        )
    lines.append(f"extractor time / baseline time: {result['ratio_extractor_to_baseline_time']}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the whole pipeline at scale
# ``cartkg bench --trials N``: one synthetic corpus (kg.synth), then in one run: extraction vs the ``re``
# baseline, the build in a child process (its peak RSS), validation per trial and as one graph (children
# with a time limit), every competency query on the store and in rdflib, serialization.


def bench_pipeline(
    trials: int,
    *,
    seed: int = 0,
    processes: int = 1,
    runs: int = 3,
    extract_runs: int = 1,
    work_dir: Path | None = None,
    validate_timeout: float = 1800.0,
    whole_timeout: float = 600.0,
    rdflib_timeout: float = 900.0,
    query_timeout: float = 120.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark the pipeline on ``make_corpus(trials, seed)``; the result is one JSON-ready dict."""
    import tempfile

    if trials < 1 or runs < 1 or extract_runs < 1:
        raise ValueError("trials, runs and extract runs must be at least 1")
    result: dict[str, Any] = {
        "trials": trials,
        "seed": seed,
        "processes": processes,
        "runs": runs,
        "extract_runs": extract_runs,
        "cpu_count": os.cpu_count(),
    }
    partial = Path(work_dir) / f"bench-{trials}.partial.json" if work_dir is not None else None

    def say_and_save(msg: str) -> None:  # figures so far, kept when a long run is stopped
        if partial is not None:
            partial.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        (progress or (lambda m: None))(msg)

    say = say_and_save
    with tempfile.TemporaryDirectory(prefix="cartkg-bench-", dir=work_dir) as tmp:
        root = Path(tmp)
        say(f"corpus: {trials} synthetic trials (seed {seed})")
        records, result["corpus_s"] = _timed(lambda: _synthetic_records(trials, seed))
        result["words"] = count_words(records)
        say("bundled records end to end: cartkg build + cartkg validate (child processes)")
        result.update(bench_bundled_end_to_end(root / "bundled", runs, processes))
        say("extraction")
        result.update(bench_extraction(records, processes, runs, extract_runs, root / "extractions.jsonl"))
        say(f"build ({trials} trials, child process)")
        result.update(run_build_child(trials, seed, root / "extractions.jsonl", root / "build"))
        say(f"cartkg build --jobs 2 on the {trials}-trial corpus file (read + extract + build, child)")
        result.update(bench_cli_build(trials, seed, root))
        say("validation per trial (child process)")
        result.update(run_validate_child(root / "build", processes, validate_timeout, whole=False))
        say("validation as one graph with pyshacl (child process)")
        result.update(run_validate_child(root / "build", processes, whole_timeout, whole=True))
        say("serialization")
        result.update(bench_serialization(root / "build", root))
        say("queries")
        result["queries"] = bench_all_queries(root / "build", runs, rdflib_timeout, root, say, query_timeout)
    result["summary"] = summarize_pipeline(result)
    say("done")
    return result


BUNDLED_END_TO_END = ("cart_v2", "seeds")  # bundled example folders: 148 CAR-T records + the 5 seeds


def bench_bundled_end_to_end(work: Path, runs: int, processes: int) -> dict[str, Any]:
    """Wall seconds of ``cartkg build`` then ``cartkg validate`` on the bundled CAR-T records and seeds,
    as a user runs them (fresh processes, fresh store each run); medians of ``runs``."""
    from kg.resources import examples_dir

    jobs = str(max(2, processes))
    folders = [str(examples_dir() / name) for name in BUNDLED_END_TO_END]
    build_times, validate_times = [], []
    for run in range(runs):
        out = work / f"run{run}"
        build = measure_command([*_cartkg(), "build", *folders, "--out", str(out), "--fresh", "--jobs", jobs])
        check = measure_command([*_cartkg(), "validate", str(out), "--jobs", jobs])
        build_times.append(build["wall_s"])
        validate_times.append(check["wall_s"])
        shutil.rmtree(out, ignore_errors=True)
    b, v = statistics.median(build_times), statistics.median(validate_times)
    return {
        "bundled_records": sum(1 for f in folders for p in Path(f).iterdir() if p.is_file()),
        "bundled_build_s": round(b, 3),
        "bundled_validate_s": round(v, 3),
        "bundled_end_to_end_s": round(b + v, 3),
        "bundled_end_to_end_runs_s": [round(x + y, 3) for x, y in zip(build_times, validate_times)],
    }


def bench_cli_build(trials: int, seed: int, root: Path) -> dict[str, Any]:
    """``cartkg build CORPUS.jsonl --jobs 2`` on the synthetic corpus written as API v2 JSON Lines:
    reading, extraction on two processes and the build, as one command; wall time and peak RSS."""
    from kg.synth import write_corpus

    corpus = root / "corpus.jsonl"
    write_corpus(trials, seed, corpus)
    out = root / "cli-build"
    stats = measure_command([*_cartkg(), "build", str(corpus), "--out", str(out), "--fresh", "--jobs", "2"])
    shutil.rmtree(out, ignore_errors=True)
    return {"cli_build_s": stats["wall_s"], "cli_build_peak_rss_mb": stats["max_rss_mb"],
            "cli_build_exit": stats["exit"]}


def _cartkg() -> list[str]:
    return [sys.executable, "-m", "kg"]


def measure_command(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` via ``python -m kg.bench measure`` (a fresh parent, so its children's peak RSS is
    the command's own): wall seconds, exit status and the largest process's peak RSS."""
    proc = subprocess.run([sys.executable, "-m", "kg.bench", "measure", *cmd], capture_output=True,
                          text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise CartkgError(f"measuring {' '.join(cmd)} failed: {proc.stderr.strip()[-2000:]}")
    return dict(json.loads(lines[-1]))


def measure_child(cmd: list[str]) -> dict[str, Any]:
    """The ``measure`` child: run ``cmd`` with its output discarded; wall time, exit, peak RSS (MB)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise CartkgError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": round(wall, 3), "exit": done.returncode, "max_rss_mb": round(peak, 1)}


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def _synthetic_records(trials: int, seed: int) -> list[TrialRecord]:
    from kg.synth import make_corpus

    return list(make_corpus(trials, seed))


PAIRED_CHUNK = 100  # records per paired extraction / baseline measurement


def bench_extraction(
    records: Sequence[TrialRecord], processes: int, runs: int, extract_runs: int, out: Path
) -> dict[str, Any]:
    """Extractor records/s beside the ``re`` baseline, measured in pairs on the same machine state.

    After a warm-up (pipeline and pattern compilation are not timed), the corpus goes through the
    extractor in chunks of ``PAIRED_CHUNK`` records and each chunk, right after, through the baseline
    (median of ``runs``): a noisy neighbour slows both sides of a pair alike, so the ratio holds even
    when the absolute rates move.  With ``processes > 1`` the corpus is one chunk (a pool per chunk
    would time pool start-up).  ``extract_runs`` passes; medians of the totals.  The extractions of
    the first pass are written to ``out`` (JSON Lines) for the build.
    """
    from kg.extract import extract_each

    baseline = build_baseline()
    warm = list(records[:10])
    list(extract_each(warm, n_process=1))
    baseline(warm)
    size = len(records) if processes > 1 else PAIRED_CHUNK
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    extract_totals: list[float] = []
    baseline_totals: list[float] = []
    chunk_ratios: list[float] = []
    failures = 0
    with out.open("w", encoding="utf-8") as fh:
        for run in range(extract_runs):
            ext_total = base_total = 0.0
            for chunk in chunks:
                start = time.perf_counter()
                items = list(extract_each(chunk, n_process=processes))
                ext = time.perf_counter() - start
                base = statistics.median(_timed_calls(lambda c=chunk: baseline(c), runs))
                ext_total, base_total = ext_total + ext, base_total + base
                if run == 0:
                    chunk_ratios.append(base / ext if ext else 0.0)
                    failures += sum(1 for item in items if isinstance(item, Exception))
                    for item in items:
                        if not isinstance(item, Exception):
                            fh.write(json.dumps(item.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
                del items
            extract_totals.append(ext_total)
            baseline_totals.append(base_total)
    n = len(records)
    ext, base = statistics.median(extract_totals), statistics.median(baseline_totals)
    return {
        "extract_s": round(ext, 3),
        "extract_records_per_s": round(n / ext, 2),
        "extract_failures": failures,
        "regex_baseline_s": round(base, 4),
        "regex_baseline_records_per_s": round(n / base, 2),
        "extract_to_baseline_throughput": round(base / ext, 4),
        "extract_chunk_ratio_median": round(statistics.median(chunk_ratios), 4) if chunk_ratios else None,
        "extract_paired_chunks": len(chunks),
        "extract_runs_s": [round(t, 3) for t in extract_totals],
        "regex_baseline_runs_s": [round(t, 4) for t in baseline_totals],
    }


def _timed_calls(fn: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run_build_child(trials: int, seed: int, extractions: Path, out: Path) -> dict[str, Any]:
    """Build in a child process (``python -m kg.bench build-child``) and return its timing and peak RSS."""
    cmd = [sys.executable, "-m", "kg.bench", "build-child", str(trials), str(seed), str(extractions)]
    cmd.append(str(out))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CartkgError(f"the build child failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def build_child(trials: int, seed: int, extractions: Path, out: Path) -> dict[str, Any]:
    """The build child's work: records regenerated from ``(trials, seed)``, extractions read, then timed:
    ``kg.build.build`` (trial graphs, store, graph.ttl).  Peak RSS is this process's (records included)."""
    from kg.build import build
    from kg.records import TrialExtraction

    by_id = {r.trial_id: r for r in _synthetic_records(trials, seed)}
    with extractions.open(encoding="utf-8") as fh:
        extracted = [TrialExtraction.from_json(json.loads(line)) for line in fh if line.strip()]
    start = time.perf_counter()
    report = build(((ex, by_id.get(ex.trial_id)) for ex in extracted), out, fresh=True)
    build_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "build_s": round(build_s, 3),
        "build_trials_per_s": round(len(extracted) / build_s, 2) if build_s else None,
        "peak_rss_mb": round(peak, 1),
        "triples": report.get("triples_total"),
        "trials_in_store": report.get("trials_in_store"),
        "build_failures": report.get("build_failures"),
        "graph_ttl_mb": round((out / "graph.ttl").stat().st_size / 1e6, 2),
    }


def run_validate_child(build_dir: Path, jobs: int, timeout: float, whole: bool) -> dict[str, Any]:
    """``cartkg validate BUILD --format json`` in a child, killed after ``timeout`` seconds."""
    key = "validate_whole_graph" if whole else "validate"
    cmd = [sys.executable, "-m", "kg", "validate", str(build_dir), "--format", "json"]
    cmd += ["--jobs", str(max(2, jobs))]
    if whole:
        cmd.append("--whole")
    start = time.perf_counter()
    try:
        proc = run_in_group(cmd, timeout)
    except subprocess.TimeoutExpired:
        return {f"{key}_s": round(timeout, 1), f"{key}_timed_out": True}
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        return {f"{key}_s": None, f"{key}_error": proc.stderr.strip()[-500:]}
    report = json.loads(proc.stdout)
    out = {
        f"{key}_s": round(float(report.get("seconds") or wall), 3),
        f"{key}_timed_out": False,
        f"{key}_conforms": report.get("conforms"),
        f"{key}_violations": report.get("violations"),
    }
    if not whole and report.get("trials"):
        out["validate_ms_per_trial"] = round(1000 * out["validate_s"] / report["trials"], 2)
        out["validate_jobs"] = max(2, jobs)
    return out


def run_in_group(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in its own process group; on time-out kill the whole group (its worker processes too)
    and re-raise ``TimeoutExpired``."""
    import signal

    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def bench_serialization(build_dir: Path, tmp: Path) -> dict[str, Any]:
    """Seconds to write the store as sorted Turtle (as the build does) and as N-Quads (Oxigraph dump)."""
    import pyoxigraph as ox

    from kg.store import open_store, write_turtle_file

    store = open_store(build_dir)
    _, ttl_s = _timed(lambda: write_turtle_file(store, tmp / "bench.ttl"))
    _, nq_s = _timed(lambda: store.dump(output=str(tmp / "bench.nq"), format=ox.RdfFormat.N_QUADS))
    return {"serialize_ttl_s": ttl_s, "serialize_nquads_s": nq_s}


def bench_all_queries(
    build_dir: Path, runs: int, rdflib_timeout: float, tmp: Path, say: Callable[[str], None],
    query_timeout: float = 120.0,
) -> dict[str, dict[str, Any]]:
    """Median ms of every ``queries/*.rq`` on the store (here) and in rdflib (a child, time-limited)."""
    import multiprocessing

    from kg.query import bind_params, load_queries
    from kg.resources import queries_dir

    fork = multiprocessing.get_context("fork")
    store_lines = tmp / "store.jsonl"
    store_lines.write_text("", encoding="utf-8")
    out: dict[str, dict[str, Any]] = {}
    for query in load_queries(queries_dir()):
        text = bind_params(query, {})
        worker = fork.Process(target=_store_one, args=(build_dir, query.name, text, runs, store_lines))
        worker.start()
        worker.join(query_timeout)
        if worker.is_alive():
            worker.kill()
            worker.join()
            say(f"{query.name}: stopped on the store after {query_timeout:g} s")
        out[query.name] = {"store_ms": None, "store_timeout_s": query_timeout, "rdflib_ms": None}
    for line in store_lines.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out[row.pop("name")].update(row, store_timeout_s=None)
    for entry in out.values():
        if entry["store_timeout_s"] is None:
            del entry["store_timeout_s"]
    lines = tmp / "rdflib.jsonl"
    cmd = [sys.executable, "-m", "kg.bench", "rdflib-child", str(build_dir), str(runs), str(lines),
           str(query_timeout)]
    try:
        run_in_group(cmd, rdflib_timeout)
    except subprocess.TimeoutExpired:
        say(f"rdflib stopped after {rdflib_timeout:g} s")
    if lines.exists():
        for line in lines.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("name") in out:
                out[row["name"]].update({k: v for k, v in row.items() if k != "name"})
    for entry in out.values():
        if entry["rdflib_ms"] is None:
            entry["rdflib_timed_out"] = True
            entry.setdefault("rdflib_timeout_s", query_timeout)
        elif entry.get("store_ms"):
            entry["ratio"] = round(entry["rdflib_ms"] / entry["store_ms"], 1)
    return out


def _store_one(build_dir: Path, name: str, text: str, runs: int, out: Path) -> None:
    """Time one query on the build's store (opened read-only here), after one warm-up run."""
    from kg.bench_queries import run_store
    from kg.bench_queries import time_runs as time_query
    from kg.store import open_store

    store = open_store(build_dir)
    run_store(store, text)
    times, rows = time_query(lambda: run_store(store, text), runs, 60.0)
    with out.open("a", encoding="utf-8") as fh:
        row = {"name": name, "store_ms": round(statistics.median(times), 3), "rows": rows}
        fh.write(json.dumps(row) + "\n")


def rdflib_child(build_dir: Path, runs: int, out: Path, query_timeout: float = 120.0) -> None:
    """Load graph.ttl into rdflib once, then time each query in a forked process (the loaded graph is
    shared copy-on-write) stopped after ``query_timeout`` seconds; one JSON line per query in ``out``."""
    import multiprocessing

    from kg.bench_queries import load_rdflib, rdf_file_of
    from kg.query import bind_params, load_queries
    from kg.resources import queries_dir

    dataset, load_s = _timed(lambda: load_rdflib(rdf_file_of(build_dir)))
    fork = multiprocessing.get_context("fork")
    out.write_text("", encoding="utf-8")
    for query in load_queries(queries_dir()):
        text = bind_params(query, {})
        worker = fork.Process(target=_rdflib_one, args=(dataset, query.name, text, runs, load_s, out))
        worker.start()
        worker.join(query_timeout)
        if worker.is_alive():
            worker.kill()
            worker.join()
            row = {"name": query.name, "rdflib_ms": None, "rdflib_timeout_s": query_timeout,
                   "rdflib_load_s": load_s}
            with out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")


def _rdflib_one(dataset: Any, name: str, text: str, runs: int, load_s: float, out: Path) -> None:
    from kg.bench_queries import run_rdflib
    from kg.bench_queries import time_runs as time_query

    times, rows = time_query(lambda: run_rdflib(dataset, text), runs, 30.0)
    row = {"name": name, "rdflib_ms": round(statistics.median(times), 3), "rdflib_rows": rows,
           "rdflib_runs": len(times), "rdflib_load_s": load_s}
    with out.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def summarize_pipeline(result: dict[str, Any]) -> dict[str, Any]:
    """Medians over the queries and the headline ratios."""
    queries = result.get("queries", {})
    store = [q["store_ms"] for q in queries.values() if q.get("store_ms") is not None]
    ratios = [q["ratio"] for q in queries.values() if q.get("ratio") is not None]
    return {
        "queries": len(queries),
        "median_store_ms": round(statistics.median(store), 3) if store else None,
        "max_store_ms": round(max(store), 3) if store else None,
        "queries_over_100ms": sorted(
            name for name, q in queries.items() if q.get("store_ms") is None or q["store_ms"] > 100
        ),
        "median_rdflib_to_store_ratio": round(statistics.median(ratios), 1) if ratios else None,
        "extract_to_baseline_throughput": result.get("extract_to_baseline_throughput"),
    }


def _seconds(value: Any, timed_out: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"> {value:g} s" if timed_out else f"{value:.2f} s"


def format_pipeline_markdown(results: Sequence[dict[str, Any]]) -> str:
    """Markdown tables of benchmark runs side by side (pipeline figures, then query latencies)."""
    if not results:
        return ""
    cols = " | ".join(f"{r['trials']:,} trials" for r in results)
    lines = [f"| measure | {cols} |", "|---|" + "---:|" * len(results)]

    def row(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(fn(r) for r in results) + " |")

    row(
        "bundled 148 CAR-T records + 5 seeds: `cartkg build` + `cartkg validate` (median)",
        lambda r: _seconds(r.get("bundled_end_to_end_s"))
        + (f" ({r['bundled_build_s']:.1f} + {r['bundled_validate_s']:.1f})" if r.get("bundled_build_s") else ""),
    )
    row(
        "`cartkg build CORPUS --jobs 2` (read + extract + build)",
        lambda r: _seconds(r.get("cli_build_s"))
        + (f", peak RSS {r['cli_build_peak_rss_mb']:.0f} MB" if r.get("cli_build_peak_rss_mb") else ""),
    )
    row("extraction (records/s, median)", lambda r: f"{r['extract_records_per_s']:.1f}")
    row(
        "pure-`re` dictionary baseline (records/s, median)",
        lambda r: f"{r['regex_baseline_records_per_s']:.1f}",
    )
    row("extraction / baseline throughput", lambda r: f"{r['extract_to_baseline_throughput']:.3f}")
    row(
        "same, median of the paired 100-record chunks",
        lambda r: f"{r['extract_chunk_ratio_median']:.3f}" if r.get("extract_chunk_ratio_median") else "n/a",
    )
    row("build stage alone, from extractions (graphs + store + graph.ttl)", lambda r: _seconds(r["build_s"]))
    row("peak RSS of the build stage", lambda r: f"{r['peak_rss_mb']:.0f} MB")
    row("triples", lambda r: f"{r['triples']:,}")
    row(
        "validation per trial, parallel (total)",
        lambda r: _seconds(r.get("validate_s"), r.get("validate_timed_out", False)),
    )
    row(
        "validation per trial (ms/trial)",
        lambda r: f"{r['validate_ms_per_trial']:.1f}" if r.get("validate_ms_per_trial") else "n/a",
    )
    row(
        "pyshacl on the whole graph",
        lambda r: _seconds(r.get("validate_whole_graph_s"), r.get("validate_whole_graph_timed_out", False)),
    )
    row("serialize sorted Turtle", lambda r: _seconds(r["serialize_ttl_s"]))
    row("serialize N-Quads", lambda r: _seconds(r["serialize_nquads_s"]))
    row("median query latency on the store", lambda r: f"{r['summary']['median_store_ms']:.1f} ms")
    row("median rdflib / store ratio", lambda r: f"{r['summary']['median_rdflib_to_store_ratio']}x")
    head = results[0]
    lines.append("")
    lines.append(
        f"Runs: median of {head['runs']} (queries, baseline), {head['extract_runs']} extraction "
        f"run(s); {head['processes']} extraction process(es); {head['cpu_count']} CPUs. Extraction and "
        f"baseline are timed in pairs on the same {PAIRED_CHUNK}-record chunks (one process), so load "
        "from other jobs slows both alike."
    )
    lines.append("")
    names = sorted({name for r in results for name in r["queries"]})
    lines.append(
        "| query | "
        + " | ".join(f"store ms ({r['trials']:,}) | rdflib ms ({r['trials']:,})" for r in results)
        + " |"
    )
    lines.append("|---|" + "---:|---:|" * len(results))
    for name in names:
        cells = []
        for r in results:
            q = r["queries"].get(name, {})
            if q.get("store_ms") is not None:
                cells.append(f"{q['store_ms']:.1f}")
            else:
                cells.append(f"> {q['store_timeout_s']:g} s" if q.get("store_timeout_s") else "n/a")
            if q.get("rdflib_ms") is not None:
                ratio = f" ({q['ratio']}x)" if q.get("ratio") is not None else ""
                cells.append(f"{q['rdflib_ms']:.1f}{ratio}")
            else:
                cells.append(f"> {q['rdflib_timeout_s']:g} s" if q.get("rdflib_timeout_s") else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


BENCH_START = "<!-- bench:start (written by `make bench`) -->"
BENCH_END = "<!-- bench:end -->"


def replace_marked_block(text: str, body: str) -> str:
    """``text`` with what stands between the bench markers replaced by ``body`` (markers kept)."""
    start, end = text.find(BENCH_START), text.find(BENCH_END)
    if start < 0 or end < start:
        raise CartkgError(f"the README has no `{BENCH_START}` … `{BENCH_END}` block to write the tables into")
    return text[: start + len(BENCH_START)] + "\n" + body.rstrip("\n") + "\n" + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    """Children of the pipeline benchmark, and ``report JSON… `` (the Markdown of saved results)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["build-child"] and len(args) == 5:
        stats = build_child(int(args[1]), int(args[2]), Path(args[3]), Path(args[4]))
        sys.stdout.write(json.dumps(stats) + "\n")
        return 0
    if args[:1] == ["rdflib-child"] and len(args) == 5:
        rdflib_child(Path(args[1]), int(args[2]), Path(args[3]), float(args[4]))
        return 0
    if args[:1] == ["measure"] and len(args) > 1:
        sys.stdout.write(json.dumps(measure_child(args[1:])) + "\n")
        return 0
    if args[:1] == ["report"] and len(args) > 1:
        readme = None
        if args[1:2] == ["--readme"] and len(args) > 3:
            readme, args = Path(args[2]), args[2:]
        results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args[1:]]
        tables = format_pipeline_markdown(results)
        if readme is not None:
            text = readme.read_text(encoding="utf-8")
            readme.write_text(replace_marked_block(text, tables), encoding="utf-8")
        sys.stdout.write(tables)
        return 0
    sys.stderr.write(
        "usage: python -m kg.bench build-child N SEED EXTRACTIONS OUT | "
        "rdflib-child BUILD RUNS OUT | measure CMD… | report [--readme README.md] RESULT.json…\n"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
