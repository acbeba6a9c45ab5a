"""The spaCy pipeline: tokenizer rules, sentences, registered components, the concept ruler."""

from __future__ import annotations

import pytest
import spacy
from spacy.language import Language

from kg.extract.pipeline import RAW_KEY, build_pipeline, get_pipeline, tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CD19/CD22", ["CD19", "/", "CD22"]),
        ("CD19-CD22", ["CD19", "-", "CD22"]),
        ("CD19&CD22", ["CD19", "&", "CD22"]),
        ("CD19\\&CD22", ["CD19", "\\&", "CD22"]),
        ("4-1BB", ["4-1BB"]),
        ("41BB", ["41BB"]),
        ("CD3ζ", ["CD3", "ζ"]),
        ("TCRζ", ["TCR", "ζ"]),
        ("5x10\\^6/kg", ["5", "x", "10", "\\^", "6", "/", "kg"]),
        ("3\\~12 cases", ["3", "\\~", "12", "cases"]),
        (
            "5x10^6/kg-5x10^7/kg",
            ["5", "x", "10", "^", "6", "/", "kg", "-", "5", "x", "10", "^", "7", "/", "kg"],
        ),
        ("1×10^6", ["1", "×", "10", "^", "6"]),
        ("CART-19", ["CART", "-", "19"]),
        ("TCRζ:4-1BB,administered", ["TCR", "ζ", ":", "4-1BB", ",", "administered"]),
        ("CD19+ ALL", ["CD19", "+", "ALL"]),
        ("4SCAR19/22", ["4SCAR19", "/", "22"]),
        ("differentiation 33(CD33)", ["differentiation", "33", "(", "CD33", ")"]),
    ],
)
def test_tokenizer_splits_car_notation(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


def test_pipeline_components_are_registered_factories() -> None:
    nlp = get_pipeline()
    assert nlp.pipe_names == ["sentencizer", "kg_concept_ruler", "kg_context"]
    for name in ("kg_concept_ruler", "kg_context"):
        assert Language.has_factory(name)


def test_pipeline_is_blank_english_without_trained_components() -> None:
    nlp = build_pipeline()
    assert nlp.lang == "en"
    assert not any(getattr(proc, "model", None) for _, proc in nlp.pipeline)
    assert isinstance(nlp, spacy.language.Language)


def test_sentences_split_on_periods_and_semicolons() -> None:
    doc = get_pipeline()("CD19 CAR-T has achieved remarkable results. We will give CD22 CAR-T; then CD20.")
    assert [s.text for s in doc.sents] == [
        "CD19 CAR-T has achieved remarkable results.",
        "We will give CD22 CAR-T;",
        "then CD20.",
    ]


def test_context_component_sorts_and_removes_raw_matches() -> None:
    doc = get_pipeline()("Patients who failed CD19 CAR-T will receive anti-CD22 CAR-T cells.")
    assert RAW_KEY not in doc.spans
    found = {(s.text, s.label_, s.kb_id_) for s in doc.spans["kg"] if s.label_ == "ANTIGEN"}
    assert found == {("CD19", "ANTIGEN", "background"), ("CD22", "ANTIGEN", "targeted")}
    assert all(s.id_ for s in doc.spans["kg"])  # every span names its rule
