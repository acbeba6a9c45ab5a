"""A synthetic CAR-T corpus for benchmarks, recombined from the bundled real records.

``make_corpus(n, seed)`` yields ``n`` :class:`TrialRecord` built from the records in ``data/examples/``
(read with :mod:`kg.ingest`): each synthetic trial starts from a real record chosen at random, keeps
part of its summary and description and resamples the rest sentence by sentence from the whole corpus,
resamples its outcomes (measure and description from one real outcome, time frame from another), and
swaps every antigen, costimulatory domain and disease it mentions for another concept of the same
family, written in one of that concept's surface forms from ``kg/extract/patterns/`` (the extractor's
own vocabularies).  The text therefore reads like registry text and exercises the same rules.

* **Synthetic identifiers**: trial ``i`` is ``NCT9`` followed by ``i`` on 7 digits (``NCT90000000``…),
  a range ClinicalTrials.gov has not assigned (registered studies are below ``NCT08000000``); its
  source is ``Source("synthetic:seed=S", "synthetic", i)``.  Do not mix these with real records.
* **Deterministic**: trial ``i`` depends only on ``(seed, i)`` (``random.Random(f"{seed}/{i}")``), so
  ``make_corpus(10, s)`` is the first ten of ``make_corpus(1000, s)`` and a child process can rebuild
  the same corpus from ``(n, seed)``.

``write_corpus(n, seed, path)`` writes the corpus as API v2 JSON Lines (readable by ``cartkg records``).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from kg.records import Enrollment, Intervention, Outcome, Source, TrialRecord

__all__ = ["SYNTHETIC_PREFIX", "Corpus", "load_corpus", "make_corpus", "synthetic_id", "write_corpus"]

SYNTHETIC_PREFIX = "NCT9"
MAX_TRIALS = 10_000_000
SWAP_LABELS = {"ANTIGEN": "antigens", "COSTIM": "costimulatory domains", "DISEASE": "diseases"}
RESAMPLE_SENTENCES = 0.4  # share of a template's sentences replaced by sentences of other records
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\d])")
_NO_SPACE_BEFORE = {"-", "/", ")", ",", ".", ":", ";", "+", "%"}
_NO_SPACE_AFTER = {"-", "/", "("}


def synthetic_id(i: int) -> str:
    """The synthetic NCT-shaped id of trial ``i`` (``NCT9`` + 7 digits)."""
    if not 0 <= i < MAX_TRIALS:
        raise ValueError(f"synthetic trial index {i} out of range 0..{MAX_TRIALS - 1}")
    return f"{SYNTHETIC_PREFIX}{i:07d}"


# --------------------------------------------------------------------------- the material


@dataclass(frozen=True)
class Family:
    """One concept family: its concepts (sorted), their surface forms, and a regex finding any form."""

    name: str
    forms: dict[str, tuple[str, ...]]  # concept -> surface forms
    concept_of: dict[str, str]  # lower-cased form -> concept
    pattern: re.Pattern[str] | None

    @property
    def concepts(self) -> list[str]:
        return sorted(self.forms)


@dataclass(frozen=True)
class Corpus:
    """What synthetic trials are recombined from."""

    records: tuple[TrialRecord, ...]
    sentences: tuple[str, ...]
    outcomes: tuple[Outcome, ...]
    time_frames: tuple[str, ...]
    families: tuple[Family, ...]


def join_tokens(tokens: Sequence[str]) -> str:
    """Tokens of a pattern as text: ``["anti", "-", "CD19"]`` → ``anti-CD19``."""
    out = ""
    for tok in tokens:
        if out and tok not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out += " "
        out += tok
    return out


def load_families() -> tuple[Family, ...]:
    """Antigens, costimulatory domains and diseases with the surface forms their patterns spell out."""
    from kg.extract.vocab import compile_pattern, load_vocabulary, phrase_forms

    vocab = load_vocabulary()
    families = []
    for label, name in SWAP_LABELS.items():
        forms: dict[str, set[str]] = {}
        for rule in sorted(vocab.by_label(label), key=lambda r: r.id):
            if len(rule.concepts) != 1:
                continue
            expanded = phrase_forms(compile_pattern(rule.pattern))
            if expanded is None:
                continue
            attr, sequences = expanded
            for seq in sequences:
                text = join_tokens(seq)
                if len(text) < 2 or not any(ch.isalnum() for ch in text):
                    continue
                concept = rule.concepts[0]
                if attr == "LOWER" and text == concept.lower():
                    text = concept  # a case-insensitive pattern of the concept itself: write it as named
                forms.setdefault(concept, set()).add(text)
        frozen = {c: tuple(sorted(f)) for c, f in sorted(forms.items())}
        families.append(make_family(name, frozen))
    return tuple(families)


def make_family(name: str, forms: dict[str, tuple[str, ...]]) -> Family:
    concept_of: dict[str, str] = {}
    for concept, surface in forms.items():
        for text in surface:
            concept_of.setdefault(text.lower(), concept)
    pattern = (
        re.compile(r"(?<!\w)" + trie_regex(sorted(concept_of)) + r"(?!\w)", re.IGNORECASE)
        if concept_of
        else None
    )
    return Family(name, forms, concept_of, pattern)


def trie_regex(words: Sequence[str]) -> str:
    """One regex matching any of ``words`` (longest first), factored as a character trie so that Python's
    ``re`` tries one branch per character instead of every word at every position."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _trie_to_regex(trie)


def _trie_to_regex(node: dict[str, Any]) -> str:
    ends = "" in node
    branches = [re.escape(ch) + _trie_to_regex(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends:
        return "(?:" + body + ")?"
    return body


@lru_cache(maxsize=4)
def load_corpus(folder: str | None = None) -> Corpus:
    """Read the real records under ``folder`` (default: the bundled ``data/examples``)."""
    from kg.ingest import read_paths
    from kg.resources import examples_dir

    root = folder or str(examples_dir())
    records = tuple(r for r in read_paths([root]) if isinstance(r, TrialRecord))
    if not records:
        raise ValueError(f"{root}: no records to recombine")
    texts = [t for r in records for t in (r.brief_summary, r.detailed_description)]
    sentences = sorted({s for text in texts for s in split_sentences(text)})
    outcomes = tuple(o for r in records for o in r.outcomes)
    time_frames = tuple(sorted({o.time_frame for o in outcomes if o.time_frame}))
    return Corpus(records, tuple(sentences), outcomes, time_frames, load_families())


def split_sentences(text: str | None) -> list[str]:
    """Sentences of a summary (split after ``.!?`` before a capital, digit or bracket); blank ones dropped."""
    if not text:
        return []
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


# --------------------------------------------------------------------------- one synthetic trial


def make_corpus(n: int, seed: int = 0, corpus: Corpus | None = None) -> Iterator[TrialRecord]:
    """``n`` synthetic trials (ids ``NCT90000000``…), deterministic for ``seed``."""
    if n < 0 or n > MAX_TRIALS:
        raise ValueError(f"number of synthetic trials must be 0..{MAX_TRIALS}, not {n}")
    material = corpus or load_corpus()
    for i in range(n):
        yield make_trial(i, seed, material)


def make_trial(i: int, seed: int, corpus: Corpus) -> TrialRecord:
    """Synthetic trial ``i``: a real template with resampled sentences and outcomes and swapped concepts."""
    rng = random.Random(f"{seed}/{i}")
    template = rng.choice(corpus.records)
    swap = Swapper(rng, corpus.families)
    roles = [o.role for o in template.outcomes] or ["primary"]
    outcomes = tuple(resample_outcome(rng, corpus, role) for role in roles)
    return _replace_record(template, i, seed, rng, swap, corpus, outcomes)


def _replace_record(
    template: TrialRecord, i: int, seed: int, rng: random.Random, swap: Swapper, corpus: Corpus,
    outcomes: tuple[Outcome, ...],
) -> TrialRecord:
    return replace(
        template,
        trial_id=synthetic_id(i),
        source=Source(f"synthetic:seed={seed}", "synthetic", i),
        brief_title=swap.text(template.brief_title),
        official_title=swap.text(template.official_title),
        brief_summary=swap.text(resample_text(rng, template.brief_summary, corpus.sentences)),
        detailed_description=swap.text(resample_text(rng, template.detailed_description, corpus.sentences)),
        conditions=tuple(swap.text(c) or c for c in template.conditions),
        keywords=tuple(swap.text(k) or k for k in template.keywords),
        interventions=tuple(
            Intervention(iv.type, swap.text(iv.name) or iv.name, swap.text(iv.description))
            for iv in template.interventions
        ),
        outcomes=tuple(
            Outcome(o.role, swap.text(o.measure) or o.measure, swap.text(o.description), o.time_frame)
            for o in outcomes
        ),
        enrollment=Enrollment(rng.randint(3, 300), rng.choice(["ESTIMATED", "ACTUAL"])),
    )


def resample_text(rng: random.Random, text: str | None, pool: Sequence[str]) -> str | None:
    """``text`` with about :data:`RESAMPLE_SENTENCES` of its sentences replaced by sentences from ``pool``."""
    sentences = split_sentences(text)
    if not sentences or not pool:
        return text
    return " ".join(rng.choice(pool) if rng.random() < RESAMPLE_SENTENCES else s for s in sentences)


def resample_outcome(rng: random.Random, corpus: Corpus, role: Any) -> Outcome:
    """A real outcome's measure and description with a time frame drawn from any outcome."""
    base = rng.choice(corpus.outcomes)
    time_frame = base.time_frame
    if corpus.time_frames and rng.random() < 0.9:
        time_frame = rng.choice(corpus.time_frames)
    return Outcome(role, base.measure, base.description, time_frame)


class Swapper:
    """Replaces every concept of each family with another, the same replacement throughout one trial."""

    def __init__(self, rng: random.Random, families: Sequence[Family]) -> None:
        self.rng = rng
        self.families = families
        self.chosen: dict[tuple[str, str], tuple[str, str]] = {}  # (family, concept) -> (concept, form)

    def text(self, text: str | None) -> str | None:
        if not text:
            return text
        for family in self.families:
            if family.pattern is not None:
                text = family.pattern.sub(lambda m, f=family: self._replacement(f, m.group(0)), text)
        return text

    def _replacement(self, family: Family, found: str) -> str:
        concept = family.concept_of.get(found.lower())
        if concept is None:
            return found
        key = (family.name, concept)
        if key not in self.chosen:
            new = self.rng.choice(family.concepts)
            self.chosen[key] = (new, choose_form(self.rng, new, family.forms[new]))
        return self.chosen[key][1]


def choose_form(rng: random.Random, concept: str, forms: Sequence[str]) -> str:
    """Half the time the concept as the vocabulary spells it (when it is one of its forms), else any form."""
    canonical = [f for f in forms if f.lower() == concept.lower()]
    if canonical and rng.random() < 0.5:
        return concept if concept in forms else canonical[0]
    return rng.choice(forms)


# --------------------------------------------------------------------------- writing


def to_api_v2(record: TrialRecord) -> dict[str, Any]:
    """The record as one API v2 study object (the modules our reader reads)."""
    proto: dict[str, Any] = {
        "identificationModule": {
            "nctId": record.trial_id,
            "briefTitle": record.brief_title,
            "officialTitle": record.official_title,
        },
        "descriptionModule": {
            "briefSummary": record.brief_summary,
            "detailedDescription": record.detailed_description,
        },
        "conditionsModule": {"conditions": list(record.conditions), "keywords": list(record.keywords)},
        "armsInterventionsModule": {
            "interventions": [
                {"type": iv.type, "name": iv.name, "description": iv.description}
                for iv in record.interventions
            ]
        },
        "outcomesModule": {
            f"{role}Outcomes": [
                {"measure": o.measure, "description": o.description, "timeFrame": o.time_frame}
                for o in record.outcomes
                if o.role == role
            ]
            for role in ("primary", "secondary", "other")
        },
        "designModule": {"studyType": record.study_type, "phases": list(record.phases)},
        "statusModule": {"overallStatus": record.status},
    }
    if record.enrollment is not None:
        enrollment = {"count": record.enrollment.count, "type": record.enrollment.type}
        proto["designModule"]["enrollmentInfo"] = enrollment
    return {"protocolSection": _drop_empty(proto)}


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def write_corpus(n: int, seed: int, path: Path) -> int:
    """Write ``make_corpus(n, seed)`` as API v2 JSON Lines; returns the number of studies written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for record in make_corpus(n, seed):
            out.write(json.dumps(to_api_v2(record), ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count
