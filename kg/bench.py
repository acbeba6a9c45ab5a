"""Benchmarks: the extractor's throughput beside a baseline measured in the same run.

``bench_extract`` times :func:`kg.extract.extract_records` over a corpus (default: every bundled example
record) ``runs`` times after one warm-up run, and in the same process a pure-``re`` dictionary matcher
built from the same vocabularies (one alternation of every surface form of the concept rules, matched
over the same normalized texts; no context, no evidence mapping).  It reports medians, records/s,
words/s and the ratio, so figures from a noisy machine stay comparable within one run.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

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
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


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
