"""kg.ingest.xml: the legacy clinical_study XML."""

from __future__ import annotations

import json

import pytest

from kg.ingest.fields import load_enums, to_enum, to_iso_date, to_phases
from kg.ingest.xml import decode_textblock
from kg.records import DesignInfo, Enrollment, Intervention, Outcome

from .helpers import FIXTURES, read_all, write

XML = FIXTURES / "NCT00739856.xml"

MINIMAL = """<?xml version="1.0" encoding="UTF-8"?>
<clinical_study>
  <id_info><nct_id>{nct}</nct_id></id_info>
  <brief_title>{title}</brief_title>
  <phase>{phase}</phase>
  <enrollment type="Anticipated">30</enrollment>
</clinical_study>
"""


def test_xml_reads_the_fields_of_a_real_record():
    [rec], failures = read_all(XML)
    assert failures == []
    assert rec.trial_id == "NCT00739856"
    assert rec.source.format == "xml"
    assert rec.brief_title.startswith("Use of Electroconvulsive Therapy (ECT) in Chronic")
    assert rec.official_title.startswith("Efficacy of ECT in Chronic, Severe")
    assert rec.conditions == ("Posttraumatic Stress Disorder",)
    assert rec.interventions[0].type == "PROCEDURE"
    assert rec.interventions[0].name == "Electroconvulsive Therapy"
    assert rec.interventions[0].description.startswith("ECT was administered using the MECTA-SR1 apparatus.")
    assert rec.outcomes[0] == Outcome(
        role="primary",
        measure="Clinician-Administered Posttraumatic Stress Disorder Scale (CAPS) SCORE",
        description=None,
        time_frame=None,
    )
    assert rec.outcomes[-1].role == "secondary"
    assert rec.outcomes[-1].time_frame == "baseline, 48 hrs post 3rd, 6th ECT"
    assert rec.phases == ("NA",)
    assert rec.study_type == "INTERVENTIONAL"
    assert rec.enrollment == Enrollment(count=20, type="ACTUAL")
    assert rec.design == DesignInfo("NON_RANDOMIZED", "SINGLE_GROUP", "NONE", "TREATMENT")
    assert rec.sponsor == "Government Medical College Srinagar"  # the lead sponsor, not the collaborator
    assert rec.status == "COMPLETED"
    assert rec.start_date == "2005-01"


def test_xml_textblocks_are_dedented_and_rejoined():
    [rec], _ = read_all(XML)
    assert rec.detailed_description is None  # this record has none
    assert rec.brief_summary == (
        "Post Traumatic Stress Disorder is a chronic debilitating illness and few treatment options have "
        "demonstrated effectiveness. The study will look at the use of electroconvulsive therapy for the "
        "treatment of Post Traumatic Stress disorder in patients who have not responded to multiple "
        "antidepressants or cognitive behavioral therapy."
    )
    from kg.resources import examples_dir

    records, _ = read_all(examples_dir() / "ctgov_xml")
    texts = [t for r in records for t in (r.brief_summary, r.detailed_description) if t]
    assert len(texts) > 65
    for text in texts:
        assert "\r" not in text
        assert not text.startswith(" ") and "\n      " not in text
        for paragraph in text.split("\n\n"):
            assert paragraph == paragraph.strip()


def test_xml_textblock_decoding_rules():
    raw = (
        "\n      OBJECTIVES:\r\n\r\n        -  Determine the maximum tolerated dose of topotecan\r\n"
        "           in patients with advanced cancer.\r\n\r\n        -  Determine the safety.\r\n"
        "        1. First item\r\n        2. Second item\r\n\r\n"
        "      Patients receive oral topotecan twice daily for 21 days. Treatment repeats\r\n"
        "      every 28 days for up to 6 months.\r\n    "
    )
    assert decode_textblock(raw) == (
        "OBJECTIVES:\n\n"
        "-  Determine the maximum tolerated dose of topotecan in patients with advanced cancer.\n\n"
        "-  Determine the safety.\n1. First item\n2. Second item\n\n"
        "Patients receive oral topotecan twice daily for 21 days. "
        "Treatment repeats every 28 days for up to 6 months."
    )


@pytest.mark.parametrize(
    ("label", "phases"),
    [
        ("Phase 1/Phase 2", ("PHASE1", "PHASE2")),
        ("Phase 2/Phase 3", ("PHASE2", "PHASE3")),
        ("Early Phase 1", ("EARLY_PHASE1",)),
        ("N/A", ("NA",)),
        ("Phase 4", ("PHASE4",)),
    ],
)
def test_xml_phases_map_to_api_v2_words(tmp_path, label, phases):
    path = write(tmp_path, "s.xml", MINIMAL.format(nct="NCT01234567", title="T", phase=label))
    [rec], failures = read_all(path)
    assert failures == [] and rec.phases == phases
    assert rec.enrollment == Enrollment(count=30, type="ESTIMATED")


@pytest.mark.parametrize(
    ("kind", "label", "word"),
    [
        ("allocation", "Non-Randomized", "NON_RANDOMIZED"),
        ("allocation", "N/A", "NA"),
        ("intervention_model", "Single Group Assignment", "SINGLE_GROUP"),
        ("intervention_model", "Crossover Assignment", "CROSSOVER"),
        ("masking", "None (Open Label)", "NONE"),
        ("masking", "Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor)", "QUADRUPLE"),
        ("masking", "DOUBLE (PARTICIPANT, OUTCOMES_ASSESSOR)", "DOUBLE"),
        ("primary_purpose", "Health Services Research", "HEALTH_SERVICES_RESEARCH"),
        ("primary_purpose", "Educational/Counseling/Training", "ECT"),
        ("status", "Active, not recruiting", "ACTIVE_NOT_RECRUITING"),
        ("status", "Unknown status", "UNKNOWN"),
        ("study_type", "Observational [Patient Registry]", "OBSERVATIONAL"),
        ("intervention_type", "Diagnostic Test", "DIAGNOSTIC_TEST"),
        ("intervention_type", "BIOLOGICAL", "BIOLOGICAL"),
        ("status", "Some Future Status", "SOME_FUTURE_STATUS"),
    ],
)
def test_xml_labels_map_to_api_v2_enum_spelling(kind, label, word):
    assert to_enum(kind, label) == word


def test_xml_every_sample_label_has_a_table_entry():
    from xml.etree.ElementTree import parse  # trusted bundled samples only

    from kg.resources import examples_dir

    paths = {
        "allocation": "study_design_info/allocation",
        "intervention_model": "study_design_info/intervention_model",
        "primary_purpose": "study_design_info/primary_purpose",
        "status": "overall_status",
        "study_type": "study_type",
        "intervention_type": "intervention/intervention_type",
    }
    tables = load_enums()
    for file in sorted((examples_dir() / "ctgov_xml").glob("*.xml")):
        root = parse(file).getroot()
        for kind, path in paths.items():
            for elem in root.findall(path):
                assert elem.text.lower() in tables[kind], (file.name, kind, elem.text)


def test_xml_enum_tables_are_canonical():
    raw = json.loads((FIXTURES.parent.parent.parent / "kg" / "ingest" / "enums.json").read_text("utf-8"))
    for kind, table in raw.items():
        if kind.startswith("_"):
            continue
        assert list(table) == sorted(table), kind
        assert all(v.replace("_", "").isalnum() and v == v.upper() for v in table.values()), kind


def test_xml_dates_become_iso():
    assert to_iso_date("November 1, 2018") == "2018-11-01"
    assert to_iso_date("May 2002") == "2002-05"
    assert to_iso_date("2019-05-21") == "2019-05-21"
    assert to_iso_date("sometime") == "sometime"
    assert to_phases(["PHASE1|PHASE2", "Phase 2"]) == ("PHASE1", "PHASE2")


def test_xml_reads_several_studies_under_a_wrapper(tmp_path):
    body = "".join(
        MINIMAL.format(nct=nct, title=f"T{i}", phase="Phase 1").replace(
            '<?xml version="1.0" encoding="UTF-8"?>', ""
        )
        for i, nct in enumerate(["NCT00000001", "NCT00000002", "NCT00000003"])
    )
    records, failures = read_all(write(tmp_path, "bulk.xml", f"<search_results>{body}</search_results>"))
    assert failures == []
    assert [(r.trial_id, r.source.index) for r in records] == [
        ("NCT00000001", 0),
        ("NCT00000002", 1),
        ("NCT00000003", 2),
    ]


def test_xml_interventions_without_a_name_fail_naming_the_element(tmp_path):
    text = MINIMAL.format(nct="NCT01234567", title="T", phase="N/A").replace(
        "</clinical_study>",
        "<intervention><intervention_type>Drug</intervention_type></intervention></clinical_study>",
    )
    records, [failure] = read_all(write(tmp_path, "s.xml", text))
    assert (failure.record, failure.field) == ("NCT01234567", "intervention[1]/intervention_name")


def test_xml_without_clinical_study_fails(tmp_path):
    records, [failure] = read_all(write(tmp_path, "s.xml", "<rss><channel/></rss>"))
    assert failure.field == "clinical_study" and "<rss>" in failure.message


def test_xml_intervention_names_keep_their_text():
    [rec], _ = read_all(XML)
    assert rec.interventions == (
        Intervention(
            type="PROCEDURE", name="Electroconvulsive Therapy", description=rec.interventions[0].description
        ),
    )
