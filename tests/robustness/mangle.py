"""Hypothesis strategies that mangle real records: truncation, shuffled lines, random bytes, wrong encodings,
huge fields, wrong JSON types, missing modules (JSON and XML), broken CSV rows."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.parsers import expat  # noqa: S410 - offsets of our own fixtures only

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from kg.records import ReadFailure, TrialRecord
from kg.resources import examples_dir

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "ingest"

# ``ci`` (CI=true): at least 1,000 generated cases per reader; ``dev``: a quick local run.
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=1000, deadline=None, suppress_health_check=SLOW_OK)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=SLOW_OK)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PROFILE = settings.get_profile("ci" if IN_CI else "dev")
"""Applied per test (``@PROFILE``) so the profile never changes other test modules' settings."""
# the extractor is not a reader: ~1 s per generated batch of records, so fewer cases (CARTKG_EXTRACT_EXAMPLES)
EXTRACTOR_PROFILE = settings(
    PROFILE, max_examples=int(os.environ.get("CARTKG_EXTRACT_EXAMPLES", 25 if IN_CI else 10))
)


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


SAMPLES: dict[str, list[tuple[str, bytes]]] = {
    "text": [(p.name, _bytes(p)) for p in sorted((examples_dir() / "seeds").glob("*.txt"))],
    "csv": [("ctg-studies.csv", _bytes(FIXTURES / "ctg-studies.csv"))],
    "json": [(n, _bytes(FIXTURES / n)) for n in ("page.json", "NCT00973089.json")]
    + [(p.name, _bytes(p)) for p in sorted((examples_dir() / "ctgov_v2").glob("*.json"))[:3]],
    "jsonl": [("studies.jsonl", _bytes(FIXTURES / "studies.jsonl"))],
    "xml": [("NCT00739856.xml", _bytes(FIXTURES / "NCT00739856.xml"))]
    + [(p.name, _bytes(p)) for p in sorted((examples_dir() / "ctgov_xml").glob("*.xml"))[:3]],
}
ENCODINGS = ["latin-1", "cp1252", "utf-16", "utf-16-be", "utf-32", "mac_roman", "utf-8-sig", "cp437",
             "shift_jis"]
SPECIAL = [b'"', b"\n", b"\r\n", b",", b"{", b"}", b"[", b"]", b"<", b">", b"&", b"\x00", b"|", b"\xff\xfe",
           b"\t"]

# --------------------------------------------------------------------------- byte-level mangles
# Each mangle is drawn as (kind, seed) and applied with a seeded ``random.Random``: a handful of cheap draws
# per case instead of deep strategies, so 1,000 cases per reader fit the CI budget.  A falsifying example
# prints as ``Mangle(kind='truncate', seed=123)``, which replays exactly.

SEEDS = st.integers(0, 2**32 - 1)


def _truncate(data: bytes, rnd: random.Random) -> bytes:
    return data[: rnd.randrange(len(data) + 1)]


def _shuffle_lines(data: bytes, rnd: random.Random) -> bytes:
    lines = data.split(b"\n")
    rnd.shuffle(lines)
    return b"\n".join(lines)


def _drop_or_repeat_line(data: bytes, rnd: random.Random) -> bytes:
    lines = data.split(b"\n")
    i = rnd.randrange(len(lines))
    lines[i : i + 1] = [lines[i], lines[i]] if rnd.random() < 0.5 else []
    return b"\n".join(lines)


def _random_bytes(data: bytes, rnd: random.Random) -> bytes:
    junk = rnd.randbytes(rnd.randint(1, 16)) if rnd.random() < 0.5 else rnd.choice(SPECIAL)
    pos = rnd.randrange(len(data) + 1)
    return data[:pos] + junk + data[pos + rnd.randrange(33) :]


def _binary_line(data: bytes, rnd: random.Random) -> bytes:
    """A whole line of random bytes (NULs included) put between two lines."""
    lines = data.split(b"\n")
    lines.insert(rnd.randrange(len(lines) + 1), rnd.randbytes(rnd.randint(1, 300)))
    return b"\n".join(lines)


def _wrong_encoding(data: bytes, rnd: random.Random) -> bytes:
    return data.decode("utf-8", "replace").encode(rnd.choice(ENCODINGS), "replace")


def _huge_field(data: bytes, rnd: random.Random) -> bytes:
    fill = rnd.choice(HUGE_FILLS)
    pos = rnd.randrange(len(data) + 1)
    return data[:pos] + fill * (rnd.randint(10_000, 100_000) // len(fill)) + data[pos:]


def _huge_number(data: bytes, rnd: random.Random) -> bytes:
    """A digit run (up to 6,000 digits: over Python's int-string limit) put where a digit was."""
    digits = [m.start() for m in re.finditer(rb"\d", data)]
    pos = rnd.choice(digits) if digits else rnd.randrange(len(data) + 1)
    return data[:pos] + b"9" * rnd.choice([20, 400, 4_301, 6_000]) + data[pos:]


HUGE_FILLS = [b"A", b"lorem ipsum ", "\u00e9".encode(), b"\\", b"CD19 4-1BB "]
BYTE_OPS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": _truncate,
    "shuffle_lines": _shuffle_lines,
    "drop_or_repeat_line": _drop_or_repeat_line,
    "random_bytes": _random_bytes,
    "binary_line": _binary_line,
    "wrong_encoding": _wrong_encoding,
    "huge_field": _huge_field,
    "huge_number": _huge_number,
}


@dataclass(frozen=True)
class Mangle:
    """One byte-level mangle: which operation and the seed of its random choices."""

    kind: str
    seed: int

    def __call__(self, data: bytes) -> bytes:
        return BYTE_OPS[self.kind](data, random.Random(self.seed))


BYTE_MANGLES = st.builds(Mangle, st.sampled_from(sorted(BYTE_OPS)), SEEDS)


# --------------------------------------------------------------------------- JSON structure

WRONG_VALUES: list[Any] = [
    None, True, False, 0, -1, 7, 2**63, 2**70, 1.5, -0.0, 1e300, "", " ", "x", "NCT00000000", "\x00",
    "\ud800", "\u00e9\u00e9", "CD19|CD22", "9" * 5000, [], [None], [1, "a"], [[[]]], {}, {"a": None},
    {"x": [1, {"y": "z"}]},
]
JSON_VALUES = (
    st.sampled_from(WRONG_VALUES) | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)


def json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys / indexes) inside a JSON value, the root excluded."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(prefix + (k,))
            out.extend(json_paths(v, prefix + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append(prefix + (i,))
            out.extend(json_paths(v, prefix + (i,)))
    return out


def dotted(path: tuple) -> str:
    """A path as the readers name fields: ``protocolSection.conditionsModule.conditions[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class JsonDoc:
    """A parsed JSON sample and its paths, computed once."""

    doc: Any
    paths: list[tuple]

    @classmethod
    def of(cls, raw: bytes | str) -> JsonDoc:
        doc = json.loads(raw)
        return cls(doc, json_paths(doc))


def changed_copy(doc: Any, path: tuple, kind: str, value: Any = None) -> Any:
    """``doc`` with the value at ``path`` replaced or deleted; only the containers on the path are copied."""
    out = _shallow(doc)
    node = out
    for part in path[:-1]:
        node[part] = _shallow(node[part])
        node = node[part]
    if kind == "delete":
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def _shallow(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else list(value)


@st.composite
def json_mutation(draw: Any, sample: JsonDoc) -> tuple[Any, tuple, str]:
    """``(mutated copy, path, kind)``: one value replaced (wrong type, huge string or number) or deleted."""
    path = draw(st.sampled_from(sample.paths))
    kind = draw(st.sampled_from(["replace", "delete", "huge", "huge_number"]))
    if kind == "delete":
        return changed_copy(sample.doc, path, kind), path, kind
    if kind == "huge":
        value: Any = "x" * draw(st.integers(10_000, 100_000))
    elif kind == "huge_number":
        value = HUGE_NUMBER
    else:
        value = draw(JSON_VALUES)
    return changed_copy(sample.doc, path, kind, value), path, kind


HUGE_NUMBER = "\x00huge number\x00"
"""Stands for a 5,000-digit integer, which ``json.dumps`` cannot write (Python's int-string limit)."""


def to_json_bytes(doc: Any) -> bytes:
    """``doc`` as JSON, with every :data:`HUGE_NUMBER` written as a 5,000-digit integer."""
    return json.dumps(doc).replace(json.dumps(HUGE_NUMBER), "9" * 5000).encode("utf-8")


# --------------------------------------------------------------------------- XML and CSV structure


@dataclass(frozen=True)
class XmlElement:
    """Byte offsets of one element: ``<tag …>`` at ``start``, content at ``inner_start:inner_end``."""

    tag: bytes
    start: int
    inner_start: int
    inner_end: int
    end: int


def xml_elements(data: bytes) -> list[XmlElement]:
    """Every element below the root, by byte offsets (found once per sample with expat)."""
    parser = expat.ParserCreate()
    stack: list[tuple[int, str]] = []
    found: list[XmlElement] = []

    def start(tag: str, _attrs: Any) -> None:
        stack.append((parser.CurrentByteIndex, tag))

    def end(tag: str) -> None:
        s, _ = stack.pop()
        e = parser.CurrentByteIndex
        open_end = data.index(b">", s) + 1
        if data.startswith(b"</", e):
            found.append(XmlElement(tag.encode(), s, open_end, e, data.index(b">", e) + 1))
        else:  # <tag/>: no content
            found.append(XmlElement(tag.encode(), s, open_end, open_end, open_end))

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.Parse(data, True)
    root_start = min(el.start for el in found)
    return [el for el in found if el.start != root_start]


@st.composite
def xml_mutation(draw: Any, data: bytes, elements: list[XmlElement]) -> bytes:
    """One element removed (a missing module), emptied, given a child, renamed or given a huge text."""
    el = draw(st.sampled_from(elements))
    kind = draw(st.sampled_from(["remove", "empty", "nest", "huge", "rename"]))
    if kind == "remove":
        return data[: el.start] + data[el.end :]
    if kind == "empty":
        return data[: el.inner_start] + data[el.inner_end :]
    if kind == "nest":
        child = draw(st.sampled_from([b"textblock", b"nct_id", b"x"]))
        return data[: el.inner_start] + b"<%s>nested</%s>" % (child, child) + data[el.inner_start :]
    if kind == "huge":
        return data[: el.inner_start] + b"y " * draw(st.integers(5_000, 50_000)) + data[el.inner_end :]
    tag = draw(st.sampled_from([b"nct_id", b"brief_title", b"unknown", b"primary_outcome"]))
    n = len(el.tag)
    if el.inner_end == el.end:  # <tag/>
        return data[: el.start + 1] + tag + data[el.start + 1 + n :]
    return (data[: el.start + 1] + tag + data[el.start + 1 + n : el.inner_end + 2] + tag
            + data[el.inner_end + 2 + n :])


@st.composite
def csv_mutation(draw: Any, rows: list[list[str]]) -> bytes:
    """Rows with cells dropped, added, swapped or quoted wrongly; a column removed; another delimiter."""
    rows = [list(row) for row in rows]
    rnd = random.Random(draw(SEEDS))
    kind = draw(st.sampled_from(["drop_cell", "add_cell", "swap", "drop_column", "bad_quote", "delimiter"]))
    r = rnd.randrange(len(rows))
    if kind == "drop_cell" and rows[r]:
        del rows[r][rnd.randrange(len(rows[r]))]
    elif kind == "add_cell":
        rows[r].append(draw(st.text(max_size=10)))
    elif kind == "swap" and len(rows[r]) > 1:
        i, j = rnd.randrange(len(rows[r])), rnd.randrange(len(rows[r]))
        rows[r][i], rows[r][j] = rows[r][j], rows[r][i]
    elif kind == "drop_column" and rows[0]:
        c = rnd.randrange(len(rows[0]))
        rows = [row[:c] + row[c + 1 :] for row in rows]
    out = io.StringIO()
    csv.writer(out, delimiter=";" if kind == "delimiter" else ",").writerows(rows)
    text = out.getvalue()
    if kind == "bad_quote":
        pos = rnd.randrange(len(text))
        text = text[:pos] + '"' + text[pos:]
    return text.encode("utf-8")


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


# --------------------------------------------------------------------------- the contract


def check_items(items: list[Any], name: str) -> tuple[list[TrialRecord], list[ReadFailure]]:
    """Every item is a record or a failure naming the file and the record; records hold only strings."""
    assert items, "a file always yields a record or a failure"
    records, failures = [], []
    for item in items:
        if isinstance(item, ReadFailure):
            assert item.path == name, item
            assert isinstance(item.record, str) and item.record.strip(), item
            assert item.field is None or (isinstance(item.field, str) and item.field.strip()), item
            assert isinstance(item.message, str) and item.message.strip(), item
            assert str(item).startswith(f"{name}: record {item.record}"), item
            if item.field:
                assert f", field {item.field!r}: " in str(item), item
            failures.append(item)
        else:
            assert isinstance(item, TrialRecord), type(item)
            assert isinstance(item.trial_id, str) and item.trial_id.strip()
            assert item.source.path == name
            for field, text in item.text_fields():
                assert isinstance(text, str), (item.trial_id, field, type(text))
            records.append(item)
    return records, failures


def apply_all(data: bytes, mangles: list[Callable[[bytes], bytes]]) -> bytes:
    for mangle in mangles:
        data = mangle(data)
    return data


__all__ = [
    "BYTE_MANGLES",
    "EXTRACTOR_PROFILE",
    "PROFILE",
    "SAMPLES",
    "JsonDoc",
    "apply_all",
    "check_items",
    "csv_mutation",
    "csv_rows",
    "dotted",
    "json_mutation",
    "to_json_bytes",
    "xml_elements",
    "xml_mutation",
]
