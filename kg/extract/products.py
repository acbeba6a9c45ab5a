"""The CAR construct and the products: domains, vector, cell source and type, binder, generation.

A named product (CTL019, KTE-C19, bb2121 …) brings its known design from ``patterns/products.jsonl``;
what the text itself says about the construct fills the rest.  Without a named product, the record's
antigens become one product (single, bispecific, bicistronic, multi-target) or one product per antigen
(sequential, cocktail: separate products given one after the other or together).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kg.extract.mentions import HEADLINE_KINDS, Mention
from kg.extract.strategy import live
from kg.extract.vocab import Vocabulary
from kg.records import Product

SEPARATE_PRODUCTS = ("sequential", "cocktail")
# More specific cell types win over the generic "T" that every "CAR-T" mentions.
CELL_TYPE_ORDER = ("NKT", "γδ T", "NK", "T")


@dataclass
class Choice:
    """A chosen value and the mentions that support it."""

    value: str | None = None
    support: list[Mention] = field(default_factory=list)


def choose_one(mentions: Sequence[Mention]) -> Choice:
    """The value the record states most strongly: headline mentions count three times; ties by position."""
    if not mentions:
        return Choice()
    score: Counter[str] = Counter()
    first: dict[str, tuple] = {}
    for m in mentions:
        score[m.concept] += 3 if m.kind in HEADLINE_KINDS else 1
        first[m.concept] = min(first.get(m.concept, m.position), m.position)
    best = sorted(score, key=lambda c: (-score[c], first[c], c))[0]
    return Choice(best, [m for m in mentions if m.concept == best])


def choose_all(mentions: Sequence[Mention]) -> list[Choice]:
    """Every value mentioned, in order of first mention."""
    groups: dict[str, list[Mention]] = {}
    for m in sorted(mentions, key=lambda m: m.position):
        groups.setdefault(m.concept, []).append(m)
    return [Choice(k, v) for k, v in groups.items()]


def choose_cell_type(mentions: Sequence[Mention]) -> Choice:
    present = {m.concept for m in mentions}
    for kind in CELL_TYPE_ORDER:
        if kind in present:
            return Choice(kind, [m for m in mentions if m.concept == kind])
    return Choice()


@dataclass
class Construct:
    """What the text says about the construct, independent of any named product."""

    costim: list[Choice]
    signaling: list[Choice]
    vector: Choice
    cell_source: Choice
    cell_type: Choice
    binder: Choice
    generation: Choice


def read_construct(mentions: Sequence[Mention]) -> Construct:
    return Construct(
        costim=choose_all(construct_mentions(mentions, "COSTIM")),
        signaling=choose_all(construct_mentions(mentions, "SIGNAL")),
        vector=choose_one(live(mentions, "VECTOR")),
        cell_source=choose_one(live(mentions, "SOURCE")),
        cell_type=choose_cell_type(live(mentions, "CELLTYPE")),
        binder=choose_one(live(mentions, "BINDER")),
        generation=choose_one(live(mentions, "GENERATION")),
    )


def construct_mentions(mentions: Sequence[Mention], label: str) -> list[Mention]:
    """Domain mentions that describe a construct (not markers such as "CD28+ T cells")."""
    return [m for m in live(mentions, label) if m.cls != "marker"]


def named_products(mentions: Sequence[Mention], vocab: Vocabulary) -> list[tuple[str, dict, list[Mention]]]:
    """Named products mentioned outside background: (name, known design, mentions), in order."""
    groups: dict[str, list[Mention]] = {}
    for m in sorted(live(mentions, "PRODUCT"), key=lambda m: m.position):
        groups.setdefault(m.concept, []).append(m)
    return [(name, vocab.rule(ms[0].rule).design, ms) for name, ms in groups.items()]


def build_products(
    antigens: Sequence[str],
    strategy: str | None,
    construct: Construct,
    named: Sequence[tuple[str, dict, list[Mention]]],
) -> list[Product]:
    """One product per product the record distinguishes (see module doc)."""
    text: dict[str, Any] = {
        "costimulatory_domains": tuple(c.value for c in construct.costim if c.value),
        "signaling_domains": tuple(c.value for c in construct.signaling if c.value),
        "vector": construct.vector.value,
        "binder_origin": construct.binder.value,
        "generation": construct.generation.value,
        "cell_source": construct.cell_source.value,
        "cell_type": construct.cell_type.value,
    }
    products: list[Product] = []
    covered: set[str] = set()
    for name, design, _ in named:
        merged: dict[str, Any] = {k: design.get(k) or (text[k] if len(named) == 1 else None) for k in text}
        for k in ("costimulatory_domains", "signaling_domains"):
            merged[k] = tuple(design.get(k) or (text[k] if len(named) == 1 else ()))
        products.append(Product(name=name, antigens=tuple(design.get("antigens", ())), **merged))
        covered.update(design.get("antigens", ()))
    rest = [a for a in antigens if a not in covered]
    if not rest:
        return products
    if strategy in SEPARATE_PRODUCTS or (strategy == "single" and len(rest) > 1):
        groups = [[a] for a in rest]
    else:
        groups = [rest]
    for group in groups:
        products.append(Product(name=None, antigens=tuple(group), **text))
    return products
