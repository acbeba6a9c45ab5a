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
from typing import Any, cast

import spacy
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, Span
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

from kg.extract import context, vocab

RAW_KEY = "kg_raw"  # everything the ruler matched (entities and cues, overlapping)

# Infixes added to spaCy's English defaults:
EXTRA_INFIXES = (
    # CD19/CD22, CD19&CD22, CD19\&CD22
    r"(?<=[0-9A-Za-z\u0370-\u03ff])(?:\\?[/&+]|\\)(?=[0-9A-Za-z\u0370-\u03ff])",
    r"(?<=[0-9A-Za-z\u0370-\u03ff])[:;](?=[0-9A-Za-z\u0370-\u03ff])",  # TCRζ:4-1BB
    r"(?<=[0-9A-Za-z])[ζ](?=[:;,/\-])",  # TCRζ:4-1BB → TCR ζ : 4-1BB (as CD3ζ alone → CD3 ζ)
    r"(?<=[0-9]),(?=[A-Za-z])",  # 4-1BB,administered
    r"(?<=[0-9A-Za-z])[()](?=[0-9A-Za-z])",  # differentiation 33(CD33), CAR(CD19)
    r"(?<=[A-Za-z])-(?=[0-9])",  # CART-19, Her-2, KTE-C19 stays ("C19"), JNJ-68284528
    r"(?<=[0-9])[xX×*](?=10)",  # 5x10^6, 1×10^6 → 5 x 10 ^ 6
    r"(?<=[0-9])\\?\^(?=[0-9])",  # 10^6, 10\^6 (the registry's escaped caret)
    r"(?<=[0-9])\\?~(?=[0-9])",  # 3~12, 3\~12
    r"(?<=[0-9%])-(?=[0-9])",  # 5x10^6/kg-5x10^7/kg, 10%-30%; 4-1BB is a special case
)
EXTRA_PREFIXES = (r"/", r"~", r"\\")
EXTRA_SUFFIXES = (r"[ζξ]", r"(?<=[0-9])\+", r"(?<=[0-9])[\u207a]")  # CD3ζ → CD3 ζ; CD19+ → CD19 +
# Kept whole wherever they stand between spaces or punctuation.
SPECIAL_CASES = ("4-1BB", "4-1bb", "4-1BBζ", "B7-H3", "B7-H4", "IL-13Rα2", "r/r", "R/R", "i.v.", "3+3")


def build_tokenizer_rules(nlp: Language) -> None:
    """Install the infix/prefix/suffix rules and special cases on ``nlp.tokenizer``."""
    tok = cast(Tokenizer, nlp.tokenizer)
    defaults = cast(Any, nlp.Defaults)
    tok.infix_finditer = compile_infix_regex(tuple(defaults.infixes) + EXTRA_INFIXES).finditer
    tok.prefix_search = compile_prefix_regex(tuple(defaults.prefixes) + EXTRA_PREFIXES).search
    tok.suffix_search = compile_suffix_regex(EXTRA_SUFFIXES + tuple(defaults.suffixes)).search
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
def make_concept_ruler(nlp: Language, name: str, spans_key: str) -> ConceptRuler:
    """Every rule of ``kg/extract/patterns`` (overlaps kept; :mod:`kg.extract.context` resolves them)."""
    return ConceptRuler(nlp, spans_key, vocab.load_vocabulary())


class ConceptRuler:
    """A span ruler for our pattern files: plain phrases go to hash-based ``PhraseMatcher``s (LOWER and
    ORTH), patterns with token attributes or operators to a ``Matcher``.  (spaCy's ``SpanRuler`` runs
    every pattern through the ``Matcher``, which calls Python for each set/regex predicate on each
    token: about fifty times slower on our ~1,500 rules.)"""

    def __init__(self, nlp: Language, spans_key: str, vocabulary: vocab.Vocabulary) -> None:
        self.spans_key = spans_key
        self.matchers = build_matchers(nlp, vocabulary)
        self.labels = {r.id: r.label for r in vocabulary.rules.values()}

    def __call__(self, doc: Doc) -> Doc:
        doc.spans[self.spans_key] = match_rules(doc, self.matchers, self.labels)
        return doc


def build_matchers(nlp: Language, vocabulary: vocab.Vocabulary) -> list[Any]:
    lower = PhraseMatcher(nlp.vocab, attr="LOWER")
    orth = PhraseMatcher(nlp.vocab, attr="ORTH")
    token_patterns: list[tuple[str, list[dict[str, Any]]]] = []
    for rule in sorted(vocabulary.rules.values(), key=lambda r: r.id):
        pattern = vocab.compile_pattern(rule.pattern)
        forms = vocab.phrase_forms(pattern)
        if forms is None:
            token_patterns.append((rule.id, pattern))
            continue
        attr, sequences = forms
        target = lower if attr == "LOWER" else orth
        variants = {tuple(words) for words in sequences}
        # a form our tokenizer splits ("ALLO-501A" → ALLO - 501A) also matches as the split tokens
        variants |= {tuple(t.text for w in words for t in nlp.tokenizer(w)) for words in sequences}
        target.add(
            rule.id, [Doc(nlp.vocab, words=list(v), spaces=[False] * len(v)) for v in sorted(variants)]
        )
    return [lower, orth, GatedMatcher(nlp, token_patterns)]


# --------------------------------------------------------------------------- the gated token Matcher
# spaCy's Matcher tries every token pattern at every token and calls Python for each set/regex predicate
# (about 40 % of extraction time on long texts).  Each pattern implies words its match must contain (a
# required token's ORTH/LOWER value, one of its IN values, or the core of its anchored REGEX); a doc whose
# text lacks them cannot match, so each doc runs a Matcher of only the patterns whose words it contains.
# The gates are derived from the patterns themselves: the rules stay data.

Gate = tuple[str, Any]  # ("orth"|"lower", word) | ("orth_any"|"lower_any", words) | ("regex", compiled)


class GatedMatcher:
    """A ``Matcher`` over token patterns that skips, per doc, the patterns the doc's text rules out."""

    def __init__(self, nlp: Language, patterns: list[tuple[str, list[dict[str, Any]]]]) -> None:
        self.vocab = nlp.vocab
        self.patterns = dict(patterns)
        self.gates = [(rule_id, pattern_gates(pattern)) for rule_id, pattern in patterns]
        self._matchers: dict[frozenset[str], Matcher] = {}

    def __call__(self, doc: Doc) -> list[tuple[int, int, int]]:
        text = doc_text(doc)
        lower = text.lower()
        key = frozenset(rule_id for rule_id, gates in self.gates if all(passes(g, text, lower) for g in gates))
        if not key:
            return []
        return cast(list[tuple[int, int, int]], self._matcher(key)(doc))

    def _matcher(self, key: frozenset[str]) -> Matcher:
        matcher = self._matchers.get(key)
        if matcher is None:
            if len(self._matchers) >= 2048:
                self._matchers.clear()
            matcher = Matcher(self.vocab)
            for rule_id in sorted(key):
                matcher.add(rule_id, [self.patterns[rule_id]])
            self._matchers[key] = matcher
        return matcher


def pattern_gates(pattern: list[dict[str, Any]]) -> list[Gate]:
    """Conditions on a doc's text that every match of ``pattern`` satisfies (from its required tokens)."""
    gates: list[Gate] = []
    for token in pattern:
        op = str(token.get("OP", ""))
        if op not in ("", "+") and not op.startswith("{1"):
            continue  # optional or negated token: implies nothing
        for attr, value in token.items():
            gate = attribute_gate(attr, value)
            if gate is not None:
                gates.append(gate)
    return gates


def attribute_gate(attr: str, value: Any) -> Gate | None:
    kind = {"ORTH": "orth", "TEXT": "orth", "LOWER": "lower"}.get(attr)
    if kind is None:
        return None
    if isinstance(value, str):
        words: tuple[str, ...] = (value,)
    elif isinstance(value, dict) and set(value) == {"IN"}:
        words = tuple(str(v) for v in value["IN"])
    elif isinstance(value, dict) and set(value) == {"REGEX"} and kind == "orth":
        rx = regex_core(str(value["REGEX"]))
        return ("regex", rx) if rx is not None else None
    else:
        return None
    if kind == "lower":
        words = tuple(w.lower() for w in words)
    if any(ch in w for w in words for ch in "Σσς"):  # str.lower of Σ depends on the next letter
        return None
    return (kind, words[0]) if len(words) == 1 else (kind + "_any", words)


def regex_core(regex: str) -> re.Pattern[str] | None:
    """``^core$`` (optionally after inline flags) as a search for ``core``; None for other regexes."""
    flags = ""
    m = re.match(r"\(\?[a-zA-Z]+\)", regex)
    if m:
        flags, regex = m.group(0), regex[m.end() :]
    if not (regex.startswith("^") and regex.endswith("$") and not regex.endswith("\\$")):
        return None
    core = regex[1:-1]
    if "^" in core or "$" in core or "\\b" in core or "\\B" in core:
        return None
    return re.compile(flags + core)


def passes(gate: Gate, text: str, lower: str) -> bool:
    kind, value = gate
    if kind == "orth":
        return bool(value in text)
    if kind == "lower":
        return bool(value in lower)
    if kind == "orth_any":
        return any(w in text for w in value)
    if kind == "lower_any":
        return any(w in lower for w in value)
    return value.search(text) is not None


def match_rules(doc: Doc, matchers: list[Any], labels: dict[str, str]) -> list[Span]:
    """All matches of all rules, as spans labelled by rule label with the rule id as ``id_``; sorted."""
    found = set()
    for m in matchers:
        for match_id, start, end in m(doc):
            found.add((start, end, doc.vocab.strings[match_id]))
    return [
        Span(doc, start, end, label=labels[rule_id], span_id=rule_id) for start, end, rule_id in sorted(found)
    ]


TEXT_KEY = "kg_text"  # doc.user_data key of the text a doc was made from


class TextKeepingTokenizer:
    """Our tokenizer, noting each doc's text in ``doc.user_data`` (``Doc.text`` rebuilds the text token by
    token in Python, which the gated Matcher would otherwise pay for every doc)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> Doc:
        doc = self.tokenizer(text)
        doc.user_data[TEXT_KEY] = text
        return doc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


def doc_text(doc: Doc) -> str:
    text = doc.user_data.get(TEXT_KEY)
    return text if isinstance(text, str) else doc.text


def build_pipeline() -> Language:
    """A fresh pipeline: tokenizer rules, ``sentencizer``, ``kg_concept_ruler``, ``kg_context``."""
    nlp = spacy.blank("en")
    build_tokenizer_rules(nlp)
    nlp.tokenizer = TextKeepingTokenizer(cast(Tokenizer, nlp.tokenizer))  # type: ignore[assignment]
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
