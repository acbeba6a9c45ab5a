"""Per-outcome annotation: endpoint class, cytokine analyte, criteria with version and the parsed time frame.

The rules are data in ``kg/extract/patterns``: ``endpoints.jsonl`` (label ``ENDPOINT`` for specific
phrases, ``ENDPOINT_WEAK`` for generic words such as "safety" or "survival"), ``analytes.jsonl`` and
``criteria.jsonl`` (each criteria rule carries its ``versions`` table and ``default``); time frames are
parsed by :mod:`kg.extract.timeframe`.  The component functions are pure and work on one text each, so
they can be registered as spaCy pipeline components later.

The endpoint comes from the measure first, then the description: a specific phrase in the measure wins,
then one in the description, then a generic word in the measure, then in the description; within one
text the earliest (then longest) match wins.  Expansions are matched before abbreviations, so
"Duration of Response (DOS)" is DOR; fuzzy token rules absorb the registry's typos ("surial",
"recation").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kg.extract.timeframe import Hit, Tokens, load_patterns, parse_time_frame_spans, text_hits
from kg.records import Evidence, Outcome, OutcomeExtraction
from kg.text import NormalizedText, normalize, undo_escapes

ENDPOINT_CLASSES = (
    "ORR",
    "CR",
    "CRI",
    "PR",
    "SD",
    "PD",
    "DOR",
    "PFS",
    "OS",
    "EFS",
    "DFS",
    "RFS",
    "DLT",
    "MTD",
    "AE",
    "SAE",
    "CRS",
    "ICANS",
    "GVHD",
    "MRD",
    "CMAX",
    "TMAX",
    "AUC",
    "CYTOKINE",
    "PERSISTENCE",
    "VCN",
    "BCA",
    "QOL",
    "FEASIBILITY",
    "OTHER",
)


@dataclass(frozen=True)
class Match:
    """A value found in one field: normalized span plus the rule that fired."""

    value: str
    field: str  # "measure" | "description" | "time_frame"
    start: int  # offsets into the normalized text of the field
    end: int
    rule: str


def annotate_outcome(outcome: Outcome, index: int) -> tuple[OutcomeExtraction, list[Evidence]]:
    """Annotate ``outcome``, the ``index``-th of its record; evidence offsets point into the original text."""
    texts = {"measure": normalize(outcome.measure or "")}
    if outcome.description:
        texts["description"] = normalize(outcome.description)
    fields = [(name, nt.text) for name, nt in texts.items()]

    endpoint = classify_endpoint(fields)
    analyte = find_analyte(fields) if endpoint and endpoint.value == "CYTOKINE" else None
    criteria = find_criteria(fields)
    timeframe, tf_found = parse_time_frame_spans(outcome.time_frame)

    evidence: list[Evidence] = []
    prefix = f"outcomes[{index}]"
    for slot, m in [("endpoint", endpoint), ("analyte", analyte)] + [("criteria", c) for c in criteria]:
        if m is not None:
            evidence.append(_evidence(f"{prefix}.{slot}", m, texts[m.field], f"{prefix}.{m.field}"))
    original_tf = outcome.time_frame or ""
    for f in tf_found:
        evidence.append(
            Evidence(
                slot=f"{prefix}.{f.slot}",
                value=f.value,
                field=f"{prefix}.time_frame",
                start=f.start,
                end=f.end,
                text=original_tf[f.start : f.end],
                rule=f.rule,
            )
        )
    extraction = OutcomeExtraction(
        role=outcome.role,
        measure=undo_escapes(outcome.measure or ""),
        description=undo_escapes(outcome.description) if outcome.description else None,
        time_frame=undo_escapes(outcome.time_frame) if outcome.time_frame else None,
        endpoint=endpoint.value if endpoint else "OTHER",
        analyte=analyte.value if analyte else None,
        criteria=tuple(c.value for c in criteria),
        timeframe=timeframe,
    )
    return extraction, evidence


def _evidence(slot: str, m: Match, nt: NormalizedText, field: str) -> Evidence:
    start, end = nt.to_original(m.start, m.end)
    return Evidence(
        slot=slot, value=m.value, field=field, start=start, end=end, text=nt.original[start:end], rule=m.rule
    )


# ------------------------------------------------------------------------------------------ endpoint


def classify_endpoint(fields: Sequence[tuple[str, str]]) -> Match | None:
    """The endpoint class: specific rules in the measure, then the description, then generic words.

    A generic measure ("Safety") keeps its own class when the description names it among others
    ("Incidence of CRS, ICANS and other adverse events" → AE, not CRS).
    """
    generic = _first(fields[:1], "ENDPOINT_WEAK")
    for i, (name, text) in enumerate(fields):
        strong = [h for h in endpoint_hits(text) if h.label == "ENDPOINT"]
        if not strong:
            continue
        if i > 0 and generic is not None:
            same = [h for h in strong if h.concept == generic.value]
            if same:
                strong = same
        best = min(strong, key=_position)
        return Match(best.concept, name, best.start, best.end, best.rule)
    return generic or _first(fields[1:], "ENDPOINT_WEAK")


def _first(fields: Sequence[tuple[str, str]], label: str) -> Match | None:
    for name, text in fields:
        chosen = [h for h in endpoint_hits(text) if h.label == label]
        if chosen:
            best = min(chosen, key=_position)
            return Match(best.concept, name, best.start, best.end, best.rule)
    return None


def _position(h: Hit) -> tuple[int, int, str]:
    """Earliest first, then longest, then rule id (deterministic)."""
    return (h.tstart, -(h.tend - h.tstart), h.rule)


def endpoint_hits(text: str) -> list[Hit]:
    """Endpoint rule matches in one text; a cytokine analyte counts as a specific CYTOKINE match."""
    if not text.strip():
        return []
    hits = list(text_hits(text, "endpoints.jsonl")[1])
    for h in text_hits(text, "analytes.jsonl")[1]:
        hits.append(Hit(h.rule, "ENDPOINT", "CYTOKINE", h.start, h.end, h.tstart, h.tend))
    return hits


# ------------------------------------------------------------------------------------------- analyte


def find_analyte(fields: Sequence[tuple[str, str]]) -> Match | None:
    """The first cytokine named in the measure, else in the description."""
    for name, text in fields:
        if not text.strip():
            continue
        hits = text_hits(text, "analytes.jsonl")[1]
        if hits:
            h = min(hits, key=lambda h: (h.tstart, -(h.tend - h.tstart)))
            return Match(h.concept, name, h.start, h.end, h.rule)
    return None


# ------------------------------------------------------------------------------------------ criteria

VERSION_AFTER = 8  # tokens after a criteria name searched for its version
VERSION_BEFORE = 4  # tokens before ("the revised 2014 Lugano criteria")


def find_criteria(fields: Sequence[tuple[str, str]]) -> list[Match]:
    """Response / toxicity criteria with version, in order of first mention, without duplicates."""
    found: list[Match] = []
    for name, text in fields:
        if text.strip():
            found.extend(criteria_in_text(text, name))
    versioned = {m.rule.split("@")[1] for m in found if "@v" in m.rule}
    out: list[Match] = []
    seen: set[str] = set()
    for m in found:
        concept = m.rule.split("@")[1]
        if m.value in seen or ("@v" not in m.rule and concept in versioned):
            continue
        seen.add(m.value)
        out.append(replace_rule(m))
    return out


def replace_rule(m: Match) -> Match:
    return Match(m.value, m.field, m.start, m.end, m.rule.split("@")[0])


def criteria_in_text(text: str, field: str) -> list[Match]:
    """Criteria named in one text; the version is looked for in the tokens around the name."""
    tokens, found = text_hits(text, "criteria.jsonl")
    hits = list(found)
    rows = {r["id"]: r for r in load_patterns("criteria.jsonl")}
    out = []
    for h in hits:
        row = rows[h.rule]
        version = _find_version(tokens, h, hits, row)
        if version is not None:
            value, vstart, vend = version
            start, end = min(h.start, vstart), max(h.end, vend)
            out.append(Match(value, field, start, end, f"{h.rule}@{row['concept']}@v"))
        elif row.get("default"):
            out.append(Match(row["default"], field, h.start, h.end, f"{h.rule}@{row['concept']}"))
    return out


def _find_version(
    tokens: Tokens, hit: Hit, hits: list[Hit], row: dict[str, Any]
) -> tuple[str, int, int] | None:
    doc = tokens.doc
    versions: dict[str, str] = row.get("versions") or {}
    regex = row.get("version_regex")
    concept = row["concept"]
    others = [h for h in hits if h.concept != concept]
    inside = range(hit.tstart, hit.tend)
    after = range(hit.tend, min(len(doc), hit.tend + VERSION_AFTER))
    before = range(hit.tstart - 1, max(-1, hit.tstart - 1 - VERSION_BEFORE), -1)
    stop_before = {";", ",", ".", "and", "or", "/"}
    for window, stops in ((inside, set()), (after, {";", "and", "or"}), (before, stop_before)):
        for i in window:
            text = doc[i].text
            if text.lower() in stops or any(o.tstart <= i < o.tend for o in others):
                break
            key = text.lower()
            key = key[1:] if key.startswith("v") and key[1:2].isdigit() else key
            value = versions.get(key)
            if value is None and isinstance(regex, str) and re.match(regex, key):
                value = f"{concept} v{key}"
            if value is not None:
                return value, tokens.starts[i], tokens.ends[i]
    return None
