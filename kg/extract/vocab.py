"""The rules and vocabularies of the extractor, loaded from ``kg/extract/patterns/*.jsonl``.

Every line of a pattern file is one rule: ``id`` (stable, unique), ``label`` and ``pattern`` (the keys
spaCy's ``SpanRuler`` reads) and ``concept`` (the normalized value the rule stands for: a string, or a
list of strings when one phrase names several, e.g. "CD19/22").  Optional keys carry what a family
needs: ``xref`` (HGNC / MONDO / NCIt identifier of the concept), ``parent`` (a broader disease class),
``scope`` and ``window`` (how far a context cue reaches), ``design`` (a product's known construct).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from kg.errors import CartkgError

PATTERN_DIR = Path(__file__).resolve().parent / "patterns"

# The files this extractor owns (the outcome annotator keeps its own pattern files in the same folder).
PATTERN_FILES = (
    "antigens.jsonl",
    "cells.jsonl",
    "constructs.jsonl",
    "context.jsonl",
    "design.jsonl",
    "diseases.jsonl",
    "domains.jsonl",
    "products.jsonl",
    "strategy.jsonl",
    "therapies.jsonl",
)

ENTITY_LABELS = frozenset(
    {"ANTIGEN", "COSTIM", "SIGNAL", "PRODUCT", "DISEASE", "VECTOR", "SOURCE", "CELLTYPE", "BINDER",
     "GENERATION", "THERAPY", "RR", "ARMOR"}
)
CUE_LABELS = frozenset(
    {"CAR", "CTX", "STRATEGY", "DESIGN", "PHASE", "ENROLL", "DOSE_LEVELS", "COMBINE"}
)
KNOWN_KEYS = frozenset(
    {"id", "label", "pattern", "concept", "xref", "parent", "scope", "window", "design", "note"}
)
PRODUCT_DESIGN_KEYS = frozenset(
    {"antigens", "costimulatory_domains", "signaling_domains", "vector", "binder_origin", "generation",
     "cell_source", "cell_type", "targeting_strategy"}
)


class PatternError(CartkgError):
    """A pattern file line that breaks the format (names file, line and problem)."""


@dataclass(frozen=True)
class Rule:
    id: str
    label: str
    pattern: Any
    concepts: tuple[str, ...]
    xref: str | None = None
    parent: str | None = None
    scope: str | None = None
    window: int = 0
    design: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Vocabulary:
    rules: dict[str, Rule]

    def ruler_patterns(self) -> list[dict[str, Any]]:
        """The patterns in the form ``SpanRuler.add_patterns`` takes, sorted by id."""
        return [
            {"id": r.id, "label": r.label, "pattern": r.pattern}
            for r in sorted(self.rules.values(), key=lambda r: r.id)
        ]

    def rule(self, rule_id: str) -> Rule:
        return self.rules[rule_id]

    def by_label(self, label: str) -> Iterator[Rule]:
        return (r for r in self.rules.values() if r.label == label)

    def parents(self) -> dict[str, str]:
        """Disease class → its broader class (from the ``parent`` key)."""
        out: dict[str, str] = {}
        for r in self.by_label("DISEASE"):
            if r.parent:
                for c in r.concepts:
                    out[c] = r.parent
        return out


def read_rules(path: Path) -> list[Rule]:
    """Parse one pattern file; raise :class:`PatternError` naming the line on any problem."""
    rules = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{lineno}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PatternError(f"{where}: not JSON ({exc.msg})") from exc
        unknown = set(d) - KNOWN_KEYS
        if unknown:
            raise PatternError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("id", "label", "pattern", "concept"):
            if key not in d:
                raise PatternError(f"{where}: missing {key!r}")
        concepts = d["concept"] if isinstance(d["concept"], list) else [d["concept"]]
        design = d.get("design") or {}
        if set(design) - PRODUCT_DESIGN_KEYS:
            raise PatternError(f"{where}: unknown design keys {sorted(set(design) - PRODUCT_DESIGN_KEYS)}")
        rules.append(
            Rule(
                id=d["id"],
                label=d["label"],
                pattern=d["pattern"],
                concepts=tuple(str(c) for c in concepts),
                xref=d.get("xref"),
                parent=d.get("parent"),
                scope=d.get("scope"),
                window=int(d.get("window", 0)),
                design=design,
            )
        )
    return rules


def build_vocabulary(paths: list[Path]) -> Vocabulary:
    rules: dict[str, Rule] = {}
    for path in paths:
        for rule in read_rules(path):
            if rule.id in rules:
                raise PatternError(f"{path.name}: duplicate rule id {rule.id!r}")
            if rule.label not in ENTITY_LABELS | CUE_LABELS:
                raise PatternError(f"{path.name}: rule {rule.id!r} has unknown label {rule.label!r}")
            rules[rule.id] = rule
    return Vocabulary(rules=rules)


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """All pattern files of the package (cached per process)."""
    return build_vocabulary([PATTERN_DIR / name for name in PATTERN_FILES])
