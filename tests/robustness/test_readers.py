"""Every reader fed mangled real records: no uncaught exception, every failure a ReadFailure naming the file
and the record, records that are read hold only strings.  ``CI=true`` runs ≥ 1,000 cases per reader."""

from __future__ import annotations

import io
import re

from hypothesis import given
from hypothesis import strategies as st

from kg.ingest import read_stream

from .mangle import (
    BYTE_MANGLES,
    PROFILE,
    SAMPLES,
    JsonDoc,
    apply_all,
    check_items,
    csv_mutation,
    csv_rows,
    dotted,
    json_mutation,
    to_json_bytes,
    xml_elements,
    xml_mutation,
)

# Parsed once: the structural strategies splice these instead of parsing and serializing per case.
JSON_DOCS = {name: JsonDoc.of(raw) for name, raw in SAMPLES["json"]}
JSONL_LINES = {name: [JsonDoc.of(line) for line in raw.splitlines()] for name, raw in SAMPLES["jsonl"]}
XML_ELEMENTS = {name: xml_elements(raw) for name, raw in SAMPLES["xml"]}
CSV_ROWS = {name: csv_rows(raw) for name, raw in SAMPLES["csv"]}


def _read(data: bytes, name: str) -> list:
    return list(read_stream(io.BytesIO(data), name))


def _byte_case(reader: str):
    return st.tuples(st.sampled_from(SAMPLES[reader]), st.lists(BYTE_MANGLES, min_size=1, max_size=3))


@PROFILE
@given(case=_byte_case("text"))
def test_robust_text_reader_mangled_bytes(case):
    (name, data), mangles = case
    check_items(_read(apply_all(data, mangles), name), name)


@PROFILE
@given(case=_byte_case("csv"), data=st.data())
def test_robust_csv_reader_mangled(case, data):
    (name, raw), mangles = case
    if data.draw(st.booleans(), label="structural"):
        raw = data.draw(csv_mutation(CSV_ROWS[name]))
        mangles = mangles[:1] if data.draw(st.booleans(), label="also bytes") else []
    check_items(_read(apply_all(raw, mangles), name), name)


@PROFILE
@given(case=_byte_case("json"))
def test_robust_json_reader_mangled_bytes(case):
    (name, data), mangles = case
    check_items(_read(apply_all(data, mangles), name), name)


@PROFILE
@given(sample=st.sampled_from(SAMPLES["json"]), data=st.data())
def test_robust_json_reader_wrong_types_and_missing_modules(sample, data):
    """A wrong-typed or missing value: a record, or a failure whose field is on the changed path."""
    name, _ = sample
    mutated, path, kind = data.draw(json_mutation(JSON_DOCS[name]))
    records, failures = check_items(_read(to_json_bytes(mutated), name), name)
    changed = dotted(path)
    if "protocolSection" not in changed:
        return  # a page key or a whole study replaced: the failure names the record (checked above)
    for failure in failures:
        assert failure.field, failure
        assert _related(failure.field, changed), (changed, kind, str(failure))


def _related(field: str, changed: str) -> bool:
    """Whether a failure's field is on the changed path: it names the changed value, something inside it,
    or the object around it.  Paths are compared from ``protocolSection`` (a page nests studies under
    ``studies[i]``)."""
    changed_tail = _unindexed(changed[changed.index("protocolSection"):])
    field_tail = _unindexed(field[field.index("protocolSection"):] if "protocolSection" in field else field)
    return field_tail.startswith(changed_tail) or changed_tail.startswith(field_tail)


def _unindexed(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


@PROFILE
@given(case=_byte_case("jsonl"), data=st.data())
def test_robust_jsonl_reader_mangled(case, data):
    (name, raw), mangles = case
    if data.draw(st.booleans(), label="structural"):
        lines = raw.splitlines()
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        mutated, _, _ = data.draw(json_mutation(JSONL_LINES[name][i]))
        lines[i] = to_json_bytes(mutated)
        raw = b"\n".join(lines) + b"\n"
        mangles = []
    check_items(_read(apply_all(raw, mangles), name), name)


@PROFILE
@given(case=_byte_case("xml"), data=st.data())
def test_robust_xml_reader_mangled(case, data):
    (name, raw), mangles = case
    if data.draw(st.booleans(), label="structural"):
        raw = data.draw(xml_mutation(raw, XML_ELEMENTS[name]))
        mangles = mangles[:1] if data.draw(st.booleans(), label="also bytes") else []
    check_items(_read(apply_all(raw, mangles), name), name)


@PROFILE
@given(reader=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_robust_any_reader_under_another_name(reader, data):
    """Detection is by content: a file named .json holding XML (and so on) is read or refused cleanly."""
    name, raw = data.draw(st.sampled_from(SAMPLES[reader]))
    wrong = data.draw(st.sampled_from(["x.json", "x.xml", "x.csv", "x.txt", "x.jsonl", "x.gz"]))
    mangles = data.draw(st.lists(BYTE_MANGLES, max_size=2))
    check_items(_read(apply_all(raw, mangles), wrong), wrong)
