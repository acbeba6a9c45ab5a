"""kg.ingest.csvdl: the ClinicalTrials.gov CSV download."""

from __future__ import annotations

import csv
import io
import json

from kg.ingest.csvdl import parse_design
from kg.ingest.fields import load_csv_columns
from kg.records import DesignInfo, Enrollment, Intervention

from .helpers import FIXTURES, CountingReader, read_all, write

CSV = FIXTURES / "ctg-studies.csv"


def _csv(rows: list[dict[str, str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_csvdl_reads_the_real_download():
    records, failures = read_all(CSV)
    assert failures == []
    assert [r.trial_id for r in records] == ["NCT06600893", "NCT00351065", "NCT05231083"]
    assert [r.source.index for r in records] == [0, 1, 2]
    first = records[0]
    assert first.source.format == "csv"
    assert first.brief_title.startswith("Sham-Controlled Prospective Study")
    assert first.conditions == ("Erectile Dysfunctions",)
    assert first.interventions == (
        Intervention(type="DEVICE", name="Low intensity shockwave therapy (LiSWT)"),
        Intervention(type="DEVICE", name="Sham"),
    )
    assert [o.role for o in first.outcomes] == ["primary"] * 2 + ["secondary"] * 3 + ["other"]
    assert first.outcomes[0].measure == "Grayscale ultrasound (GUS)"
    assert first.phases == ("NA",)
    assert first.enrollment == Enrollment(count=35)
    assert first.design == DesignInfo("RANDOMIZED", "CROSSOVER", "DOUBLE", "TREATMENT")
    assert (first.sponsor, first.status, first.study_type) == (
        "San Diego Sexual Medicine",
        "COMPLETED",
        "INTERVENTIONAL",
    )
    assert (first.start_date, first.completion_date, first.last_update) == (
        "2019-08-05",
        "2023-04-07",
        "2024-09-19",
    )


def test_csvdl_keeps_multiline_cells_and_escapes_as_read():
    records, _ = read_all(CSV)
    third = records[2]
    assert "\n\nA. Erectile function" in third.outcomes[0].description
    assert "\\<14 out of 39" in third.outcomes[0].description  # the registry's Markdown escape is kept
    assert third.design.masking == "SINGLE"  # "SINGLE (INVESTIGATOR)"
    assert records[1].sponsor == "SK Chemicals Co., Ltd."


def test_csvdl_any_subset_and_order_of_columns(tmp_path):
    rows = [
        {
            "Phases": "PHASE1|PHASE2",
            "Study Title": "CD19 CAR-T in B-ALL",
            "Enrollment": "24",
            "Brief Summary": "Summary, with a comma.",
            "NCT Number": "NCT01234567",
            "Unknown Column": "ignored",
        }
    ]
    [rec], failures = read_all(write(tmp_path, "subset.csv", _csv(rows)))
    assert failures == []
    assert rec.trial_id == "NCT01234567"
    assert rec.phases == ("PHASE1", "PHASE2")
    assert rec.enrollment.count == 24
    assert rec.brief_summary == "Summary, with a comma."
    assert rec.outcomes == () and rec.conditions == ()


def test_csvdl_is_detected_by_content_not_by_name(tmp_path):
    text = CSV.read_text(encoding="utf-8")
    records, failures = read_all(write(tmp_path, "download.dat", text))
    assert failures == [] and len(records) == 3 and records[0].source.format == "csv"


def test_csvdl_reads_tab_separated_downloads(tmp_path):
    rows = [{"NCT Number": "NCT01234567", "Study Title": "A, B and C", "Conditions": "ALL|NHL"}]
    [rec], failures = read_all(write(tmp_path, "studies.tsv", _csv(rows, delimiter="\t")))
    assert failures == []
    assert (rec.brief_title, rec.conditions) == ("A, B and C", ("ALL", "NHL"))


def test_csvdl_older_download_names_are_aliases(tmp_path):
    rows = [
        {
            "Rank": "1",
            "NCT Number": "NCT00351065",
            "Title": "Phase II Trial of SK3530",
            "Status": "Terminated",
            "Phases": "Phase 1|Phase 2",
            "Study Designs": "Allocation: Randomized|Intervention Model: Parallel Assignment|"
            "Masking: Double (Participant, Investigator)|Primary Purpose: Treatment",
            "Sponsor/Collaborators": "SK Chemicals Co., Ltd.|Other Org",
            "Interventions": "Drug: SK3530",
        }
    ]
    [rec], failures = read_all(write(tmp_path, "old.csv", _csv(rows)))
    assert failures == []
    assert rec.brief_title == "Phase II Trial of SK3530"
    assert rec.status == "TERMINATED"
    assert rec.phases == ("PHASE1", "PHASE2")
    assert rec.design == DesignInfo("RANDOMIZED", "PARALLEL", "DOUBLE", "TREATMENT")
    assert rec.sponsor == "SK Chemicals Co., Ltd."
    assert rec.interventions == (Intervention(type="DRUG", name="SK3530"),)


def test_csvdl_without_nct_number_uses_the_url_then_stem_and_row(tmp_path):
    rows = [
        {"Study Title": "A", "Study URL": "https://clinicaltrials.gov/study/NCT05231083"},
        {"Study Title": "B", "Study URL": ""},
    ]
    records, failures = read_all(write(tmp_path, "mine.csv", _csv(rows)))
    assert failures == []
    assert [r.trial_id for r in records] == ["NCT05231083", "mine-2"]


def test_csvdl_blank_lines_are_not_records(tmp_path):
    text = CSV.read_text(encoding="utf-8") + "\n\n"
    records, failures = read_all(write(tmp_path, "s.csv", text))
    assert failures == [] and len(records) == 3


def test_csvdl_row_with_wrong_cell_count_fails_alone(tmp_path):
    text = (
        "NCT Number,Study Title,Conditions\n"
        "NCT01234567,Title one,ALL\nNCT07654321,Title two\nNCT01111111,Three,NHL\n"
    )
    records, [failure] = read_all(write(tmp_path, "s.csv", text))
    assert [r.trial_id for r in records] == ["NCT01234567", "NCT01111111"]
    assert failure.record == "NCT07654321"
    assert "line 3" in failure.message and "2 cells" in failure.message and "3" in failure.message


def test_csvdl_bad_enrollment_fails_naming_the_column(tmp_path):
    text = "NCT Number,Study Title,Enrollment\nNCT01234567,Title,about forty\n"
    records, [failure] = read_all(write(tmp_path, "s.csv", text))
    assert records == []
    assert (failure.record, failure.field) == ("NCT01234567", "Enrollment")
    assert "about forty" in failure.message


def test_csvdl_streams_rows_without_reading_the_whole_file():
    from kg.ingest import read_stream

    row = CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = row[0], "".join(row[1:])
    data = (header + body * 3000).encode("utf-8")  # about 13 MB
    source = CountingReader(data)
    items = read_stream(source, "big.csv")  # type: ignore[arg-type]
    first = next(items)
    assert first.trial_id == "NCT06600893"
    assert source.consumed < len(data) // 10


def test_csvdl_design_parser_maps_both_spellings():
    assert parse_design(
        "Allocation: NA|Intervention Model: SINGLE_GROUP|Masking: NONE|Primary Purpose: TREATMENT"
    ) == (DesignInfo("NA", "SINGLE_GROUP", "NONE", "TREATMENT"))
    assert parse_design("Observational Model: COHORT|Time Perspective: PROSPECTIVE") is None
    assert parse_design("") is None


def test_csvdl_column_table_is_canonical():
    raw = json.loads(
        (FIXTURES.parent.parent.parent / "kg" / "ingest" / "csv_columns.json").read_text("utf-8")
    )
    assert list(raw["fields"]) == sorted(raw["fields"])
    assert raw["known"] == sorted(set(raw["known"]))
    assert set(raw["fields"]) <= set(raw["known"])
    columns = load_csv_columns()
    for name in ("NCT Number", "Study Title", "Brief Summary", "Primary Outcome Measures", "Study Design"):
        assert name in columns["known"]
