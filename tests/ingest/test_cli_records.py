"""`cartkg records`: records on stdout, one line per failure on stderr, a summary and the exit code."""

from __future__ import annotations

import json

from kg.cli import main
from kg.resources import examples_dir

from .helpers import FIXTURES, write

SEEDS = examples_dir() / "seeds"


def test_cli_records_all_good_exits_0(capsys):
    assert main(["records", str(SEEDS), str(FIXTURES / "studies.jsonl")]) == 0
    out, err = capsys.readouterr()
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == 8
    assert err.strip().splitlines() == ["8 records read, 0 failed"]
    outcome = objects[0]["outcomes"][0]
    assert set(outcome) == {"role", "measure", "description", "time_frame"}
    assert objects[0]["trial_id"] == sorted(p.stem for p in SEEDS.glob("*.txt"))[0]


def test_cli_records_bad_inputs_are_reported_and_counted(tmp_path, capsys):
    six = write(tmp_path, "six.txt", "\n".join(["line"] * 6))
    empty = write(tmp_path, "empty.json", b"")
    no_title = write(tmp_path, "no-title.csv", "NCT Number,Conditions\nNCT01234567,ALL\n")
    doctype = write(tmp_path, "d.xml", '<!DOCTYPE clinical_study [<!ENTITY e "x">]><clinical_study/>')
    code = main(
        ["records", str(six), str(FIXTURES / "ctg-studies.csv"), str(empty), str(no_title), str(doctype)]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert len(out.splitlines()) == 3  # the good CSV's records are still printed
    lines = err.strip().splitlines()
    assert lines[-1] == "3 records read, 4 failed"
    assert lines[:-1] == [
        f"cartkg: {six}: record six, field 'detailed_description': has 6 lines, expected exactly 7 "
        "(title, brief summary, conditions, interventions, primary outcomes, secondary outcomes, "
        "description); line 7 is missing",
        f"cartkg: {empty}: record (file): the file is empty",
        f"cartkg: {no_title}: record NCT01234567, field 'Study Title': "
        "the CSV has no 'Study Title' column (its columns: NCT Number, Conditions)",
        f"cartkg: {doctype}: record #0, field '<!DOCTYPE>': the XML declares a DOCTYPE ('clinical_study'); "
        "DTDs are refused (they allow entity expansion and external fetches)",
    ]


def test_cli_records_table_format(capsys):
    assert main(["records", "--format", "table", str(FIXTURES / "ctg-studies.csv")]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["trial_id", "format", "outcomes"]
    assert rows[1].split()[:3] == ["NCT06600893", "csv", "6"]
    assert err.strip() == "3 records read, 0 failed"


def test_cli_records_undoes_escapes_unless_raw(capsys):
    main(["records", str(FIXTURES / "ctg-studies.csv")])
    shown = json.loads(capsys.readouterr().out.splitlines()[2])
    main(["records", "--raw", str(FIXTURES / "ctg-studies.csv")])
    raw = json.loads(capsys.readouterr().out.splitlines()[2])
    assert "\\<14" in raw["outcomes"][0]["description"]
    assert "\\<14" not in shown["outcomes"][0]["description"] and "<14" in shown["outcomes"][0]["description"]
