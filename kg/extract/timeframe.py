"""Outcome time frames as data: ISO 8601 end of window, window start, visit schedule and anchor event.

``parse_time_frame("From 120 days to 2 years after infusion")`` gives
``TimeFrame(max_duration="P2Y", window_start="P120D", anchor="infusion")``.  Durations keep the text's
own unit ("24 months" → ``P24M``); a fraction moves to the next smaller exact unit so that every value
is a valid ``xsd:duration`` ("1,5 years" → ``P18M``, "0.5 hour" → ``PT30M``).  What cannot be parsed
is reported in ``TimeFrame.unparsed`` and never guessed.

The vocabulary is data (``patterns/time_units.json``, ``number_words.json``, ``time_patterns.jsonl``):
units and spelled numbers build the quantity expressions; spaCy ``Matcher`` rules find the cue words
("up to", "from", "every"), visit events (baseline, pre-infusion …) and anchor events.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any

from kg.records import TimeFrame
from kg.resources import package_file
from kg.text import normalize

# ---------------------------------------------------------------------------------------------- data


@cache
def load_json(name: str) -> dict[str, Any]:
    """A JSON data file of ``kg/extract/patterns``."""
    with package_file("extract", "patterns", name).open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def load_patterns(name: str) -> tuple[dict[str, Any], ...]:
    """The rules of a JSONL pattern file of ``kg/extract/patterns`` (one rule per line)."""
    rows = []
    with package_file("extract", "patterns", name).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"patterns/{name} line {lineno}: not JSON ({exc})") from exc
    return tuple(rows)


# ------------------------------------------------------------------------------------ token docs

TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|\S")


@dataclass(frozen=True)
class Tokens:
    """A spaCy ``Doc`` of a text plus the character span of each token in that text."""

    doc: Any  # spacy.tokens.Doc
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def char_span(self, start: int, end: int) -> tuple[int, int]:
        return self.starts[start], self.ends[end - 1]


@lru_cache(maxsize=1)
def blank_nlp() -> Any:
    import spacy

    return spacy.blank("en")


def make_tokens(text: str) -> Tokens:
    """Tokenize into digit runs, letter runs and single symbols ("Day1" → Day, 1; "IL-6" → IL, -, 6)."""
    from spacy.tokens import Doc

    matches = list(TOKEN.finditer(text))
    words = [m.group() for m in matches] or [" "]
    spaces = [i + 1 < len(matches) and matches[i + 1].start() > m.end() for i, m in enumerate(matches)] or [
        False
    ]
    doc = Doc(blank_nlp().vocab, words=words, spaces=spaces)
    return Tokens(doc, tuple(m.start() for m in matches), tuple(m.end() for m in matches))


def build_matcher(rows: Iterable[dict[str, Any]]) -> Any:
    """A spaCy ``Matcher`` with one rule per pattern row, keyed by the row's ``id``."""
    from spacy.matcher import Matcher

    matcher = Matcher(blank_nlp().vocab)
    for row in rows:
        matcher.add(row["id"], [row["pattern"]])
    return matcher


@dataclass(frozen=True)
class Hit:
    """A pattern match as a character span of the matched text."""

    rule: str
    label: str
    concept: str
    start: int  # character offsets
    end: int
    tstart: int  # token offsets
    tend: int


def match_rules(tokens: Tokens, name: str) -> list[Hit]:
    """All matches of pattern file ``name``; per label, overlapping matches keep the longest (then first)."""
    rows = {r["id"]: r for r in load_patterns(name)}
    matcher = _matcher(name)
    hits: list[Hit] = []
    vocab = tokens.doc.vocab
    for key, s, e in matcher(tokens.doc) if len(tokens.starts) else []:
        row = rows[vocab.strings[key]]
        cs, ce = tokens.char_span(s, e)
        hits.append(Hit(row["id"], row["label"], row["concept"], cs, ce, s, e))
    return _longest_per_label(hits)


@lru_cache(maxsize=8192)
def text_hits(text: str, name: str) -> tuple[Tokens, tuple[Hit, ...]]:
    """Tokens of ``text`` and the matches of pattern file ``name`` (cached: outcomes repeat a lot)."""
    tokens = make_tokens(text)
    return tokens, tuple(match_rules(tokens, name))


@cache
def _matcher(name: str) -> Any:
    return build_matcher(load_patterns(name))


def _longest_per_label(hits: list[Hit]) -> list[Hit]:
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (-(h.tend - h.tstart), h.tstart, h.rule)):
        if not any(k.label == hit.label and k.tstart < hit.tend and hit.tstart < k.tend for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: (h.tstart, h.tend, h.rule))


# ------------------------------------------------------------------------------------- quantities


@dataclass(frozen=True)
class Quantity:
    """A number with a time unit found in the text (value in ``unit``; ``sign`` -1 before the anchor)."""

    value: Decimal
    unit: str  # key of time_units.json "units": Y M W D H MIN S
    start: int
    end: int
    form: str  # "number" ("28 days") | "unit_first" ("Day 28") | "cycle" | "ordinal" | "list"
    rule: str
    sign: int = 1
    role: str = "bare"  # bare | end | start | point | every | cycle_length | range_low

    @property
    def seconds(self) -> Decimal:
        return self.sign * self.value * Decimal(_units()[self.unit]["seconds"])


@lru_cache(maxsize=1)
def _units() -> dict[str, dict[str, Any]]:
    units: dict[str, dict[str, Any]] = load_json("time_units.json")["units"]
    return units


@lru_cache(maxsize=1)
def _unit_words() -> dict[str, str]:
    return {w: key for key, u in _units().items() for w in u["words"]}


@lru_cache(maxsize=1)
def _attached_units() -> dict[str, str]:
    return {w: key for key, u in _units().items() for w in u["attached"]}


def _alt(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


@lru_cache(maxsize=1)
def _number_words() -> dict[str, Any]:
    return load_json("number_words.json")


@lru_cache(maxsize=1)
def _spelled_number_re() -> str:
    nw = _number_words()
    units, tens = _alt(nw["units"]), _alt(nw["tens"])
    small = rf"(?:(?:{tens})(?:[\s-]+(?:{units}))?|(?:{units}))"
    return rf"(?:{small}(?:\s+hundred(?:\s+(?:and\s+)?{small})?)?)"


@lru_cache(maxsize=1)
def _regexes() -> dict[str, re.Pattern[str]]:
    spelled = _spelled_number_re()
    half = _alt(_number_words()["half"])
    num = rf"(?:\d+(?:\.\d+|,\d{{1,2}}(?!\d))?|{spelled})(?:\s+(?:{half}))?"
    words = _alt(_unit_words())
    attached = "".join(sorted(_attached_units()))
    uf = load_json("time_units.json")["unit_first"]
    uf_words = _alt(uf["words"])
    uf_attached = "".join(sorted(uf["attached"]))
    ordinals = _alt(_number_words()["ordinals"])
    return {
        "number": re.compile(
            rf"(?<![\w.])(?P<num>{num})(?:\s*(?:±|\+/-|\+-)\s*\d+(?:[.,]\d+)?)?"
            rf"(?:\s*(?:-|to|~|or)\s*(?P<num2>{num}))?"
            rf"(?:(?:[ \t]*-[ \t]*|[ \t]*)(?P<unit>{words})(?![a-z])|(?P<aunit>[{attached}])(?![a-z0-9]))"
        ),
        "unit_first": re.compile(
            rf"(?<![a-z0-9])(?:(?P<uword>{uf_words})\s*|(?P<uatt>[{uf_attached}]))(?P<sign>[+-])?\s*"
            rf"(?P<num>\d+(?:\.\d+)?)(?![\d.]|[a-z])(?:\s*(?:-|to|through|thru|–)\s*(?P<num2>\d+)(?![\d.]|\s*(?:{words})(?![a-z])))?"
        ),
        "list_more": re.compile(
            r"\s*(?:,\s*(?:and|or|&)?|and|or|&)\s*(?P<sign>[+-])?(?P<num>\d+(?:\.\d+)?)"
            rf"(?![\d.]|-|\s*(?:{words})(?![a-z]))"
        ),
        "list_before": re.compile(r"((?:(?<![\w.])\d+(?:\.\d+)?\s*(?:,\s*(?:and|or|&)?|and|or|&)\s*)+)$"),
        "article": re.compile(
            rf"(?<![\w.])(?P<num>{_alt(_number_words()['articles'])})\s+(?P<unit>{words})(?![a-z])"
        ),
        "frequency": re.compile(
            rf"(?<![a-z-])(?P<word>{_alt(load_json('time_units.json')['frequency']['words'])})(?![a-z])"
        ),
        "tolerance": re.compile(r"(?:±|\+/-|\+-|plus or minus|plus/minus)\s*$"),
        "ordinal": re.compile(
            rf"(?<![a-z0-9])(?P<ord>{ordinals}|\d+(?:st|nd|rd|th))\s+(?P<unit>day|week|month|year)(?![a-z])"
        ),
        "cycle_ref": re.compile(
            r"(?<![a-z])(?:cycles?|courses?|c)\s*(?P<n>\d+)(?:\s*,?\s*(?:days?|d)\s*(?P<d>\d+))?(?![\d.])"
        ),
        "cycle_len": re.compile(
            r"(?:(?:cycles?|courses?)\s*(?:(?:length|duration)\s*)?(?:is|are|=|of|:|lasts?|\()\s*(?:is\s*)?[(=]?\s*"
            r"(?P<a>\d+)(?:\s*(?:or|/|-|to)\s*(?P<a2>\d+))?\s*-?\s*days?)"
            r"|(?:(?P<b>\d+)(?:\s*(?:or|/|-|to)\s*(?P<b2>\d+))?\s*-?\s*days?\s*(?:each|per\s+cycle|cycles?|courses?))"
        ),
        "before_after": re.compile(r"^\s*(?:\(\s*)?(?P<w>before|prior\s+to|pre|earlier\s+than)(?![a-z])"),
    }


def parse_number(text: str) -> Decimal | None:
    """A digit or spelled number ("1,5" → 1.5, "twenty-four" → 24, "one and a half" → 1.5)."""
    nw = _number_words()
    s = text.strip().lower()
    bonus = Decimal(0)
    for half in nw["half"]:
        if s.endswith(half):
            s, bonus = s[: -len(half)].strip(), Decimal("0.5")
    if re.fullmatch(r"\d+(?:[.,]\d+)?", s):
        try:
            return Decimal(s.replace(",", ".")) + bonus
        except InvalidOperation:
            return None
    total, current = 0, 0
    for word in re.split(r"[\s-]+", s):
        if word in nw["units"]:
            current += nw["units"][word]
        elif word in nw["tens"]:
            current += nw["tens"][word]
        elif word in nw["scales"]:
            current = max(current, 1) * nw["scales"][word]
        elif word == "and":
            continue
        else:
            return None
    return Decimal(total + current) + bonus


def find_quantities(low: str) -> list[Quantity]:
    """Every number with a time unit in the lower-cased text, in text order (overlaps resolved)."""
    rx = _regexes()
    found: list[Quantity] = []
    for m in rx["number"].finditer(low):
        found.extend(_number_quantities(low, m))
    for m in rx["unit_first"].finditer(low):
        found.extend(_unit_first_quantities(low, m))
    for m in rx["article"].finditer(low):
        unit = _unit_words()[m.group("unit")]
        found.append(Quantity(Decimal(1), unit, m.start(), m.end(), "number", "time_article"))
    for m in rx["frequency"].finditer(low):
        value, unit = load_json("time_units.json")["frequency"]["words"][m.group("word")]
        found.append(
            Quantity(Decimal(value), unit, m.start(), m.end(), "frequency", "time_frequency", role="every")
        )
    for m in rx["ordinal"].finditer(low):
        unit = _unit_words()[m.group("unit")]
        word = m.group("ord")
        value = Decimal(word[:-2]) if word[0].isdigit() else Decimal(_number_words()["ordinals"][word])
        found.append(Quantity(value, unit, m.start(), m.end(), "ordinal", "time_ordinal", role="point"))
    tolerance = rx["tolerance"]
    return [q for q in _drop_overlaps(found) if not tolerance.search(low[: q.start])]


def _number_quantities(low: str, m: re.Match[str]) -> list[Quantity]:
    unit_text = m.group("unit") or m.group("aunit")
    unit = _unit_words().get(unit_text) or _attached_units().get(unit_text)
    value = parse_number(m.group("num"))
    if unit is None or value is None:
        return []
    sign = -1 if _regexes()["before_after"].match(low[m.end() :]) else 1
    out: list[Quantity] = []
    if m.group("num2"):
        high = parse_number(m.group("num2"))
        if high is None:
            return []
        low_q = Quantity(value, unit, m.start("num"), m.end("num"), "number", "time_range", sign, "range_low")
        out.append(low_q)
        out.append(Quantity(high, unit, m.start("num2"), m.end(), "number", "time_range", sign, "end"))
        return out
    listed = _regexes()["list_before"].search(low[: m.start()])
    role = "bare"
    if listed:
        base = listed.start(1)
        for nm in re.finditer(r"\d+(?:\.\d+)?", listed.group(1)):
            out.append(
                Quantity(
                    Decimal(nm.group()),
                    unit,
                    base + nm.start(),
                    base + nm.end(),
                    "list",
                    "time_list",
                    sign,
                    "point",
                )
            )
        role = "point"
    out.append(Quantity(value, unit, m.start(), m.end(), "number", "time_number", sign, role))
    return out


def _unit_first_quantities(low: str, m: re.Match[str]) -> list[Quantity]:
    uf = load_json("time_units.json")["unit_first"]
    unit = uf["words"].get(m.group("uword") or "") or uf["attached"].get(m.group("uatt") or "")
    if unit is None:
        return []
    sign = -1 if m.group("sign") == "-" else 1
    value = Decimal(m.group("num"))
    if m.group("num2"):
        return [
            Quantity(
                value, unit, m.start(), m.end("num"), "unit_first", "time_unit_first_range", sign, "range_low"
            ),
            Quantity(
                Decimal(m.group("num2")),
                unit,
                m.start("num2"),
                m.end(),
                "unit_first",
                "time_unit_first_range",
                1,
                "end",
            ),
        ]
    out = [Quantity(value, unit, m.start(), m.end(), "unit_first", "time_unit_first", sign, "point")]
    pos = m.end()
    while more := _regexes()["list_more"].match(low, pos):
        s = -1 if more.group("sign") == "-" else 1
        out.append(
            Quantity(
                Decimal(more.group("num")),
                unit,
                more.start("num"),
                more.end("num"),
                "list",
                "time_unit_first_list",
                s,
                "point",
            )
        )
        pos = more.end()
    return out


def _drop_overlaps(found: list[Quantity]) -> list[Quantity]:
    kept: list[Quantity] = []
    for q in sorted(found, key=lambda q: (-(q.end - q.start), q.start)):
        if not any(k.start < q.end and q.start < k.end for k in kept):
            kept.append(q)
    # a range/list contributes several quantities sharing one match: keep them together
    siblings = [q for q in found if q.form in ("list",) or q.role == "range_low" or q.rule.endswith("range")]
    for q in siblings:
        if q not in kept and not any(k.start < q.end and q.start < k.end and k.rule == q.rule for k in kept):
            if not any(k.start <= q.start and q.end <= k.end and k.rule != q.rule for k in kept):
                kept.append(q)
    return sorted(set(kept), key=lambda q: (q.start, q.end, q.rule))


# ---------------------------------------------------------------------------------------- cycles


@dataclass(frozen=True)
class Cycles:
    refs: tuple[tuple[int, int | None, int, int], ...]  # (cycle n, day d, start, end)
    length: int | None
    length_span: tuple[int, int] | None
    problem: str | None


def find_cycles(low: str) -> Cycles:
    """Cycle references ("Cycle 2 Day 1", "C1D1") and the stated cycle length in days."""
    rx = _regexes()
    lengths: list[tuple[int, ...]] = []
    span = None
    for m in rx["cycle_len"].finditer(low):
        a, a2 = (m.group("a"), m.group("a2")) if m.group("a") else (m.group("b"), m.group("b2"))
        lengths.append(tuple(int(x) for x in (a, a2) if x))
        span = span or (m.start(), m.end())
    refs = tuple(
        (int(m.group("n")), int(m.group("d")) if m.group("d") else None, m.start(), m.end())
        for m in rx["cycle_ref"].finditer(low)
        if not (span and span[0] <= m.start() < span[1])
    )
    distinct = sorted({x for t in lengths for x in t})
    length = distinct[0] if len(distinct) == 1 else None
    problem = None
    if refs and not distinct:
        problem = "cycle length not stated, so cycle numbers cannot be turned into days"
    elif refs and len(distinct) > 1:
        problem = "cycle length is not one value (" + " or ".join(str(x) for x in distinct) + " days)"
    return Cycles(refs, length, span, problem)


def cycle_quantities(cycles: Cycles) -> list[Quantity]:
    """Cycle references multiplied out by the stated cycle length (day counts are 1-based, as written)."""
    if cycles.length is None:
        return []
    out = []
    for n, d, s, e in cycles.refs:
        if d is None:
            out.append(
                Quantity(Decimal(n * cycles.length), "D", s, e, "cycle", "time_cycle_end", role="bare")
            )
        else:
            day = (n - 1) * cycles.length + d
            out.append(Quantity(Decimal(day), "D", s, e, "cycle", "time_cycle_day", role="point"))
    return out


# -------------------------------------------------------------------------------------- ISO 8601


def to_iso(value: Decimal, unit: str, sign: int = 1) -> str | None:
    """ISO 8601 / xsd:duration in the given unit; a fraction moves to the next smaller exact unit."""
    units = _units()
    while value != value.to_integral_value():
        u = units[unit]
        if u["smaller"] is None:
            if unit != "S":
                return None
            break
        value, unit = value * Decimal(u["factor"]), u["smaller"]
    u = units[unit]
    number = _format_decimal(value)
    body = f"PT{number}{u['iso']}" if u["time"] else f"P{number}{u['iso']}"
    return ("-" if sign < 0 and value != 0 else "") + body


def _format_decimal(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# ------------------------------------------------------------------------------------------ parse


@dataclass(frozen=True)
class Found:
    """One parsed value and the span of the (original) time-frame text that supports it."""

    slot: str  # max_duration | window_start | timepoints | anchor
    value: str
    start: int
    end: int
    rule: str


def parse_time_frame(text: str) -> TimeFrame:
    """Parse a time-frame text; pure, never raises (a failure is reported in ``unparsed``)."""
    return parse_time_frame_spans(text)[0]


def parse_time_frame_spans(text: str | None) -> tuple[TimeFrame, list[Found]]:
    """Like :func:`parse_time_frame`, plus the supporting spans as offsets into ``text`` itself."""
    if text is None or not text.strip():
        return TimeFrame(), []
    try:
        norm = normalize(text)
        tf, found = _parse_normalized(norm.text)
        mapped = []
        for f in found:
            s, e = norm.to_original(f.start, f.end)
            mapped.append(replace(f, start=s, end=e))
        return tf, mapped
    except Exception as exc:  # noqa: BLE001 - the parser must never raise; the failure is reported
        return TimeFrame(unparsed=f"parser error: {type(exc).__name__}: {exc}"), []


def _lower_same_length(text: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _parse_normalized(text: str) -> tuple[TimeFrame, list[Found]]:
    low = _lower_same_length(text)
    tokens = make_tokens(low)
    hits = match_rules(tokens, "time_patterns.jsonl")
    cycles = find_cycles(low)
    quantities = find_quantities(low)
    if cycles.length_span:
        cs, ce = cycles.length_span
        quantities = [q for q in quantities if not (cs <= q.start < ce)]
    quantities = [q for q in quantities if not _inside_cycle_ref(q, cycles)]
    quantities = sorted(quantities + cycle_quantities(cycles), key=lambda q: (q.start, q.end))
    quantities = assign_roles(quantities, hits, tokens, low)
    quantities = _cycle_spans(quantities, cycles, low)
    events = [h for h in hits if h.label == "EVENT"]
    points, point_found = schedule(quantities, events, low)
    found = list(point_found)
    anchor = find_anchor(hits, tokens, quantities)
    if anchor:
        found.append(Found("anchor", anchor.concept, anchor.start, anchor.end, anchor.rule))
    start_q = window_start(quantities)
    if start_q is not None:
        iso = to_iso(start_q.value, start_q.unit, start_q.sign)
        if iso:
            found.append(Found("window_start", iso, start_q.start, start_q.end, start_q.rule))
    max_q, reason = max_quantity(quantities, hits, cycles, events)
    max_iso = None
    if max_q is not None:
        max_iso = to_iso(max_q.value, max_q.unit)
        if max_iso is None:
            reason = f"{_format_decimal(max_q.value)} months has no exact ISO 8601 unit"
        else:
            found.append(Found("max_duration", max_iso, max_q.start, max_q.end, max_q.rule))
    tf = TimeFrame(
        max_duration=max_iso,
        window_start=next((f.value for f in found if f.slot == "window_start"), None),
        timepoints=tuple(points),
        anchor=anchor.concept if anchor else _implied_anchor(events),
        unparsed=None if max_iso else reason,
    )
    return tf, found


def _cycle_spans(quantities: list[Quantity], cycles: Cycles, low: str) -> list[Quantity]:
    """A duration bracketed with a cycle reference ("Cycle 1 (28 days)", "28 days (Cycle 1)") ends it."""
    ends = {e for _, _, _, e in cycles.refs}
    starts = {s for _, _, s, _ in cycles.refs}
    out = []
    for q in quantities:
        after_ref = any(re.fullmatch(r"\s*[(\[]\s*", low[e : q.start]) for e in ends if e <= q.start)
        before_ref = any(re.fullmatch(r"[^()\[\],;]*?[(\[]\s*", low[q.end : s]) for s in starts if s >= q.end)
        if q.role in ("bare", "point") and (after_ref or before_ref):
            q = replace(q, role="end")
        out.append(q)
    return out


def _inside_cycle_ref(q: Quantity, cycles: Cycles) -> bool:
    return any(s <= q.start and q.end <= e for _, _, s, e in cycles.refs)


def _tokens_between(tokens: Tokens, start_char: int, end_char: int) -> list[int]:
    return [
        i
        for i, (s, e) in enumerate(zip(tokens.starts, tokens.ends, strict=True))
        if s >= start_char and e <= end_char
    ]


def assign_roles(quantities: list[Quantity], hits: list[Hit], tokens: Tokens, low: str) -> list[Quantity]:
    """Give each quantity its role from the cue before it and its neighbours ("from X to Y", "every X")."""
    fillers = {h.tstart for h in hits if h.label == "FILLER"}
    cues = [h for h in hits if h.label == "CUE"]
    out: list[Quantity] = []
    for i, q in enumerate(quantities):
        role = q.role
        cue = _cue_before(q, cues, fillers, tokens, quantities[i - 1] if i else None)
        if cue is not None and role not in ("range_low",):
            if cue.concept == "end" and role in ("bare", "point") and q.form != "list":
                role = "end"
            elif cue.concept == "start" and role in ("bare", "point"):
                role = "start"
            elif cue.concept == "every":
                role = "every"
            elif cue.concept == "point" and role == "bare":
                role = "point"
        if q.sign < 0 and role == "bare":
            role = "point"  # "15 minutes before surgery" is a visit before the anchor, not a window end
        out.append(replace(q, role=role))
    events = [h for h in hits if h.label == "EVENT"]
    return _join_events(_join_lists(_pair_windows(out, low), low), events, low)


def _join_lists(quantities: list[Quantity], low: str) -> list[Quantity]:
    """Items listed after an end ("to Week 24 and Week 56") end the window too; two or more bare
    quantities listed with commas/"and" ("7 days after surgery, 14 days after surgery") are visits."""
    out = list(quantities)
    for i in range(1, len(out)):
        gap = low[out[i - 1].end : out[i].start]
        if out[i - 1].role == "end" and out[i].role in ("bare", "point") and _is_list_gap(gap):
            out[i] = replace(out[i], role="end")
    bare = [i for i, q in enumerate(out) if q.role in ("bare", "point") and q.form == "number"]
    for a, b in zip(bare, bare[1:], strict=False):
        if b == a + 1 and _is_list_gap(
            re.sub(r"\b(?:after|post|following)\b[^,;]*", "", low[out[a].end : out[b].start])
        ):
            out[a] = replace(out[a], role="point")
            out[b] = replace(out[b], role="point")
    return out


def _join_events(quantities: list[Quantity], events: list[Hit], low: str) -> list[Quantity]:
    """A bare duration listed next to a visit event ("Baseline, 3 months") is a visit too."""
    out = []
    for q in quantities:
        if q.role == "bare" and any(
            (e.end <= q.start and _is_list_gap(low[e.end : q.start]))
            or (q.end <= e.start and _is_list_gap(low[q.end : e.start]))
            for e in events
        ):
            q = replace(q, role="point")
        out.append(q)
    return out


def _is_list_gap(gap: str) -> bool:
    return re.fullmatch(r"\s*\)?\s*(?:,|;|and|&|,\s*and|or)\s*(?:at\s+|on\s+|to\s+)?", gap) is not None


def _cue_before(
    q: Quantity, cues: list[Hit], fillers: set[int], tokens: Tokens, previous: Quantity | None
) -> Hit | None:
    for cue in sorted(cues, key=lambda c: -c.end):
        if cue.end > q.start:
            continue
        if previous is not None and previous.end > cue.end:
            return None
        between = _tokens_between(tokens, cue.end, q.start)
        if len(between) <= 4 and all(t in fillers for t in between):
            return cue
        return None
    return None


def _pair_windows(quantities: list[Quantity], low: str) -> list[Quantity]:
    """``X to Y`` / ``X through Y`` / ``between X and Y``: X starts the window, Y ends it."""
    out = list(quantities)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        gap = low[a.end : b.start]
        joined = re.fullmatch(r"\s*(?:\)?\s*)(?:-|–|to|until|till|through|thru|and)\s*(?:the\s+)?", gap)
        if not joined or a.role == "every":
            continue
        if gap.strip() == "and" and a.role != "start":
            continue
        if a.role in ("start", "point", "bare"):
            out[i] = replace(a, role="start")
            out[i + 1] = replace(b, role="end")
    return out


def window_start(quantities: list[Quantity]) -> Quantity | None:
    """The explicit start of the window, unless it is the anchor itself (0, or Day 1 written as a visit).

    A start comes from "from X to Y" / "between X and Y", or from one visit range ("Days 14-28"); a
    number range ("5 to 10 years") is a spread of durations, and several ranges have no single start.
    """
    starts = [q for q in quantities if q.role == "start"]
    if not starts:
        ranges = [q for q in quantities if q.role == "range_low"]
        starts = [q for q in ranges if q.form == "unit_first"] if len(ranges) == 1 else []
    for q in starts[:1]:
        if q.value == 0 or (
            q.form in ("unit_first", "ordinal") and q.unit == "D" and q.value <= 1 and q.sign > 0
        ):
            return None
        return q
    return None


def max_quantity(
    quantities: list[Quantity], hits: list[Hit], cycles: Cycles, events: list[Hit]
) -> tuple[Quantity | None, str | None]:
    """The end of the observation window, or why there is none."""
    if any(h.label == "CUE" and h.concept == "longer" for h in hits):
        return None, "'whichever is longer': the end depends on an event, no fixed limit"
    if cycles.problem and not any(q.role == "end" and q.sign > 0 for q in quantities):
        return None, cycles.problem
    positive = [q for q in quantities if q.sign > 0 and q.role not in ("every", "range_low", "start")]
    ends = [q for q in positive if q.role == "end"]
    pool = ends or positive
    if pool:
        best = pool[0]
        for q in pool[1:]:
            if q.seconds > best.seconds:
                best = q
        return best, None
    if any(q.role == "every" for q in quantities):
        return None, "a schedule interval ('every …') without an end"
    if any(q.role == "start" for q in quantities):
        return None, "only the start of the window is stated"
    if events or quantities:
        return (
            None,
            "only time points at or before the anchor (baseline, pre-dose, '… before'), no offset after it",
        )
    return None, "no duration or visit day stated"


# ----------------------------------------------------------------------------- schedule, anchor

EVENT_RANK = {"screening": 0, "baseline": 1, "pre-lymphodepletion": 3, "pre-infusion": 4, "pre-dose": 5}


def schedule(quantities: list[Quantity], events: list[Hit], low: str) -> tuple[list[str], list[Found]]:
    """The visit schedule: listed / named visits, 'every N … for M', and event labels, in time order."""
    items: list[tuple[tuple[Any, ...], str, Found]] = []
    points = [q for q in quantities if q.role == "point"]
    for q in points:
        iso = to_iso(q.value, q.unit, q.sign)
        if iso:
            items.append((_time_key(q), iso, Found("timepoints", iso, q.start, q.end, q.rule)))
    items.extend(_every_points(quantities))
    for ev in events:
        if _event_starts_window(ev, quantities, low):
            continue
        key = (EVENT_RANK.get(ev.concept, 2), Decimal(0))
        items.append((key, ev.concept, Found("timepoints", ev.concept, ev.start, ev.end, ev.rule)))
    seen: set[str] = set()
    values: list[str] = []
    found: list[Found] = []
    for _key, value, f in sorted(items, key=lambda t: (t[0], t[2].start)):
        if value not in seen:
            seen.add(value)
            values.append(value)
            found.append(f)
    return values, found


def _time_key(q: Quantity) -> tuple[Any, ...]:
    return (2 if q.sign < 0 else 6, q.seconds)


def _event_starts_window(ev: Hit, quantities: list[Quantity], low: str) -> bool:
    before = low[max(0, ev.start - 12) : ev.start]
    if re.search(r"(?:from|form|between|since)\s+(?:the\s+)?$", before):
        return True
    after = [q for q in quantities if q.start >= ev.end]
    if after:
        gap = low[ev.end : after[0].start]
        if re.fullmatch(r"[^,;()\[\]]*?\b(?:to|until|through|thru)\s+(?:the\s+)?", gap) or re.fullmatch(
            r"\s*-\s*", gap
        ):
            return True
    return False


def _every_points(quantities: list[Quantity]) -> list[tuple[tuple[Any, ...], str, Found]]:
    """'Every 3 months for 2 years' → P3M, P6M … P24M (if the end converts exactly; at most 60 visits)."""
    out: list[tuple[tuple[Any, ...], str, Found]] = []
    for i, q in enumerate(quantities):
        if q.role != "every" or q.value <= 0 or q.value != q.value.to_integral_value():
            continue
        end = next((e for e in quantities[i + 1 :] if e.role == "end" and e.sign > 0), None)
        if end is None:
            continue
        total = _convert_exact(end.value, end.unit, q.unit)
        if total is None or total / q.value > 60:
            continue
        k = q.value
        while k <= total:
            iso = to_iso(k, q.unit)
            if iso:
                key = (6, k * Decimal(_units()[q.unit]["seconds"]))
                out.append((key, iso, Found("timepoints", iso, q.start, end.end, "time_every")))
            k += q.value
    return out


def _convert_exact(value: Decimal, unit: str, target: str) -> Decimal | None:
    units = _units()
    while unit != target:
        u = units[unit]
        if u["smaller"] is None:
            return None
        value, unit = value * Decimal(u["factor"]), u["smaller"]
    return value if value == value.to_integral_value() else None


def find_anchor(hits: list[Hit], tokens: Tokens, quantities: Sequence[Quantity]) -> Hit | None:
    """The event the offsets count from: the first anchor phrase cued by from/after/post/of… or a quantity."""
    anchors = [h for h in hits if h.label == "ANCHOR"]
    cues = [h for h in hits if h.label == "ANCHOR_CUE"]
    events = [h for h in hits if h.label == "EVENT"]
    for a in anchors:
        if any(ev.start <= a.start and a.end <= ev.end for ev in events):
            continue
        if any(c.tend <= a.tstart and _near(tokens, c.tend, a.tstart) for c in cues):
            return _extend_anchor(a, anchors)
        if any(q.end <= a.start and _near(tokens, _token_at(tokens, q.end), a.tstart) for q in quantities):
            return _extend_anchor(a, anchors)
    return None


def _extend_anchor(anchor: Hit, anchors: list[Hit]) -> Hit:
    """Join the next mention of the same event a few tokens on ("CAR T-cell" + "infusion")."""
    for b in anchors:
        if b.concept == anchor.concept and 0 <= b.tstart - anchor.tend <= 3:
            return replace(anchor, end=b.end, tend=b.tend)
    return anchor


def _near(tokens: Tokens, tstart: int, tend: int, limit: int = 10) -> bool:
    """At most ``limit`` tokens between, none of them a clause break."""
    if tend - tstart > limit:  # checked first: a huge time frame must not list every token between
        return False
    between = [tokens.doc[i].text for i in range(tstart, tend)]
    return len(between) <= limit and not any(t in {",", ";", "."} for t in between)


def _token_at(tokens: Tokens, char: int) -> int:
    """Index of the first token starting at or after ``char``."""
    return bisect.bisect_left(tokens.starts, char)  # starts ascend


def _implied_anchor(events: list[Hit]) -> str | None:
    concepts = {e.concept for e in events}
    if "pre-infusion" in concepts:
        return "infusion"
    return None


# ------------------------------------------------------------------------------------ corpus report


@dataclass(frozen=True)
class TimeFrameRow:
    """One outcome time frame of a corpus and what the parser made of it."""

    trial_id: str
    outcome: int  # index in TrialRecord.outcomes
    role: str
    time_frame: str
    timeframe: TimeFrame


@dataclass(frozen=True)
class TimeFrameReport:
    """The share of time frames with a parsed ``max_duration``, and the rest with the reason."""

    rows: tuple[TimeFrameRow, ...]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def parsed(self) -> int:
        return sum(1 for r in self.rows if r.timeframe.max_duration)

    @property
    def share(self) -> float:
        return self.parsed / self.total if self.total else 0.0

    def distinct(self) -> tuple[int, int]:
        """(distinct time-frame texts, of which parsed): registries repeat one text across outcomes."""
        seen: dict[str, bool] = {}
        for r in self.rows:
            key = " ".join(r.time_frame.split())
            seen[key] = bool(r.timeframe.max_duration)
        return len(seen), sum(seen.values())

    @property
    def unparsed(self) -> tuple[TimeFrameRow, ...]:
        return tuple(r for r in self.rows if not r.timeframe.max_duration)

    def reasons(self) -> list[tuple[str, int]]:
        """Reasons for the unparsed time frames, most frequent first."""
        counts: dict[str, int] = {}
        for r in self.unparsed:
            key = r.timeframe.unparsed or "unknown"
            counts[key] = counts.get(key, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def to_json(self) -> dict[str, Any]:
        return {
            "time_frames": self.total,
            "with_max_duration": self.parsed,
            "share": round(self.share, 4),
            "distinct_time_frames": self.distinct()[0],
            "distinct_with_max_duration": self.distinct()[1],
            "reasons": [{"reason": k, "count": v} for k, v in self.reasons()],
            "unparsed": [
                {
                    "trial_id": r.trial_id,
                    "outcome": r.outcome,
                    "role": r.role,
                    "time_frame": r.time_frame,
                    "reason": r.timeframe.unparsed,
                }
                for r in self.unparsed
            ],
        }


def report_time_frames(records: Iterable[Any]) -> TimeFrameReport:
    """Parse every outcome time frame of ``records`` (``TrialRecord``s); outcomes without one are skipped."""
    rows = []
    for rec in records:
        for i, oc in enumerate(rec.outcomes):
            if oc.time_frame and oc.time_frame.strip():
                rows.append(
                    TimeFrameRow(rec.trial_id, i, oc.role, oc.time_frame, parse_time_frame(oc.time_frame))
                )
    return TimeFrameReport(tuple(rows))
