"""extract_record / extract_records: gold seeds, context rules, determinism, batching and processes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from records_helper import read_records, record

from kg.extract import ExtractionFailure, extract_each, extract_record, extract_records
from kg.records import Intervention, Source, TrialRecord

GOLD = Path(__file__).resolve().parents[1] / "fixtures" / "gold_seeds.json"
LIST_FIELDS = ("antigens", "costimulatory_domains", "signaling_domains", "combined_with", "diseases")
SCALAR_FIELDS = ("targeting_strategy", "vector", "cell_source", "relapsed_refractory", "phase", "enrollment")


def gold_seeds() -> dict[str, dict]:
    return {g["trial_id"]: g for g in json.loads(GOLD.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("trial_id", sorted(gold_seeds()))
def test_seed_matches_gold_on_every_non_outcome_field(trial_id: str) -> None:
    gold = gold_seeds()[trial_id]
    out = extract_record(record("seeds", trial_id)).to_json()
    for f in LIST_FIELDS:
        if gold.get(f) is not None:
            assert sorted(out[f]) == sorted(gold[f]), f
    for f in SCALAR_FIELDS:
        if gold.get(f) is not None:
            assert out[f] == gold[f], f
    for flag, value in gold["design"].items():
        if value is not None:
            assert out["design"][flag] == value, flag
    dose = gold["dose"]
    if dose.get("levels") is not None:
        assert out["dose"]["levels"] == dose["levels"]
    if dose.get("range_per_kg") is not None:
        assert out["dose"]["range_per_kg"] == [float(x) for x in dose["range_per_kg"]]
    assert out["dose"]["fractions"] == dose["fractions"]


def make_record(
    title: str, summary: str = "", description: str = "", interventions: tuple[str, ...] = ()
) -> TrialRecord:
    return TrialRecord(
        trial_id="T1",
        source=Source(path="test", format="test"),
        brief_title=title,
        brief_summary=summary or None,
        detailed_description=description or None,
        interventions=tuple(Intervention(type="BIOLOGICAL", name=n) for n in interventions),
    )


def test_background_antigens_are_not_targets() -> None:
    # sentences from NCT02794961 and NCT03407859
    rec = make_record(
        "CD22 Targeting CAR-T Therapy Against B Cell Hematological Malignancies",
        "CD19 expression on B cell frequently lost after CD19-targeting CAR-T therapy. "
        "Although the complete remission rate is as high as 93% by using CD19-targeting CAR-T technology, "
        "approximately 60% patients will have recurrent disease.",
    )
    out = extract_record(rec)
    assert out.antigens == ("CD22",)
    assert out.targeting_strategy == "single"


def test_antigen_named_only_in_the_body_is_found_when_titles_are_silent() -> None:
    rec = make_record(
        "CAR-T Cell Therapy for Refractory Lymphoma",
        "Patients who failed CD19 CAR-T will receive anti-CD22 CAR-T cells.",
    )
    assert extract_record(rec).antigens == ("CD22",)


def test_product_name_brings_its_design_with_evidence() -> None:
    out = extract_record(make_record("Study of JCAR017 in Relapsed B-cell NHL"))
    assert out.antigens == ("CD19",)
    assert out.costimulatory_domains == ("4-1BB",)
    assert out.vector == "lentiviral" and out.cell_source == "autologous"
    assert [p.name for p in out.products] == ["lisocabtagene maraleucel"]
    assert {e.slot for e in out.evidence if e.text == "JCAR017"} >= {
        "antigens",
        "costimulatory_domains",
        "products",
    }


def test_targeting_strategies_from_cues() -> None:
    cases = {
        "Tandem CD19/CD20 CAR-T Cells for Lymphoma": "bispecific",
        "Bicistronic CD19 and CD22 CAR-T Cells": "bicistronic",
        "Co-infusion of CD19 and CD22 CAR-T Cells in B-ALL": "cocktail",
        "CD19 CAR-T Followed by CD22 CAR-T in B-ALL": "sequential",
        "CD19 and CD22 CAR-T Cells in B-ALL": "multi-target",
    }
    for title, expected in cases.items():
        assert extract_record(make_record(title)).targeting_strategy == expected, title


def test_transplant_as_history_is_not_a_combination() -> None:
    history = extract_record(make_record("Donor-derived CD123 CAR-T Cells for AML Recurred After Allo-HSCT"))
    assert history.combined_with == ()
    assert history.cell_source == "allogeneic"
    bridged = extract_record(make_record("CD19 CAR-T Bridged to Allo-HSCT for B-ALL"))
    assert bridged.combined_with == ("allo-HSCT",)


def test_markers_on_stem_cell_beads_are_not_costimulatory_domains() -> None:
    out = extract_record(
        make_record(
            "CD19 CAR-T for ALL", "T cells are activated with anti-CD3/CD28 beads before transduction."
        )
    )
    assert out.costimulatory_domains == ()


def test_values_left_empty_when_the_record_is_silent() -> None:
    out = extract_record(make_record("CAR-T Cells for Solid Tumors"))
    assert out.antigens == () and out.targeting_strategy is None
    assert out.vector is None and out.cell_source is None and out.phase is None and out.enrollment is None


def test_same_input_gives_byte_identical_output() -> None:
    records = read_records("cart_v2")[:40]
    first = [json.dumps(e.to_json(), ensure_ascii=False) for e in extract_records(records, batch_size=7)]
    second = [json.dumps(e.to_json(), ensure_ascii=False) for e in extract_records(records, batch_size=64)]
    assert first == second


@pytest.mark.slow
def test_two_processes_give_the_same_output_as_one() -> None:
    records = read_records("cart_v2")[:24]
    one = [e.to_json() for e in extract_records(records, n_process=1, batch_size=8)]
    two = [e.to_json() for e in extract_records(records, n_process=2, batch_size=8)]
    assert one == two


def test_a_failing_record_does_not_stop_the_batch() -> None:
    good = make_record("CD19 CAR-T for ALL")
    bad = replace(good, trial_id="BAD", brief_title=12345)  # type: ignore[arg-type]
    items = list(extract_each([good, bad, good]))
    assert [type(i).__name__ for i in items] == ["TrialExtraction", "ExtractionFailure", "TrialExtraction"]
    assert isinstance(items[1], ExtractionFailure) and "BAD" in str(items[1])


def test_hyphenated_names_match_however_the_tokenizer_splits_them() -> None:
    out = extract_record(make_record("ALLO-501A in Relapsed Large B-cell Lymphoma"))
    assert out.antigens == ("CD19",) and out.cell_source == "allogeneic"
    assert [p.name for p in out.products] == ["ALLO-501"]
    assert extract_record(make_record("Nectin-4 CAR-T Cells for Solid Tumors")).antigens == ("NECTIN4",)


def test_an_antibody_drug_target_is_not_a_car_target() -> None:
    # NCT03540303: the CAR targets CD19; PD-L1 is named as the target of antibody drugs
    rec = make_record(
        "Cytoplasmic Activated PD-1 CAR T Cells in B Cell Lymphoma",
        "In this study, CAR19T cells possess the dual effects of CAR19T cells and anti-PD1 or anti-PD-L1 "
        "antibodies.",
    )
    assert extract_record(rec).antigens == ("CD19",)


def test_a_bispecific_antibody_in_the_background_is_no_strategy() -> None:
    rec = make_record(
        "CD19 and CD22 CAR-T Cells in B-ALL",
        "Blinatumomab, a bispecific T-cell engager, has shown activity in B-ALL. "
        "The study will have the following sequential phases: screening, treatment and follow-up.",
    )
    assert extract_record(rec).targeting_strategy == "multi-target"


def test_a_trial_without_any_car_has_no_car_targets() -> None:
    rec = make_record(
        "TQB2930 Injection in Patients With Advanced Cancers",
        "TQB2930 is a bispecific antibody against HER2 and epidermal growth factor receptor.",
    )
    out = extract_record(rec)
    assert out.antigens == () and out.targeting_strategy is None
