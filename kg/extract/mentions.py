"""From processed ``Doc``s back to the record: mentions and cues with original-text offsets.

Each free-text field of a record is processed as its own ``Doc`` (on the normalized text).  This
module turns the span groups written by the pipeline into plain :class:`Mention` values that carry
the field path, the kind of field (title, intervention, summary …), the sentence, the context class,
and the ORIGINAL character span (via :meth:`kg.text.NormalizedText.to_original`), so that evidence
always quotes the record exactly as read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spacy.tokens import Doc, Span

from kg.extract.context import CUE_KEY, ENTITY_KEY, PLAIN
from kg.extract.vocab import Vocabulary
from kg.records import Evidence, TrialRecord
from kg.text import NormalizedText, normalize

# Kinds of field, in the order their evidence is trusted for the study's own product.
TITLE, INTERVENTION, KEYWORD, CONDITION, SUMMARY, DESCRIPTION, INTERVENTION_DESC, OUTCOME = (
    "title",
    "intervention",
    "keyword",
    "condition",
    "summary",
    "description",
    "intervention_desc",
    "outcome",
)
HEADLINE_KINDS = (TITLE, INTERVENTION, KEYWORD)

def _load_number_words() -> dict[str, int]:
    """Spelled numbers from ``patterns/number_words.json`` (shared with the time-frame parser)."""
    from kg.extract.timeframe import load_json

    data = load_json("number_words.json")
    return {**data["units"], **data["tens"], **data["scales"]}


NUMBER_WORDS = _load_number_words()


@dataclass(frozen=True)
class FieldText:
    """One field of a record as the pipeline saw it."""

    field: str
    kind: str
    norm: NormalizedText
    sentences: tuple[tuple[int, int], ...]  # normalized char spans of the sentences


@dataclass(frozen=True)
class Mention:
    """A concept mention or a cue in one field."""

    label: str
    concepts: tuple[str, ...]
    rule: str
    field: str
    kind: str
    cls: str  # context class (kg.extract.context.CLASSES); "plain" for cues
    sent: int
    tok_start: int
    tok_end: int
    char_start: int  # normalized text offsets
    char_end: int
    start: int  # original text offsets
    end: int
    text: str  # original text slice
    number: float | None = None  # for count cues: the number they state

    @property
    def concept(self) -> str:
        return self.concepts[0]

    @property
    def position(self) -> tuple[int, str, int]:
        return (KIND_ORDER.get(self.kind, 99), self.field, self.char_start)

    def evidence(self, slot: str, value: str) -> Evidence:
        return Evidence(
            slot=slot,
            value=value,
            field=self.field,
            start=self.start,
            end=self.end,
            text=self.text,
            rule=self.rule,
        )


KIND_ORDER = {
    k: i
    for i, k in enumerate(
        (TITLE, INTERVENTION, KEYWORD, CONDITION, SUMMARY, DESCRIPTION, INTERVENTION_DESC, OUTCOME)
    )
}


def field_kind(path: str) -> str:
    """The kind of a field path from :meth:`TrialRecord.text_fields`."""
    if path in ("brief_title", "official_title"):
        return TITLE
    if path == "brief_summary":
        return SUMMARY
    if path == "detailed_description":
        return DESCRIPTION
    if path.startswith("conditions["):
        return CONDITION
    if path.startswith("keywords["):
        return KEYWORD
    if path.startswith("interventions["):
        return INTERVENTION if path.endswith(".name") else INTERVENTION_DESC
    return OUTCOME


def record_fields(record: TrialRecord) -> list[tuple[str, NormalizedText]]:
    """The record's free-text fields, normalized (the unit the pipeline processes)."""
    return [(path, normalize(text)) for path, text in record.text_fields()]


def read_doc(doc: Doc, path: str, norm: NormalizedText, vocab: Vocabulary) -> tuple[FieldText, list[Mention]]:
    """Turn a processed doc of field ``path`` into its :class:`FieldText` and mentions (entities and cues)."""
    kind = field_kind(path)
    sent_of: dict[int, int] = {}
    sents = []
    for n, sent in enumerate(doc.sents):
        sents.append((sent.start_char, sent.end_char))
        for i in range(sent.start, sent.end):
            sent_of[i] = n
    out: list[Mention] = []
    for key in (ENTITY_KEY, CUE_KEY):
        if key not in doc.spans:
            continue
        for span in doc.spans[key]:
            out.append(make_mention(span, path, kind, norm, sent_of, vocab, key == ENTITY_KEY))
    out.sort(key=lambda m: (m.char_start, m.char_end, m.label, m.rule))
    return FieldText(field=path, kind=kind, norm=norm, sentences=tuple(sents)), out


def make_mention(
    span: Span,
    path: str,
    kind: str,
    norm: NormalizedText,
    sent_of: dict[int, int],
    vocab: Vocabulary,
    entity: bool,
) -> Mention:
    rule = vocab.rule(span.id_)
    start, end = norm.to_original(span.start_char, span.end_char)
    return Mention(
        label=span.label_,
        concepts=rule.concepts,
        rule=rule.id,
        field=path,
        kind=kind,
        cls=span.kb_id_ if entity else PLAIN,
        sent=sent_of.get(span.start, 0),
        tok_start=span.start,
        tok_end=span.end,
        char_start=span.start_char,
        char_end=span.end_char,
        start=start,
        end=end,
        text=norm.original[start:end],
        number=span_number(span),
    )


_NUM = re.compile(r"^\d+(?:\.\d+)?$")


def span_number(span: Span) -> float | None:
    """The first number a span states (digits or a number word), if any."""
    for tok in span:
        if _NUM.match(tok.text):
            return float(tok.text)
        if tok.lower_ in NUMBER_WORDS:
            return float(NUMBER_WORDS[tok.lower_])
    return None
