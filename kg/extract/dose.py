"""Cell doses: the per-kg range ("5x10^6/kg-5x10^7/kg") and split-dose fractions ("10% on day 0, …").

These are number grammars rather than vocabulary, so they are regular expressions over the
normalized text (escapes undone: "5x10\\^6" reads "5x10^6"); every match is mapped back to the
original text for its evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kg.extract.mentions import FieldText
from kg.records import DoseFraction, Evidence

_MANT = r"(\d+(?:\.\d+)?)"
_TIMES = r"\s*(?:[x×*·]|times)\s*"
_POW = r"10\s*(?:\^|\*\*|e)?\s*(\d{1,2})"
# one cell count: "5x10^6", "5 × 10^6", "1.0E6", "10^6"
QUANTITY = rf"(?:{_MANT}{_TIMES}{_POW}|{_MANT}\s*[eE]\s*\+?(\d{{1,2}})|(?<![\d.]){_POW})"
PER_KG = r"\s*(?:(?:car[- ]?t?\+?|viable|transduced|total|positive|t)\s*)*(?:cells?)?\s*(?:/|per)\s*kg"
RANGE_SEP = r"\s*(?:-|~|to|and|through)\s*"
RANGE_TWO = re.compile(rf"{QUANTITY}(?:{PER_KG})?{RANGE_SEP}{QUANTITY}{PER_KG}", re.IGNORECASE)
# "0.5-5 x 10^6 cells/kg": two mantissas sharing one power of ten
RANGE_SHARED = re.compile(rf"{_MANT}{RANGE_SEP}{_MANT}{_TIMES}{_POW}{PER_KG}", re.IGNORECASE)
FRACTION = re.compile(
    r"(\d{1,3}(?:\.\d+)?)\s*%\s*(?:of\s+(?:the\s+)?(?:total\s+)?(?:cells?|dose)\s*)?"
    r"(?:will be given\s*|is given\s*)?"
    r"(?:on|at)\s+(?:day|d)\s*(\d{1,2})",
    re.IGNORECASE,
)


def quantity(groups: Sequence[str | None]) -> float | None:
    """Value of one QUANTITY match from its five groups (mantissa, power | mantissa, exp | power)."""
    m1, p1, m2, e2, p3 = groups
    if m1 is not None and p1 is not None:
        return float(m1) * 10 ** int(p1)
    if m2 is not None and e2 is not None:
        return float(m2) * 10 ** int(e2)
    if p3 is not None:
        return float(10 ** int(p3))
    return None


def find_ranges(fields: Sequence[FieldText]) -> list[tuple[tuple[float, float], FieldText, int, int]]:
    """Every per-kg dose range: ((low, high), field, normalized start, end), in field order."""
    out = []
    for ft in fields:
        text = ft.norm.text
        for m in RANGE_TWO.finditer(text):
            g = m.groups()
            low, high = quantity(g[0:5]), quantity(g[5:10])
            if low is not None and high is not None and 0 < low < high:
                out.append(((low, high), ft, m.start(), m.end()))
        for m in RANGE_SHARED.finditer(text):
            a, b, p = float(m.group(1)), float(m.group(2)), int(m.group(3))
            if 0 < a < b:
                out.append(((a * 10**p, b * 10**p), ft, m.start(), m.end()))
    return out


def select_range(fields: Sequence[FieldText]) -> tuple[tuple[float, float] | None, list[Evidence]]:
    """The per-kg range when the record states one (the widest if it states several)."""
    found = find_ranges(fields)
    if not found:
        return None, []
    low = min(r[0][0] for r in found)
    high = max(r[0][1] for r in found)
    value = f"{low:g}-{high:g}"
    return (low, high), [
        evidence(ft, s, e, "dose.range_per_kg", value, "dose.range") for _, ft, s, e in found
    ]


def select_fractions(fields: Sequence[FieldText]) -> tuple[tuple[DoseFraction, ...], list[Evidence]]:
    """Split-dose fractions from the first field that states at least two that add up to 100 %."""
    for ft in fields:
        matches = list(FRACTION.finditer(ft.norm.text))
        fractions: dict[int, tuple[float, re.Match[str]]] = {}
        for m in matches:
            day, pct = int(m.group(2)), float(m.group(1))
            fractions.setdefault(day, (pct, m))
        if len(fractions) >= 2 and abs(sum(p for p, _ in fractions.values()) - 100) < 0.5:
            out = tuple(
                DoseFraction(day=d, percent=int(p) if p.is_integer() else p)  # type: ignore[arg-type]
                for d, (p, _) in sorted(fractions.items())
            )
            ev = [
                evidence(ft, m.start(), m.end(), "dose.fractions", f"day {d}: {p:g}%", "dose.fraction")
                for d, (p, m) in sorted(fractions.items())
            ]
            return out, ev
    return (), []


def evidence(ft: FieldText, start: int, end: int, slot: str, value: str, rule: str) -> Evidence:
    ostart, oend = ft.norm.to_original(start, end)
    return Evidence(
        slot=slot,
        value=value,
        field=ft.field,
        start=ostart,
        end=oend,
        text=ft.norm.original[ostart:oend],
        rule=rule,
    )
