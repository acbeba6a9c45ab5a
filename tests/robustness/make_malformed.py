"""Regenerate ``malformed/``: real fixtures broken in one known way each (run from the repository root:
``python -m tests.robustness.make_malformed``).  Expected messages live in ``malformed/cases.json`` and are
written by hand after reading the failures (``--show`` prints them)."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "fixtures" / "ingest"
OUT = HERE / "malformed"


def _study() -> dict:
    return json.loads((FIX / "NCT00973089.json").read_text(encoding="utf-8"))


def _with(path: tuple, value: object, delete: bool = False) -> bytes:
    doc = _study()
    node = doc
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(doc, indent=1).encode("utf-8")


def _huge_count(line: bytes, digits: int) -> bytes:
    """A study line whose enrollment count has ``digits`` digits (5,000: over Python's int-string limit)."""
    return line.replace(b'"count":', b'"count": ' + b"9" * digits + b', "was":', 1)


def cases() -> dict[str, bytes]:
    seed = sorted((HERE.parent.parent / "data" / "examples" / "seeds").glob("*.txt"))[0].read_bytes()
    seed_lines = seed.split(b"\n")
    page = (FIX / "page.json").read_bytes()
    jsonl = (FIX / "studies.jsonl").read_bytes().splitlines()
    xml = (FIX / "NCT00739856.xml").read_bytes()
    csv = (FIX / "ctg-studies.csv").read_bytes()
    csv_lines = csv.split(b"\n")
    ps, im, cm, dm, om = ("protocolSection", "identificationModule", "conditionsModule", "designModule",
                          "outcomesModule")
    out: dict[str, bytes] = {
        # seven-line text
        "text_six_lines.txt": b"\n".join(seed_lines[:6]),
        "text_eight_lines.txt": seed + b"\nextra line",
        "text_latin1.txt": seed.decode("utf-8").replace("e", "\u00e9", 3).encode("latin-1", "replace"),
        "text_nul_bytes.txt": seed.replace(b" ", b"\x00", 5),
        "text_empty.txt": b"",
        "text_blank_lines.txt": b"\n\n\n\n\n\n",
        "text_utf16_no_bom.txt": seed.decode("utf-8").encode("utf-16-le"),
        # API v2 JSON: one study
        "json_truncated.json": json.dumps(_study(), indent=1).encode()[:3000],
        "json_title_number.json": _with((ps, im, "briefTitle"), 42),
        "json_conditions_string.json": _with((ps, cm, "conditions"), "Lymphoma"),
        "json_condition_number.json": _with((ps, cm, "conditions"), ["Lymphoma", 7]),
        "json_phases_object.json": _with((ps, dm, "phases"), {"phase": 1}),
        "json_enrollment_text.json": _with((ps, dm, "enrollmentInfo", "count"), "about forty"),
        "json_outcomes_object.json": _with((ps, om, "primaryOutcomes"), {"measure": "ORR"}),
        "json_outcome_measure_list.json": _with((ps, om, "primaryOutcomes", 0, "measure"), ["ORR", "CR"]),
        "json_no_nctid.json": _with((ps, im, "nctId"), None, delete=True),
        "json_no_identification.json": _with((ps, im), None, delete=True),
        "json_no_protocol.json": _with((ps,), None, delete=True),
        "json_protocol_list.json": _with((ps,), []),
        "json_nctid_number.json": _with((ps, im, "nctId"), 973089),
        "json_bare_string.json": b'"NCT00973089"',
        "json_bare_number.json": b"12345",
        "json_trailing_garbage.json": json.dumps(_study()).encode() + b"}}",
        "json_empty_page.json": b'{"studies": [], "nextPageToken": null}',
        # API v2 JSON: a page
        "page_truncated.json": page[: page.index(b'"briefSummary"', page.index(b"NCT03101709")) + 30],
        "page_study_null.json": page.replace(b'"studies": [\n', b'"studies": [\n    null,\n', 1),
        "page_huge_integer.json": b"[" + b",\n".join([jsonl[0], _huge_count(jsonl[1], 5000), jsonl[2]])
        + b"]",
        "page_count_over_64_bits.json": b"[" + b",\n".join([jsonl[0], _huge_count(jsonl[1], 20), jsonl[2]])
        + b"]",
        "page_huge_exponent.json": b"[" + b",\n".join(
            [jsonl[0], jsonl[1].replace(b'"count":', b'"count": 1e400, "was":', 1), jsonl[2]]
        ) + b"]",
        "json_bare_true.json": b"true\n",
        "page_studies_object.json": b'{"studies": {"protocolSection": {}}}',
        # JSON Lines
        "lines_one_truncated.jsonl": b"\n".join([jsonl[0], jsonl[1][: len(jsonl[1]) // 2], jsonl[2]]) + b"\n",
        "lines_one_array.jsonl": b"\n".join([jsonl[0], b"[1, 2, 3]", jsonl[2]]) + b"\n",
        "lines_one_binary.jsonl": b"\n".join([jsonl[0], b"\xff\xfe\x00garbage", jsonl[2]]) + b"\n",
        "lines_huge_integer.jsonl": b"\n".join([jsonl[0], _huge_count(jsonl[1], 5000), jsonl[2]]) + b"\n",
        "lines_bare_number.jsonl": b"\n".join([jsonl[0], b"42", jsonl[2]]) + b"\n",
        # legacy XML
        "xml_truncated.xml": xml[: len(xml) // 2],
        "xml_no_nct_id.xml": xml.replace(b"<nct_id>NCT00739856</nct_id>", b""),
        "xml_unclosed_tag.xml": xml.replace(b"</brief_title>", b"", 1),
        "xml_wrong_root.xml": b'<?xml version="1.0"?>\n<not_a_study><x>1</x></not_a_study>\n',
        "xml_doctype_entity.xml": xml.replace(
            b"<clinical_study",
            b'<!DOCTYPE clinical_study [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<clinical_study',
            1,
        ).replace(b"</brief_title>", b"&x;</brief_title>", 1),
        "xml_billion_laughs.xml": xml.replace(
            b"<clinical_study",
            b'<!DOCTYPE clinical_study [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n<clinical_study',
            1,
        ).replace(b"</brief_title>", b"&c;</brief_title>", 1),
        "xml_latin1_declared_utf8.xml": xml.decode("utf-8").replace("a", "\u00e4", 3).encode("latin-1"),
        # CSV download
        "csv_header_only.csv": csv_lines[0] + b"\n",
        "csv_unbalanced_quote.csv": b"\n".join(csv_lines[:2] + [b'"' + csv_lines[2]] + csv_lines[3:]),
        "csv_short_row.csv": b"\n".join(csv_lines[:2] + [b"NCT00000001,Title only"] + csv_lines[2:]),
        "csv_no_nct_column.csv": b"\n".join(
            [csv_lines[0].replace(b"NCT Number", b"Identifier")] + csv_lines[1:3]
        ),
        "csv_bad_nct.csv": b"\n".join([csv_lines[0], b"NOT-AN-ID" + csv_lines[1][11:]]),
        # containers
        "gzip_truncated.json.gz": gzip.compress(json.dumps(_study()).encode(), mtime=0)[:200],
        "zip_not_zip.zip": b"PK\x03\x04" + b"\x00" * 40,
        "binary_noise.json": bytes(range(256)) * 4,
    }
    return out


def write_cases() -> None:
    OUT.mkdir(exist_ok=True)
    for name, data in cases().items():
        (OUT / name).write_bytes(data)


def show() -> None:
    from kg.ingest import read_paths
    from kg.records import ReadFailure

    for name in sorted(cases()):
        items = list(read_paths([str(OUT / name)]))
        recs = [i.trial_id for i in items if not isinstance(i, ReadFailure)]
        fails = [(f.record, f.field, f.message) for f in items if isinstance(f, ReadFailure)]
        print(name, recs, fails)


if __name__ == "__main__":
    write_cases()
    if "--show" in sys.argv:
        show()
