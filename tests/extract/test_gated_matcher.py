"""The gated token Matcher finds exactly what spaCy's plain Matcher finds over the same patterns."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.matcher import Matcher

from kg.extract.pipeline import GatedMatcher, get_pipeline, pattern_gates, regex_core
from kg.ingest import read_paths
from kg.resources import examples_dir


@pytest.fixture(scope="module")
def matchers():
    nlp = get_pipeline()
    gated = nlp.get_pipe("kg_concept_ruler").matchers[2]
    assert isinstance(gated, GatedMatcher) and gated.patterns
    plain = Matcher(nlp.vocab)
    for rule_id, pattern in gated.patterns.items():
        plain.add(rule_id, [pattern])
    return nlp, gated, plain


def test_same_matches_as_the_plain_matcher_on_every_bundled_text(matchers):
    nlp, gated, plain = matchers
    texts = [text for r in read_paths([str(examples_dir())]) for _, text in r.text_fields()]
    found = 0
    for text in texts:
        doc = nlp.make_doc(text)
        expected = sorted(plain(doc))
        assert sorted(gated(doc)) == expected, text[:200]
        found += len(expected)
    assert found > 100  # the token patterns do fire on the bundled records


WORDS = ["patients", "enrolled", "total", "of", "12", "three", "dose", "levels", "low", "high", "and",
         "universal", "CAR", "T", "-", "cells", "CD3", "ζ", "zeta", "TCR", "gd", "γδ", "natural", "killer",
         "T-cells", "combination", "antibody", "based", "Lewis", "Y", "c", "Met", "b", "precursor", "ALL",
         "4scar", "sCAR", "undergo", "leukapheresis", "patient", "'s", "own", ",", "."]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=25), st.lists(st.booleans(), max_size=25))
def test_same_matches_on_generated_word_salad(matchers, words, glue):
    nlp, gated, plain = matchers
    text = "".join(w + (" " if (glue[i] if i < len(glue) else True) else "") for i, w in enumerate(words))
    doc = nlp.make_doc(text)
    assert sorted(gated(doc)) == sorted(plain(doc))


def test_gates_come_from_required_tokens_only():
    pattern = [{"LOWER": "total"}, {"ORTH": "-", "OP": "?"}, {"LOWER": {"IN": ["A", "b"]}},
               {"TEXT": {"REGEX": "(?i)^\\d?scar$"}}, {"LIKE_NUM": True}]
    gates = pattern_gates(pattern)
    assert gates[:2] == [("lower", "total"), ("lower_any", ("a", "b"))]
    assert gates[2][0] == "regex" and gates[2][1].pattern == "(?i)\\d?scar"
    assert len(gates) == 3


@pytest.mark.parametrize(
    ("regex", "core"),
    [("^(ζ|zeta|z)$", "(ζ|zeta|z)"), ("(?i)^met$", "(?i)met"), ("^a$|^b$", None), ("[^a]", None),
     ("^ab", None), ("^x\\b$", None)],
)
def test_regex_core_only_for_wholly_anchored_regexes(regex, core):
    found = regex_core(regex)
    assert (found.pattern if found else None) == core
    if found:
        re.compile(found.pattern)
