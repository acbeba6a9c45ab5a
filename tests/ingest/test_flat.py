"""kg.ingest.flat: the seven-line text (the seeds' format)."""

from __future__ import annotations

import json
from pathlib import Path

from kg.ingest.flat import LINE_FIELDS
from kg.records import Intervention
from kg.resources import examples_dir

from .helpers import read_all, seven_lines, write

GOLD = Path(__file__).parent.parent / "fixtures" / "gold_seeds.json"

LINES = [
    "Anti-CD19 CAR T Cells for Relapsed B-ALL",
    "A phase 1 study of NCT01234567-like products.\\&more",
    "Acute Lymphoblastic Leukemia|B-cell Lymphoma",
    "BIOLOGICAL: CD19 CAR-T cells|DRUG: Fludarabine|Cyclophosphamide",
    "ORR, Overall response rate, 3 months",
    "OS, Overall survival, up to 2 years|PFS, 2 years",
    "Detailed text registered as NCT04567890 in the registry.",
]


def test_flat_seeds_read_with_stem_ids_matching_the_gold():
    records, failures = read_all(examples_dir() / "seeds")
    assert failures == []
    gold_ids = [g["trial_id"] for g in json.loads(GOLD.read_text(encoding="utf-8"))]
    assert [r.trial_id for r in records] == sorted(gold_ids)
    assert all(r.source.format == "text" and r.source.index == 0 for r in records)
    assert all(r.brief_title and r.brief_summary and r.detailed_description for r in records)


def test_flat_seed_outcome_counts_match_the_gold():
    records, _ = read_all(examples_dir() / "seeds")
    gold = {g["trial_id"]: g for g in json.loads(GOLD.read_text(encoding="utf-8"))}
    for rec in records:
        roles = [o.role for o in rec.outcomes]
        assert roles == [o["role"] for o in gold[rec.trial_id]["outcomes"]], rec.trial_id


def test_flat_maps_each_line_to_its_field(tmp_path):
    path = write(tmp_path, "trial.txt", seven_lines(LINES))
    [rec], failures = read_all(path)
    assert failures == []
    assert rec.brief_title == LINES[0]
    assert rec.brief_summary == LINES[1]  # text kept as read: the Markdown escape stays
    assert rec.conditions == ("Acute Lymphoblastic Leukemia", "B-cell Lymphoma")
    assert rec.interventions == (
        Intervention(type="BIOLOGICAL", name="CD19 CAR-T cells"),
        Intervention(type="DRUG", name="Fludarabine"),
        Intervention(type=None, name="Cyclophosphamide"),
    )
    assert [(o.role, o.measure) for o in rec.outcomes] == [
        ("primary", "ORR"),
        ("secondary", "OS"),
        ("secondary", "PFS"),
    ]
    assert rec.detailed_description == LINES[6]


def test_flat_trial_id_is_the_first_nct_number_anywhere(tmp_path):
    lines = list(LINES)
    lines[1] = "A phase 1 study."
    path = write(tmp_path, "000_abc.txt", seven_lines(lines))
    [rec], _ = read_all(path)
    assert rec.trial_id == "NCT04567890"  # found on line 7
    assert rec.nct_id == "NCT04567890"


def test_flat_trial_id_falls_back_to_the_file_stem(tmp_path):
    lines = [line.replace("NCT", "ID") for line in LINES]
    [rec], _ = read_all(write(tmp_path, "007_deadbeef.txt", seven_lines(lines)))
    assert rec.trial_id == "007_deadbeef"


def test_flat_accepts_a_final_newline_and_crlf_line_ends(tmp_path):
    a = read_all(write(tmp_path, "a.txt", seven_lines(LINES) + "\n"))[0][0]
    b = read_all(write(tmp_path, "b.txt", "\r\n".join(LINES) + "\r\n"))[0][0]
    assert a.detailed_description == b.detailed_description == LINES[6]
    assert a.brief_title == b.brief_title == LINES[0]


def test_flat_empty_lines_leave_fields_empty(tmp_path):
    lines = [LINES[0], "", "", "", "", "", ""]
    # An empty seventh line is a line: it is terminated like the others ("line 6\n\n").
    [rec], failures = read_all(write(tmp_path, "t.txt", seven_lines(lines) + "\n"))
    assert failures == []
    assert (rec.brief_summary, rec.conditions, rec.interventions, rec.outcomes, rec.detailed_description) == (
        None,
        (),
        (),
        (),
        None,
    )


def test_flat_empty_title_fails_naming_the_field(tmp_path):
    lines = ["  "] + LINES[1:]
    records, [failure] = read_all(write(tmp_path, "t.txt", seven_lines(lines)))
    assert records == []
    assert failure.field == "brief_title" and "empty" in failure.message


def test_flat_line_fields_cover_the_seven_lines():
    assert len(LINE_FIELDS) == 7
    assert LINE_FIELDS[0] == "brief_title" and LINE_FIELDS[-1] == "detailed_description"


def test_flat_six_lines_with_a_final_newline_are_six_lines(tmp_path):
    records, [failure] = read_all(write(tmp_path, "t.txt", seven_lines(LINES[:6]) + "\n"))
    assert records == []
    assert failure.field == "detailed_description" and "has 6 lines" in failure.message
