"""Field helpers shared by the readers: enum spelling, phases, dates, interventions, record checks.

Every reader maps its format's values to the ClinicalTrials.gov API v2 spelling (``PHASE1``,
``NON_RANDOMIZED``, ``SINGLE_GROUP`` …) through the tables in ``enums.json``; free text is never
changed here (see :class:`kg.records.TrialRecord`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from kg.errors import RecordError
from kg.records import Intervention, TrialRecord

MAX_FIELD_CHARS = 1_000_000
"""Longest field text accepted (the registry caps its longest field at 32,000 characters)."""

NCT_RE = re.compile(r"\bNCT\d{8}\b")
_ENUM_WORD = re.compile(r"[A-Z][A-Z0-9_]*")
_PARENTHETICAL = re.compile(r"\s*[(\[].*$")
_TYPED_NAME = re.compile(r"([A-Za-z][A-Za-z _/]*?):\s*(.*)", re.S)
_PHASE_SPLIT = re.compile(r"\s*[/|]\s*")
_MONTH_NAME = re.compile(r"[A-Za-z]{3}")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_DATE_FORMATS = (("%B %d, %Y", "%Y-%m-%d"), ("%B %Y", "%Y-%m"), ("%b %d, %Y", "%Y-%m-%d"), ("%b %Y", "%Y-%m"))


@cache
def load_enums() -> dict[str, dict[str, str]]:
    """The legacy-label → API v2 enum tables, keys lower-cased for case-insensitive lookup."""
    text = resources.files("kg.ingest").joinpath("enums.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return {
        kind: {k.lower(): v for k, v in table.items()}
        for kind, table in raw.items()
        if not kind.startswith("_")
    }


def to_enum(kind: str, value: str | None) -> str | None:
    """Map a label of ``kind`` (``allocation``, ``masking``, ``status`` …) to its API v2 enum word.

    Known labels come from ``enums.json``; a value already spelled as an enum word passes through;
    anything else is upper-cased with runs of other characters turned into ``_`` (never dropped).
    """
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    table = load_enums()[kind]
    found = table.get(v.lower()) or table.get(_PARENTHETICAL.sub("", v).lower())
    if found:
        return found
    if _ENUM_WORD.fullmatch(v):
        return v
    return re.sub(r"[^A-Z0-9]+", "_", v.upper()).strip("_") or None


def to_phases(values: Iterable[str]) -> tuple[str, ...]:
    """Normalise phase labels ("Phase 1/Phase 2", "PHASE1|PHASE2", "N/A", "Early Phase 1") to enum words."""
    out: list[str] = []
    for value in values:
        if value is None:
            continue
        v = value.strip()
        if not v:
            continue
        if v.lower() in load_enums()["phase"]:
            parts = [v]
        else:
            parts = [p for p in _PHASE_SPLIT.split(v) if p]
        for part in parts:
            word = to_enum("phase", part)
            if word and word not in out:
                out.append(word)
    return tuple(out)


def to_iso_date(value: str | None) -> str | None:
    """Dates as the API v2 writes them: "November 1, 2018" → "2018-11-01", "May 2019" → "2019-05".

    Values already in ISO form, and any the formats above do not cover, are returned as read.
    """
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    if not _MONTH_NAME.search(v):
        return v
    for fmt, iso in _DATE_FORMATS:
        try:
            return datetime.strptime(v, fmt).strftime(iso)
        except ValueError:
            continue
    return v


def to_count(value: object, field: str) -> int | None:
    """An enrollment count: an int, an integral float or a string of digits; anything else is an error."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"expected a whole number, got {value!r}", field=field)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        v = value.strip().replace(",", "")
        if not v:
            return None
        if v.isascii() and v.isdigit() and len(v) < 4300:  # int() refuses longer digit strings
            return int(v)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise RecordError(f"expected a whole number, got {shown}", field=field)


def split_joined(text: str | None, sep: str = "|") -> tuple[str, ...]:
    """Split a ``|``-joined list cell, dropping empty items (the text of each item is kept as read)."""
    if not text:
        return ()
    return tuple(part for part in text.split(sep) if part.strip())


def parse_typed_name(text: str) -> Intervention:
    """``"BIOLOGICAL: CD19 CAR-T cells"`` → Intervention(type="BIOLOGICAL", name="CD19 CAR-T cells").

    The prefix counts as a type only when it is a known intervention type or an enum word;
    otherwise the whole text is the name and the type is None.
    """
    m = _TYPED_NAME.fullmatch(text)
    if m:
        prefix, name = m.group(1).strip(), m.group(2)
        if name and (prefix.lower() in load_enums()["intervention_type"] or _ENUM_WORD.fullmatch(prefix)):
            return Intervention(type=to_enum("intervention_type", prefix), name=name)
    return Intervention(type=None, name=text)


def find_nct_id(text: str | None) -> str | None:
    """The first NCT number (``NCT`` + 8 digits) in ``text``."""
    if not text:
        return None
    m = NCT_RE.search(text)
    return m.group(0) if m else None


def record_label(index: int, nct_id: str | None = None) -> str:
    """How a failure names a record: its NCT number when known, else ``#index`` (0-based, as Source.index)."""
    return nct_id if nct_id else f"#{index}"


def check_record(record: TrialRecord) -> TrialRecord:
    """Refuse text the reader could not decode (invalid UTF-8 bytes) or fields over MAX_FIELD_CHARS."""
    for path, text in record.text_fields():
        if len(text) > MAX_FIELD_CHARS:
            raise RecordError(
                f"field is {len(text):,} characters long, over the limit of {MAX_FIELD_CHARS:,}", field=path
            )
        bad = _first_undecodable(text)
        if bad is not None:
            raise RecordError(
                f"invalid UTF-8 byte 0x{ord(text[bad]) - 0xDC00:02X} at character {bad}; "
                "save the file as UTF-8",
                field=path,
            )
    return record


def _first_undecodable(text: str) -> int | None:
    """Index of the first byte smuggled in by the ``surrogateescape`` decoder, or None."""
    m = _ESCAPED_BYTE.search(text)
    return m.start() if m else None


@cache
def load_csv_columns() -> dict[str, Any]:
    """``{"fields": {header: record field}, "known": [every download header]}`` from ``csv_columns.json``."""
    text = resources.files("kg.ingest").joinpath("csv_columns.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return {"fields": dict(raw["fields"]), "known": tuple(raw["known"])}
