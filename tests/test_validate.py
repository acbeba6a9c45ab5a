"""Validation: shape examples, the CLI's exit codes and report, per-trial vs whole graph, dataset checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import RDF, Graph
from rdflib.namespace import SH

from kg.build import build
from kg.cli import main
from kg.records import OutcomeExtraction, Source, TimeFrame, TrialExtraction, TrialRecord
from kg.validate import load_shapes, validate_path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "tests/shapes"


def expected_findings(path: Path) -> set[tuple[str, str]]:
    """``(shape, constraint)`` pairs named in an invalid example's header (shape, constraint, also)."""
    header = [line[2:] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("# ")]
    fields = dict(line.split(": ", 1) for line in header if ": " in line and not line.startswith("also"))
    out = {(fields["shape"], fields["constraint"])}
    out |= {tuple(line.split(": ", 1)[1].split()) for line in header if line.startswith("also: ")}  # type: ignore[misc]
    return out


ENGINES = ["turbo", "pyshacl"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", sorted((SHAPES / "valid").glob("*.ttl")), ids=lambda p: p.stem)
def test_validate_valid_examples_conform(path: Path, engine: str) -> None:
    outcome = validate_path(path, jobs=1, engine=engine)
    assert outcome.engine == engine and outcome.notes == []
    assert outcome.conforms, [(f.shape, f.message) for f in outcome.findings]
    assert outcome.findings == []


INVALID = sorted((SHAPES / "invalid").glob("*.ttl"))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_validate_invalid_example_fails_on_the_named_shape(path: Path, engine: str) -> None:
    outcome = validate_path(path, jobs=1, engine=engine)
    assert outcome.engine == engine and outcome.notes == []
    assert not outcome.conforms
    fired = {(f.shape, f.component) for f in outcome.findings}
    assert fired == expected_findings(path)
    # grouped under the example's trial, or under the shared vocabulary for a vocabulary node
    assert {f.trial for f in outcome.findings} <= {"NCT00000001", ""}


def test_validate_examples_cover_many_constraints() -> None:
    assert len(INVALID) >= 20
    named = {next(iter(expected_findings(p)))[0] for p in INVALID}
    assert len(named) >= 20


def test_validate_shapes_have_at_least_30_property_constraints_with_messages() -> None:
    shapes = load_shapes()
    with_message = [s for s in shapes.subjects(SH.path, None) if (s, SH.message, None) in shapes]
    assert len(with_message) >= 30
    for constraint in shapes.subjects(RDF.type, SH.SPARQLConstraint):
        assert (constraint, SH.message, None) in shapes


def seed_extractions() -> list[TrialExtraction]:
    gold = json.loads((ROOT / "tests/fixtures/gold_seeds.json").read_text(encoding="utf-8"))
    return [TrialExtraction.from_json(obj) for obj in gold]


def test_validate_seeds_build_conforms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build([(e, None) for e in seed_extractions()], tmp_path / "out")
    assert main(["validate", str(tmp_path / "out")]) == 0
    assert "5 trials validated" in capsys.readouterr().out


def test_validate_ill_typed_duration_names_trial_and_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = OutcomeExtraction(
        role="primary",
        measure="ORR",
        description=None,
        time_frame="28 days",
        endpoint="ORR",
        timeframe=TimeFrame(max_duration="28 days"),
    )
    extractions = seed_extractions() + [
        TrialExtraction(trial_id="NCT09999999", source=Source("x", "json"), outcomes=(bad,))
    ]
    build([(e, None) for e in extractions], tmp_path / "out")
    report = tmp_path / "report.ttl"
    assert main(["validate", str(tmp_path / "out"), "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "NCT09999999: 1 violation" in out
    assert "cks:DurationShape-isoDuration [sh:DatatypeConstraintComponent]" in out
    assert "does NOT conform" in out
    g = Graph().parse(report, format="turtle")
    node = next(g.subjects(RDF.type, SH.ValidationReport))
    assert g.value(node, SH.conforms).toPython() is False
    assert len(list(g.objects(node, SH.result))) == 1


def test_validate_missing_title_names_trial_and_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = TrialRecord(
        trial_id="NCT08888888",
        source=Source("r.json", "json"),
        brief_summary="CD19 CAR-T cells.",
        conditions=("B-ALL",),
    )
    extraction = TrialExtraction(trial_id="NCT08888888", source=record.source, antigens=("CD19",))
    build([(extraction, record)], tmp_path / "out")
    assert main(["validate", str(tmp_path / "out"), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["conforms"] is False
    assert [(f["trial"], f["shape"]) for f in data["findings"]] == [("NCT08888888", "cks:TrialTitleShape")]


def test_validate_per_trial_and_whole_graph_agree(tmp_path: Path) -> None:
    bad = OutcomeExtraction(
        role="secondary",
        measure="AE",
        description=None,
        time_frame="x",
        endpoint="NOPE",
        timeframe=TimeFrame(max_duration="P1M", timepoints=("P90D",)),
    )
    extractions = seed_extractions() + [
        TrialExtraction(
            trial_id="t-bad",
            source=Source("x", "json"),
            targeting_strategy="sequential",
            antigens=("CD19",),
            outcomes=(bad,),
        )
    ]
    build([(e, None) for e in extractions], tmp_path / "out")
    per_trial = validate_path(tmp_path / "out", jobs=2)
    whole = validate_path(tmp_path / "out", whole=True)
    key = [(f.trial, f.shape, f.component, f.focus, f.value) for f in per_trial.findings]
    assert key == [(f.trial, f.shape, f.component, f.focus, f.value) for f in whole.findings]
    assert {f.shape for f in per_trial.findings} == {
        "cks:OutcomeShape-hasEndpointClass",
        "cks:TimepointWithinWindowConstraint",
        "cks:MultiProductStrategyShape-path",
    }
    assert {f.trial for f in per_trial.findings} == {"t-bad"}


@pytest.mark.parametrize("engine", ENGINES)
def test_validate_dataset_checks_find_duplicate_nct_and_dangling_reference(
    tmp_path: Path, engine: str
) -> None:
    data = tmp_path / "two.ttl"
    data.write_text(
        "@prefix cartkg: <https://w3id.org/cartkg/> .\n"
        '<https://w3id.org/cartkg/id/trial/a> a cartkg:ClinicalTrial ; cartkg:trialId "a" ; '
        'cartkg:nctId "NCT01010101" ; cartkg:hasSourceRecord <https://w3id.org/cartkg/id/record/a> ;'
        " cartkg:studiesDisease cartkg:DiseaseNope .\n"
        '<https://w3id.org/cartkg/id/record/a> a cartkg:SourceRecord ; cartkg:sourceFormat "json" ; '
        "cartkg:sourceIndex 0 .\n"
        '<https://w3id.org/cartkg/id/trial/b> a cartkg:ClinicalTrial ; cartkg:trialId "b" ; '
        'cartkg:nctId "NCT01010101" ; cartkg:hasSourceRecord <https://w3id.org/cartkg/id/record/b> .\n'
        '<https://w3id.org/cartkg/id/record/b> a cartkg:SourceRecord ; cartkg:sourceFormat "json" ; '
        "cartkg:sourceIndex 0 .\n",
        encoding="utf-8",
    )
    outcome = validate_path(data, jobs=1, engine=engine)
    by_shape = {(f.shape, f.trial) for f in outcome.findings}
    assert ("cks:UniqueNctIdCheck", "a") in by_shape and ("cks:UniqueNctIdCheck", "b") in by_shape
    assert ("cks:DanglingReferenceCheck", "a") in by_shape
    assert ("cks:TrialDiseaseShape", "a") in by_shape  # the class constraint fires too


def test_validate_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing")]) == 2
    broken = tmp_path / "broken.ttl"
    broken.write_text("this is not turtle", encoding="utf-8")
    assert main(["validate", str(broken)]) == 2
    assert "cannot parse" in capsys.readouterr().err


def test_validate_refuses_rdfxml_with_entities_before_parsing(tmp_path, capsys):
    """A user's RDF file goes through kg.rdfio's checks: no entity expansion, exit 2 with the reason."""
    from kg.cli import main

    evil = tmp_path / "evil.rdf"
    evil.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="http://x"><rdf:value>&b;</rdf:value></rdf:Description></rdf:RDF>\n',
        encoding="utf-8",
    )
    assert main(["validate", str(evil)]) == 2
    err = capsys.readouterr().err
    assert "evil.rdf" in err and "DOCTYPE" in err
