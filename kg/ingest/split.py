"""Split the flat (CSV / seven-line text) form of outcomes back into measure, description, time frame.

ClinicalTrials.gov's CSV download joins an outcome's three parts with ``", "`` (an
empty description is dropped together with its comma) and joins outcomes with
``"|"``.  Each part may itself contain ``", "``, so the boundaries are decided from
the text:

1. outcomes are cut at ``"|"`` and parts at ``", "`` only outside matched brackets
   (ASCII and full-width), giving a list of *segments*;
2. every split — the measure is segments ``[0, i)``, the time frame ``[j, n)``, the
   description what lies between — is scored with features: how the time-frame run
   reads as a time expression (the vocabulary in ``time_expressions.json``), whether
   the description ended a sentence just before it, whether the extra segments of a
   long measure continue a list, …;
3. the best-scoring split wins; ties go to the shortest measure, then the shortest
   time frame, so the same input always gives the same output.

A separator escaped with a backslash (the registry's Markdown ``\\|``) never splits.

The vocabulary and the feature weights are data; nothing here is keyed to one
record's wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

from kg.records import Outcome, Role
from kg.resources import package_file
from kg.text import FULLWIDTH, undo_escapes

OUTCOME_SEPARATOR = "|"
PART_SEPARATOR = ", "
BRACKETS = {"(": ")", "[": "]", "{": "}", "（": "）", "［": "］", "｛": "｝", "【": "】"}
CLOSERS = {close: open_ for open_, close in BRACKETS.items()}
_BRACKET_CHAR = re.compile("[" + re.escape("".join(BRACKETS) + "".join(CLOSERS)) + "]")


class Timeness(IntEnum):
    """How a segment reads as (part of) a time frame."""

    NONE = 0
    CONTINUATION = 1  # "an expected average of 12 months", "4", "and 48"
    CUE = 2  # mentions a time somewhere ("... at week 12")
    WEAK = 3  # a generic opener plus a time cue ("in-hospital or 30 days")
    STRONG = 4  # starts like a time frame ("Up to 2 years", "Day 28", "Baseline")


@dataclass(frozen=True)
class Vocabulary:
    """The compiled time-expression vocabulary and the feature weights."""

    duration: re.Pattern[str]  # a number with a unit, or a unit with a number ("12 weeks", "Day1", "C1D1")
    starts_duration: re.Pattern[str]
    time_word: re.Pattern[str]
    strong_start: re.Pattern[str]
    weak_start: re.Pattern[str]
    continuation_start: re.Pattern[str]
    measure_opener: re.Pattern[str]
    function_word: frozenset[str]
    sentence_end: re.Pattern[str]
    weights: dict[str, float]


@dataclass(frozen=True)
class Segment:
    """One ", "-separated piece of an outcome with the features the scorer needs."""

    text: str
    words: int
    timeness: Timeness
    ends_sentence: bool
    starts_lower: bool
    starts_upper: bool
    opener: bool  # continues a list or clause: "and …", "or …", "including …", "as well as …"
    list_item: bool  # a short lower-case item ("fibrosis", "tear cytokines"), not a function word first
    short_item: bool  # one or two words ("ASAP", "Duration")
    function_start: bool  # opens with a lower-case function word ("by severity", "in the shoulder")
    acronym_start: bool  # first word in capitals ("NPV", "ASAP")
    is_number: bool  # "24", "and 48"
    is_titlecase: bool  # most content words capitalised: a title-style measure ("Rating of Clear")
    is_all_caps_words: (
        bool  # every word capitalised, "Or"/"At" too: a title fragment ("Almost Clear Or Mild")
    )


# ---------------------------------------------------------------- public API


def split_outcomes(text: str, role: Role) -> list[Outcome]:
    """Split a whole outcome column (outcomes joined by "|") into Outcomes of ``role``."""
    return [split_outcome(chunk, role) for chunk in split_chunks(text) if chunk.strip()]


def split_outcome(chunk: str, role: Role) -> Outcome:
    """Split one flat outcome ``"measure, description, time frame"`` into an :class:`Outcome`."""
    measure, description, time_frame = split_parts(chunk)
    return Outcome(role=role, measure=measure, description=description, time_frame=time_frame)


def join_outcome(measure: str, description: str | None, time_frame: str | None) -> str:
    """Join the three parts the way the CSV download does (an empty description or time frame is dropped
    together with its comma)."""
    return PART_SEPARATOR.join([measure, *(part for part in (description, time_frame) if part)])


def split_parts(chunk: str) -> tuple[str, str | None, str | None]:
    """Return ``(measure, description or None, time frame or None)`` for one flat outcome."""
    texts = glue_blank_segments(split_segments(chunk))
    if len(texts) == 1:
        return texts[0], None, None
    segments = [
        describe_cached(t) if len(t) <= _CACHED_LENGTH else describe_segment(t, load_vocabulary())
        for t in texts
    ]
    i, j = choose_split(segments, load_vocabulary().weights)
    measure = PART_SEPARATOR.join(texts[:i])
    description = PART_SEPARATOR.join(texts[i:j]) or None
    time_frame = PART_SEPARATOR.join(texts[j:]) or None
    return measure, description, time_frame


def glue_blank_segments(texts: list[str]) -> list[str]:
    """Attach blank segments to a neighbour (", , " never makes an empty part), so that joining the
    parts again gives back the same segments."""
    glued: list[str] = []
    pending: str | None = None
    for text in texts:
        if not text.strip():
            if glued:
                glued[-1] += PART_SEPARATOR + text
            else:
                pending = text if pending is None else pending + PART_SEPARATOR + text
            continue
        glued.append(text if pending is None else pending + PART_SEPARATOR + text)
        pending = None
    return glued if pending is None else [pending]


def split_chunks(text: str) -> list[str]:
    """Cut an outcome column at "|" outside matched brackets."""
    return split_outside_brackets(text, OUTCOME_SEPARATOR)


def split_segments(chunk: str) -> list[str]:
    """Cut one outcome at ", " outside matched brackets."""
    return split_outside_brackets(chunk, PART_SEPARATOR)


# ---------------------------------------------------------------- brackets


def split_outside_brackets(text: str, separator: str) -> list[str]:
    """Split ``text`` at ``separator`` except inside matched (), [], {} and their full-width forms, or
    where the separator is escaped with a backslash."""
    spans = bracket_spans(text)
    pieces: list[str] = []
    start = 0
    pos = text.find(separator)
    span_index = 0
    while pos != -1:
        while span_index < len(spans) and spans[span_index][1] < pos:
            span_index += 1
        inside = span_index < len(spans) and spans[span_index][0] < pos < spans[span_index][1]
        if inside:
            pos = text.find(separator, spans[span_index][1])
            continue
        if _escaped(text, pos):
            pos = text.find(separator, pos + 1)
            continue
        pieces.append(text[start:pos])
        start = pos + len(separator)
        pos = text.find(separator, start)
    pieces.append(text[start:])
    return pieces


def _escaped(text: str, pos: int) -> bool:
    """True when an odd number of backslashes precedes ``pos``."""
    count = 0
    while pos - count - 1 >= 0 and text[pos - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def bracket_spans(text: str) -> list[tuple[int, int]]:
    """Outermost ``(open, close)`` positions of matched brackets; unmatched brackets are ignored."""
    stack: list[tuple[str, int]] = []
    spans: list[tuple[int, int]] = []
    for m in _BRACKET_CHAR.finditer(text):
        ch, pos = m.group(), m.start()
        if ch in BRACKETS:
            stack.append((ch, pos))
            continue
        k = _find_opener(stack, CLOSERS[ch])
        if k is not None:
            spans.append((stack[k][1], pos))
            del stack[k:]
    return _outermost(spans)


def _find_opener(stack: list[tuple[str, int]], opener: str) -> int | None:
    """Index of the nearest unclosed ``opener`` on the stack, looking past at most two unmatched others."""
    for k in range(len(stack) - 1, max(-1, len(stack) - 4), -1):
        if stack[k][0] == opener:
            return k
    return None


def _outermost(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Keep the spans not inside another (matched spans are nested or disjoint)."""
    result: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if result and start < result[-1][1]:
            continue
        result.append((start, end))
    return result


# ---------------------------------------------------------------- segment features


_CACHED_LENGTH = 1000  # segments this short are described once per process (time frames repeat a lot)


@lru_cache(maxsize=16384)
def describe_cached(text: str) -> Segment:
    """:func:`describe_segment` with the packaged vocabulary, memoised."""
    return describe_segment(text, load_vocabulary())


def describe_segment(text: str, vocab: Vocabulary) -> Segment:
    """Compute the features of one segment (on a normalised copy)."""
    plain = normalize_for_features(text)
    lower = plain.lower()
    tokens = lower.split()
    words = len(tokens)
    w = vocab.weights
    starts_lower = bool(plain) and plain[0].isalpha() and plain[0].islower()
    content_start = bool(tokens) and tokens[0] not in vocab.function_word
    return Segment(
        text=text,
        words=words,
        timeness=classify_timeness(plain, vocab),
        ends_sentence=bool(vocab.sentence_end.search(plain)),
        starts_lower=starts_lower,
        starts_upper=bool(plain) and plain[0].isupper(),
        opener=bool(vocab.measure_opener.match(lower)),
        list_item=starts_lower and content_start and words <= w["list_item_words"],
        short_item=content_start and 0 < words <= w["short_item_words"],
        function_start=starts_lower and bool(tokens) and not content_start,
        acronym_start=bool(tokens) and is_acronym(plain.split()[0]),
        is_number=bool(_NUMBER_ITEM.match(lower)),
        is_titlecase=is_titlecase(plain, vocab.function_word),
        is_all_caps_words=is_all_caps_words(plain),
    )


def normalize_for_features(text: str) -> str:
    """Escapes undone, full-width punctuation as ASCII, whitespace collapsed (features only)."""
    plain = undo_escapes(text).translate(_FULLWIDTH_TABLE)
    return " ".join(plain.split())


def classify_timeness(plain: str, vocab: Vocabulary) -> Timeness:
    """Decide how far a (normalised) segment reads as a time expression."""
    lower = plain.lower()
    words = len(lower.split())
    if not lower:
        return Timeness.NONE
    if _NUMBER_ITEM.match(lower):
        return Timeness.CONTINUATION
    has_cue = bool(vocab.duration.search(lower) or vocab.time_word.search(lower))
    if vocab.strong_start.match(lower) or vocab.starts_duration.match(lower):
        level = Timeness.STRONG
    elif has_cue and not plain[0].isupper() and vocab.continuation_start.match(lower):
        return Timeness.CONTINUATION
    elif has_cue and vocab.weak_start.match(lower):
        level = Timeness.WEAK
    else:
        return Timeness.CUE if has_cue else Timeness.NONE
    # a long sentence that merely opens like a time expression is only a cue
    return Timeness.CUE if words > vocab.weights["time_long_segment_words"] else level


def is_acronym(word: str) -> bool:
    """ "NPV", "IL-6", "IFN-γ": all capitals, or at least two capitals."""
    return word.isupper() or sum(1 for ch in word if ch.isupper()) >= 2


def is_all_caps_words(plain: str) -> bool:
    """Two or more words and every word opens with a capital ("Almost Clear Or Mild At Week 12")."""
    words = [w for w in plain.split() if w[:1].isalpha()]
    return len(words) >= 2 and all(w[0].isupper() for w in words)


def is_titlecase(plain: str, function_words: frozenset[str]) -> bool:
    """True when a capital opens the text and most of its content words ("Almost Clear Or Mild",
    "Rating of Clear"; function words such as "of" may stay lower-case)."""
    words = [w for w in plain.split() if w[:1].isalpha()]
    if len(words) < 2 or not words[0][0].isupper():
        return False
    content = [w for w in words if w.lower() not in function_words] or words
    capitals = sum(1 for w in content if w[0].isupper())
    return capitals * 4 >= len(content) * 3


_FULLWIDTH_TABLE = str.maketrans({k: v for k, v in FULLWIDTH.items() if len(k) == 1})
_NUMBER_ITEM = re.compile(r"^(?:(?:and|or|to|&)\s+)?\d+(?:\.\d+)?(?:st|nd|rd|th)?\.?$")


# ---------------------------------------------------------------- scoring


def choose_split(segments: Sequence[Segment], weights: dict[str, float]) -> tuple[int, int]:
    """Pick ``(i, j)``: measure = segments[:i], description = segments[i:j], time frame = segments[j:]."""
    n = len(segments)
    suffix = _Suffix.build(segments, weights)
    max_measure = min(int(weights["max_measure_segments"]), n - 1)
    best: tuple[float, int, int] | None = None
    measure_total = 0.0
    measure_words = 0
    for i in range(1, max_measure + 1):
        if i > 1:
            measure_total += score_measure_extension(segments, i - 1, weights)
        measure_words += segments[i - 1].words
        measure = measure_total - _excess(
            measure_words, weights["measure_words_free"], weights["measure_word_penalty"]
        )
        for j in range(n, i - 1, -1):
            score = (
                measure
                + score_description(segments, i, j, weights)
                + score_time(segments, j, i, suffix, weights)
            )
            if best is None or score > best[0] + 1e-9:
                best = (score, i, j)
    assert best is not None
    return best[1], best[2]


@dataclass(frozen=True)
class _Suffix:
    """Suffix sums over the time-frame run so each candidate split is scored in constant time."""

    rest: tuple[float, ...]  # penalties of segments (j, n) that do not continue a time expression
    inner_ends: tuple[int, ...]  # sentence ends in [j, n - 1)
    inner_closers: tuple[int, ...]  # list-closing "and …"/"or …" segments in (j, n - 1)
    long_words: tuple[float, ...]  # word-length penalties of segments [j, n)

    @classmethod
    def build(cls, segments: Sequence[Segment], w: dict[str, float]) -> _Suffix:
        n = len(segments)
        rest, inner_ends, long_words = [0.0] * (n + 1), [0] * (n + 1), [0.0] * (n + 1)
        inner_closers = [0] * (n + 1)
        for j in range(n - 1, -1, -1):
            rest[j] = rest[j + 1] + (score_time_rest(segments[j + 1], w) if j + 1 < n else 0.0)
            inner_ends[j] = inner_ends[j + 1] + (1 if j < n - 1 and segments[j].ends_sentence else 0)
            inner_closers[j] = inner_closers[j + 1] + (
                1 if 0 < j < n - 1 and segments[j].starts_lower and segments[j].opener else 0
            )
            long_words[j] = long_words[j + 1] + _excess(
                segments[j].words, w["time_segment_words_free"], w["time_segment_word_penalty"]
            )
        return cls(tuple(rest), tuple(inner_ends), tuple(inner_closers), tuple(long_words))


def score_time_rest(seg: Segment, w: dict[str, float]) -> float:
    """Penalty for a non-first segment of the time frame that does not read as part of a time expression."""
    if seg.timeness == Timeness.NONE:
        return w["time_rest_none"]
    if seg.timeness == Timeness.CUE:
        return w["time_rest_cue"]
    if seg.timeness in (Timeness.STRONG, Timeness.WEAK) and seg.words > w["time_rest_short_words"]:
        return w["time_rest_long"]
    return 0.0


def score_time(segments: Sequence[Segment], j: int, i: int, suffix: _Suffix, w: dict[str, float]) -> float:
    """How well segments[j:] read as the time frame, given the measure ends at i."""
    if j == len(segments):
        return w["time_absent"]
    score = w[_START_WEIGHT[segments[j].timeness]] + suffix.rest[j] - suffix.long_words[j]
    score += w["time_inner_sentence_end"] * suffix.inner_ends[j]
    score += w["time_inner_list_close"] * (suffix.inner_closers[j + 1] if j + 1 < len(segments) else 0)
    prev = segments[j - 1]
    if prev.ends_sentence:
        score += w["time_after_sentence_end"]
    elif _case_restarts(segments, j, i):
        score += w["time_after_case_change"]
    elif j - 1 >= i:  # the description's last segment would also read as time: the run stops early
        score += w.get(_NOT_MAXIMAL_WEIGHT.get(prev.timeness, ""), 0.0)
    return score


def _case_restarts(segments: Sequence[Segment], j: int, i: int) -> bool:
    """A capitalised segment after a lower-case tail of the description ("…, at 1 year, Up to 2 years")."""
    prev, first = segments[j - 1], segments[j]
    if j - 1 < i or not (prev.starts_lower and first.starts_upper) or prev.timeness not in _TIME_LIKE:
        return False
    before = segments[j - 2] if j - 2 >= i else None
    return before is None or before.timeness in (Timeness.NONE, Timeness.CUE)


def score_description(segments: Sequence[Segment], i: int, j: int, w: dict[str, float]) -> float:
    """Plausibility of segments[i:j] as the description (empty allowed)."""
    if i == j:
        return w["description_empty"]
    first, head = segments[i], segments[0]
    score = 0.0
    if _repeats_measure(head, first):
        score += w["description_repeats_measure"]
    if first.opener and (first.starts_lower or head.is_titlecase):
        score += w["description_starts_opener"]
    elif first.function_start:
        score += w["description_starts_function_word"]
    elif first.is_number:
        score += w["description_starts_number"]
    elif _starts_mid_list(segments, i, j) or _cuts_a_phrase(segments, i):
        score += w["description_starts_mid_list"]
    return score


def _repeats_measure(head: Segment, first: Segment) -> bool:
    """Descriptions often open by restating the measure ("Overall survival, Overall survival is …")."""
    head_words = head.text.lower().split()[:3]
    return len(head_words) >= 2 and first.text.lower().split()[: len(head_words)] == head_words


def _starts_mid_list(segments: Sequence[Segment], i: int, j: int) -> bool:
    """Would the description start inside a list that the measure began ("fibrosis, inflammation, …")?"""
    first, head = segments[i], segments[0]
    if head.is_titlecase and first.is_all_caps_words and first.words <= 10:
        return True
    if not _is_item(first, head) or head.starts_lower:
        return False
    nxt = segments[i + 1] if i + 1 < j else None
    if nxt is not None and (_is_item(nxt, head) or nxt.opener):
        return True
    return i > 1 and _is_item(segments[i - 1], head)


def _cuts_a_phrase(segments: Sequence[Segment], i: int) -> bool:
    """The measure's last extra segment and the description's first are both lower-case: one phrase."""
    return i > 1 and segments[i - 1].starts_lower and segments[i].starts_lower


def _is_item(seg: Segment, head: Segment) -> bool:
    """A list item: short lower-case words, or one or two words that cannot start a sentence here."""
    if seg.list_item:
        return True
    return seg.short_item and (seg.starts_lower or seg.acronym_start or head.is_titlecase)


def score_measure_extension(segments: Sequence[Segment], k: int, w: dict[str, float]) -> float:
    """Cost of making segments[k] (k >= 1) part of the measure: a list continuation costs little."""
    seg, head, prev = segments[k], segments[0], segments[k - 1]
    bonuses = [0.0]
    if seg.opener and (seg.starts_lower or head.is_titlecase):
        bonuses.append(w["measure_opener"])
    if seg.is_number:
        bonuses.append(w["measure_number"])
    if (
        seg.list_item or (seg.function_start and seg.words <= w["list_item_words"])
    ) and not head.starts_lower:
        bonuses.append(w["measure_list_item"])
    if head.is_titlecase and seg.is_all_caps_words and seg.words <= w["titlecase_max_words"]:
        bonuses.append(w["measure_titlecase"])
    if _is_item(seg, head):
        bonuses.append(w["measure_short_item"])
    if k >= 2 and _is_item(seg, head) and (_is_item(prev, head) or prev.is_all_caps_words):
        bonuses.append(w["measure_list_continues"])
    return w["measure_extra_segment"] + max(bonuses)


def _excess(words: int, free: float, per_word: float) -> float:
    return max(0.0, words - free) * per_word


_START_WEIGHT = {
    Timeness.STRONG: "time_start_strong",
    Timeness.WEAK: "time_start_weak",
    Timeness.CUE: "time_start_cue",
    Timeness.CONTINUATION: "time_start_continuation",
    Timeness.NONE: "time_start_none",
}
_TIME_LIKE = (Timeness.STRONG, Timeness.WEAK, Timeness.CONTINUATION)
_NOT_MAXIMAL_WEIGHT = {
    Timeness.STRONG: "time_not_maximal_strong",
    Timeness.WEAK: "time_not_maximal_weak",
    Timeness.CONTINUATION: "time_not_maximal_continuation",
}


# ---------------------------------------------------------------- vocabulary


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """Load and compile ``time_expressions.json`` (once per process)."""
    data = json.loads(package_file("ingest", "time_expressions.json").read_text(encoding="utf-8"))
    return compile_vocabulary(data)


def compile_vocabulary(data: dict[str, Any]) -> Vocabulary:
    """Compile the vocabulary's phrase lists into regular expressions."""
    units = _alternation(data["units"])
    long_units = _alternation([u for u in data["units"] if len(u) > 2])
    numbers = _alternation(data["number_words"])
    before = _alternation(data["unit_before_number"])
    duration = (
        rf"(?<![\w.])\d+(?:\.\d+)?(?:st|nd|rd|th)?(?:\s*(?:-|~|±|\+/-|to|or|and|/)\s*\d+(?:\.\d+)?)*\s*-?\s*(?:{units})\b"
        rf"|\b(?:{numbers})[\s-]+(?:{long_units})\b"
        rf"|\b(?:{before})\s*-?\s*\d+"
        r"|\bc\d+\s*d\d+\b"
    )
    return Vocabulary(
        duration=re.compile(duration),
        starts_duration=re.compile(
            rf"^(?:(?:{_alternation(data['duration_prefixes'])})\s+|\W+)?(?:{duration})"
        ),
        time_word=re.compile(rf"\b(?:{_alternation(data['time_words'])})\b"),
        strong_start=_prefix(data["strong_starters"]),
        weak_start=_prefix(data["weak_starters"]),
        continuation_start=_prefix(data["continuations"]),
        measure_opener=_prefix(data["measure_continuations"]),
        function_word=frozenset(w.lower() for w in data["function_words"]),
        sentence_end=re.compile(data["sentence_end"]),
        weights={k: float(v) for k, v in data["weights"].items()},
    )


def _alternation(phrases: Sequence[str]) -> str:
    """A regex alternation of literal phrases, longest first (so "weeks" wins over "week")."""
    return "|".join(re.escape(p.lower()) for p in sorted(set(phrases), key=lambda p: (-len(p), p)))


def _prefix(phrases: Sequence[str]) -> re.Pattern[str]:
    """Match any phrase at the start of a lower-cased segment, ending at a word boundary."""
    parts = [re.escape(p.lower()) + (r"(?![\w])" if p[-1].isalnum() else "") for p in phrases]
    parts.sort(key=lambda p: (-len(p), p))
    return re.compile(r"^(?:" + "|".join(parts) + ")")
