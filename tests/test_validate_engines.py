"""pyshacl-turbo against pyshacl (the reference): same findings on valid, invalid and mutated graphs;
chunked and whole-graph turbo runs agree; turbo falls back to pyshacl, with a note, when it cannot run."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import XSD, Graph, Literal, URIRef
from rdflib.namespace import SH

import kg.validate as validate
from kg.build import build
from kg.records import OutcomeExtraction, Source, TimeFrame, TrialExtraction
from kg.validate import (
    Finding,
    collect_findings,
    load_shapes,
    pyshacl_validate,
    turbo_validate,
    unchecked_shacl_terms,
    validate_path,
    with_ontology,
)

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "tests/shapes"
COMPLETE = SHAPES / "valid/complete_trial.ttl"


def finding_key(f: Finding) -> tuple[str, ...]:
    """What both engines must agree on: focus, path, component, severity, shape, value.

    A computed number is compared by value: a SPARQL sum is "90.0" from rdflib, "90" from Oxigraph.
    """
    return (f.focus, f.path, f.component, f.severity, f.shape, _number_or_text(f.value))


def _number_or_text(text: str) -> str:
    try:
        return f"number {Decimal(text).normalize()}"
    except InvalidOperation:
        return text


def keys(results: Graph) -> list[tuple[str, ...]]:
    return sorted(finding_key(f) for f in collect_findings(results))


def as_nt(g: Graph) -> bytes:
    """A data graph as the engines see it: its statements plus the packaged ontology."""
    return with_ontology(g.serialize(format="nt", encoding="utf-8"))


def engines_agree(g: Graph) -> list[tuple[str, ...]]:
    nt = as_nt(g)
    turbo, reference = keys(turbo_validate(nt)), keys(pyshacl_validate(nt))
    assert turbo == reference
    return turbo


# --------------------------------------------------------------------------- fixed examples


@pytest.mark.parametrize("path", sorted(SHAPES.glob("*/*.ttl")), ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_engines_agree_on_every_shape_example(path: Path) -> None:
    found = engines_agree(Graph().parse(path, format="turtle"))
    assert bool(found) == (path.parent.name == "invalid")


def test_engines_agree_on_the_seeds_build_and_a_broken_trial(tmp_path: Path) -> None:
    gold = json.loads((ROOT / "tests/fixtures/gold_seeds.json").read_text(encoding="utf-8"))
    bad = OutcomeExtraction(
        role="secondary",
        measure="AE",
        description=None,
        time_frame="x",
        endpoint="NOPE",
        timeframe=TimeFrame(max_duration="P1M", timepoints=("P90D",)),
    )
    extractions = [TrialExtraction.from_json(obj) for obj in gold] + [
        TrialExtraction(
            trial_id="t-bad",
            source=Source("x", "json"),
            targeting_strategy="sequential",
            antigens=("CD19",),
            outcomes=(bad,),
        )
    ]
    build([(e, None) for e in extractions], tmp_path / "out")
    runs = {
        "pyshacl per trial": validate_path(tmp_path / "out", jobs=1, engine="pyshacl"),
        "turbo, 1 trial a run": validate_path(tmp_path / "out", jobs=1, chunk=1),
        "turbo, 4 a run, 2 processes": validate_path(tmp_path / "out", jobs=2, chunk=4),
        "turbo whole graph": validate_path(tmp_path / "out", whole=True, engine="turbo"),
    }
    found = {name: sorted(map(finding_key, o.findings)) for name, o in runs.items()}
    reference = found.pop("pyshacl per trial")
    assert len(reference) == 3
    assert all(v == reference for v in found.values()), found
    assert {o.engine for o in runs.values()} == {"turbo", "pyshacl"}


def test_turbo_chunks_report_a_vocabulary_result_once(tmp_path: Path) -> None:
    """Every chunk carries the shared graph; its results are kept once, not once per chunk."""
    bad = Graph().parse(SHAPES / "invalid/bad_hgnc_curie.ttl", format="turtle")
    for i in range(2, 5):  # three more trials, so chunks of one trial give four runs
        for s, p, o in Graph().parse(COMPLETE, format="turtle"):
            bad.add(tuple(_renamed(t, i) for t in (s, p, o)))  # type: ignore[arg-type]
    data = tmp_path / "four.ttl"
    bad.serialize(data, format="turtle")
    one_a_run = validate_path(data, jobs=1, chunk=1)
    reference = validate_path(data, jobs=1, engine="pyshacl")
    assert one_a_run.trials == 4
    assert sorted(map(finding_key, one_a_run.findings)) == sorted(map(finding_key, reference.findings))
    assert [f.trial for f in one_a_run.findings] == [""]  # the vocabulary node's finding, once


def _renamed(term: object, i: int) -> object:
    if isinstance(term, URIRef):
        return URIRef(str(term).replace("NCT00000001", f"NCT0000000{i}"))
    if isinstance(term, Literal) and str(term) == "NCT00000001":
        return Literal(f"NCT0000000{i}", datatype=term.datatype)
    return term


def test_turbo_rejects_an_iso_week_duration_that_xsd_does_not_allow() -> None:
    """``"P4W"^^xsd:duration`` is ill-typed (XSD durations have no week designator).  pyshacl passes it,
    because rdflib's duration parser accepts ISO 8601 weeks: the one known disagreement, turbo is right."""
    g = Graph().parse(COMPLETE, format="turtle")
    duration = f"<{XSD.duration}>".encode()
    nt = as_nt(g).replace(b'"P28D"^^' + duration, b'"P4W"^^' + duration)
    assert b'"P4W"' in nt
    found = keys(turbo_validate(nt))
    assert [(k[4], k[2], k[5]) for k in found] == [
        ("cks:DurationShape-isoDuration", "sh:DatatypeConstraintComponent", "P4W")
    ]


# --------------------------------------------------------------------------- mutations


def trial_triples() -> list[tuple]:
    return sorted(Graph().parse(COMPLETE, format="turtle"))


EDITS = ["delete", "string", "negative", "untyped", "other node", "second value"]


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_engines_agree_on_a_trial_with_one_triple_deleted_or_edited(data: st.DataObject) -> None:
    triples = trial_triples()
    s, p, o = data.draw(st.sampled_from(triples), label="triple")
    edit = data.draw(st.sampled_from(EDITS), label="edit")
    nodes = sorted({t for triple in triples for t in (triple[0], triple[2]) if isinstance(t, URIRef)})
    g = Graph()
    for triple in triples:
        g.add(triple)
    g.remove((s, p, o))
    if edit == "string":
        g.add((s, p, Literal("not a value")))
    elif edit == "negative":
        g.add((s, p, Literal(-7)))
    elif edit == "untyped":
        g.add((s, p, Literal(str(o))))
    elif edit == "other node":
        g.add((s, p, data.draw(st.sampled_from(nodes), label="node")))
    elif edit == "second value":
        g.add((s, p, o))
        g.add((s, p, data.draw(st.sampled_from(nodes + [Literal("x"), Literal(3)]), label="value")))
    engines_agree(g)


def test_mutations_reach_many_constraint_components() -> None:
    """The edits the property test draws from break the graph in many different ways (so agreeing on
    them means something); turbo alone here, the property test compares the engines."""
    triples = trial_triples()
    components: set[str] = set()
    for i, (s, p, o) in enumerate(triples[::3]):
        g = Graph()
        for triple in triples:
            g.add(triple)
        g.remove((s, p, o))
        if i % 2:
            g.add((s, p, Literal("not a value")))
        components |= {k[2] for k in keys(turbo_validate(as_nt(g)))}
    assert {"sh:MinCountConstraintComponent", "sh:DatatypeConstraintComponent"} <= components
    assert len(components) >= 5, components


# --------------------------------------------------------------------------- never validate less


def test_unchecked_shacl_terms_names_what_turbo_was_not_checked_on() -> None:
    assert unchecked_shacl_terms(load_shapes()) == []
    shapes = Graph()
    shapes.add((URIRef("urn:s"), SH.rule, URIRef("urn:r")))
    shapes.add((URIRef("urn:s"), SH.minCount, Literal(1, datatype=XSD.integer)))
    assert unchecked_shacl_terms(shapes) == [str(SH.rule)]


def test_turbo_falls_back_to_pyshacl_with_a_note_when_shapes_use_unchecked_terms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validate, "TURBO_CHECKED_TERMS", validate.TURBO_CHECKED_TERMS - {SH.minCount})
    validate.turbo_program.cache_clear()
    try:
        outcome = validate_path(SHAPES / "invalid/missing_title.ttl", jobs=1)
    finally:
        validate.turbo_program.cache_clear()
    assert outcome.engine == "pyshacl"
    assert outcome.notes and "minCount" in outcome.notes[0] and "pyshacl instead" in outcome.notes[0]
    assert "note: " in validate.format_report(outcome)
    assert {f.shape for f in outcome.findings} == {"cks:TrialTitleShape"}


def test_turbo_engine_error_falls_back_to_pyshacl(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(nt: bytes) -> Graph:
        raise validate.TurboUnavailable("pyshacl-turbo failed: simulated")

    monkeypatch.setattr(validate, "turbo_validate", broken)
    outcome = validate_path(SHAPES / "invalid/missing_title.ttl", jobs=1)
    assert outcome.engine == "pyshacl" and "simulated" in outcome.notes[0]
    assert not outcome.conforms


def test_cli_engine_option_and_json_engine_field(capsys: pytest.CaptureFixture[str]) -> None:
    from kg.cli import main

    path = str(SHAPES / "invalid/missing_title.ttl")
    assert main(["validate", path, "--format", "json", "--jobs", "1"]) == 1
    turbo = json.loads(capsys.readouterr().out)
    assert main(["validate", path, "--format", "json", "--jobs", "1", "--engine", "pyshacl"]) == 1
    reference = json.loads(capsys.readouterr().out)
    assert (turbo["engine"], reference["engine"]) == ("turbo", "pyshacl")
    assert [f["shape"] for f in turbo["findings"]] == [f["shape"] for f in reference["findings"]]
    with pytest.raises(SystemExit) as stop:
        main(["validate", path, "--engine", "nope"])
    assert stop.value.code == 2
