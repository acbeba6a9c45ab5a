"""kg.ingest.v2json: API v2 JSON as one study, a list, a page, JSON Lines or concatenated documents."""

from __future__ import annotations

import copy
import json

import pytest

from kg.ingest import read_stream
from kg.records import DesignInfo, Enrollment, Intervention, Outcome

from .helpers import FIXTURES, CountingReader, read_all, write

STUDY = json.loads((FIXTURES / "NCT00973089.json").read_text(encoding="utf-8"))
PAGE_IDS = ["NCT03029338", "NCT03101709"]
JSONL_IDS = ["NCT03029338", "NCT03101709", "NCT03196414"]


def test_v2json_reads_every_module_of_a_full_study():
    [rec], failures = read_all(FIXTURES / "NCT00973089.json")
    assert failures == []
    assert rec.trial_id == "NCT00973089"
    assert rec.source.format == "json"
    assert (
        rec.brief_title
        == rec.official_title
        == "Alternative Treatment of Deep Carious Lesions Based on Biological Evidences"
    )
    assert rec.brief_summary and rec.detailed_description
    assert rec.conditions == ("Caries, Dental",)
    assert rec.keywords == ("Primary tooth", "Caries, Dental", "Alternative treatment")
    assert rec.interventions[0] == Intervention(
        type="OTHER",
        name="Incomplete caries removal in primary teeth",
        description=STUDY["protocolSection"]["armsInterventionsModule"]["interventions"][0]["description"],
    )
    assert rec.outcomes == (
        Outcome(
            role="primary",
            measure="The success of the alternative treatment of the deep carious lesion.",
            description=None,
            time_frame="Half annually for three years",
        ),
    )
    assert rec.phases == ("NA",)
    assert rec.study_type == "INTERVENTIONAL"
    assert rec.enrollment == Enrollment(count=0, type="ACTUAL")
    assert rec.design == DesignInfo("RANDOMIZED", "PARALLEL", "SINGLE", "TREATMENT")
    assert (rec.sponsor, rec.status) == ("Hadassah Medical Organization", "WITHDRAWN")
    assert (rec.start_date, rec.completion_date, rec.last_update) == ("2010-05", "2015-03", "2015-08-19")


def test_v2json_reads_a_page_with_next_page_token():
    records, failures = read_all(FIXTURES / "page.json")
    assert failures == []
    assert [r.trial_id for r in records] == PAGE_IDS
    assert [r.source.index for r in records] == [0, 1]


def test_v2json_reads_json_lines():
    records, failures = read_all(FIXTURES / "studies.jsonl")
    assert failures == []
    assert [r.trial_id for r in records] == JSONL_IDS
    assert {r.source.format for r in records} == {"jsonl"}


@pytest.mark.parametrize("indent", [None, 2])
def test_v2json_reads_a_list_of_studies(tmp_path, indent):
    studies = [json.loads(line) for line in (FIXTURES / "studies.jsonl").read_text("utf-8").splitlines()]
    path = write(tmp_path, "list.json", json.dumps(studies, indent=indent))
    records, failures = read_all(path)
    assert failures == []
    assert [r.trial_id for r in records] == JSONL_IDS


def test_v2json_reads_concatenated_documents_and_pages_in_json_lines(tmp_path):
    page = json.loads((FIXTURES / "page.json").read_text("utf-8"))
    text = json.dumps(STUDY, indent=1) + "\n" + json.dumps(page, indent=1) + "\n"
    records, failures = read_all(write(tmp_path, "two.json", text))
    assert failures == [] and [r.trial_id for r in records] == ["NCT00973089", *PAGE_IDS]
    lines = json.dumps(page) + "\n" + json.dumps(STUDY) + "\n"
    records, failures = read_all(write(tmp_path, "pages.jsonl", lines))
    assert failures == [] and [r.trial_id for r in records] == [*PAGE_IDS, "NCT00973089"]


def test_v2json_ignores_unknown_keys_and_tolerates_missing_modules(tmp_path):
    study = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT01234567", "briefTitle": "T", "futureKey": {"x": 1}},
            "brandNewModule": {"a": [1, 2]},
        },
        "someNewSection": True,
    }
    [rec], failures = read_all(write(tmp_path, "s.json", json.dumps(study)))
    assert failures == []
    assert (rec.trial_id, rec.brief_title, rec.design, rec.enrollment, rec.outcomes) == (
        "NCT01234567",
        "T",
        None,
        None,
        (),
    )


def test_v2json_null_is_read_as_missing(tmp_path):
    study = copy.deepcopy(STUDY)
    study["protocolSection"]["conditionsModule"]["keywords"] = None
    study["protocolSection"]["designModule"] = None
    [rec], failures = read_all(write(tmp_path, "s.json", json.dumps(study)))
    assert failures == [] and rec.keywords == () and rec.phases == ()


@pytest.mark.parametrize(
    ("module", "key", "value", "field", "named"),
    [
        (
            "conditionsModule",
            "conditions",
            "Caries",
            "protocolSection.conditionsModule.conditions",
            "a string",
        ),
        ("conditionsModule", "keywords", [1], "protocolSection.conditionsModule.keywords[0]", "a number"),
        (
            "identificationModule",
            "briefTitle",
            ["T"],
            "protocolSection.identificationModule.briefTitle",
            "a list",
        ),
        ("designModule", "phases", "PHASE1", "protocolSection.designModule.phases", "a string"),
        ("designModule", "designInfo", [], "protocolSection.designModule.designInfo", "a list"),
        ("identificationModule", "nctId", 973089, "protocolSection.identificationModule.nctId", "a number"),
    ],
)
def test_v2json_wrong_types_fail_naming_the_field(tmp_path, module, key, value, field, named):
    bad = copy.deepcopy(STUDY)
    bad["protocolSection"][module][key] = value
    path = write(tmp_path, "two.jsonl", json.dumps(bad) + "\n" + json.dumps(STUDY) + "\n")
    records, [failure] = read_all(path)
    assert [r.trial_id for r in records] == ["NCT00973089"]  # the good study after the bad one is read
    assert failure.field == field
    assert named in failure.message
    assert failure.path == str(path)


def test_v2json_wrong_type_inside_a_list_names_the_item(tmp_path):
    bad = copy.deepcopy(STUDY)
    bad["protocolSection"]["outcomesModule"]["primaryOutcomes"][0]["timeFrame"] = 3
    records, [failure] = read_all(write(tmp_path, "s.json", json.dumps(bad)))
    assert failure.record == "NCT00973089"
    assert failure.field == "protocolSection.outcomesModule.primaryOutcomes[0].timeFrame"


@pytest.mark.parametrize("count", [12, 12.0, "12", " 12 "])
def test_v2json_enrollment_count_is_coerced_when_unambiguous(tmp_path, count):
    study = copy.deepcopy(STUDY)
    study["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = count
    [rec], failures = read_all(write(tmp_path, "s.json", json.dumps(study)))
    assert failures == [] and rec.enrollment.count == 12


@pytest.mark.parametrize("count", [12.5, "twelve", True])
def test_v2json_enrollment_count_that_is_not_a_whole_number_fails(tmp_path, count):
    study = copy.deepcopy(STUDY)
    study["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = count
    records, [failure] = read_all(write(tmp_path, "s.json", json.dumps(study)))
    assert failure.field == "protocolSection.designModule.enrollmentInfo.count"
    assert "whole number" in failure.message


def test_v2json_study_without_nct_id_fails(tmp_path):
    study = copy.deepcopy(STUDY)
    del study["protocolSection"]["identificationModule"]["nctId"]
    records, [failure] = read_all(write(tmp_path, "s.json", json.dumps(study)))
    assert (failure.record, failure.field) == ("#0", "protocolSection.identificationModule.nctId")


def test_v2json_page_whose_studies_is_not_a_list_fails(tmp_path):
    records, [failure] = read_all(
        write(tmp_path, "p.json", json.dumps({"studies": {"a": 1}, "nextPageToken": "x"}))
    )
    assert failure.field == "studies" and "list" in failure.message


def test_v2json_streams_a_big_page_one_study_at_a_time():
    studies = [json.loads(line) for line in (FIXTURES / "studies.jsonl").read_text("utf-8").splitlines()]
    data = json.dumps({"studies": studies * 1500, "nextPageToken": "abc"}).encode("utf-8")  # about 7 MB
    source = CountingReader(data)
    items = read_stream(source, "page.json")  # type: ignore[arg-type]
    assert next(items).trial_id == JSONL_IDS[0]
    assert source.consumed < len(data) // 10
    assert sum(1 for _ in items) == 3 * 1500 - 1


def test_v2json_streams_json_lines():
    line = (FIXTURES / "studies.jsonl").read_bytes()
    data = line * 1500
    source = CountingReader(data)
    items = read_stream(source, "s.jsonl")  # type: ignore[arg-type]
    assert next(items).trial_id == JSONL_IDS[0]
    assert source.consumed < len(data) // 10


def test_v2json_long_single_study_lines_are_read_as_json_lines(tmp_path):
    big = copy.deepcopy(STUDY)
    big["protocolSection"]["descriptionModule"]["detailedDescription"] = (
        "word " * 40_000
    )  # line > detection head
    text = json.dumps(big) + "\n" + json.dumps(STUDY) + "\n"
    records, failures = read_all(write(tmp_path, "big.json", text))
    assert failures == []
    assert [r.source.format for r in records] == ["jsonl", "jsonl"]
