"""The synthetic corpus: deterministic per seed, prefix-stable, synthetic ids, real text recombined with
concepts swapped from the extractor's own vocabularies, and readable back as API v2 JSON Lines."""

from __future__ import annotations

import re

import pytest

from kg.ingest import read_paths
from kg.records import ReadFailure, TrialRecord
from kg.synth import (
    Swapper,
    load_corpus,
    make_corpus,
    split_sentences,
    synthetic_id,
    trie_regex,
    write_corpus,
)


def test_synth_same_seed_same_corpus_and_prefix_stable():
    a = list(make_corpus(30, seed=7))
    assert a == list(make_corpus(30, seed=7))
    assert a[:10] == list(make_corpus(10, seed=7))
    assert a != list(make_corpus(30, seed=8))


def test_synth_ids_are_distinct_and_in_the_synthetic_range():
    ids = [r.trial_id for r in make_corpus(200, seed=1)]
    assert len(set(ids)) == 200
    assert all(re.fullmatch(r"NCT9\d{7}", i) for i in ids)
    assert synthetic_id(0) == "NCT90000000"
    with pytest.raises(ValueError):
        synthetic_id(10_000_000)


def test_synth_text_comes_from_the_bundled_records():
    corpus = load_corpus()
    pool = set(corpus.sentences)
    templates = {r.trial_id: r for r in corpus.records}
    assert templates
    records = list(make_corpus(50, seed=3))
    # every outcome time frame is a real one; most summaries share sentences with the real pool
    frames = {o.time_frame for o in corpus.outcomes}
    assert all(o.time_frame in frames for r in records for o in r.outcomes)
    assert all(r.outcomes for r in records)
    shared = sum(1 for r in records if set(split_sentences(r.brief_summary)) & pool)
    assert shared >= 20


def test_synth_swaps_concepts_within_a_family():
    corpus = load_corpus()
    antigens = next(f for f in corpus.families if f.name == "antigens")
    assert {"CD19", "BCMA"} <= set(antigens.forms)
    import random

    swap = Swapper(random.Random(0), corpus.families)
    out = swap.text("Anti-CD19 CAR-T cells with a 4-1BB domain for lymphoblastic leukemia; CD19+ relapse")
    # the same concept gets the same replacement throughout one trial; the swapped text still names an antigen
    new_antigen = swap.chosen[("antigens", "CD19")]
    assert new_antigen[0] in antigens.forms and new_antigen[1] in antigens.forms[new_antigen[0]]
    assert out.count(new_antigen[1]) == 2


def test_synth_trie_regex_matches_exactly_the_words():
    rx = re.compile("(?:" + trie_regex(["cd19", "cd1", "cd22", "bcma"]) + ")$")
    assert all(rx.match(w) for w in ["cd19", "cd1", "cd22", "bcma"])
    assert not any(rx.match(w) for w in ["cd2", "cd", "bcm", "cd199"])


def test_synth_corpus_written_as_jsonl_reads_back(tmp_path):
    path = tmp_path / "synthetic.jsonl"
    assert write_corpus(25, 4, path) == 25
    items = list(read_paths([str(path)]))
    assert not [i for i in items if isinstance(i, ReadFailure)]
    read = [i for i in items if isinstance(i, TrialRecord)]
    made = list(make_corpus(25, 4))
    assert [r.trial_id for r in read] == [r.trial_id for r in made]
    assert [r.brief_title for r in read] == [r.brief_title for r in made]
    assert [len(r.outcomes) for r in read] == [len(r.outcomes) for r in made]
