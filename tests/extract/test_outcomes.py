"""Outcome annotation: endpoint class, analyte, criteria with version, time frame, evidence offsets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kg.extract.outcomes import ENDPOINT_CLASSES, annotate_outcome
from kg.extract.timeframe import build_matcher, load_patterns
from kg.records import Outcome

GOLD = Path(__file__).resolve().parents[1] / "fixtures" / "gold_seeds.json"
SCORED = ("endpoint", "analyte", "criteria", "max_duration", "window_start", "timepoints")


def gold_outcomes() -> list[tuple[str, int, dict[str, Any]]]:
    trials = json.loads(GOLD.read_text(encoding="utf-8"))
    return [(t["trial_id"], i, o) for t in trials for i, o in enumerate(t["outcomes"])]


def predicted(o: dict[str, Any], index: int) -> dict[str, Any]:
    ex, _ = annotate_outcome(Outcome(o["role"], o["measure"], o["description"], o["time_frame"]), index)
    tf = ex.timeframe
    return {
        "endpoint": ex.endpoint,
        "analyte": ex.analyte,
        "criteria": list(ex.criteria),
        "max_duration": tf.max_duration,
        "window_start": tf.window_start,
        "timepoints": list(tf.timepoints),
    }


def test_outcomes_seed_gold_is_reproduced() -> None:
    cases = gold_outcomes()
    assert len(cases) == 47
    wrong = []
    for trial, i, o in cases:
        pred = predicted(o, i)
        wrong += [(trial, i, k, o[k], pred[k]) for k in SCORED if o[k] != pred[k]]
    assert wrong == []


def test_outcomes_display_text_undoes_escapes_only() -> None:
    ex, _ = annotate_outcome(Outcome("primary", "AUC（0\\-720d）", "IL\\-6 \\& IL\\-10", "Up to 2 years"), 0)
    assert ex.measure == "AUC（0-720d）"  # full-width kept: the display text is the record's own
    assert ex.description == "IL-6 & IL-10"
    assert ex.time_frame == "Up to 2 years"


@pytest.mark.parametrize(
    ("measure", "description", "endpoint"),
    [
        ("PFS", "Progression-free surial", "PFS"),
        ("Incidence of various types of adverse recation", None, "AE"),
        ("Overall surival", None, "OS"),
        ("Objective resopnse rate", None, "ORR"),
        ("Duration of Response (DOS) of CAR-T cells", None, "DOR"),
        ("Progress-free survival (PFS)", None, "PFS"),
        ("Complete response with incomplete blood recovery rate (CRi)", None, "CRI"),
        ("Duration of in vivo survival of CD19 CAR T cells.", None, "PERSISTENCE"),
        ("Incidence of cytokine release syndrome (CRS)", None, "CRS"),
        ("Incidence of grade 3 or higher neurotoxicity", None, "ICANS"),
        ("Rate of minimal residual disease (MRD)-negative complete remission", None, "MRD"),
        ("Peak expansion (Cmax) of CAR-T cells", None, "CMAX"),
        ("Time to Reach Cmax (Tmax)", None, "TMAX"),
        ("The AUC28D of CAR T cells", None, "AUC"),
        ("Vector copy number in peripheral blood", None, "VCN"),
        ("B-cell aplasia", None, "BCA"),
        ("Incidence of acute graft-versus-host disease (aGVHD)", None, "GVHD"),
        ("Recommended Phase 2 Dose (RP2D)", None, "MTD"),
        ("Number of participants with dose-limiting toxicities (DLTs)", None, "DLT"),
        ("Percentage of participants with serious adverse events", None, "SAE"),
        ("GVHD-free, relapse-free survival (GRFS)", None, "RFS"),
        ("Quality of life measured by EORTC QLQ-C30", None, "QOL"),
        ("Rate of successful manufacturing", None, "FEASIBILITY"),
        ("Event-free survival (EFS)", None, "EFS"),
        ("Relapse-free survival", None, "RFS"),
        ("Disease-free survival (DFS)", None, "DFS"),
        ("Stable disease (SD)", None, "SD"),
        ("Safety", "Number of subjects with adverse events", "AE"),
        ("Efficacy", "Overall response rate at 3 months", "ORR"),
        ("Safety and tolerability", None, "AE"),
        ("Safety", "Incidence of CRS, ICANS and other adverse events", "AE"),
        ("Survival", "PFS and OS at 2 years", "OS"),
        ("Efficacy", "Complete remission rate", "CR"),
        ("Effective rate", None, "ORR"),
        ("CAR-T cell proliferation", None, "PERSISTENCE"),
        ("Disease control rate (DCR)", "Proportion with CR, PR or SD", "OTHER"),
        ("Number of participants who proceed to transplant", None, "OTHER"),
    ],
)
def test_outcomes_endpoint_class(measure: str, description: str | None, endpoint: str) -> None:
    ex, _ = annotate_outcome(Outcome("primary", measure, description, None), 0)
    assert ex.endpoint == endpoint


@pytest.mark.parametrize(
    ("measure", "analyte"),
    [
        ("Concentration of IL2 level", "IL-2"),
        ("Serum IL-6", "IL-6"),
        ("Interleukin-10 concentration", "IL-10"),
        ("TNF-a levels", "TNF-α"),
        ("TNFα levels", "TNF-α"),
        ("IFN-gamma in serum", "IFN-γ"),
        ("Level of IFNγ", "IFN-γ"),
        ("Interferon gamma", "IFN-γ"),
        ("GM-CSF concentration", "GM-CSF"),
    ],
)
def test_outcomes_cytokine_analyte(measure: str, analyte: str) -> None:
    ex, _ = annotate_outcome(Outcome("secondary", measure, None, None), 0)
    assert (ex.endpoint, ex.analyte) == ("CYTOKINE", analyte)


def test_outcomes_analyte_only_for_cytokine_endpoints() -> None:
    ex, _ = annotate_outcome(Outcome("primary", "Incidence of CRS", "CRS with IL-6 above 100 pg/mL", None), 0)
    assert (ex.endpoint, ex.analyte) == ("CRS", None)


@pytest.mark.parametrize(
    ("description", "criteria"),
    [
        ("According to CTCAE 5.0, record the level", ["CTCAE v5.0"]),
        (
            "graded by the Common Terminology Criteria for Adverse Events (CTCAE, Version 5.0).",
            ["CTCAE v5.0"],
        ),
        ("graded using NCI CTCAE version 4.03", ["CTCAE v4.03"]),
        ("graded using NCI CTCAE v4", ["CTCAE v4.0"]),
        ("graded using CTCAE", ["CTCAE"]),
        ("assessed according to the revised 2014 Lugano Criteria.", ["Lugano 2014"]),
        ("per the Lugano classification", ["Lugano 2014"]),
        ("by the NCCN GuidelinesVersion 3.2023 of Acute Lymphoblastic Leukemia", ["NCCN v3.2023"]),
        ("CRS graded per ASTCT 2019 consensus and Lee 2014 criteria", ["ASTCT 2019", "Lee 2014"]),
        ("graded according to the ASBMT consensus grading", ["ASTCT 2019"]),
        ("per IMWG criteria", ["IMWG"]),
        ("per iwCLL 2018 guidelines", ["iwCLL 2018"]),
        ("according to ELN 2022 recommendations", ["ELN 2022"]),
        ("according to RECIST v1.1", ["RECIST 1.1"]),
        ("revised response criteria for malignant lymphoma (Cheson 2007)", ["Cheson 2007"]),
        ("International Working Group criteria", ["IWG"]),
        ("Response assessed by investigator", []),
    ],
)
def test_outcomes_criteria_with_version(description: str, criteria: list[str]) -> None:
    ex, _ = annotate_outcome(Outcome("primary", "Response", description, None), 0)
    assert list(ex.criteria) == criteria


def test_outcomes_evidence_quotes_the_original_text() -> None:
    oc = Outcome(
        "secondary",
        "Concentration of TNF\\-α level",
        "Graded per CTCAE v5\\.0，and the revised 2014 Lugano Criteria",
        "Before removal of lymphocytes, Day1, Day 7 and Month 3 post\\-infusion",
    )
    ex, evidence = annotate_outcome(oc, 4)
    assert ex.endpoint == "CYTOKINE" and ex.analyte == "TNF-α"
    assert list(ex.criteria) == ["CTCAE v5.0", "Lugano 2014"]
    originals = {
        "outcomes[4].measure": oc.measure,
        "outcomes[4].description": oc.description,
        "outcomes[4].time_frame": oc.time_frame,
    }
    slots = {e.slot for e in evidence}
    assert {
        "outcomes[4].endpoint",
        "outcomes[4].analyte",
        "outcomes[4].criteria",
        "outcomes[4].max_duration",
        "outcomes[4].timepoints",
    } <= slots
    for e in evidence:
        assert e.text == originals[e.field][e.start : e.end]
        assert e.text and e.rule
    ctcae = next(e for e in evidence if e.value == "CTCAE v5.0")
    assert ctcae.text == "CTCAE v5\\.0"


def test_outcomes_are_deterministic() -> None:
    oc = Outcome("primary", "ORR and CR", "per Lugano 2014 and IWG", "Day 28, Month 3 and Month 6")
    first = annotate_outcome(oc, 0)
    assert all(annotate_outcome(oc, 0) == first for _ in range(3))


# ------------------------------------------------------------------------------------- pattern files

KNOWN_KEYS = {"id", "label", "pattern", "concept", "versions", "default", "version_regex"}


@pytest.mark.parametrize("name", ["endpoints.jsonl", "analytes.jsonl", "criteria.jsonl"])
def test_outcomes_pattern_files_are_canonical(name: str) -> None:
    rows = load_patterns(name)
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids), "rules sorted by id"
    assert len(set(ids)) == len(ids), "ids unique"
    assert all(set(r) <= KNOWN_KEYS and {"id", "label", "pattern", "concept"} <= set(r) for r in rows)
    build_matcher(rows)  # every pattern is a valid spaCy Matcher pattern


def test_outcomes_endpoint_concepts_are_the_contract_classes() -> None:
    rows = load_patterns("endpoints.jsonl")
    assert {r["label"] for r in rows} == {"ENDPOINT", "ENDPOINT_WEAK"}
    assert {r["concept"] for r in rows} == set(ENDPOINT_CLASSES)  # every class has a rule, no other value


def test_outcomes_criteria_rules_of_one_concept_share_their_versions() -> None:
    tables: dict[str, tuple[str, str]] = {}
    for r in load_patterns("criteria.jsonl"):
        key = json.dumps([r.get("versions"), r.get("default"), r.get("version_regex")], sort_keys=True)
        assert tables.setdefault(r["concept"], (key, r["id"]))[0] == key, r["id"]


# ----------------------------------------------------------------------------------------- properties

PIECES = st.sampled_from(
    [
        "ORR",
        "CTCAE v5\\.0",
        "IL\\-6",
        "TNF\\-α",
        "（CR）",
        "Lugano 2014",
        "adverse recation",
        "Day 28",
        "，",
        "up to 2 years",
        "Cycle 1",
        "Ã©",
        "\\&",
        " ",
        "IFN-gamma",
        "NCCN Version 3.2023",
        "surial",
        "Month3",
    ]
)
MANGLED = st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=8).map("".join)


@settings(max_examples=200, deadline=None)
@given(MANGLED, st.one_of(st.none(), MANGLED), st.one_of(st.none(), MANGLED))
def test_outcomes_evidence_offsets_hold_on_mangled_text(
    measure: str, description: str | None, time_frame: str | None
) -> None:
    oc = Outcome("primary", measure, description, time_frame)
    ex, evidence = annotate_outcome(oc, 2)
    assert ex.endpoint in ENDPOINT_CLASSES
    originals = {
        "outcomes[2].measure": measure,
        "outcomes[2].description": description,
        "outcomes[2].time_frame": time_frame,
    }
    for e in evidence:
        original = originals[e.field]
        assert original is not None
        assert 0 <= e.start <= e.end <= len(original)
        assert e.text == original[e.start : e.end]
