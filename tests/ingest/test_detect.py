"""kg.ingest.detect and read_paths: formats told by content, inputs of every kind, bundled examples."""

from __future__ import annotations

import gzip
import io
import json
import sys
import zipfile

import pytest

from kg.ingest import is_record_file, read_paths
from kg.ingest.detect import HEAD_BYTES, sniff_format
from kg.resources import examples_dir

from .helpers import FIXTURES, read_all, write

SEED = sorted((examples_dir() / "seeds").glob("*.txt"))[0]


@pytest.mark.parametrize(
    ("fixture", "fmt"),
    [
        ("ctg-studies.csv", "csv"),
        ("page.json", "json"),
        ("NCT00973089.json", "json"),
        ("studies.jsonl", "jsonl"),
        ("NCT00739856.xml", "xml"),
    ],
)
def test_detect_tells_each_fixture_format_from_content_alone(fixture, fmt):
    data = (FIXTURES / fixture).read_bytes()
    assert sniff_format(data[:HEAD_BYTES], "no-suffix", complete=len(data) < HEAD_BYTES).format == fmt


def test_detect_seed_text_is_the_seven_line_format():
    data = SEED.read_bytes()
    assert sniff_format(data, "x.csv", complete=True).format == "text"  # a misleading suffix does not win


@pytest.mark.parametrize("name", ["record.txt", "record", "record.data"])
def test_detect_misnamed_files_are_read_by_content(tmp_path, name):
    path = write(tmp_path, name, (FIXTURES / "NCT00973089.json").read_bytes())
    [rec], failures = read_all(path)
    assert failures == [] and rec.trial_id == "NCT00973089"


def test_detect_jsonl_vs_json_document():
    one_line_study = json.dumps({"protocolSection": {}}) + "\n"
    assert sniff_format((one_line_study * 2).encode(), "x", complete=True).format == "jsonl"
    assert sniff_format(one_line_study.encode(), "x", complete=True).format == "json"
    assert sniff_format(b'{\n  "studies": []\n}\n', "x", complete=True).format == "json"
    assert sniff_format(b"[\n{}\n]", "x", complete=True).format == "json"
    assert sniff_format(b"{}\n", "x.jsonl", complete=True).format == "jsonl"


def test_detect_csv_header_needs_download_column_names():
    assert sniff_format(b"NCT Number,Study Title\nNCT01234567,T\n", "x", complete=True).format == "csv"
    assert sniff_format(b"NCT Number\tStudy Title\n", "x", complete=True).delimiter == "\t"
    # A seven-line title with commas is not a CSV header.
    assert sniff_format(b"Phase 1, Status and Age\nsummary\n", "x", complete=True).format == "text"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
    ],
)
def test_detect_reads_text_with_a_byte_order_mark(tmp_path, encoding, bom):
    text = SEED.read_text(encoding="utf-8")
    [rec], failures = read_all(write(tmp_path, SEED.name, bom + text.encode(encoding)))
    assert failures == []
    [expected], _ = read_all(SEED)
    assert rec.brief_title == expected.brief_title and rec.outcomes == expected.outcomes


def test_detect_utf16_csv_and_json_with_bom(tmp_path):
    csv_text = (FIXTURES / "ctg-studies.csv").read_text(encoding="utf-8")
    records, failures = read_all(write(tmp_path, "s.csv", b"\xff\xfe" + csv_text.encode("utf-16-le")))
    assert failures == [] and len(records) == 3
    json_text = (FIXTURES / "page.json").read_text(encoding="utf-8")
    records, failures = read_all(write(tmp_path, "p.json", b"\xff\xfe" + json_text.encode("utf-16-le")))
    assert failures == [] and len(records) == 2


def test_read_paths_reads_gzip_and_zip(tmp_path):
    gz = tmp_path / "studies.jsonl.gz"
    gz.write_bytes(gzip.compress((FIXTURES / "studies.jsonl").read_bytes()))
    archive = tmp_path / "AllPublicXML.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(FIXTURES / "NCT00739856.xml", "NCT0073xxxx/NCT00739856.xml")
        zf.write(FIXTURES / "ctg-studies.csv", "ctg-studies.csv")
        zf.writestr("README.md", "not a record")
    records, failures = read_all(gz, archive)
    assert failures == []
    assert [r.trial_id for r in records][:3] == ["NCT03029338", "NCT03101709", "NCT03196414"]
    assert [r.source.path for r in records][3:] == [f"{archive}!NCT0073xxxx/NCT00739856.xml"] + [
        f"{archive}!ctg-studies.csv"
    ] * 3


def test_read_paths_walks_folders_sorted_and_skips_hidden_and_non_record_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / ".git").mkdir()
    write(tmp_path / "b", "NCT00973089.json", (FIXTURES / "NCT00973089.json").read_bytes())
    write(tmp_path / "a", "seed.txt", SEED.read_bytes())
    write(tmp_path, "z.xml", (FIXTURES / "NCT00739856.xml").read_bytes())
    write(tmp_path / ".git", "x.json", "{}")
    write(tmp_path, ".hidden.json", "{}")
    write(tmp_path, "README.md", "# notes")
    write(tmp_path, "logo.png", b"\x89PNG\r\n\x1a\n")
    records, failures = read_all(tmp_path)
    assert failures == []
    assert [r.source.path for r in records] == [
        str(tmp_path / "z.xml"),
        str(tmp_path / "a" / "seed.txt"),
        str(tmp_path / "b" / "NCT00973089.json"),
    ]
    assert is_record_file("x.XML") and is_record_file("x.jsonl.gz") and not is_record_file("x.md")


def test_read_paths_reads_several_paths_in_order(tmp_path):
    records, failures = read_all(FIXTURES / "NCT00739856.xml", FIXTURES / "studies.jsonl", SEED)
    assert failures == []
    assert [r.source.format for r in records] == ["xml", "jsonl", "jsonl", "jsonl", "text"]


def test_read_paths_reads_stdin_as_bytes(monkeypatch):
    data = (FIXTURES / "studies.jsonl").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    items = list(read_paths(["-"]))
    assert [i.trial_id for i in items] == ["NCT03029338", "NCT03101709", "NCT03196414"]
    assert {i.source.path for i in items} == {"<stdin>"}


def test_read_paths_stdin_gzip(monkeypatch):
    data = gzip.compress((FIXTURES / "ctg-studies.csv").read_bytes())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    items = list(read_paths(["-"]))
    assert [i.trial_id for i in items] == ["NCT06600893", "NCT00351065", "NCT05231083"]


def test_read_paths_is_deterministic():
    first = [item.to_dict() for item in read_paths([str(examples_dir())])]
    second = [item.to_dict() for item in read_paths([str(examples_dir())])]
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


@pytest.mark.parametrize(
    ("folder", "count", "fmt"),
    [("cart_v2", 148, "json"), ("ctgov_v2", 13, "json"), ("ctgov_xml", 65, "xml"), ("seeds", 5, "text")],
)
def test_read_paths_reads_every_bundled_example_without_failure(folder, count, fmt):
    records, failures = read_all(examples_dir() / folder)
    assert failures == []
    assert len(records) == count
    assert {r.source.format for r in records} == {fmt}
    if folder != "ctgov_v2":  # NCT02278341.json holds the same study as NCT02552212.json
        assert len({r.trial_id for r in records}) == count
    if folder != "seeds":
        assert all(r.nct_id == r.trial_id and r.brief_title for r in records)


def test_read_paths_reads_a_named_pipe(tmp_path):
    import os
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = (FIXTURES / "studies.jsonl").read_bytes()
    writer = threading.Thread(target=lambda: fifo.write_bytes(data))
    writer.start()
    records, failures = read_all(fifo)
    writer.join()
    assert failures == [] and [r.trial_id for r in records] == ["NCT03029338", "NCT03101709", "NCT03196414"]
