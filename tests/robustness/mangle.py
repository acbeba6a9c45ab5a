"""Hypothesis strategies that mangle real records: truncation, shuffled lines, random bytes, wrong encodings,
huge fields, wrong JSON types, missing modules (JSON and XML), broken CSV rows."""

from __future__ import annotations

import copy
import csv
import io
import os
import random
import xml.etree.ElementTree as ET  # noqa: S405 - parses our own fixtures only
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

Mangle = Callable[[bytes], bytes]


# --------------------------------------------------------------------------- byte-level mangles


@st.composite
def truncate(draw: Any) -> Mangle:
    frac = draw(st.floats(0, 1))
    return lambda data: data[: int(len(data) * frac)]


@st.composite
def shuffle_lines(draw: Any) -> Mangle:
    rnd = draw(st.randoms(use_true_random=False))

    def apply(data: bytes) -> bytes:
        lines = data.split(b"\n")
        rnd.shuffle(lines)
        return b"\n".join(lines)

    return apply


@st.composite
def drop_or_repeat_lines(draw: Any) -> Mangle:
    rnd = draw(st.randoms(use_true_random=False))
    repeat = draw(st.booleans())

    def apply(data: bytes) -> bytes:
        lines = data.split(b"\n")
        i = rnd.randrange(len(lines))
        lines[i:i + 1] = [lines[i], lines[i]] if repeat else []
        return b"\n".join(lines)

    return apply


@st.composite
def random_bytes(draw: Any) -> Mangle:
    at = draw(st.floats(0, 1))
    junk = draw(st.binary(min_size=1, max_size=16) | st.sampled_from(SPECIAL))
    overwrite = draw(st.integers(0, 32))

    def apply(data: bytes) -> bytes:
        pos = int(len(data) * at)
        return data[:pos] + junk + data[pos + overwrite:]

    return apply


@st.composite
def wrong_encoding(draw: Any) -> Mangle:
    encoding = draw(st.sampled_from(ENCODINGS))
    return lambda data: data.decode("utf-8", "replace").encode(encoding, "replace")


@st.composite
def huge_field(draw: Any) -> Mangle:
    at = draw(st.floats(0, 1))
    size = draw(st.integers(10_000, 100_000))
    fill = draw(st.sampled_from([b"A", b"lorem ipsum ", "é".encode(), b"\\", b"CD19 4-1BB "]))

    def apply(data: bytes) -> bytes:
        pos = int(len(data) * at)
        return data[:pos] + fill * (size // len(fill)) + data[pos:]

    return apply


BYTE_MANGLES = st.one_of(
    truncate(), shuffle_lines(), drop_or_repeat_lines(), random_bytes(), wrong_encoding(), huge_field()
)


# --------------------------------------------------------------------------- JSON structure


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
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


@st.composite
def json_mutation(draw: Any, doc: Any) -> tuple[Any, tuple, str]:
    """``(mutated copy, path, kind)``: one value replaced by a wrong-typed one, or one key deleted."""
    paths = json_paths(doc)
    path = draw(st.sampled_from(paths))
    kind = draw(st.sampled_from(["replace", "delete", "huge"]))
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    if kind == "delete":
        del node[path[-1]]
    elif kind == "huge":
        node[path[-1]] = "x" * draw(st.integers(10_000, 100_000))
    else:
        node[path[-1]] = draw(JSON_VALUES)
    return out, path, kind


# --------------------------------------------------------------------------- XML and CSV structure


@st.composite
def xml_mutation(draw: Any, data: bytes) -> bytes:
    """One element removed (a missing module), emptied, given a child where text was, or a huge text."""
    root = ET.fromstring(data)  # noqa: S314 - our own fixture
    elements = [(parent, child) for parent in root.iter() for child in parent]
    parent, child = draw(st.sampled_from(elements))
    kind = draw(st.sampled_from(["remove", "empty", "nest", "huge", "rename"]))
    if kind == "remove":
        parent.remove(child)
    elif kind == "empty":
        child.text = None
        for sub in list(child):
            child.remove(sub)
    elif kind == "nest":
        ET.SubElement(child, draw(st.sampled_from(["textblock", "nct_id", "x"]))).text = "nested"
    elif kind == "huge":
        child.text = "y " * draw(st.integers(5_000, 50_000))
    else:
        child.tag = draw(st.sampled_from(["nct_id", "brief_title", "unknown", "primary_outcome"]))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@st.composite
def csv_mutation(draw: Any, data: bytes) -> bytes:
    """Rows with cells dropped, added, swapped or quoted wrongly; a column removed; another delimiter."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    rnd = draw(st.randoms(use_true_random=False))
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
        rows = [row[:c] + row[c + 1:] for row in rows]
    out = io.StringIO()
    csv.writer(out, delimiter=";" if kind == "delimiter" else ",").writerows(rows)
    text = out.getvalue()
    if kind == "bad_quote":
        pos = rnd.randrange(len(text))
        text = text[:pos] + '"' + text[pos:]
    return text.encode("utf-8")


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
            failures.append(item)
        else:
            assert isinstance(item, TrialRecord), type(item)
            assert isinstance(item.trial_id, str) and item.trial_id.strip()
            assert item.source.path == name
            for field, text in item.text_fields():
                assert isinstance(text, str), (item.trial_id, field, type(text))
            records.append(item)
    return records, failures


def apply_all(data: bytes, mangles: list[Mangle]) -> bytes:
    for mangle in mangles:
        data = mangle(data)
    return data


__all__ = [
    "BYTE_MANGLES",
    "EXTRACTOR_PROFILE",
    "PROFILE",
    "SAMPLES",
    "apply_all",
    "check_items",
    "csv_mutation",
    "dotted",
    "json_mutation",
    "random",
    "xml_mutation",
]
