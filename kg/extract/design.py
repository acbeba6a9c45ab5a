"""Trial design from cues and structured fields: design flags, phase, enrolment, dose levels; diseases.

Structured registry fields win over text (phase, enrolment count, allocation, intervention model,
masking); text cues (``patterns/design.jsonl``) fill what the record leaves out.  A flag the text states
both ways with equal weight stays unknown (``None``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from kg.extract.context import BACKGROUND, NEGATED
from kg.extract.mentions import HEADLINE_KINDS, Mention
from kg.extract.strategy import live
from kg.extract.vocab import PATTERN_DIR, Vocabulary
from kg.records import Design, Evidence, TrialRecord

DESIGN_FLAGS = ("randomized", "single_arm", "open_label", "multi_center", "dose_escalation")
COMBINE_WINDOW = 10  # tokens between a combination cue and the therapy it joins to the CAR-T


def structured_design(record: TrialRecord) -> dict[str, bool]:
    info = record.design
    out: dict[str, bool] = {}
    if info is None:
        return out
    if info.allocation in ("RANDOMIZED", "Randomized"):
        out["randomized"] = True
    elif info.allocation in ("NON_RANDOMIZED", "Non-Randomized"):
        out["randomized"] = False
    if info.intervention_model in ("SINGLE_GROUP", "Single Group Assignment"):
        out["single_arm"] = True
    elif info.intervention_model:
        out["single_arm"] = False
    if info.masking in ("NONE", "None (Open Label)"):
        out["open_label"] = True
    elif info.masking:
        out["open_label"] = False
    return out


def select_design(record: TrialRecord, mentions: Sequence[Mention]) -> tuple[Design, list[Evidence]]:
    structured = structured_design(record)
    votes: dict[str, Counter[bool]] = {f: Counter() for f in DESIGN_FLAGS}
    support: dict[tuple[str, bool], list[Mention]] = {}
    for m in mentions:
        if m.label != "DESIGN":
            continue
        flag, _, value = m.concept.partition("=")
        b = value == "true"
        votes[flag][b] += 1
        support.setdefault((flag, b), []).append(m)
    values: dict[str, bool | None] = {}
    evidence: list[Evidence] = []
    for flag in DESIGN_FLAGS:
        if flag in structured:
            values[flag] = structured[flag]
            continue
        v = votes[flag]
        if not v or v[True] == v[False]:
            values[flag] = None
            continue
        values[flag] = v[True] > v[False]
        for m in support[(flag, bool(values[flag]))]:
            evidence.append(m.evidence(f"design.{flag}", str(values[flag]).lower()))
    return Design(**values), evidence


def select_phase(record: TrialRecord, mentions: Sequence[Mention]) -> tuple[str | None, list[Evidence]]:
    phases = [p for p in record.phases if p and p.upper() not in ("NA", "N/A")]
    if phases:
        norm = sorted({p.upper().replace(" ", "").replace("EARLY_PHASE1", "EARLY_PHASE1") for p in phases})
        if norm == ["PHASE1", "PHASE2"]:
            return "PHASE1/PHASE2", []
        if norm == ["PHASE2", "PHASE3"]:
            return "PHASE2/PHASE3", []
        return norm[0], []
    cues = sorted((m for m in mentions if m.label == "PHASE"), key=lambda m: m.position)
    if not cues:
        return None, []
    found = {m.concept for m in cues}
    chosen: str
    for combined in ("PHASE1/PHASE2", "PHASE2/PHASE3"):
        if combined in found:
            chosen = combined
            break
    else:
        chosen = cues[0].concept
    return chosen, [m.evidence("phase", chosen) for m in cues if m.concept == chosen]


def select_enrollment(record: TrialRecord, mentions: Sequence[Mention]) -> tuple[int | None, list[Evidence]]:
    """The planned/actual number of participants: the structured count, else one number the text states."""
    if record.enrollment and record.enrollment.count is not None:
        return record.enrollment.count, []
    enroll = [m for m in mentions if m.label == "ENROLL"]
    verb_sentences = {(m.field, m.sent) for m in enroll if m.concept == "verb"}
    counts = [
        m
        for m in enroll
        if m.concept in ("count", "range") and (m.field, m.sent) in verb_sentences and m.number is not None
    ]
    ranges = [m for m in counts if m.concept == "range"]
    inside_range = {
        (c.field, c.char_start)
        for c in counts
        for r in ranges
        if c.concept == "count" and c.field == r.field and r.char_start <= c.char_start < r.char_end
    }
    values = {
        int(m.number)
        for m in counts
        if m.concept == "count" and (m.field, m.char_start) not in inside_range and m.number is not None
    }
    if ranges or len(values) != 1:
        return None, []
    value = values.pop()
    if value <= 0:
        return None, []
    return value, [m.evidence("enrollment", str(value)) for m in counts if m.number == value]


def select_dose_levels(mentions: Sequence[Mention]) -> tuple[int | None, list[Evidence]]:
    values: dict[int, list[Mention]] = {}
    for m in mentions:
        if m.label != "DOSE_LEVELS":
            continue
        if m.concept == "named":
            n = count_level_words(m.text)
        else:
            n = int(m.number) if m.number else 0
        if n >= 2:
            values.setdefault(n, []).append(m)
    if len(values) != 1:
        return None, []
    n, ms = next(iter(values.items()))
    return n, [m.evidence("dose.levels", str(n)) for m in ms]


@lru_cache(maxsize=1)
def design_words() -> dict:
    """``patterns/design_words.json``: dose-level word groups and the disease classes too broad to report."""
    data: dict = json.loads((PATTERN_DIR / "design_words.json").read_text(encoding="utf-8"))
    return data


def count_level_words(text: str) -> int:
    """How many distinct dose levels a phrase names ("low, medium and high" → 3)."""
    words = {w.strip(",-").lower() for w in text.replace("-", " ").split()}
    return sum(1 for group in design_words()["dose_level_groups"] if words & set(group))


def load_refinements() -> list[dict]:
    """``patterns/disease_refinements.jsonl``: a broad class made specific by the study's target antigen."""
    path = PATTERN_DIR / "disease_refinements.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def select_diseases(
    mentions: Sequence[Mention], vocab: Vocabulary, antigens: Sequence[str] = ()
) -> tuple[list[str], list[Evidence]]:
    """Disease classes, most specific only: a class is dropped when a narrower one is also found; a broad
    class is refined by the target (ALL + CD19 → B-ALL); generic classes (leukemia, lymphoma) are not
    reported on their own."""
    ms = live(mentions, "DISEASE")
    parents = vocab.parents()
    found: dict[str, list[Mention]] = {}
    for m in sorted(ms, key=lambda m: m.position):
        concept = refine(m.concept, antigens)
        found.setdefault(concept, []).append(m)
    ancestors: set[str] = set()
    for c in found:
        p = parents.get(c)
        seen = set()
        while p and p not in seen:
            ancestors.add(p)
            seen.add(p)
            p = parents.get(p)
    keep = [c for c in found if c not in ancestors and c not in design_words()["generic_diseases"]]
    return keep, [m.evidence("diseases", c) for c in keep for m in found[c]]


def refine(concept: str, antigens: Sequence[str]) -> str:
    for rule in _refinements():
        if rule["disease"] == concept and set(rule["antigens"]) & set(antigens):
            return str(rule["concept"])
    return concept


@lru_cache(maxsize=1)
def _refinements() -> tuple[dict, ...]:
    return tuple(load_refinements())


def select_relapsed(mentions: Sequence[Mention]) -> tuple[bool | None, list[Evidence]]:
    ms = live(mentions, "RR")
    if not ms:
        return None, []
    return True, [m.evidence("relapsed_refractory", "true") for m in ms]


def select_combined(mentions: Sequence[Mention]) -> tuple[list[str], list[Evidence]]:
    """Therapies joined to the CAR-T in the protocol ("bridged to allo-HSCT", "combined with ibrutinib")."""
    cues = [m for m in mentions if m.label == "COMBINE"]
    names_car = any(x.label == "CAR" and x.concept == "car" for x in mentions)
    found: dict[str, list[Mention]] = {}
    for m in sorted(mentions, key=lambda m: m.position):
        if m.label != "THERAPY" or m.cls in (BACKGROUND, NEGATED):
            continue
        if m.kind in HEADLINE_KINDS and names_car:
            found.setdefault(m.concept, []).append(m)  # "CAR-T Hepatic Artery Infusions and Sir-Spheres"
            continue
        near = [
            c
            for c in cues
            if c.field == m.field
            and c.sent == m.sent
            and (
                0 <= m.tok_start - c.tok_end <= COMBINE_WINDOW
                or 0 <= c.tok_start - m.tok_end <= COMBINE_WINDOW
            )
        ]
        if near:
            found.setdefault(m.concept, []).extend([m])
    if "allo-HSCT" in found or "auto-HSCT" in found:
        found.pop("HSCT", None)  # an unqualified transplant mention adds nothing to a qualified one
    return list(found), [m.evidence("combined_with", c) for c, ms in found.items() for m in ms]
