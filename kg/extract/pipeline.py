"""The spaCy pipeline: a blank English tokenizer tuned for CAR-T text, sentences, a rule-driven span ruler.

No trained model is used (none can be downloaded behind hospital firewalls): ``spacy.blank("en")``
plus tokenizer rules, the rule-based ``sentencizer``, a ``span_ruler`` loaded from the pattern files in
``kg/extract/patterns/`` and the ``kg_context`` component, which sorts each matched concept into a
span group by what its context says (targeted, background, marker, negated).

Components are thin: each is registered with ``@Language.factory`` and calls plain functions in
:mod:`kg.extract.context` and :mod:`kg.extract.vocab`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

from kg.extract import context, vocab

RAW_KEY = "kg_raw"  # everything the ruler matched (entities and cues, overlapping)

# Infixes added to spaCy's English defaults:
EXTRA_INFIXES = (
    r"(?<=[0-9A-Za-z\u0370-\u03ff])(?:\\?[/&+]|\\)(?=[0-9A-Za-z\u0370-\u03ff])",  # CD19/CD22, CD19&CD22, CD19\&CD22
    r"(?<=[0-9A-Za-z\u0370-\u03ff])[:;](?=[0-9A-Za-z\u0370-\u03ff])",  # TCRζ:4-1BB
    r"(?<=[0-9]),(?=[A-Za-z])",  # 4-1BB,administered
    r"(?<=[0-9A-Za-z])[()](?=[0-9A-Za-z])",  # differentiation 33(CD33), CAR(CD19)
    r"(?<=[A-Za-z])-(?=[0-9])",  # CART-19, Her-2, KTE-C19 stays ("C19"), JNJ-68284528
    r"(?<=[0-9])[xX×*](?=10)",  # 5x10^6, 1×10^6 → 5 x 10 ^ 6
    r"(?<=[0-9])~(?=[0-9])",  # 3~12
    r"(?<=[0-9%])-(?=[0-9])",  # 5x10^6/kg-5x10^7/kg, 10%-30%; 4-1BB is a special case
)
EXTRA_PREFIXES = (r"/", r"~", r"\\")
EXTRA_SUFFIXES = (r"[ζξ]", r"(?<=[0-9])\+", r"(?<=[0-9])[\u207a]")  # CD3ζ → CD3 ζ; CD19+ → CD19 +
# Kept whole wherever they stand between spaces or punctuation.
SPECIAL_CASES = ("4-1BB", "4-1bb", "4-1BBζ", "B7-H3", "B7-H4", "IL-13Rα2", "r/r", "R/R", "i.v.", "3+3")


def build_tokenizer_rules(nlp: Language) -> None:
    """Install the infix/prefix/suffix rules and special cases on ``nlp.tokenizer``."""
    tok = nlp.tokenizer
    tok.infix_finditer = compile_infix_regex(tuple(nlp.Defaults.infixes) + EXTRA_INFIXES).finditer
    tok.prefix_search = compile_prefix_regex(tuple(nlp.Defaults.prefixes) + EXTRA_PREFIXES).search
    tok.suffix_search = compile_suffix_regex(EXTRA_SUFFIXES + tuple(nlp.Defaults.suffixes)).search
    for text in SPECIAL_CASES:
        if text.endswith("ζ"):
            tok.add_special_case(text, [{"ORTH": text[:-1]}, {"ORTH": "ζ"}])
        else:
            tok.add_special_case(text, [{"ORTH": text}])


@Language.factory("kg_context", default_config={"raw_key": RAW_KEY})
def make_context(nlp: Language, name: str, raw_key: str) -> ContextComponent:
    return ContextComponent(raw_key)


class ContextComponent:
    """Sorts the ruler's matches into ``doc.spans`` groups (see :func:`kg.extract.context.sort_spans`)."""

    def __init__(self, raw_key: str) -> None:
        self.raw_key = raw_key

    def __call__(self, doc: Doc) -> Doc:
        context.sort_spans(doc, self.raw_key, vocab.load_vocabulary())
        return doc


@Language.factory("kg_concept_ruler", default_config={"spans_key": RAW_KEY})
def make_concept_ruler(nlp: Language, name: str, spans_key: str) -> object:
    """A ``SpanRuler`` holding every pattern file of ``kg/extract/patterns`` (overlaps kept)."""
    from spacy.pipeline import SpanRuler

    ruler = SpanRuler(nlp, name=name, spans_key=spans_key, spans_filter=None, overwrite=True)
    ruler.add_patterns(vocab.load_vocabulary().ruler_patterns())
    return ruler


def build_pipeline() -> Language:
    """A fresh pipeline: tokenizer rules, ``sentencizer``, ``kg_concept_ruler``, ``kg_context``."""
    nlp = spacy.blank("en")
    build_tokenizer_rules(nlp)
    nlp.add_pipe("sentencizer", config={"punct_chars": [".", "!", "?", ";", "。"]})
    nlp.add_pipe("kg_concept_ruler")
    nlp.add_pipe("kg_context")
    return nlp


@lru_cache(maxsize=1)
def get_pipeline() -> Language:
    """The process-wide pipeline (built once; building loads and compiles every pattern)."""
    return build_pipeline()


_SPACE = re.compile(r"\s+")


def tokens(text: str) -> list[str]:
    """Token texts of ``text`` under our tokenizer (for tests and debugging)."""
    return [t.text for t in get_pipeline().tokenizer(text) if not _SPACE.fullmatch(t.text)]
