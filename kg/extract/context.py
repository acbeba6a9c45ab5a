"""Context of a mention: is an antigen the study's target, background, a measured marker, negated?

The cues are rules of ``patterns/context.jsonl`` (label ``CTX``) and ``patterns/strategy.jsonl``
(label ``CAR``, the words that make a mention part of a CAR's name: "anti-", "CAR-T", "targeting",
"-specific", "-redirected" …).  Each cue says how far it reaches (``scope``: ``forward``, ``backward``,
``both`` or ``sentence``; ``window`` in tokens).  :func:`sort_spans` writes two span groups:

* ``doc.spans["kg"]``: the concept mentions (overlaps resolved, longest first), each with
  ``kb_id_`` set to its context class (:data:`CLASSES`) and ``id_`` to the rule id;
* ``doc.spans["kg_cue"]``: the cues (strategy, design, phase, enrolment, dose groups, relapse …).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from spacy.tokens import Doc, Span

from kg.extract.vocab import CUE_LABELS, ENTITY_LABELS, Vocabulary

ENTITY_KEY = "kg"
CUE_KEY = "kg_cue"

# Context classes, strongest first.
NEGATED, BACKGROUND, TARGETED, MARKER, PLAIN = "negated", "background", "targeted", "marker", "plain"
CLASSES = (NEGATED, BACKGROUND, TARGETED, MARKER, PLAIN)

# Tokens a context cue does not reach across (CAR cues reach across commas: "CD19, CD20 and CD22 CAR-T").
HARD_STOPS = frozenset({";", ":", ".", "!", "?"})
SOFT_STOPS = HARD_STOPS | {",", "(", ")", "but", "while", "whereas", "which", "and then"}
COORDINATORS = frozenset({"and", "or", "/", "&", "-", ",", "+", "plus", "and/or", "\\"})

CONSTRUCT_LABELS = frozenset({"COSTIM", "SIGNAL"})
CAR_NAMED = re.compile(r"(?i)car")

# Labels whose rules should win an overlap of equal length (lower first).
LABEL_PRIORITY = {
    "PRODUCT": 0,
    "THERAPY": 1,
    "ANTIGEN": 2,
    "COSTIM": 3,
    "SIGNAL": 4,
    "DISEASE": 5,
    "VECTOR": 6,
    "SOURCE": 7,
    "CELLTYPE": 8,
    "BINDER": 9,
    "GENERATION": 10,
}


def sort_spans(doc: Doc, raw_key: str, vocab: Vocabulary) -> None:
    """Resolve overlaps and classify every mention of ``doc.spans[raw_key]`` (see module doc)."""
    raw = list(doc.spans[raw_key]) if raw_key in doc.spans else []
    entities = resolve_overlaps([s for s in raw if s.label_ in ENTITY_LABELS])
    groups: dict[tuple[str, str], list[Span]] = {}
    for span in raw:
        if span.label_ in CUE_LABELS:  # overlaps resolved within one kind of cue ("enrol" verb vs count)
            groups.setdefault((span.label_, cue_kind(span, vocab)), []).append(span)
    cues = sorted(
        (c for key in sorted(groups) for c in resolve_overlaps(groups[key])),
        key=lambda s: (s.start, s.end, s.label_, s.id_),
    )
    sent_of = sentence_index(doc)
    classes = [classify(doc, ent, cues, sent_of, vocab) for ent in entities]
    propagate_coordination(doc, entities, classes)
    doc.spans[ENTITY_KEY] = [
        Span(doc, e.start, e.end, label=e.label_, kb_id=cls, span_id=e.id_)
        for e, cls in zip(entities, classes, strict=True)
    ]
    doc.spans[CUE_KEY] = cues
    if raw_key in doc.spans:
        del doc.spans[raw_key]


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep the longest of overlapping mentions (ties: label priority, then rule id); sorted by start."""
    ranked = sorted(
        spans, key=lambda s: (-(s.end - s.start), s.start, LABEL_PRIORITY.get(s.label_, 99), s.id_)
    )
    taken: set[int] = set()
    kept = []
    for s in ranked:
        if any(i in taken for i in range(s.start, s.end)):
            continue
        kept.append(s)
        taken.update(range(s.start, s.end))
    return sorted(kept, key=lambda s: (s.start, s.end))


def sentence_index(doc: Doc) -> list[int]:
    """Sentence number of every token."""
    out = [0] * len(doc)
    for n, sent in enumerate(doc.sents):
        for i in range(sent.start, sent.end):
            out[i] = n
    return out


def classify(doc: Doc, ent: Span, cues: Sequence[Span], sent_of: list[int], vocab: Vocabulary) -> str:
    """The context class of one mention (strongest class whose cue reaches it)."""
    found: set[str] = set()
    sent = sent_of[ent.start]
    own_sentence = False
    background_sentence = False
    for cue in cues:
        if sent_of[cue.start] != sent:
            continue
        rule = vocab.rule(cue.id_)
        if cue.label_ == "CTX":
            kind = rule.concepts[0]
            if rule.scope == "sentence":
                if kind == "own":
                    own_sentence = True
                elif kind == "background":
                    background_sentence = True
                continue
            if reaches(doc, cue, ent, rule.scope or "forward", rule.window, SOFT_STOPS):
                found.add(kind)
        elif cue.label_ == "CAR" and ent.label_ == "ANTIGEN":
            if reaches(doc, cue, ent, rule.scope or "both", rule.window, HARD_STOPS):
                found.add("car")
    if ent.label_ == "ANTIGEN" and CAR_NAMED.search(ent.text):
        found.add("car")  # "CAR19", "CART-33", "4SCAR-GD2": the mention names a CAR itself
    if "negation" in found:
        return NEGATED
    if "history" in found or "negative_marker" in found:
        return BACKGROUND
    if "drug" in found and not CAR_NAMED.search(ent.text):
        return BACKGROUND
    if "after" in found and not sequential_sentence(cues, sent_of, sent, vocab):
        # "relapsed after CD19 CAR-T" is history; "CD22 CAR-T after CD19 CAR-T" in a sequential design is not
        return BACKGROUND
    if background_sentence and not own_sentence:
        return BACKGROUND
    if ent.label_ in CONSTRUCT_LABELS:
        if "manufacturing" in found:  # "anti-CD3/CD28 beads": activation reagents, not the CAR's domains
            return BACKGROUND
        if "positive_marker" in found or "measured" in found:  # "CD28+ T cells"
            return MARKER
        return PLAIN
    if ent.label_ != "ANTIGEN":
        return PLAIN
    if "car" in found:
        return TARGETED
    if "positive_marker" in found or "measured" in found:
        return MARKER
    return PLAIN


def reaches(doc: Doc, cue: Span, ent: Span, scope: str, window: int, stops: frozenset[str]) -> bool:
    """Does ``cue`` reach ``ent`` within ``window`` tokens in ``scope`` without crossing a stop token?"""
    if scope in ("forward", "both") and ent.start >= cue.end:
        gap = range(cue.end, ent.start)
        if ent.start - cue.end <= window and not any(doc[i].lower_ in stops for i in gap):
            return True
    if scope in ("backward", "both") and ent.end <= cue.start:
        gap = range(ent.end, cue.start)
        if cue.start - ent.end <= window and not any(doc[i].lower_ in stops for i in gap):
            return True
    return False


def propagate_coordination(doc: Doc, entities: list[Span], classes: list[str]) -> None:
    """Coordinated antigens ("CD19 and CD22 …", "CD19/CD22") share the targeted class."""
    n = len(entities)
    i = 0
    while i < n:
        j = i
        while (
            j + 1 < n
            and entities[j].label_ == "ANTIGEN"
            and entities[j + 1].label_ == "ANTIGEN"
            and is_coordination(doc, entities[j].end, entities[j + 1].start)
        ):
            j += 1
        group = range(i, j + 1)
        if j > i and any(classes[k] == TARGETED for k in group):
            for k in group:
                if classes[k] in (MARKER, PLAIN):
                    classes[k] = TARGETED
        i = j + 1


def is_coordination(doc: Doc, start: int, end: int) -> bool:
    """Do tokens ``start:end`` only join two mentions ("and", ",", "/", "or", a short parenthesis)?"""
    depth = 0
    outside = 0
    for k in range(start, end):
        text = doc[k].lower_
        if text == "(":
            depth += 1
        elif text == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            if text not in COORDINATORS:
                return False
            outside += 1
    return outside <= 2 and end - start <= 8


def sequential_sentence(cues: Sequence[Span], sent_of: list[int], sent: int, vocab: Vocabulary) -> bool:
    """Does sentence ``sent`` describe a sequential design (a ``sequential`` strategy cue)?"""
    return any(
        c.label_ == "STRATEGY" and sent_of[c.start] == sent and vocab.rule(c.id_).concepts[0] == "sequential"
        for c in cues
    )


def cue_kind(span: Span, vocab: Vocabulary) -> str:
    """Cues of one kind compete for a span: a design flag (true vs false), an enrolment verb vs a count,
    one context kind; strategy cues all compete ("bispecific antibody" is no strategy at all)."""
    if span.label_ in ("DESIGN", "ENROLL", "CTX"):
        return vocab.rule(span.id_).concepts[0].partition("=")[0]  # "randomized=false" → "randomized"
    return ""
