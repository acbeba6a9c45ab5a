"""The rules and vocabularies of the extractor, loaded from ``kg/extract/patterns/*.jsonl``.

Every line of a pattern file is one rule: ``id`` (stable, unique), ``label`` and ``pattern`` (the keys
spaCy's ``SpanRuler`` reads) and ``concept`` (the normalized value the rule stands for: a string, or a
list of strings when one phrase names several, e.g. "CD19/22").  Optional keys carry what a family
needs: ``xref`` (HGNC / MONDO / NCIt identifier of the concept), ``parent`` (a broader disease class),
``scope`` and ``window`` (how far a context cue reaches), ``design`` (a product's known construct).
"""

from __future__ import annotations

import json
import re
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
    {
        "ANTIGEN",
        "COSTIM",
        "SIGNAL",
        "PRODUCT",
        "DISEASE",
        "VECTOR",
        "SOURCE",
        "CELLTYPE",
        "BINDER",
        "GENERATION",
        "THERAPY",
        "RR",
        "ARMOR",
    }
)
CUE_LABELS = frozenset({"CAR", "CTX", "STRATEGY", "DESIGN", "PHASE", "ENROLL", "DOSE_LEVELS", "COMBINE"})
KNOWN_KEYS = frozenset(
    {"id", "label", "pattern", "concept", "xref", "parent", "scope", "window", "design", "note"}
)
PRODUCT_DESIGN_KEYS = frozenset(
    {
        "antigens",
        "costimulatory_domains",
        "signaling_domains",
        "vector",
        "binder_origin",
        "generation",
        "cell_source",
        "cell_type",
        "targeting_strategy",
    }
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
            {"id": r.id, "label": r.label, "pattern": compile_pattern(r.pattern)}
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


# --------------------------------------------------------------------------- fast token predicates
# A REGEX token predicate is evaluated on every token of every doc; most of ours denote a small finite
# set of strings ("(?i)^cd-?19$" = cd19 | cd-19), which the Matcher looks up by hash instead.

MAX_EXPANSION = 256


def compile_pattern(pattern: Any) -> Any:
    """The ruler pattern with every finite token REGEX replaced by an ``IN`` list on LOWER or ORTH."""
    if not isinstance(pattern, list):
        return pattern
    return [compile_token(tok) for tok in pattern]


def compile_token(tok: dict[str, Any]) -> dict[str, Any]:
    text = tok.get("TEXT")
    if not (isinstance(text, dict) and set(text) == {"REGEX"}):
        return tok
    expanded = expand_regex(text["REGEX"])
    if expanded is None:
        return tok
    attr, strings = expanded
    out = {k: v for k, v in tok.items() if k != "TEXT"}
    out[attr] = {"IN": strings}
    return out


def expand_regex(regex: str) -> tuple[str, list[str]] | None:
    """All strings a fully anchored, finite regex matches: ``("LOWER"|"ORTH", strings)``, else None."""
    import re._parser as sre_parse  # the stdlib's own regex parser

    try:
        parsed = sre_parse.parse(regex)
    except re.error:
        return None
    ignore_case = bool(parsed.state.flags & re.IGNORECASE)
    items = list(parsed)
    if (
        len(items) < 2
        or items[0] != (sre_parse.AT, sre_parse.AT_BEGINNING)
        or items[-1] != (sre_parse.AT, sre_parse.AT_END)
    ):
        return None
    strings = _expand(items[1:-1])
    if strings is None or not strings:
        return None
    if ignore_case:
        return "LOWER", sorted({s.lower() for s in strings})
    return "ORTH", sorted(set(strings))


def _expand(items: list) -> list[str] | None:
    import re._constants as c
    import re._parser as sre_parse

    results = [""]
    for op, arg in items:
        options: list[str] | None
        if op is c.LITERAL:
            options = [chr(arg)]
        elif op is c.IN:
            options = []
            for sub_op, sub_arg in arg:
                if sub_op is c.LITERAL:
                    options.append(chr(sub_arg))
                elif sub_op is c.RANGE and sub_arg[1] - sub_arg[0] < 40:
                    options.extend(chr(x) for x in range(sub_arg[0], sub_arg[1] + 1))
                else:
                    return None
        elif op is c.SUBPATTERN:
            options = _expand(list(arg[-1]))
        elif op is c.BRANCH:
            options = []
            for branch in arg[1]:
                sub = _expand(list(branch))
                if sub is None:
                    return None
                options.extend(sub)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, sub_items = arg
            if high > 3:
                return None
            sub = _expand(list(sub_items))
            if sub is None:
                return None
            options = []
            for n in range(low, high + 1):
                reps = [""]
                for _ in range(n):
                    reps = [r + s for r in reps for s in sub]
                options.extend(reps)
        else:
            return None
        if options is None:
            return None
        results = [r + o for r in results for o in options]
        if len(results) > MAX_EXPANSION:
            return None
    del sre_parse
    return results


MAX_PHRASES = 4096


def phrase_forms(pattern: Any) -> tuple[str, list[list[str]]] | None:
    """The token sequences a pattern of plain tokens matches, for a ``PhraseMatcher``.

    Returns ``(attr, sequences)`` with ``attr`` ``"LOWER"`` or ``"ORTH"``, or ``None`` when the pattern
    needs the ``Matcher`` (token attributes other than LOWER/ORTH, operators other than ``?``, or both
    case-sensitive letters and case-insensitive words).  ORTH punctuation counts as either.
    """
    if not isinstance(pattern, list) or not pattern:
        return None
    attrs: set[str] = set()
    per_token: list[list[str | None]] = []
    for tok in pattern:
        op = tok.get("OP")
        keys = set(tok) - {"OP"}
        if op not in (None, "?") or len(keys) != 1:
            return None
        attr = next(iter(keys))
        value = tok[attr]
        if attr not in ("LOWER", "ORTH"):
            return None
        if isinstance(value, str):
            values = [value]
        elif isinstance(value, dict) and set(value) == {"IN"}:
            values = list(value["IN"])
        else:
            return None
        if attr == "ORTH" and any(any(ch.isalpha() for ch in v) for v in values):
            attrs.add("ORTH")
        elif attr == "LOWER":
            attrs.add("LOWER")
        options: list[str | None] = list(values)
        if op == "?":
            options.append(None)
        per_token.append(options)
    if len(attrs) > 1:
        return None
    sequences: list[list[str]] = [[]]
    for options in per_token:
        sequences = [seq + ([o] if o is not None else []) for seq in sequences for o in options]
        if len(sequences) > MAX_PHRASES:
            return None
    return (attrs.pop() if attrs else "LOWER"), [seq for seq in sequences if seq]
