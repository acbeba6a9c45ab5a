"""Over every bundled record: evidence quotes the ORIGINAL field text exactly, and values have evidence."""

from __future__ import annotations

import pytest
from records_helper import read_records

from kg.extract import extract_records

FOLDERS = ("seeds", "cart_v2", "ctgov_v2", "ctgov_xml")


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_evidence_text_is_the_original_field_slice(folder: str) -> None:
    records = read_records(folder)
    checked = 0
    for rec, ex in zip(records, extract_records(records), strict=True):
        assert ex.trial_id == rec.trial_id
        fields = dict(rec.text_fields())
        for ev in ex.evidence:
            original = fields.get(ev.field)
            assert original is not None, (rec.trial_id, ev)
            assert original[ev.start : ev.end] == ev.text, (rec.trial_id, ev)
            assert ev.rule, (rec.trial_id, ev)
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("folder", ("seeds", "cart_v2"))
def test_every_extracted_value_has_evidence(folder: str) -> None:
    records = read_records(folder)
    for rec, ex in zip(records, extract_records(records), strict=True):
        slots = {(e.slot, e.value) for e in ex.evidence}
        for a in ex.antigens:
            assert ("antigens", a) in slots, (rec.trial_id, a)
        for d in ex.diseases:
            assert ("diseases", d) in slots, (rec.trial_id, d)
        for c in ex.costimulatory_domains:
            assert ("costimulatory_domains", c) in slots, (rec.trial_id, c)
        for name in ("vector", "cell_source"):
            value = getattr(ex, name)
            if value:
                assert (name, value) in slots, (rec.trial_id, name, value)
        if ex.targeting_strategy:
            assert any(s == "targeting_strategy" for s, _ in slots), rec.trial_id


def test_trial_lists_are_the_union_of_products() -> None:
    records = read_records("cart_v2")
    for ex in extract_records(records):
        if ex.products:
            assert set(ex.antigens) == {a for p in ex.products for a in p.antigens}, ex.trial_id
            assert set(ex.costimulatory_domains) == {c for p in ex.products for c in p.costimulatory_domains}
