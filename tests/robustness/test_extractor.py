"""The extractor fed mangled records (random and hostile text, huge fields, control characters, empty
fields): one result per record, in order — an extraction whose evidence quotes the original text exactly,
or an ExtractionFailure naming the record.  Never an uncaught exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kg.extract import ExtractionFailure, extract_each
from kg.records import Intervention, Outcome, Source, TrialExtraction, TrialRecord
from kg.synth import load_corpus

from .mangle import EXTRACTOR_PROFILE

REAL = load_corpus()
SENTENCES = st.sampled_from(REAL.sentences)
NASTY = st.sampled_from(
    ["\x00", "\u200b", "\ufeff", "\\", "\\*", "**", "ï»¿", "Ã©", "（", "）", "\u202e", "\r\n", "\t", "😀",
     "\u0308", "CD19/CD22/BCMA/" * 50, "4-1BB" * 30, "\ud7ff", "&amp;", "<b>", "|", "NCT0"]
)


@st.composite
def texts(draw) -> str:
    parts = draw(st.lists(SENTENCES | NASTY | st.text(max_size=40), min_size=0, max_size=4))
    text = " ".join(parts)
    if draw(st.integers(0, 40)) == 0:  # now and then a huge field (~20-60 kB)
        text += " " + draw(SENTENCES) * draw(st.integers(100, 300))
    return text


@st.composite
def records(draw, index: int) -> TrialRecord:
    maybe = st.none() | texts()
    roles = st.sampled_from(["primary", "secondary", "other"])
    outcomes = draw(st.lists(st.builds(Outcome, roles, texts(), maybe, maybe), max_size=3))
    interventions = draw(st.lists(st.builds(Intervention, st.none() | st.just("BIOLOGICAL"), texts(), maybe),
                                  max_size=2))
    return TrialRecord(
        trial_id=f"NCT9{index:07d}",
        source=Source("robustness", "synthetic", index),
        brief_title=draw(maybe),
        official_title=draw(maybe),
        brief_summary=draw(maybe),
        detailed_description=draw(maybe),
        conditions=tuple(draw(st.lists(texts(), max_size=2))),
        keywords=tuple(draw(st.lists(texts(), max_size=2))),
        interventions=tuple(interventions),
        outcomes=tuple(outcomes),
        phases=tuple(draw(st.lists(st.sampled_from(["PHASE1", "PHASE2", "NA", "phase 9", ""]), max_size=2))),
    )


@EXTRACTOR_PROFILE
@given(data=st.data())
def test_robust_extractor_mangled_records(data):
    batch = [data.draw(records(i), label=f"record {i}") for i in range(data.draw(st.integers(1, 2)))]
    results = list(extract_each(batch))
    assert len(results) == len(batch)
    for record, item in zip(batch, results, strict=True):
        if isinstance(item, ExtractionFailure):
            assert record.trial_id in str(item)
            continue
        assert isinstance(item, TrialExtraction)
        assert item.trial_id == record.trial_id
        for ev in item.evidence:
            original = record.field_text(ev.field)
            assert original is not None, ev
            assert 0 <= ev.start <= ev.end <= len(original), ev
            assert original[ev.start:ev.end] == ev.text, ev
        item.to_json()  # serializable
