"""Which antigens the study's product targets, and how (single, bispecific, bicistronic, cocktail …).

Mentions are ranked by where they stand and what their context says (see :mod:`kg.extract.context`):

1. *headline*: targeted mentions in a title, an intervention name or a keyword, and the antigens of
   named products (CTL019 → CD19) named there;
2. targeted mentions and named products elsewhere that are not background ("CD19 CAR-T has achieved …",
   "patients who failed CD19 CAR-T") nor negated;
3. other mentions (markers, bare names) in headlines, then elsewhere.

The first non-empty tier wins; a tier-2 antigen joins a tier-1 set when it is coordinated with one of
its antigens ("CD19 and CD20 CAR-T") in a sentence about the study's own product.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kg.extract.context import BACKGROUND, MARKER, NEGATED, PLAIN, TARGETED
from kg.extract.mentions import HEADLINE_KINDS, Mention
from kg.extract.vocab import Vocabulary

LIVE = (TARGETED, MARKER, PLAIN)  # classes that may name the study's own target
STRATEGY_ORDER = ("bicistronic", "bispecific", "cocktail", "sequential")


def live(mentions: Iterable[Mention], label: str) -> list[Mention]:
    """Mentions of ``label`` that are neither background nor negated."""
    return [m for m in mentions if m.label == label and m.cls not in (BACKGROUND, NEGATED)]


def select_antigens(
    mentions: Sequence[Mention], vocab: Vocabulary
) -> tuple[list[str], list[tuple[str, Mention]]]:
    """The target antigens (ordered by first trusted mention) and the mentions that support each."""
    antigen_ms = live(mentions, "ANTIGEN")
    product_ms = live(mentions, "PRODUCT")
    if not product_ms and not any(m.label == "CAR" and m.concept == "car" for m in mentions):
        return [], []  # no CAR anywhere (an antibody or vaccine trial): nothing is a CAR's target
    tiers: list[list[tuple[str, Mention]]] = [[], [], [], []]
    for m in product_ms:
        for concept in vocab.rule(m.rule).design.get("antigens", []):
            tiers[0 if m.kind in HEADLINE_KINDS else 1].append((concept, m))
    for m in antigen_ms:
        headline = m.kind in HEADLINE_KINDS
        if m.cls == TARGETED:
            level = 0 if headline else 1
        else:
            level = 2 if headline else 3
        for concept in m.concepts:
            tiers[level].append((concept, m))
    chosen: list[tuple[str, Mention]] = []
    for rank, tier in enumerate(tiers):
        if tier:
            chosen = list(tier)
            if rank == 0:
                chosen += [(c, m) for c, m in tiers[1] if supports_headline(c, m, tiers[0], mentions)]
            break
    order: dict[str, tuple] = {}
    for concept, m in chosen:
        key = m.position
        if concept not in order or key < order[concept]:
            order[concept] = key
    antigens = sorted(order, key=lambda c: (order[c], c))
    return antigens, [(c, m) for c, m in chosen if c in order]


def supports_headline(
    concept: str, m: Mention, headline: list[tuple[str, Mention]], mentions: Sequence[Mention]
) -> bool:
    """A body antigen joins the headline set when coordinated with a headline antigen in one sentence."""
    known = {c for c, _ in headline}
    if concept in known:
        return True
    same_sentence = [
        x
        for x in mentions
        if x.field == m.field
        and x.sent == m.sent
        and x.label == "ANTIGEN"
        and x.cls == TARGETED
        and x is not m
    ]
    return any(set(x.concepts) & known and abs(x.tok_start - m.tok_end) <= 3 for x in same_sentence)


def select_strategy(
    antigens: Sequence[str], mentions: Sequence[Mention], vocab: Vocabulary
) -> tuple[str | None, list[Mention]]:
    """The targeting strategy and the cue mentions it rests on (none for single / multi-target)."""
    if not antigens:
        return None, []
    if len(antigens) == 1:
        return "single", []
    for m in mentions:  # a named product of known design that carries all the antigens
        if m.label == "PRODUCT" and m.cls in LIVE and vocab.rule(m.rule).design.get("targeting_strategy"):
            design = vocab.rule(m.rule).design
            if set(antigens) <= set(design.get("antigens", ())):
                return design["targeting_strategy"], [m]
    cues = [m for m in mentions if m.label == "STRATEGY" and about_own_product(m, mentions)]
    by_kind: dict[str, list[Mention]] = {}
    for m in cues:
        by_kind.setdefault(m.concept, []).append(m)
    for m in by_kind.get("link", []):
        if links_antigens(m, mentions):
            by_kind.setdefault("sequential", []).append(m)
    for kind in STRATEGY_ORDER:
        if by_kind.get(kind):
            return kind, sorted(by_kind[kind], key=lambda x: x.position)[:1]
    if by_kind.get("basket"):
        return "single", sorted(by_kind["basket"], key=lambda x: x.position)[:1]
    return "multi-target", []


def links_antigens(cue: Mention, mentions: Sequence[Mention]) -> bool:
    """ "CD19 CAR-T followed by CD22 CAR-T": different target antigens on both sides of the cue."""
    same = [
        m
        for m in mentions
        if m.field == cue.field and m.sent == cue.sent and m.label == "ANTIGEN" and m.cls in LIVE
    ]
    before = {c for m in same if m.tok_end <= cue.tok_start for c in m.concepts}
    after = {c for m in same if m.tok_start >= cue.tok_end for c in m.concepts}
    return bool(before and after and (after - before))


def about_own_product(cue: Mention, mentions: Sequence[Mention]) -> bool:
    """A strategy cue counts in a headline, or next to a live antigen or product (same or adjacent
    sentence: "… such as CD22, CD30, etc. may be potential in developing the corresponding CAR-T")."""
    if cue.kind in HEADLINE_KINDS:
        return True
    return any(
        m.field == cue.field
        and abs(m.sent - cue.sent) <= 1
        and m.label in ("ANTIGEN", "PRODUCT")
        and m.cls in LIVE
        for m in mentions
    )
