"""Bad input: one failure naming the file, the record and the field; the other records are still read."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.ingest import read_stream
from kg.ingest.detect import MAX_LINE_CHARS
from kg.records import ReadFailure, TrialRecord
from kg.resources import examples_dir

from .helpers import FIXTURES, read_all, seven_lines, write

STUDY = json.loads((FIXTURES / "NCT00973089.json").read_text(encoding="utf-8"))
JSONL = (FIXTURES / "studies.jsonl").read_text(encoding="utf-8").splitlines()
SEED = sorted((examples_dir() / "seeds").glob("*.txt"))[0]
BIG = 50 * 1024 * 1024


def _write_big(path: Path, before: str, fill: str, size: int, after: str) -> Path:
    """Write ``before + fill * n + after`` (the fill about ``size`` ASCII bytes) without building it whole."""
    chunk = fill * (1024 * 1024 // len(fill))
    with path.open("w", encoding="utf-8") as out:
        out.write(before)
        for _ in range(size // len(chunk)):
            out.write(chunk)
        out.write(after)
    return path


def _fill_length(fill: str, size: int) -> int:
    chunk = len(fill) * (1024 * 1024 // len(fill))
    return chunk * (size // chunk)


# --------------------------------------------------------------------------- seven-line text


def test_bad_six_line_file(tmp_path):
    lines = SEED.read_text(encoding="utf-8").split("\n")[:6]
    path = write(tmp_path, "six.txt", seven_lines(lines))
    records, [failure] = read_all(path, SEED)
    assert [r.trial_id for r in records] == [SEED.stem]  # the next file is still read
    assert failure.path == str(path)
    assert failure.record == "six"
    assert failure.field == "detailed_description"
    assert "has 6 lines" in failure.message and "exactly 7" in failure.message
    assert str(failure).startswith(f"{path}: record six, field 'detailed_description': ")


def test_bad_eight_line_file(tmp_path):
    lines = SEED.read_text(encoding="utf-8").split("\n") + ["extra"]
    records, [failure] = read_all(write(tmp_path, "eight.txt", seven_lines(lines)))
    assert failure.field == "line 8" and "has 8 lines" in failure.message


# --------------------------------------------------------------------------- JSON


def test_bad_truncated_json_page_keeps_the_studies_before_the_cut(tmp_path):
    text = (FIXTURES / "page.json").read_text(encoding="utf-8")
    cut = text.index('"briefSummary"', text.index("NCT03101709")) + 30
    path = write(tmp_path, "page.json", text[:cut])
    records, [failure] = read_all(path)
    assert [r.trial_id for r in records] == ["NCT03029338"]
    assert failure.path == str(path)
    assert failure.record == "NCT03101709"  # the study being read when the text ended
    assert failure.field == "protocolSection.descriptionModule.briefSummary"
    assert "truncated" in failure.message


def test_bad_truncated_json_lines_record_fails_alone(tmp_path):
    lines = [JSONL[0], JSONL[1][: len(JSONL[1]) // 2], JSONL[2]]
    records, [failure] = read_all(write(tmp_path, "s.jsonl", "\n".join(lines) + "\n"))
    assert [r.trial_id for r in records] == ["NCT03029338", "NCT03196414"]
    assert failure.record == "NCT03101709"
    assert failure.field and failure.field.startswith("protocolSection.")
    assert "line 2" in failure.message and "invalid JSON" in failure.message


def test_bad_json_study_without_protocol_section(tmp_path):
    studies = [json.loads(line) for line in JSONL]
    studies[1] = {"derivedSection": {"miscInfoModule": {}}, "hasResults": False}
    records, [failure] = read_all(write(tmp_path, "list.json", json.dumps(studies, indent=2)))
    assert [r.trial_id for r in records] == ["NCT03029338", "NCT03196414"]
    assert (failure.record, failure.field) == ("#1", "protocolSection")
    assert "no 'protocolSection'" in failure.message and "derivedSection" in failure.message


def test_bad_json_study_without_protocol_section_names_its_nct_id_when_it_has_one(tmp_path):
    study = {"studies": [{"nctId": "NCT09999999", "title": "flattened"}]}
    records, [failure] = read_all(write(tmp_path, "p.json", json.dumps(study)))
    assert (failure.record, failure.field) == ("NCT09999999", "protocolSection")


def test_bad_json_that_is_not_a_study(tmp_path):
    records, failures = read_all(write(tmp_path, "n.json", "[1, 2]"))
    assert records == []
    assert [f.record for f in failures] == ["#0", "#1"]
    assert all("expected a study object, got a number" in f.message for f in failures)


# --------------------------------------------------------------------------- CSV


def test_bad_csv_without_a_title_column_fails_every_record(tmp_path):
    text = "NCT Number,Conditions,Phases\nNCT01234567,ALL,PHASE1\nNCT07654321,NHL,PHASE2\n"
    path = write(tmp_path, "no-title.csv", text)
    records, failures = read_all(path, FIXTURES / "ctg-studies.csv")
    assert len(records) == 3  # the next file is still read
    assert [(f.record, f.field) for f in failures] == [
        ("NCT01234567", "Study Title"),
        ("NCT07654321", "Study Title"),
    ]
    assert all(f.path == str(path) for f in failures)
    assert (
        "no 'Study Title' column" in failures[0].message
        and "NCT Number, Conditions, Phases" in failures[0].message
    )


def test_bad_csv_unterminated_quote(tmp_path):
    text = 'NCT Number,Study Title,Conditions\nNCT01234567,Good,ALL\nNCT07654321,"Broken title,NHL\n'
    records, [failure] = read_all(write(tmp_path, "s.csv", text))
    assert [r.trial_id for r in records] == ["NCT01234567"]
    assert (
        failure.record == "NCT07654321" and "never closed" in failure.message and "line 3" in failure.message
    )


# --------------------------------------------------------------------------- XML


def test_bad_xml_with_a_doctype(tmp_path):
    good = (FIXTURES / "NCT00739856.xml").read_text(encoding="utf-8")
    bad = '<?xml version="1.0"?>\n<!DOCTYPE clinical_study [<!ENTITY x "expanded">]>\n' + good.replace(
        "<brief_title>", "<brief_title>&x;"
    )
    write(tmp_path, "a.xml", bad)
    write(tmp_path, "b.xml", good)
    records, [failure] = read_all(tmp_path)
    assert [r.trial_id for r in records] == ["NCT00739856"]
    assert failure.path == str(tmp_path / "a.xml")
    assert (failure.record, failure.field) == ("#0", "<!DOCTYPE>")
    assert "DOCTYPE" in failure.message and "refused" in failure.message


def test_bad_xml_external_doctype_is_refused_without_fetching(tmp_path):
    text = '<?xml version="1.0"?><!DOCTYPE clinical_study SYSTEM "http://127.0.0.1:9/x.dtd"><clinical_study/>'
    records, [failure] = read_all(write(tmp_path, "x.xml", text))
    assert records == [] and failure.field == "<!DOCTYPE>"


def test_bad_xml_truncated_names_the_open_element(tmp_path):
    text = (FIXTURES / "NCT00739856.xml").read_text(encoding="utf-8")
    cut = text.index("<measure>") + 20
    records, [failure] = read_all(write(tmp_path, "t.xml", text[:cut]))
    assert records == []
    assert failure.record == "NCT00739856"
    assert failure.field == "clinical_study/primary_outcome/measure"
    assert "truncated" in failure.message and "line" in failure.message


# --------------------------------------------------------------------------- whole-file problems


def test_bad_binary_file(tmp_path):
    path = write(tmp_path, "image.json", bytes(range(256)) * 64)
    records, [failure] = read_all(path, FIXTURES / "NCT00739856.xml")
    assert len(records) == 1
    assert (failure.path, failure.record, failure.field) == (str(path), "(file)", None)
    assert "binary" in failure.message


def test_bad_binary_file_without_nul_bytes(tmp_path):
    path = write(tmp_path, "x.txt", bytes(range(128, 256)) * 64)
    records, [failure] = read_all(path)
    assert failure.record == "(file)" and "binary" in failure.message


@pytest.mark.parametrize(("content", "what"), [(b"", "empty"), (b"  \n\n\t\n", "only whitespace")])
def test_bad_empty_file(tmp_path, content, what):
    path = write(tmp_path, "empty.jsonl", content)
    records, [failure] = read_all(path, SEED)
    assert len(records) == 1
    assert (failure.path, failure.record) == (str(path), "(file)")
    assert what in failure.message


def test_bad_utf16_without_bom_fails_clearly(tmp_path):
    path = write(tmp_path, "s.txt", SEED.read_text(encoding="utf-8").encode("utf-16-le"))
    records, [failure] = read_all(path)
    assert records == [] and failure.record == "(file)"
    assert "UTF-16 without a byte-order mark" in failure.message


def test_bad_utf16_with_bom_but_invalid_fails_clearly(tmp_path):
    data = (
        b"\xff\xfe" + "NCT Number,Study Title\n".encode("utf-16-le") + b"\x00\xdc\x00\xdc"
    )  # lone surrogates
    records, [failure] = read_all(write(tmp_path, "s.csv", data))
    assert records == [] and "UTF-16" in failure.message


def test_bad_utf16_with_bom_is_decoded(tmp_path):
    path = write(tmp_path, "s.txt", b"\xff\xfe" + SEED.read_text(encoding="utf-8").encode("utf-16-le"))
    [rec], failures = read_all(path)
    assert failures == [] and rec.trial_id == "s"


def test_bad_invalid_utf8_byte_fails_only_its_record(tmp_path):
    lines = [json.loads(line) for line in JSONL]
    data = b"".join(json.dumps(s).encode() + b"\n" for s in lines)
    data = data.replace(b"CD19 CAR T Cells in Patients", b"CD19 CAR T Cells in Pati\xe9nts", 1)
    records, [failure] = read_all(write(tmp_path, "s.jsonl", data))
    assert [r.trial_id for r in records] == ["NCT03101709", "NCT03196414"]
    assert failure.record == "NCT03029338"
    assert failure.field == "protocolSection.identificationModule.briefTitle"
    assert "invalid UTF-8 byte 0xE9" in failure.message


def test_bad_missing_path(tmp_path):
    records, [failure] = read_all(tmp_path / "nope.json", SEED)
    assert len(records) == 1
    assert failure.path == str(tmp_path / "nope.json") and "cannot open" in failure.message


# --------------------------------------------------------------------------- a 50 MB line


def test_bad_50mb_json_line_fails_alone(tmp_path):
    study = json.loads(JSONL[1])
    study["protocolSection"]["descriptionModule"]["briefSummary"] = "@@FILL@@"
    head, tail = json.dumps(study).split("@@FILL@@")
    path = _write_big(tmp_path / "big.jsonl", JSONL[0] + "\n" + head, "x", BIG, tail + "\n" + JSONL[2] + "\n")
    records, [failure] = read_all(path)
    assert [r.trial_id for r in records] == ["NCT03029338", "NCT03196414"]
    assert failure.path == str(path)
    assert failure.record == "NCT03101709"
    assert failure.field == "protocolSection.descriptionModule.briefSummary"
    assert "line 2" in failure.message and f"{MAX_LINE_CHARS:,}" in failure.message


def test_bad_50mb_line_in_seven_line_text(tmp_path):
    lines = SEED.read_text(encoding="utf-8").split("\n")
    before = lines[0] + "\n"
    after = "\n" + "\n".join(lines[2:])
    path = _write_big(tmp_path / "huge.txt", before, "word ", BIG, after)
    records, [failure] = read_all(path, SEED)
    assert len(records) == 1
    assert (failure.path, failure.record, failure.field) == (str(path), "huge", "brief_summary")
    length = _fill_length("word ", BIG) + 1  # the line and its newline
    assert length > 50_000_000
    assert f"line 2 is {length:,} characters long" in failure.message


def test_bad_50mb_cell_in_csv(tmp_path):
    header = "NCT Number,Study Title,Brief Summary,Conditions\n"
    before = header + 'NCT01234567,Good,Fine,ALL\nNCT07654321,Huge,"'
    path = _write_big(tmp_path / "huge.csv", before, "word, ", BIG, '",NHL\nNCT01111111,Also good,Fine,AML\n')
    records, [failure] = read_all(path)
    assert [r.trial_id for r in records] == ["NCT01234567", "NCT01111111"]
    assert (failure.record, failure.field) == ("NCT07654321", "Brief Summary")
    assert "starting on line 3" in failure.message and f"{MAX_LINE_CHARS:,}" in failure.message


def test_bad_huge_field_in_a_json_document(tmp_path):
    studies = [json.loads(line) for line in JSONL]
    studies[0]["protocolSection"]["descriptionModule"]["briefSummary"] = "x" * 2_000_000
    records, [failure] = read_all(write(tmp_path, "list.json", json.dumps(studies)))
    assert len(records) == 2
    assert (failure.record, failure.field) == (
        "NCT03029338",
        "protocolSection.descriptionModule.briefSummary",
    )
    assert "2,000,000 characters" in failure.message


# --------------------------------------------------------------------------- a batch


def test_bad_inputs_in_one_batch_never_stop_it(tmp_path):
    write(tmp_path, "01-six.txt", "\n".join(["a"] * 6))
    write(tmp_path, "02-empty.json", b"")
    write(tmp_path, "03-binary.xml", bytes(range(256)))
    write(tmp_path, "04-truncated.json", (FIXTURES / "NCT00973089.json").read_text("utf-8")[:500])
    write(tmp_path, "05-good.jsonl", (FIXTURES / "studies.jsonl").read_bytes())
    write(tmp_path, "06-utf16.txt", SEED.read_text("utf-8").encode("utf-16-le"))
    write(tmp_path, "07-good.xml", (FIXTURES / "NCT00739856.xml").read_bytes())
    records, failures = read_all(tmp_path)
    assert len(records) == 4
    assert [Path(f.path).name for f in failures] == [
        "01-six.txt",
        "02-empty.json",
        "03-binary.xml",
        "04-truncated.json",
        "06-utf16.txt",
    ]
    assert all(f.message for f in failures)


# --------------------------------------------------------------------------- mangled records (property)

MANGLE_SOURCES = [
    (name, (FIXTURES / name).read_bytes())
    for name in ("ctg-studies.csv", "page.json", "studies.jsonl", "NCT00739856.xml", "NCT00973089.json")
] + [(SEED.name, SEED.read_bytes())]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(MANGLE_SOURCES),
    cut=st.floats(0, 1),
    at=st.floats(0, 1),
    junk=st.binary(max_size=12)
    | st.sampled_from([b'"', b"\n", b",", b"{", b"]", b"<", b"\x00", b"|", b"\xff"]),
    drop=st.integers(0, 40),
)
def test_bad_mangled_records_never_crash_a_reader(source, cut, at, junk, drop):
    name, data = source
    data = data[: max(1, int(len(data) * (0.5 + cut / 2)))]  # truncated somewhere in its second half
    pos = int(len(data) * at)
    data = data[:pos] + junk + data[pos + drop :]
    items = list(read_stream(io.BytesIO(data), name))
    assert items, "a file always yields a record or a failure"
    for item in items:
        assert isinstance(item, (TrialRecord, ReadFailure))
        if isinstance(item, ReadFailure):
            assert item.path == name and item.record and item.message


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("h.csv", "NCT Number,Study Title\n", "a CSV download"),
        ("p.json", '{"studies": [], "nextPageToken": null}', "API v2 JSON"),
        ("l.json", "[]", "API v2 JSON"),
    ],
)
def test_bad_file_with_no_record_is_reported(tmp_path, name, content, fmt):
    records, [failure] = read_all(write(tmp_path, name, content))
    assert records == []
    assert (failure.record, failure.field) == ("(file)", None)
    assert failure.message == f"no records found (read as {fmt})"
